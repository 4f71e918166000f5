/* Status strings and the one-line error detail every failing call can leave behind. */
#include <stdio.h>

#include "graph_impl.h"

const char *hs_strerror(hs_status code)
{
    switch (code) {
    case HS_OK: return "ok";
    case HS_ERR_IO: return "i/o error";
    case HS_ERR_PARSE: return "malformed input";
    case HS_ERR_UNSUPPORTED: return "unsupported";
    case HS_ERR_SHAPE: return "shape mismatch";
    case HS_ERR_NOMEM: return "out of memory";
    case HS_ERR_INVALID: return "invalid";
    case HS_ERR_NOTFOUND: return "not found";
    case HS_ERR_INFEASIBLE: return "infeasible";
    case HS_ERR_CHANGED: return "file changed";
    }
    return "unknown error";
}

hs_status hs_error_set(hs_error *err, hs_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
