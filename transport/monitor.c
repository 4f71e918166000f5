/*
 * Socket monitors: libzmq publishes a socket's connection events (connected, accepted,
 * disconnected, handshake failures, ...) on an inproc PAIR socket of our choosing; the runtime
 * watches them to notice peers coming and going. Each event is two frames: 6 bytes (16-bit
 * event id, 32-bit value, native byte order) and the peer's address as text.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "transport_impl.h"

void *hs_monitor_open(void *ctx, void *socket, int events, hs_error *err)
{
    static atomic_uint serial;
    char addr[96];
    snprintf(addr, sizeof addr, "inproc://hs-monitor-%p-%u", socket,
             atomic_fetch_add(&serial, 1));
    if (zmq_socket_monitor(socket, addr, events) != 0) {
        hs__terr(err, HS_ERR_IO, "zmq_socket_monitor: %s", zmq_strerror(errno));
        return NULL;
    }
    void *pair = zmq_socket(ctx, ZMQ_PAIR);
    if (!pair) {
        hs__terr(err, HS_ERR_IO, "zmq_socket: %s", zmq_strerror(errno));
        zmq_socket_monitor(socket, NULL, 0);
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(pair, addr) != 0) {
        hs__terr(err, HS_ERR_IO, "connect %s: %s", addr, zmq_strerror(errno));
        zmq_close(pair);
        zmq_socket_monitor(socket, NULL, 0);
        return NULL;
    }
    return pair;
}

hs_status hs_monitor_read(void *monitor, int *event, char *address, size_t size, int flags)
{
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, monitor, flags & ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return HS_ERR_IO;
    }
    bool well_formed = zmq_msg_size(&head) == 6 && zmq_msg_more(&head);
    uint16_t id = 0;
    if (well_formed)
        memcpy(&id, zmq_msg_data(&head), sizeof id);
    bool more = zmq_msg_more(&head);
    zmq_msg_close(&head);

    zmq_msg_init(&addr);
    if (more && zmq_msg_recv(&addr, monitor, 0) < 0) {
        zmq_msg_close(&addr);
        return HS_ERR_IO;
    }
    if (address && size) {
        size_t n = zmq_msg_size(&addr) < size - 1 ? zmq_msg_size(&addr) : size - 1;
        if (n)
            memcpy(address, zmq_msg_data(&addr), n);
        address[n] = '\0';
    }
    zmq_msg_close(&addr);
    if (!well_formed) {
        errno = EPROTO;
        return HS_ERR_PARSE;
    }
    *event = id;
    return HS_OK;
}
