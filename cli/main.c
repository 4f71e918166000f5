/* hotsplit: split DNN inference across devices. Dispatches to one subcommand per file. */
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"coordinator", cmd_coordinator, "run the coordinator of a cluster (on the source device)"},
    {"demo", cmd_demo, "run the embedded demo (no arguments needed)"},
    {"info", cmd_info, "per-node costs and cut sizes of an ONNX model"},
    {"infer", cmd_infer, "run a model on one device: top-5, latency, profile"},
    {"keygen", cmd_keygen, "write a CurveZMQ key pair"},
    {"load", cmd_load, "send requests to a coordinator at a rate; latency and loss"},
    {"plan", cmd_plan, "split a model across a cluster: stages, cuts, predicted figures"},
    {"profile", cmd_profile, "measure every node's time and fit the cost model"},
    {"worker", cmd_worker, "run one device of a cluster"},
    {"zoo", cmd_zoo, "write a standard architecture (resnet50, ...) as ONNX"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hotsplit [--help] [--version] COMMAND [ARGS]\n\n"
               "Split the inference of a neural network across devices.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'hotsplit COMMAND --help' describes a command.\n"
               "exit codes: 0 ok, 1 runtime error, 2 usage error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(NULL, "missing command (try demo, info, infer or zoo)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("hotsplit %s\n", HS_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
