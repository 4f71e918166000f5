/*
 * For Criterion tests that need real models: zoo model `name`, written once per build tree into
 * HS_TEST_MODEL_DIR (atomically, so parallel tests may share it), then loaded. Asserts on
 * failure. Caller frees the graph.
 */
#ifndef HOTSPLIT_TESTS_ZOO_CACHE_H
#define HOTSPLIT_TESTS_ZOO_CACHE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotsplit/core.h"

static inline hs_graph *zoo_model(const char *name)
{
    char path[1024];
    mkdir(HS_TEST_MODEL_DIR, 0755);
    snprintf(path, sizeof path, "%s/%s.onnx", HS_TEST_MODEL_DIR, name);
    hs_error err = {0};
    if (access(path, R_OK) != 0) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
        cr_assert_eq(hs_zoo_write(name, tmp, 1, &err), HS_OK, "%s", err.msg);
        cr_assert_eq(rename(tmp, path), 0);
    }
    hs_graph *g;
    cr_assert_eq(hs_graph_load_onnx(path, NULL, &g, &err), HS_OK, "%s", err.msg);
    return g;
}

#endif
