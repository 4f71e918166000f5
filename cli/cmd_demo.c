/*
 * hotsplit demo [--model NAME] [--dir DIR]: the embedded demo. Writes a zoo model (resnet18
 * by default) and shows what hotsplit knows about it: the per-node cost and cut table, then a
 * profiled single-device run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f, "usage: hotsplit demo [--model NAME] [--dir DIR]\n\n"
               "Writes zoo model NAME (default resnet18) to DIR (default out/demo) unless it\n"
               "is already there, prints its per-node table ('hotsplit info') and runs it with\n"
               "per-node timing ('hotsplit infer --profile').\n");
}

static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char keep = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            if (!keep)
                return 0;
            *p = keep;
        }
    }
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"dir", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model = "resnet18", *dir = "out/demo";
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': dir = optarg; break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("demo", c, argv);
        }
    }
    if (optind != argc)
        return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (make_dirs(dir) != 0)
        return cli_runtime_error("demo", "%s: cannot create: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, model);
    if (access(path, R_OK) != 0) {
        hs_error err = {0};
        printf("== writing zoo model %s to %s\n", model, path);
        fflush(stdout);
        hs_status st = hs_zoo_write(model, path, 1, &err);
        if (st == HS_ERR_NOTFOUND)
            return cli_usage_error("demo", "%s", err.msg);
        if (st != HS_OK)
            return cli_runtime_error("demo", "%s", err.msg);
    }
    printf("== hotsplit info %s\n", path);
    fflush(stdout);
    char *info_argv[] = {"info", path, NULL};
    int rc = cmd_info(2, info_argv);
    if (rc)
        return rc;
    printf("\n== hotsplit infer %s --repeat 5 --profile\n", path);
    fflush(stdout);
    char *infer_argv[] = {"infer", path, "--repeat", "5", "--profile", NULL};
    return cmd_infer(5, infer_argv);
}
