/* Shared pieces of the hotsplit command: exit codes, error reporting, option helpers. */
#ifndef HOTSPLIT_CLI_H
#define HOTSPLIT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hotsplit/core.h"
#include "hotsplit/solver.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Prints "hotsplit CMD: message" on stderr and returns EXIT_USAGE / EXIT_RUNTIME. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_runtime_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a getopt failure (c is '?' or ':'; optstrings start with ':' and opterr is 0)
 * naming the offending argument; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* Parses a positive integer / unsigned 64-bit option value; false if malformed. */
bool cli_parse_int(const char *text, long lo, long hi, long *out);
bool cli_parse_u64(const char *text, uint64_t *out);

/* Option values several commands share: --objective NAME and --spin-us US (0 to 1 s). Return
 * EXIT_OK, or EXIT_USAGE after printing the one-line error. */
int cli_parse_objective(const char *cmd, const char *text, hs_objective *out);
int cli_parse_spin_us(const char *cmd, const char *text, int *out);
/* --elastic F: a share of the model's FLOPs from 0 to 0.5. EXIT_OK or a usage error. */
int cli_parse_elastic(const char *cmd, const char *text, double *out);
/* The elastic window when --elastic was not given (*elastic < 0): HS_DEFAULT_ELASTIC for the
 * throughput objective, else 0. */
void cli_default_elastic(hs_objective objective, double *elastic);

/* Loads a model, binding the first input to `shape` (e.g. "1x3x224x224") when given.
 * Returns 0 or an exit code after printing the error. */
int cli_load(const char *cmd, const char *path, const char *shape, hs_graph **g);

/* Fills n floats with a seeded standard-normal sequence (same seed, same values). */
void cli_random_normal(float *out, int64_t n, uint64_t seed);

/* Sorts v[0..n) and returns the q-quantile (0..1), nearest rank. */
double cli_quantile(double *v, int n, double q);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);

int cmd_info(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_zoo(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_coordinator(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_load(int argc, char **argv);

#endif
