/* hotsplit zoo NAME -o FILE.onnx [--seed S] | --list */
#define _GNU_SOURCE
#include <getopt.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f, "usage: hotsplit zoo NAME -o FILE.onnx [--seed S]\n"
               "       hotsplit zoo --list\n\n"
               "Writes a standard architecture as ONNX (opset 13, input 1x3x224x224) with\n"
               "deterministic weights drawn from the seed (default 1). Names:");
    for (const char *const *n = hs_zoo_names(); *n; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\n");
}

int cmd_zoo(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"seed", required_argument, 0, 's'},
                                         {"list", no_argument, 0, 'l'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL;
    uint64_t seed = 1;
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:s:lh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': path = optarg; break;
        case 's':
            if (!cli_parse_u64(optarg, &seed))
                return cli_usage_error("zoo", "--seed '%s': expected a non-negative integer",
                                       optarg);
            break;
        case 'l':
            for (const char *const *n = hs_zoo_names(); *n; n++)
                printf("%s\n", *n);
            return EXIT_OK;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("zoo", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("zoo", "expected one model name");
    if (!path)
        return cli_usage_error("zoo", "missing -o FILE.onnx");
    hs_error err = {0};
    hs_status st = hs_zoo_write(argv[optind], path, seed, &err);
    if (st == HS_ERR_NOTFOUND)
        return cli_usage_error("zoo", "%s", err.msg);
    if (st != HS_OK)
        return cli_runtime_error("zoo", "%s", err.msg);
    printf("wrote %s to %s (seed %llu)\n", argv[optind], path, (unsigned long long)seed);
    return EXIT_OK;
}
