/*
 * Internals shared by the transport's files: the error helper, the header size limit, the
 * per-kind field table and the counters tests read. Not installed; tests reach it through the
 * transport directory on their include path.
 */
#ifndef HOTSPLIT_TRANSPORT_IMPL_H
#define HOTSPLIT_TRANSPORT_IMPL_H

#include <stdint.h>

#include "transport.h"

/* Largest header frame accepted (and produced). The largest legal header, a DATA message with
 * 64 tensors of 127-byte names and 8 dimensions each, or a PREPARE with 16 stages and 16
 * endpoints of 255 bytes, is under 16 KiB. */
#define HS_WIRE_HEADER_MAX (64 * 1024)
/* Deepest msgpack nesting accepted in a header (the protocol itself nests 4 deep). */
#define HS_WIRE_DEPTH_MAX 8

/* Header fields, one bit each; the table in wire.c says which kinds carry which. */
enum {
    HS_F_NAME = 1u << 0,
    HS_F_ENDPOINT = 1u << 1,
    HS_F_DIGEST = 1u << 2,
    HS_F_STATUS = 1u << 3,
    HS_F_REASON = 1u << 4,
    HS_F_PLAN = 1u << 5,
    HS_F_EPOCH = 1u << 6,
    HS_F_RETIRE = 1u << 7,
    HS_F_RID = 1u << 8,
    HS_F_CUT = 1u << 9,
    HS_F_TENSORS = 1u << 10,
    HS_F_STAGE = 1u << 11,
    HS_F_COUNT = 1u << 12,
    HS_F_SECONDS = 1u << 13,
    HS_F_OFFSET = 1u << 14,
    HS_F_TOTAL = 1u << 15,
    HS_F_SIZE = 1u << 16, /* a kind with "size" carries one raw chunk frame of that many bytes */
    HS_F_FIRST = 1u << 17,
    HS_F_LAST = 1u << 18,
};
#define HS_N_FIELDS 19

typedef struct hs__kind_fields {
    unsigned required; /* must be present */
    unsigned optional; /* may be absent: "reason" defaults to "" */
} hs__kind_fields;

/* Indexed by hs_msg_kind (static_assert'ed against HS_MSG_COUNT in wire.c). */
extern const hs__kind_fields hs__kind_fields_table[HS_MSG_COUNT];
/* Key of field bit i ("name", "endpoint", ...), indexed by the bit's position. */
extern const char *const hs__field_keys[HS_N_FIELDS];

/* Whether messages of kind k carry a chunk frame (after their tensors, of which they have
 * none). */
static inline bool hs__kind_has_chunk(hs_msg_kind k)
{
    return (hs__kind_fields_table[k].required & HS_F_SIZE) != 0;
}

/* Wire names of dtypes ("float32", "int64") and of the one tensor encoding ("raw"). */
const char *hs__dtype_wire_name(hs_dtype dtype);
#define HS_WIRE_ENCODING_RAW "raw"

/* Writes a one-line detail into err (if non-NULL) and returns code. Keeps errno. */
hs_status hs__terr(hs_error *err, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Received tensor frames whose data was not aligned for its dtype and had to be copied
 * (process-wide, since start). */
uint64_t hs__wire_realigned_count(void);

/* Routing ids that are not plain printable text (ROUTER's generated ids start with a 0 byte)
 * travel through the API as '#' followed by lowercase hex. */
#define HS_PEER_HEX_PREFIX '#'

#endif
