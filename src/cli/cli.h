/* cli.h: what every `attn` subcommand shares: the subcommand entry points, option parsing,
 * error messages, loading .npy inputs with clear messages, and writing several outputs so that
 * a failure leaves none of them behind. Bodies in cli.c.
 *
 * The command-line tool uses only the public headers (include/attn/) and is the only part of
 * the project that prints or exits. Its conventions, which every subcommand follows:
 *  - A subcommand is `int cli_NAME(int argc, char **argv)` with argv[0] its own name
 *    ("attend") and its options after it; it returns the process exit code. It is registered by
 *    one line in the table in main.c, which is also the list `attn --help` prints.
 *  - `--help` / `-h` prints the subcommand's help on stdout and returns 0.
 *  - Exit codes: 0 success; 1 a data or runtime error (a file that is missing, malformed or of
 *    the wrong dtype, shapes that do not fit, a failed write); 2 a usage error (an unknown
 *    option, a missing argument, a value that does not parse).
 *  - Every error is one line on stderr: "attn NAME: what went wrong, naming the file".
 *  - Outputs are written only after everything was computed, each atomically, and a failed
 *    write removes the outputs already written by this run (cli_save_all).
 *
 * Not here: anything a library user would want (that belongs in the library).
 */
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

#include <stdint.h>

#include "attn/attn.h"
#include "attn/io.h"

enum { CLI_OK = 0, CLI_EDATA = 1, CLI_EUSAGE = 2 };

/* ---- Subcommands ------------------------------------------------------------------------- */

int cli_attend(int argc, char **argv);   /* cli_attend.c */
/* attn attend --ring (cli_attend_ring.c): rank 0 runs the checked description on its whole
 * arrays (outputs NULL when not wanted, dO NULL for no backward); the others run the worker;
 * rank 0 cancels when it fails before. */
int cli_attend_ring(const char *cmd, const attn_desc *d, int layout, const float *Q, const float *K, const float *V,
                    const float *dO, float *O, float *dQ, float *dK, float *dV);
int cli_attend_ring_worker(const char *cmd);
void cli_attend_ring_cancel(int rc);
/* attn bench attention --ring (cli_bench_ring.c), on every rank; rank 0 prints. */
double cli_bench_now(void);                /* monotonic seconds (cli_bench.c) */
double cli_bench_median(double *v, int n); /* sorts v */
double cli_bench_cpu_now(void);            /* the process's CPU seconds, all threads (cli_bench.c) */
float *cli_bench_randn(size_t n, uint64_t seed); /* malloc'd standard normals (NULL if out of memory) */
int cli_bench_ring(int B, int H, int Hkv, int d, int causal, int backward, int repeat, int json, const int *ns, int nn);
/* attn bench peak, bandwidth (cli_bench_machine.c) and decode (cli_bench_decode.c), reached
 * through cli_bench; and the fp32 peak of the library's threads in GFLOP/s, measured for about
 * `seconds`, for the "% peak" of the other benchmarks (a status; *gflops 0 on failure). */
int cli_bench_peak(int argc, char **argv);
int cli_bench_bandwidth(int argc, char **argv);
int cli_bench_decode(int argc, char **argv);
int cli_bench_peak_f32(double seconds, double *gflops);
int cli_mha(int argc, char **argv);      /* cli_mha.c */
int cli_explain(int argc, char **argv);  /* cli_explain.c */
int cli_explain_memory(int argc, char **argv); /* cli_explain_memory.c: attn explain --memory */
int cli_npy_diff(int argc, char **argv); /* cli_npy_diff.c */
/* Written by other engineers; main.c tolerates their absence from the build (weak symbols). */
int cli_bench(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_translate(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_memory(int argc, char **argv); /* cli_memory.c */
int cli_classify(int argc, char **argv); /* cli_classify.c */
int cli_classify_image(int argc, char **argv);  /* cli_vision.c */
int cli_vision_examples(int argc, char **argv); /* cli_vision.c */

/* 1 if dir/config.json's model section names `kind` ("kind": "recall", "vision", ...): which
 * family's command handles a model directory (prints nothing; the checkpoint need not load). */
int cli_model_kind_is(const char *dir, const char *kind);

/* ---- Errors ------------------------------------------------------------------------------ */

/* "attn CMD: message" on stderr; return CLI_EDATA. */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "attn CMD: message (see 'attn CMD --help')" on stderr; return CLI_EUSAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The library's message for a failed call (attn_last_error(), or attn_strerror(status) if
 * empty), prefixed with "PATH: " when a path is given that the message does not already name.
 * Returns CLI_EDATA. */
int cli_fail_lib(const char *cmd, int status, const char *path);

/* ---- Options ----------------------------------------------------------------------------- */

/* A small getopt for long options: `--name VALUE`, `--name=VALUE`, flags, `--` ends options,
 * anything else not starting with '-' (or "-" alone) is positional. Options and positionals
 * may be mixed. Typical use:
 *
 *     cli_args p;
 *     cli_args_init(&p, "attend", argc, argv);
 *     while (cli_next(&p)) {
 *         if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) return cli_help(HELP);
 *         else if (cli_flag(&p, "--causal")) causal = 1;
 *         else if (cli_int(&p, "--window", 0, INT32_MAX, &window)) {}
 *         else cli_unknown(&p);
 *     }
 *     if (p.status) return p.status;   // an error was printed: exit code 2
 *
 * Each matcher returns 1 when the current argument is that option (even when its value was
 * bad: then p.status is set and the message printed, and cli_next returns 0). */
#define CLI_MAX_POS 16
typedef struct {
    const char *cmd;
    int argc;
    char **argv;
    int i;                       /* index of the current argument */
    const char *arg;             /* the current option, "--name" or "--name=VALUE" */
    size_t name_len;             /* length of its name part */
    int status;                  /* 0, or CLI_EUSAGE once an error was printed */
    int only_pos;                /* after "--" */
    int npos;
    const char *pos[CLI_MAX_POS]; /* positional arguments, in order */
} cli_args;

void cli_args_init(cli_args *p, const char *cmd, int argc, char **argv);
int cli_next(cli_args *p);
int cli_flag(cli_args *p, const char *name);
int cli_str(cli_args *p, const char *name, const char **out);
int cli_int(cli_args *p, const char *name, long min, long max, int *out);
int cli_float(cli_args *p, const char *name, float *out); /* finite values only */
void cli_unknown(cli_args *p);
/* Checks the number of positionals (max < 0: no upper bound); prints `what` as the usage. */
int cli_positionals(cli_args *p, int min, int max, const char *what);
/* fputs(text, stdout); returns CLI_OK. */
int cli_help(const char *text);

/* Parses a number strictly (the whole string, finite). 0 on success, -1 otherwise. */
int cli_parse_long(const char *s, long *out);
int cli_parse_float(const char *s, double *out);

/* The trainer's options that attn train recall and attn train vision share (--out, --log,
 * --optim, --epochs, --batch, --patience, --resume, --quiet, --threads, --log-every,
 * --max-steps, --save-every, --lr, --clip, --time-budget, --schedule, --warmup, --min-lr),
 * parsed and checked once, and the trainer configuration they make (the learning-rate
 * schedule, constant unless asked; signals handled). Zeroed, then the command's defaults. */
typedef struct {
    const char *out, *log, *optim_, *sched_;
    int epochs, batch, patience, resume, quiet, threads, log_every, max_steps, save_every, optim, schedule, warmup;
    float lr, clip, time_budget, min_lr; /* min_lr < 0 (cli_trainer_check's default): lr / 10 */
} cli_trainer_opts;

/* The help lines of --schedule, --warmup and --min-lr (2-space indent). */
#define CLI_TRAINER_SCHED_HELP                                                                              \
    "  --schedule constant|cosine|linear|inv_sqrt (default constant): the learning rate after an\n"        \
    "  optional linear warm-up of --warmup N steps (default 0); cosine and linear decay to --min-lr\n"    \
    "  F (default lr/10) at the last step of --epochs\n"

int cli_trainer_option(cli_args *p, cli_trainer_opts *t); /* 1 if the current argument was one */
int cli_trainer_check(const char *cmd, cli_trainer_opts *t); /* CLI_OK or a usage error; sets optim */
attn_trainer_config cli_trainer_config(const cli_trainer_opts *t, uint64_t seed, const attn_checkpoint *resume,
                                       void (*report)(void *ud, const char *line));

/* ---- Arrays in ----------------------------------------------------------------------------- */

/* "(2, 4, 5, 8)" into buf (at least CLI_SHAPE_BUF bytes); returns buf. */
#define CLI_SHAPE_BUF 128
const char *cli_shape_str(char *buf, int ndim, const int64_t *shape);

/* Loads a .npy of any dtype the library reads. Prints the error and returns CLI_EDATA on
 * failure (a missing, truncated or malformed file), CLI_OK otherwise. */
int cli_load_npy(const char *cmd, const char *path, attn_array *out);

/* Loads a .npy holding floating-point numbers as float32 (float64 and float16 converted). An
 * integer or bool array is refused with a message naming the file, its dtype and `what`
 * ("queries Q"). ndim must lie in [min_ndim, max_ndim]. */
int cli_load_float(const char *cmd, const char *path, const char *what, int min_ndim, int max_ndim,
                   attn_array *out);

/* ---- Arrays out -------------------------------------------------------------------------- */

typedef struct {
    const char *path;  /* NULL: not wanted, skipped */
    attn_dtype dtype;
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    const void *data;
} cli_output;

/* Usage error if two wanted outputs share a path. Call before computing. */
int cli_check_outputs(const char *cmd, const cli_output *outs, int n);
/* Usage error if out (when it exists) is the same file as one of the inputs ins[0 .. n_in)
 * (device and inode compared; NULL entries skipped): an output never overwrites an input. */
int cli_not_input(const char *cmd, const char *out, const char *const *ins, int n_in);
/* cli_check_outputs, then cli_not_input for every wanted output. */
int cli_check_io(const char *cmd, const cli_output *outs, int n, const char *const *ins, int n_in);
/* Writes every wanted output (each atomically; a float32 output holding NaN or infinite
 * values gets a warning on stderr naming it and the count, as the result is written anyway). If one fails, removes those this call already
 * wrote, prints the error and returns CLI_EDATA; CLI_OK otherwise. */
int cli_save_all(const char *cmd, const cli_output *outs, int n);

#endif
