/*
 * Clusters: loading a cluster YAML file (configs/clusters/) into an hs_cluster, looking devices
 * up by name, and command-line overrides (--set).
 *
 * Why two passes over the file: libcyaml maps the YAML onto C structs against a schema (unknown
 * keys, wrong types, missing fields), but it reports errors as a log backtrace whose innermost
 * line is that of whatever event it was handling, lets a few syntax errors through as type
 * errors, and reads "10 Mbps" as the number 10. So libyaml's event parser reads the file first:
 * it reports syntax errors, duplicate keys and numbers with trailing text itself, and records
 * the line of every field path ("devices[1].speed"). Every later error, whether libcyaml's (its
 * backtrace turned into a path) or a semantic check here, is then one line:
 * "FILE:LINE: PATH: reason".
 *
 * Status codes: HS_ERR_IO unreadable file; HS_ERR_PARSE YAML syntax, empty file, and anything
 * the schema rejects (unknown key, missing field, wrong type); HS_ERR_INVALID a value out of
 * range or an inconsistent cluster; HS_ERR_NOTFOUND a device name that does not exist.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "hotsplit/solver.h"

#define MIB (1024.0 * 1024.0)
#define DEFAULT_FLOOR 0.05
#define PATH_LEN 160           /* a field path, "devices[12].battery.capacity_wh" */
#define MAX_FILE_BYTES (1 << 20)
#define NAME_FORBIDDEN "-.>= \t" /* separators of --set assignments, and blanks */

/* ---- the file as libcyaml sees it ------------------------------------------------------------ */

typedef struct y_power {
    double idle_w, active_w;
    double tx_nj_per_byte, rx_nj_per_byte; /* optional: libcyaml leaves them 0 */
} y_power;

typedef struct y_battery {
    double capacity_wh, level;
    double *floor;                         /* NULL: DEFAULT_FLOOR */
} y_battery;

typedef struct y_device {
    char *name;
    double *speed;                         /* NULL: 1 */
    char *profile;                         /* NULL: none */
    double memory_mb;
    y_power *power;                        /* NULL: all 0 */
    y_battery *battery;                    /* NULL: mains powered */
} y_device;

typedef struct y_link {
    char *from, *to;
    double bandwidth_mbps, latency_ms;
} y_link;

typedef struct y_cluster {
    char *source, *sink;                   /* sink NULL: the source */
    y_device *devices;
    unsigned devices_count;
    y_link *links;
    unsigned links_count;
} y_cluster;

static const cyaml_schema_field_t power_fields[] = {
    CYAML_FIELD_FLOAT("idle_w", CYAML_FLAG_DEFAULT, y_power, idle_w),
    CYAML_FIELD_FLOAT("active_w", CYAML_FLAG_DEFAULT, y_power, active_w),
    CYAML_FIELD_FLOAT("tx_nj_per_byte", CYAML_FLAG_OPTIONAL, y_power, tx_nj_per_byte),
    CYAML_FIELD_FLOAT("rx_nj_per_byte", CYAML_FLAG_OPTIONAL, y_power, rx_nj_per_byte),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t battery_fields[] = {
    CYAML_FIELD_FLOAT("capacity_wh", CYAML_FLAG_DEFAULT, y_battery, capacity_wh),
    CYAML_FIELD_FLOAT("level", CYAML_FLAG_DEFAULT, y_battery, level),
    CYAML_FIELD_FLOAT_PTR("floor", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_battery, floor),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t device_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_device, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT_PTR("speed", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_device, speed),
    CYAML_FIELD_STRING_PTR("profile", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_device,
                           profile, 0, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT("memory_mb", CYAML_FLAG_DEFAULT, y_device, memory_mb),
    CYAML_FIELD_MAPPING_PTR("power", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_device, power,
                            power_fields),
    CYAML_FIELD_MAPPING_PTR("battery", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_device,
                            battery, battery_fields),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t device_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_device, device_fields),
};

static const cyaml_schema_field_t link_fields[] = {
    CYAML_FIELD_STRING_PTR("from", CYAML_FLAG_POINTER, y_link, from, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("to", CYAML_FLAG_POINTER, y_link, to, 0, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT("bandwidth_mbps", CYAML_FLAG_DEFAULT, y_link, bandwidth_mbps),
    CYAML_FIELD_FLOAT("latency_ms", CYAML_FLAG_DEFAULT, y_link, latency_ms),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t link_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_link, link_fields),
};

static const cyaml_schema_field_t cluster_fields[] = {
    CYAML_FIELD_STRING_PTR("source", CYAML_FLAG_POINTER, y_cluster, source, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("sink", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_cluster, sink, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("devices", CYAML_FLAG_POINTER, y_cluster, devices, &device_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("links", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_cluster, links,
                         &link_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t cluster_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_cluster, cluster_fields),
};

/* ---- errors ---------------------------------------------------------------------------------- */

typedef enum range { R_POSITIVE, R_NONNEG, R_UNIT, R_UNIT_OPEN } range;

/* true if v is finite and within r; otherwise false with the reason ("must be > 0, got -2"). */
static bool check_range(double v, range r, char *why, size_t size)
{
    static const char *const rule[] = {
        [R_POSITIVE] = "must be > 0", [R_NONNEG] = "must be >= 0",
        [R_UNIT] = "must be in [0, 1]", [R_UNIT_OPEN] = "must be in [0, 1)",
    };
    bool ok = isfinite(v);
    if (ok) {
        switch (r) {
        case R_POSITIVE: ok = v > 0; break;
        case R_NONNEG: ok = v >= 0; break;
        case R_UNIT: ok = v >= 0 && v <= 1; break;
        case R_UNIT_OPEN: ok = v >= 0 && v < 1; break;
        }
    }
    if (!ok)
        snprintf(why, size, "%s, got %g", rule[r], v);
    return ok;
}

/* NULL if s is a valid device name, else why not. */
static const char *name_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= HS_NAME_MAX)
        return "must be 1 to 63 characters";
    if (s[strcspn(s, NAME_FORBIDDEN)] != '\0')
        return "must not contain '-', '.', '>', '=' or blanks";
    return NULL;
}

/* ---- the schema by path ---------------------------------------------------------------------- */

/* The schema value at path ("devices[1].power" -> the power mapping), or NULL if the schema has
 * no such path. */
static const cyaml_schema_value_t *schema_at(const char *path)
{
    const cyaml_schema_value_t *v = &cluster_schema;
    const char *p = path;
    while (*p) {
        if (*p == '[') {
            if (v->type != CYAML_SEQUENCE)
                return NULL;
            v = v->sequence.entry;
            p = strchr(p, ']');
            if (!p)
                return NULL;
            p++;
            continue;
        }
        if (*p == '.')
            p++;
        size_t n = strcspn(p, ".[");
        if (v->type != CYAML_MAPPING)
            return NULL;
        const cyaml_schema_field_t *f = v->mapping.fields;
        while (f->key && !(strlen(f->key) == n && strncmp(f->key, p, n) == 0))
            f++;
        if (!f->key)
            return NULL;
        v = &f->value;
        p += n;
    }
    return v;
}

/* A number as libcyaml should read it: strtod must take the whole scalar (libcyaml 1.3.1 accepts
 * "10 Mbps" as 10). */
static bool is_number(const char *s)
{
    char *end;
    strtod(s, &end);
    return end != s && *end == '\0';
}

/* ---- pass 1: libyaml, for syntax and the line of every path ---------------------------------- */

typedef struct line_entry {
    char path[PATH_LEN];
    int line; /* 1-based */
} line_entry;

typedef struct line_map {
    line_entry *v;
    int n, cap;
} line_map;

static const line_entry *map_find(const line_map *m, const char *path)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0)
            return &m->v[i];
    return NULL;
}

static bool map_add(line_map *m, const char *path, int line)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        line_entry *v = realloc(m->v, (size_t)cap * sizeof *v);
        if (!v)
            return false;
        m->v = v;
        m->cap = cap;
    }
    snprintf(m->v[m->n].path, PATH_LEN, "%s", path);
    m->v[m->n].line = line;
    m->n++;
    return true;
}

/* The line of path, or of its nearest recorded ancestor ("devices[1].power.bogus" ->
 * "devices[1].power" -> "devices[1]" -> "devices"), or 1. */
static int line_of(const line_map *m, const char *path)
{
    char p[PATH_LEN];
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        const line_entry *e = map_find(m, p);
        if (e)
            return e->line;
        char *cut = strrchr(p, '.');
        char *bracket = strrchr(p, '[');
        if (bracket > cut)
            cut = bracket;
        if (!cut)
            return 1;
        *cut = '\0';
    }
}

/* Appends ".key" (or "key" at the top) or "[i]" to path. */
static void path_key(char *path, const char *key)
{
    size_t n = strlen(path);
    snprintf(path + n, PATH_LEN - n, "%s%s", n ? "." : "", key);
}

static void path_index(char *path, int i)
{
    size_t n = strlen(path);
    snprintf(path + n, PATH_LEN - n, "[%d]", i);
}

typedef struct frame {
    bool is_seq;
    bool want_key; /* mapping: the next node is a key */
    int index;     /* sequence: entries so far */
    size_t len;    /* strlen(path) of this container */
} frame;

#define MAX_DEPTH 32

/* Reads buf with libyaml's event parser: reports syntax errors, an empty file, a top level that
 * is not a mapping, duplicate keys and more than one document; records in m the 1-based line of
 * every mapping key and sequence entry under its path. */
static hs_status map_lines(const char *file, const unsigned char *buf, size_t len, line_map *m,
                           hs_error *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    frame stack[MAX_DEPTH];
    int depth = 0, documents = 0;
    bool root_seen = false;
    char path[PATH_LEN] = "", bad_number[PATH_LEN + 100];
    int bad_number_line = 0;
    hs_status st = HS_OK;

    if (!yaml_parser_initialize(&parser))
        return hs_error_set(err, HS_ERR_NOMEM, "%s: cannot initialise the YAML parser", file);
    yaml_parser_set_input_string(&parser, buf, len);
    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            char ctx[128] = "";
            if (parser.context && parser.context_mark.line != parser.problem_mark.line)
                snprintf(ctx, sizeof ctx, " %s started on line %zu", parser.context,
                         parser.context_mark.line + 1);
            else if (parser.context)
                snprintf(ctx, sizeof ctx, " %s", parser.context);
            st = hs_error_set(err, HS_ERR_PARSE, "%s:%zu: %s%sYAML syntax error: %s%s", file,
                           parser.problem_mark.line + 1, path, *path ? ": " : "",
                           parser.problem ? parser.problem : "unknown", ctx);
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        bool node_start = false, node_end = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: more than one YAML document", file,
                               line);
                done = true;
            }
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (depth > 0 && !stack[depth - 1].is_seq && stack[depth - 1].want_key) {
                if (ev.type == YAML_ALIAS_EVENT) {
                    st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s%san alias as a key is not "
                                   "supported", file, line, path, *path ? ": " : "");
                    done = true;
                    break;
                }
                path_key(path, (const char *)ev.data.scalar.value);
                if (map_find(m, path)) {
                    st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s: duplicate key (first on line "
                                   "%d)", file, line, path, line_of(m, path));
                    done = true;
                    break;
                }
                if (!map_add(m, path, line)) {
                    st = hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", file);
                    done = true;
                    break;
                }
                stack[depth - 1].want_key = false;
                break;
            }
            if (depth == 0 && !root_seen) {
                bool empty = ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style ==
                             YAML_PLAIN_SCALAR_STYLE && (ev.data.scalar.length == 0 ||
                             strcmp((const char *)ev.data.scalar.value, "~") == 0 ||
                             strcmp((const char *)ev.data.scalar.value, "null") == 0);
                st = hs_error_set(err, HS_ERR_PARSE, empty ? "%s:%d: empty file: expected source, "
                               "devices and links" : "%s:%d: expected a mapping (source, "
                               "devices, links) at the top level", file, line);
                done = true;
                break;
            }
            if (ev.type == YAML_SCALAR_EVENT && !(depth > 0 && stack[depth - 1].is_seq)) {
                const cyaml_schema_value_t *v = schema_at(path);
                const char *text = (const char *)ev.data.scalar.value;
                if (v && v->type == CYAML_FLOAT && !is_number(text) && !bad_number_line) {
                    /* Reported after the whole file parses: a syntax error explains more. */
                    bad_number_line = line;
                    snprintf(bad_number, sizeof bad_number, "%s: expected a number, got '%.64s'",
                             path, text);
                }
            }
            node_start = node_end = true;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth > 0 && !stack[depth - 1].is_seq && stack[depth - 1].want_key) {
                st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s%sa mapping or list as a key is "
                               "not supported", file, line, path, *path ? ": " : "");
                done = true;
                break;
            }
            if (depth == 0 && ev.type == YAML_SEQUENCE_START_EVENT) {
                st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: expected a mapping (source, devices, "
                               "links) at the top level, got a list", file, line);
                done = true;
                break;
            }
            if (depth == MAX_DEPTH) {
                st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s: nested too deeply", file, line,
                               path);
                done = true;
                break;
            }
            node_start = true;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            node_end = true;
            break;
        default:
            break;
        }
        if (node_start) {
            root_seen = true;
            if (depth > 0 && stack[depth - 1].is_seq) {
                path_index(path, stack[depth - 1].index++);
                if (!map_add(m, path, line)) {
                    st = hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", file);
                    done = true;
                }
            }
            if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
                stack[depth++] = (frame){ .is_seq = ev.type == YAML_SEQUENCE_START_EVENT,
                                          .want_key = true, .len = strlen(path) };
        }
        if (node_end && depth > 0) {
            /* The node that ended was a value in the container now on top: back to its path. */
            frame *f = &stack[depth - 1];
            path[f->len] = '\0';
            if (!f->is_seq)
                f->want_key = true;
        }
        yaml_event_delete(&ev);
    }
    if (st == HS_OK && bad_number_line)
        st = hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s", file, bad_number_line, bad_number);
    if (st == HS_OK && !root_seen)
        st = hs_error_set(err, HS_ERR_PARSE, "%s:1: empty file: expected source, devices and links",
                       file);
    yaml_parser_delete(&parser);
    return st;
}

/* ---- pass 2: libcyaml, and its errors turned into paths -------------------------------------- */

typedef struct cy_log {
    char text[4096];
    size_t len;
} cy_log;

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    cy_log *log = ctx;
    if (log->len + 1 >= sizeof log->text)
        return;
    int n = vsnprintf(log->text + log->len, sizeof log->text - log->len, fmt, args);
    if (n > 0)
        log->len = log->len + (size_t)n < sizeof log->text ? log->len + (size_t)n
                                                           : sizeof log->text - 1;
}

/* "a mapping" for libcyaml's type and event names in "Expecting %s, got event: %s". */
static const char *describe(const char *word, size_t n)
{
    static const char *const names[][2] = {
        { "MAPPING", "a mapping" }, { "MAPPING_START", "a mapping" },
        { "SEQUENCE", "a list" }, { "SEQUENCE_START", "a list" },
        { "FLOAT", "a number" }, { "INT", "an integer" }, { "UINT", "an unsigned integer" },
        { "STRING", "a string" }, { "BOOL", "true or false" }, { "SCALAR", "a single value" },
        { "ALIAS", "an alias" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i][0]) == n && strncmp(names[i][0], word, n) == 0)
            return names[i][1];
    return NULL;
}

/* Turns libcyaml's log ("Load: <message>", "Load: Backtrace:", then frames innermost first,
 * "  in mapping field 'speed' (line: 6, ...)", "  in sequence entry '2' (...)", "  in mapping
 * (...)") into "FILE:LINE: PATH: reason". Each frame is one container the loader was in; a
 * mapping frame names the field it was at. */
static hs_status cyaml_failure(const char *file, cyaml_err_t e, const cy_log *log,
                               const line_map *m, hs_error *err)
{
    enum { MAX_FRAMES = 32 };
    struct { char field[64]; int entry; } frames[MAX_FRAMES]; /* entry -1: a mapping frame */
    int n_frames = 0, cy_line = 0;
    char message[256] = "";
    const char *s = log->text;

    while (*s) {
        size_t n = strcspn(s, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), s);
        s += n + (s[n] == '\n');
        const char *at = strstr(line, "(line: ");
        unsigned entry;
        if (strncmp(line, "Load: ", 6) == 0 && strcmp(line, "Load: Backtrace:") != 0) {
            if (!message[0])
                snprintf(message, sizeof message, "%.200s", line + 6);
        } else if (n_frames < MAX_FRAMES && strncmp(line, "  in mapping field '", 20) == 0) {
            const char *q = strchr(line + 20, '\'');
            int len = q ? (int)(q - (line + 20)) : 0;
            snprintf(frames[n_frames].field, sizeof frames[n_frames].field, "%.*s", len,
                     line + 20);
            frames[n_frames++].entry = -1;
        } else if (n_frames < MAX_FRAMES && sscanf(line, "  in sequence entry '%u'", &entry)
                   == 1) {
            frames[n_frames].field[0] = '\0';
            frames[n_frames++].entry = entry > 0 ? (int)entry - 1 : 0; /* it counts from 1 */
        } else if (n_frames < MAX_FRAMES && strncmp(line, "  in mapping (", 14) == 0) {
            frames[n_frames].field[0] = '\0';
            frames[n_frames++].entry = -1;
        } else {
            continue;
        }
        if (at && n_frames == 1 && !cy_line)
            cy_line = atoi(at + 7);
    }

    /* A missing field is reported from the mapping that lacks it, at its last field seen. */
    int innermost = 0;
    if (e == CYAML_ERR_MAPPING_FIELD_MISSING && n_frames > 0 && frames[0].entry < 0)
        innermost = 1;
    char path[PATH_LEN] = "";
    for (int i = n_frames - 1; i >= innermost; i--) {
        if (frames[i].entry >= 0)
            path_index(path, frames[i].entry);
        else if (frames[i].field[0])
            path_key(path, frames[i].field);
    }

    char reason[320];
    const char *arg = strchr(message, ':');
    arg = arg ? arg + 1 + (arg[1] == ' ') : "";
    if (e == CYAML_ERR_INVALID_KEY || e == CYAML_ERR_MAPPING_FIELD_MISSING) {
        char container[PATH_LEN];
        snprintf(container, sizeof container, "%s", path);
        path_key(path, arg);
        if (e == CYAML_ERR_MAPPING_FIELD_MISSING) {
            snprintf(reason, sizeof reason, "required field missing");
        } else {
            const cyaml_schema_value_t *v = schema_at(container);
            const cyaml_schema_field_t *f = v && v->type == CYAML_MAPPING ? v->mapping.fields
                                                                          : NULL;
            int k = snprintf(reason, sizeof reason, "unknown key");
            for (int i = 0; f && f[i].key && k < (int)sizeof reason; i++)
                k += snprintf(reason + k, sizeof reason - (size_t)k, "%s%s", i ? ", " : " (expected "
                              "one of: ", f[i].key);
            if (f && k < (int)sizeof reason)
                snprintf(reason + k, sizeof reason - (size_t)k, ")");
        }
    } else if (strncmp(message, "Expecting ", 10) == 0) {
        const char *want = message + 10, *got = strstr(message, ", got event: ");
        const char *a = got ? describe(want, (size_t)(got - want)) : NULL;
        const char *b = got ? describe(got + 13, strlen(got + 13)) : NULL;
        if (a && b)
            snprintf(reason, sizeof reason, "expected %s, got %s", a, b);
        else
            snprintf(reason, sizeof reason, "%s", message);
    } else if (strncmp(message, "Invalid FLOAT value", 19) == 0) {
        if (*arg)
            snprintf(reason, sizeof reason, "expected a number, got '%s'", arg);
        else
            snprintf(reason, sizeof reason, "expected a number, got nothing");
    } else {
        snprintf(reason, sizeof reason, "%s", message[0] ? message : cyaml_strerror(e));
    }

    /* Our map knows every path libyaml saw (a missing field: its mapping's line); libcyaml's own
     * line is that of the event it stopped at, used only when there is no path at all. */
    int line = path[0] || !cy_line ? line_of(m, path) : cy_line;
    if (e == CYAML_ERR_OOM)
        return hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", file);
    return hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s%s%s", file, line, path[0] ? path : "",
                     path[0] ? ": " : "", reason);
}

/* ---- pass 3: semantic checks and units ------------------------------------------------------- */

typedef struct load_ctx {
    const char *file;
    const line_map *map;
    hs_error *err;
} load_ctx;

static hs_status fail_at(const load_ctx *x, hs_status code, const char *path, const char *fmt,
                         ...)
{
    if (x->err) {
        char reason[HS_ERROR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        hs_error_set(x->err, code, "%s:%d: %s: %s", x->file, line_of(x->map, path), path, reason);
    }
    return code;
}

/* Checks v against r; path is printf-formatted ("devices[%d].speed"). */
static hs_status check_at(const load_ctx *x, double v, range r, const char *path_fmt, ...)
{
    char why[128], path[PATH_LEN];
    if (check_range(v, r, why, sizeof why))
        return HS_OK;
    va_list ap;
    va_start(ap, path_fmt);
    vsnprintf(path, sizeof path, path_fmt, ap);
    va_end(ap);
    return fail_at(x, HS_ERR_INVALID, path, "%s", why);
}

/* The profile path relative to the YAML file's directory. */
static hs_status resolve_profile(const load_ctx *x, int i, const char *profile, char *out,
                                 size_t size)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "devices[%d].profile", i);
    if (!profile[0])
        return fail_at(x, HS_ERR_INVALID, path, "must not be empty");
    const char *slash = strrchr(x->file, '/');
    int dir = profile[0] == '/' || !slash ? 0 : (int)(slash - x->file) + 1;
    if ((size_t)snprintf(out, size, "%.*s%s", dir, x->file, profile) >= size)
        return fail_at(x, HS_ERR_INVALID, path, "resolved path longer than %zu bytes", size - 1);
    return HS_OK;
}

static hs_status convert_device(const load_ctx *x, int i, const y_device *y, hs_device *d)
{
    hs_status st;
    char path[PATH_LEN];
    const char *why = name_problem(y->name);
    snprintf(path, sizeof path, "devices[%d].name", i);
    if (why)
        return fail_at(x, HS_ERR_INVALID, path, "invalid name '%s': %s", y->name, why);
    snprintf(d->name, sizeof d->name, "%s", y->name);

    d->speed = 1.0;
    if (y->speed && y->profile) {
        snprintf(path, sizeof path, "devices[%d].profile", i);
        return fail_at(x, HS_ERR_INVALID, path, "give speed or profile, not both");
    }
    if (y->speed) {
        if ((st = check_at(x, *y->speed, R_POSITIVE, "devices[%d].speed", i)))
            return st;
        d->speed = *y->speed;
    }
    if (y->profile && (st = resolve_profile(x, i, y->profile, d->profile, sizeof d->profile)))
        return st;

    if ((st = check_at(x, y->memory_mb, R_POSITIVE, "devices[%d].memory_mb", i)))
        return st;
    d->memory_bytes = y->memory_mb * MIB;

    if (y->power) {
        const y_power *p = y->power;
        if ((st = check_at(x, p->idle_w, R_NONNEG, "devices[%d].power.idle_w", i)) ||
            (st = check_at(x, p->active_w, R_NONNEG, "devices[%d].power.active_w", i)) ||
            (st = check_at(x, p->tx_nj_per_byte, R_NONNEG, "devices[%d].power.tx_nj_per_byte",
                           i)) ||
            (st = check_at(x, p->rx_nj_per_byte, R_NONNEG, "devices[%d].power.rx_nj_per_byte",
                           i)))
            return st;
        d->power = (hs_power){ p->idle_w, p->active_w, p->tx_nj_per_byte, p->rx_nj_per_byte };
    }
    if (y->battery) {
        const y_battery *b = y->battery;
        double floor = b->floor ? *b->floor : DEFAULT_FLOOR;
        if ((st = check_at(x, b->capacity_wh, R_POSITIVE, "devices[%d].battery.capacity_wh",
                           i)) ||
            (st = check_at(x, b->level, R_UNIT, "devices[%d].battery.level", i)) ||
            (st = check_at(x, floor, R_UNIT_OPEN, "devices[%d].battery.floor", i)))
            return st;
        d->battery = (hs_battery){ true, b->capacity_wh, b->level, floor };
    }
    return HS_OK;
}

/* Index of the device a name field names; NOTFOUND naming the field if none. */
static hs_status find_named(const load_ctx *x, const hs_cluster *c, const char *name,
                            const char *path, int *index)
{
    *index = hs_cluster_find(c, name);
    if (*index < 0)
        return fail_at(x, HS_ERR_NOTFOUND, path, "no device named '%s'", name);
    return HS_OK;
}

static hs_status convert(const load_ctx *x, const y_cluster *y, hs_cluster *c)
{
    hs_status st;
    char path[PATH_LEN];

    if (y->devices_count == 0)
        return fail_at(x, HS_ERR_INVALID, "devices", "no devices");
    if (y->devices_count > HS_MAX_DEVICES) {
        snprintf(path, sizeof path, "devices[%d]", HS_MAX_DEVICES);
        return fail_at(x, HS_ERR_INVALID, path, "too many devices: %u, at most %d",
                       y->devices_count, HS_MAX_DEVICES);
    }
    for (unsigned i = 0; i < y->devices_count; i++) {
        if ((st = convert_device(x, (int)i, &y->devices[i], &c->devices[i])))
            return st;
        int same = hs_cluster_find(c, c->devices[i].name); /* among devices [0, i) */
        if (same >= 0) {
            snprintf(path, sizeof path, "devices[%d]", same);
            int first_line = line_of(x->map, path);
            snprintf(path, sizeof path, "devices[%u].name", i);
            return fail_at(x, HS_ERR_INVALID, path, "duplicate device '%s' (also devices[%d], "
                           "line %d)", c->devices[i].name, same, first_line);
        }
        c->n_devices = (int)i + 1;
    }

    if ((st = find_named(x, c, y->source, "source", &c->source)))
        return st;
    c->sink = c->source;
    if (y->sink && (st = find_named(x, c, y->sink, "sink", &c->sink)))
        return st;

    bool listed[HS_MAX_DEVICES][HS_MAX_DEVICES] = { { false } };
    int listed_at[HS_MAX_DEVICES][HS_MAX_DEVICES];
    for (unsigned i = 0; i < y->links_count; i++) {
        const y_link *l = &y->links[i];
        int a, b;
        snprintf(path, sizeof path, "links[%u].from", i);
        if ((st = find_named(x, c, l->from, path, &a)))
            return st;
        snprintf(path, sizeof path, "links[%u].to", i);
        if ((st = find_named(x, c, l->to, path, &b)))
            return st;
        if (a == b)
            return fail_at(x, HS_ERR_INVALID, path, "a link from '%s' to itself", l->to);
        if (listed[a][b]) {
            snprintf(path, sizeof path, "links[%u]", i);
            return fail_at(x, HS_ERR_INVALID, path, "duplicate link %s -> %s (also links[%d]); "
                           "list each direction at most once", l->from, l->to, listed_at[a][b]);
        }
        if ((st = check_at(x, l->bandwidth_mbps, R_POSITIVE, "links[%u].bandwidth_mbps", i)) ||
            (st = check_at(x, l->latency_ms, R_NONNEG, "links[%u].latency_ms", i)))
            return st;
        listed[a][b] = true;
        listed_at[a][b] = (int)i;
        c->links[a][b] = (hs_link){ l->bandwidth_mbps * 1e6, l->latency_ms / 1000.0 };
    }
    /* A link listed in one direction only is symmetric. */
    for (int a = 0; a < c->n_devices; a++)
        for (int b = 0; b < c->n_devices; b++)
            if (listed[a][b] && !listed[b][a])
                c->links[b][a] = c->links[a][b];
    return HS_OK;
}

static hs_status read_file(const char *file, unsigned char **out, size_t *len, hs_error *err)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    unsigned char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", file);
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    bool bad = ferror(f);
    int saved = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return hs_error_set(err, HS_ERR_IO, "%s: cannot read: %s", file, strerror(saved));
    }
    if (n > MAX_FILE_BYTES) {
        free(buf);
        return hs_error_set(err, HS_ERR_IO, "%s: larger than %d bytes; not a cluster file", file,
                         MAX_FILE_BYTES);
    }
    *out = buf;
    *len = n;
    return HS_OK;
}

hs_status hs_cluster_load(const char *path, hs_cluster *out, hs_error *err)
{
    assert(path && out);
    unsigned char *buf = NULL;
    size_t len = 0;
    line_map map = { 0 };
    y_cluster *y = NULL;
    cy_log *log = NULL;
    hs_cluster *c = NULL;
    hs_status st;

    if ((st = read_file(path, &buf, &len, err)))
        return st;
    if ((st = map_lines(path, buf, len, &map, err)))
        goto fail_map;

    log = calloc(1, sizeof *log);
    c = calloc(1, sizeof *c);
    if (!log || !c) {
        st = hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", path);
        goto fail_alloc;
    }
    const cyaml_config_t config = {
        .log_fn = cy_log_fn, .log_ctx = log, .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR, .flags = CYAML_CFG_DEFAULT,
    };
    cyaml_err_t e = cyaml_load_data(buf, len, &config, &cluster_schema, (cyaml_data_t **)&y,
                                    NULL);
    if (e != CYAML_OK) {
        st = cyaml_failure(path, e, log, &map, err);
        goto fail_alloc;
    }
    if (!y) { /* map_lines rejects an empty file first; kept for safety */
        st = hs_error_set(err, HS_ERR_PARSE, "%s:1: empty file", path);
        goto fail_alloc;
    }

    snprintf(c->path, sizeof c->path, "%s", path);
    const load_ctx x = { path, &map, err };
    if ((st = convert(&x, y, c)))
        goto fail_convert;
    *out = *c;

fail_convert:
    cyaml_free(&config, &cluster_schema, y, 0);
fail_alloc:
    free(c);
    free(log);
fail_map:
    free(map.v);
    free(buf);
    return st;
}

int hs_cluster_find(const hs_cluster *c, const char *name)
{
    assert(c && name);
    for (int i = 0; i < c->n_devices; i++)
        if (strcmp(c->devices[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- overrides ------------------------------------------------------------------------------- */

typedef struct device_field {
    const char *name;
    range r;
    size_t offset; /* of the double in hs_device */
    double scale;  /* from the assignment's unit to hs_device's */
    bool battery;  /* needs a battery */
} device_field;

static const device_field device_fields_set[] = {
    { "speed", R_POSITIVE, offsetof(hs_device, speed), 1, false },
    { "memory_mb", R_POSITIVE, offsetof(hs_device, memory_bytes), MIB, false },
    { "power.idle_w", R_NONNEG, offsetof(hs_device, power.idle_w), 1, false },
    { "power.active_w", R_NONNEG, offsetof(hs_device, power.active_w), 1, false },
    { "power.tx_nj_per_byte", R_NONNEG, offsetof(hs_device, power.tx_nj_per_byte), 1, false },
    { "power.rx_nj_per_byte", R_NONNEG, offsetof(hs_device, power.rx_nj_per_byte), 1, false },
    { "battery.capacity_wh", R_POSITIVE, offsetof(hs_device, battery.capacity_wh), 1, true },
    { "battery.level", R_UNIT, offsetof(hs_device, battery.level), 1, true },
    { "battery.floor", R_UNIT_OPEN, offsetof(hs_device, battery.floor), 1, true },
};

static bool parse_number(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && end != s && *end == '\0' && errno == 0;
}

/* Sets FROM->TO (both ways if both_ways) from "bandwidth_mbps" or "latency_ms". */
static hs_status set_link(hs_cluster *c, const char *a, const char *from, const char *to,
                          bool both_ways, const char *field, const char *value, hs_error *err)
{
    int f = hs_cluster_find(c, from), t = hs_cluster_find(c, to);
    if (f < 0 || t < 0)
        return hs_error_set(err, HS_ERR_NOTFOUND, "--set %s: no device named '%s'", a,
                         f < 0 ? from : to);
    if (f == t)
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: a link from '%s' to itself", a, from);
    bool bandwidth = strcmp(field, "bandwidth_mbps") == 0;
    if (!bandwidth && strcmp(field, "latency_ms") != 0)
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: unknown link field '%s' (expected "
                         "bandwidth_mbps or latency_ms)", a, field);
    double v;
    char why[128];
    if (!parse_number(value, &v))
        return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected a number, got '%s'", a, value);
    if (!check_range(v, bandwidth ? R_POSITIVE : R_NONNEG, why, sizeof why))
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: %s", a, why);
    hs_link *ab = &c->links[f][t], *ba = &c->links[t][f];
    if (!bandwidth && (ab->bandwidth_bps <= 0 || (both_ways && ba->bandwidth_bps <= 0)))
        return hs_error_set(err, HS_ERR_NOTFOUND, "--set %s: no link %s->%s (set its "
                         "bandwidth_mbps first to create it)", a,
                         ab->bandwidth_bps <= 0 ? from : to, ab->bandwidth_bps <= 0 ? to : from);
    if (bandwidth) {
        ab->bandwidth_bps = v * 1e6;
        if (both_ways)
            ba->bandwidth_bps = v * 1e6;
    } else {
        ab->latency_s = v / 1000.0;
        if (both_ways)
            ba->latency_s = v / 1000.0;
    }
    return HS_OK;
}

static hs_status set_device(hs_cluster *c, const char *a, const char *name, const char *field,
                            const char *value, hs_error *err)
{
    int i = hs_cluster_find(c, name);
    if (i < 0)
        return hs_error_set(err, HS_ERR_NOTFOUND, "--set %s: no device named '%s'", a, name);
    hs_device *d = &c->devices[i];
    if (strcmp(field, "excluded") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected true or false, got '%s'", a,
                             value);
        d->excluded = strcmp(value, "true") == 0;
        return HS_OK;
    }
    const size_t n_fields = sizeof device_fields_set / sizeof device_fields_set[0];
    const device_field *df = NULL;
    for (size_t k = 0; k < n_fields && !df; k++)
        if (strcmp(device_fields_set[k].name, field) == 0)
            df = &device_fields_set[k];
    if (!df)
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: unknown device field '%s' (expected "
                         "speed, memory_mb, power.{idle_w,active_w,tx_nj_per_byte,"
                         "rx_nj_per_byte}, battery.{capacity_wh,level,floor} or excluded)", a,
                         field);
    if (df->battery && !d->battery.present)
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: '%s' is mains powered (no battery)", a,
                         name);
    double v;
    char why[128];
    if (!parse_number(value, &v))
        return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected a number, got '%s'", a, value);
    if (!check_range(v, df->r, why, sizeof why))
        return hs_error_set(err, HS_ERR_INVALID, "--set %s: %s", a, why);
    *(double *)((char *)d + df->offset) = v * df->scale;
    return HS_OK;
}

/* "DEVICE.FIELD=VALUE", "A-B.FIELD=VALUE" (both directions) or "A->B.FIELD=VALUE" (one).
 * Device fields: speed, memory_mb, power.{idle_w,active_w,tx_nj_per_byte,rx_nj_per_byte},
 * battery.{capacity_wh,level,floor} (only on a battery device), excluded (true/false). Link
 * fields: bandwidth_mbps (> 0; creates the link if missing, with latency 0) and latency_ms
 * (>= 0; the link must exist in every direction it sets). Values are checked as in the file.
 * Errors: HS_ERR_PARSE a malformed assignment or value, HS_ERR_NOTFOUND an unknown device or a
 * missing link, HS_ERR_INVALID an unknown field or a value out of range; the cluster is left
 * unchanged on error. */
hs_status hs_cluster_set(hs_cluster *c, const char *assignment, hs_error *err)
{
    assert(c && assignment);
    const char *a = assignment;
    char lhs[2 * HS_NAME_MAX + 64];
    const char *eq = strchr(a, '=');
    if (!eq)
        return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected DEVICE.FIELD=VALUE or "
                         "FROM-TO.FIELD=VALUE", a);
    if ((size_t)(eq - a) >= sizeof lhs)
        return hs_error_set(err, HS_ERR_PARSE, "--set %.64s...: target too long", a);
    memcpy(lhs, a, (size_t)(eq - a));
    lhs[eq - a] = '\0';
    const char *value = eq + 1;
    char *dot = strchr(lhs, '.');
    if (!dot || dot == lhs || !dot[1])
        return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected DEVICE.FIELD=VALUE or "
                         "FROM-TO.FIELD=VALUE", a);
    *dot = '\0';
    const char *field = dot + 1;

    char *arrow = strstr(lhs, "->"), *dash = strchr(lhs, '-');
    if (arrow || dash) {
        char *to = arrow ? arrow + 2 : dash + 1;
        *(arrow ? arrow : dash) = '\0';
        if (!lhs[0] || !to[0] || strpbrk(to, "->"))
            return hs_error_set(err, HS_ERR_PARSE, "--set %s: expected FROM-TO or FROM->TO before "
                             "the field", a);
        return set_link(c, a, lhs, to, !arrow, field, value, err);
    }
    return set_device(c, a, lhs, field, value, err);
}
