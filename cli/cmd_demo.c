/*
 * hotsplit demo [--model NAME] [--dir DIR] [--configs DIR] [--seconds S]: the embedded demo.
 * Writes a zoo model (resnet18 by default) and walks through hotsplit on it: the per-node cost
 * and cut table, a profiled single-device run, the plan for a camera + edge cluster, and a
 * live split: a coordinator and a worker as two processes on loopback serving requests, every
 * answer checked against the single-device result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

static void help(FILE *f)
{
    fprintf(f, "usage: hotsplit demo [--model NAME] [--dir DIR] [--configs DIR] [--seconds S]\n\n"
               "Writes zoo model NAME (default resnet18) to DIR (default out/demo) unless it\n"
               "is already there, then: its per-node table ('hotsplit info'), a run with\n"
               "per-node timing ('hotsplit infer --profile'), its plan on the camera + edge\n"
               "cluster of configs/clusters/camera_edge.yaml ('hotsplit plan'), and a live\n"
               "split over two processes on loopback for S seconds (default 5): coordinator,\n"
               "worker and load generator ('hotsplit load --verify').\n");
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

/* Starts `hotsplit ARGS...` (this same binary) as a child process. */
static pid_t spawn_self(char *const args[])
{
    pid_t pid;
    return posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) == 0 ? pid : -1;
}

/* The split for real: a coordinator (the source device) and a worker (the second device) as
 * separate processes talking over ZeroMQ on loopback, and the load generator checking every
 * answer against the single-device result. */
static int live_split(const char *model, const char *cluster, long seconds)
{
    char endpoint[64], dur[16];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
    snprintf(dur, sizeof dur, "%ld", seconds);
    printf("\n== a live split: hotsplit coordinator + hotsplit worker on %s, %s s of load\n",
           endpoint, dur);
    fflush(stdout);
    char *coord[] = {"hotsplit", "coordinator", "--cluster", (char *)cluster, "--model",
                     (char *)model, "--listen", endpoint, "--objective", "throughput",
                     "--verbose", NULL};
    char *worker[] = {"hotsplit", "worker", "--name", "dev1", "--coordinator", endpoint,
                      "--model", (char *)model, NULL};
    pid_t c = spawn_self(coord), w = c > 0 ? spawn_self(worker) : -1;
    int rc = EXIT_RUNTIME;
    if (c > 0 && w > 0) {
        sleep(2); /* both load the model and register; the coordinator commits a 2-stage plan */
        char *load_argv[] = {"load", "--coordinator", endpoint, "--rate", "8", "--duration",
                             dur, "--model", (char *)model, "--verify", NULL};
        rc = cmd_load(10, load_argv);
    } else {
        cli_runtime_error("demo", "cannot start the coordinator and worker: %s",
                          strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        pid_t pid = i ? w : c;
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
    }
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"dir", required_argument, 0, 'd'},
                                         {"configs", required_argument, 0, 'c'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model = "resnet18", *dir = "out/demo", *configs = "configs";
    long seconds = 5;
    int rc;
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:d:c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': dir = optarg; break;
        case 'c': configs = optarg; break;
        case 's':
            if (!cli_parse_int(optarg, 1, 3600, &seconds))
                return cli_usage_error("demo", "--seconds '%s': expected 1 to 3600", optarg);
            break;
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
    rc = cmd_info(2, info_argv);
    if (rc)
        return rc;
    printf("\n== hotsplit infer %s --repeat 5 --profile\n", path);
    fflush(stdout);
    char *infer_argv[] = {"infer", path, "--repeat", "5", "--profile", NULL};
    if ((rc = cmd_infer(5, infer_argv)))
        return rc;

    char cluster[4096];
    snprintf(cluster, sizeof cluster, "%s/clusters/camera_edge.yaml", configs);
    printf("\n== hotsplit plan %s --cluster %s --objective throughput\n", path, cluster);
    fflush(stdout);
    char *plan_argv[] = {"plan", path, "--cluster", cluster, "--objective", "throughput", NULL};
    if ((rc = cmd_plan(6, plan_argv)))
        return rc;

    snprintf(cluster, sizeof cluster, "%s/clusters/loopback2.yaml", configs);
    return live_split(path, cluster, seconds);
}
