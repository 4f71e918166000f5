/*
 * For Criterion tests that run a coordinator and workers as threads of the test process, over
 * real loopback sockets: a free port, and thread bodies for pthread_create.
 */
#ifndef HOTSPLIT_TESTS_IN_PROCESS_H
#define HOTSPLIT_TESTS_IN_PROCESS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hotsplit/runtime.h"

/* A loopback port nothing listens on now: bind port 0, read what the kernel gave, close. */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* pthread bodies: hs_coordinator_run / hs_worker_run on arg until stopped. */
static inline void *run_coordinator(void *arg)
{
    hs_error err;
    hs_coordinator_run(arg, &err);
    return NULL;
}

static inline void *run_worker(void *arg)
{
    hs_error err;
    hs_worker_run(arg, &err);
    return NULL;
}

#endif
