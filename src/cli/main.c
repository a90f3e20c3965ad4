/* attn: the command-line tool. This file is only the dispatcher: the table of subcommands
 * (which is also the list `attn --help` prints), `--help` and `--version`. Each subcommand lives
 * in its own file (cli_NAME.c); shared helpers are in cli.h. Adding a subcommand is one line in
 * COMMANDS below plus its declaration in cli.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Subcommands whose files other engineers are still writing are declared weak, so the table
 * can name them before they exist: one that is not linked into this build is a NULL pointer,
 * left out of the help and refused by name. (Where weak symbols are not available, every
 * entry must be linked.) */
#if defined(__GNUC__) && defined(__ELF__)
#define CLI_OPTIONAL __attribute__((weak))
#else
#define CLI_OPTIONAL
#endif
CLI_OPTIONAL int cli_bench(int argc, char **argv);
CLI_OPTIONAL int cli_train(int argc, char **argv);
CLI_OPTIONAL int cli_translate(int argc, char **argv);
CLI_OPTIONAL int cli_eval(int argc, char **argv);
CLI_OPTIONAL int cli_memory(int argc, char **argv);

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the name; returns the exit code */
    const char *summary;               /* one line for `attn --help` */
    int utility;                       /* listed under "utilities" rather than "commands" */
} cli_command;

static const cli_command COMMANDS[] = {
    {"explain", cli_explain, "learn attention: its three steps worked through on 我爱你 -> \"I love you\"\n"
                            "             (--memory: attention as a soft key -> value lookup, beside the hard one)", 0},
    {"attend", cli_attend, "attention of queries over keys and values (.npy in, .npy out), forward and backward", 0},
    {"mha", cli_mha, "multi-head attention with PyTorch nn.MultiheadAttention weights (safetensors)", 0},
    {"train", cli_train, "train a model on a data set", 0},
    {"translate", cli_translate, "translate sentences with a trained model", 0},
    {"classify", cli_classify, "label texts with a trained classifier (and say why)", 0},
    {"eval", cli_eval, "evaluate a trained model", 0},
    {"classify-image", cli_classify_image, "classify an image with a vision model, and draw where it looked", 0},
    {"vision-examples", cli_vision_examples, "write example images of a visual-attention task (PNG)", 1},
    {"memory", cli_memory, "a translation memory (kNN-MT) for a trained translator: build, tune, info", 0},
    {"bench", cli_bench, "benchmark the attention kernels (GFLOP/s beside the reference)", 0},
    {"npy-diff", cli_npy_diff, "compare two .npy arrays within a tolerance (exit 1 if they differ)", 1},
};
#define NCOMMANDS ((int)(sizeof COMMANDS / sizeof COMMANDS[0]))

static void print_help(FILE *f) {
    fprintf(f,
            "attn %s: the attention mechanism in C.\n"
            "\n"
            "  Attention(Q, K, V) = softmax(similarity(Q, K)) V: score every key against the query,\n"
            "  turn the scores into weights that sum to 1, and return the weighted sum of the values.\n"
            "\n"
            "usage: attn <command> [options]       (attn <command> --help for its options)\n",
            ATTN_VERSION_STRING);
    for (int group = 0; group < 2; group++) {
        fprintf(f, "\n%s:\n", group ? "utilities" : "commands");
        for (int i = 0; i < NCOMMANDS; i++)
            if (COMMANDS[i].run && COMMANDS[i].utility == group)
                fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    }
    fprintf(f,
            "\n"
            "options:\n"
            "  -h, --help     this help (attn help <command> for a command's)\n"
            "  --version      the version and the instruction-set path in use\n"
            "\n"
            "environment:\n"
            "  ATTN_THREADS=N               threads for parallel work (default: all cores)\n"
            "  ATTN_ISA=ref|avx2|avx512     force an instruction-set path (default: the best this CPU runs)\n"
            "  (an invalid value of either, or an ISA this CPU cannot run, is a usage error)\n"
            "\n"
            "Arrays are .npy files (float32; float64 is converted), weights are safetensors files.\n"
            "Exit status: 0 success, 1 a data or runtime error, 2 a usage error.\n"
            "New to attention? Start with: attn explain\n");
}

static const cli_command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

static int run_command(const char *name, int argc, char **argv) {
    const cli_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "attn: unknown command '%s' (see 'attn --help')\n", name);
        return CLI_EUSAGE;
    }
    if (!c->run) {
        fprintf(stderr, "attn: command '%s' is not part of this build\n", name);
        return CLI_EUSAGE;
    }
    return c->run(argc, argv);
}

/* The environment's settings, checked before any command (the library falls back to its
 * defaults on a value it cannot use; here that is a usage error, never silence). */
static int check_env(void) {
    const char *t = getenv("ATTN_THREADS"), *isa = getenv("ATTN_ISA");
    long n;
    if (t && *t && (cli_parse_long(t, &n) || n < 1 || n > 1024)) {
        fprintf(stderr, "attn: ATTN_THREADS='%s' is not a number of threads from 1 to 1024\n", t);
        return CLI_EUSAGE;
    }
    if (isa && *isa && attn_set_isa(isa)) {
        fprintf(stderr, "attn: ATTN_ISA='%s': %s (ref, avx2 or avx512)\n", isa, attn_last_error());
        return CLI_EUSAGE;
    }
    return CLI_OK;
}

int main(int argc, char **argv) {
    if (check_env()) return CLI_EUSAGE;
    if (argc < 2) {
        fprintf(stderr, "usage: attn <command> [options]   (attn --help lists the commands)\n");
        return CLI_EUSAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        print_help(stdout);
        return CLI_OK;
    }
    if (!strcmp(a, "--version")) {
        printf("attn %s (isa: %s, threads: %d)\n", ATTN_VERSION_STRING, attn_get_isa(), attn_get_threads());
        return CLI_OK;
    }
    if (!strcmp(a, "help")) {
        if (argc < 3) {
            print_help(stdout);
            return CLI_OK;
        }
        char help[] = "--help";
        char *args[] = {argv[2], help, NULL};
        return run_command(argv[2], 2, args);
    }
    if (a[0] == '-') {
        fprintf(stderr, "attn: unknown option '%s' (see 'attn --help')\n", a);
        return CLI_EUSAGE;
    }
    /* under mpirun (and with MPI built in): one of P processes (attn/dist.h). A process that
     * whose communication failed (a rank died or hangs) ends them all, so that none waits. */
    if (attn_dist_launched() && attn_dist_available()) {
        if (attn_dist_init(&argc, &argv)) {
            fprintf(stderr, "attn: %s\n", attn_last_error());
            return CLI_EDATA;
        }
        int rc = run_command(argv[1], argc - 1, argv + 1);
        fflush(stdout), fflush(stderr);
        if (rc && attn_dist_failed()) attn_dist_abort(rc);
        attn_dist_finalize();
        return rc;
    }
    return run_command(a, argc - 1, argv + 1);
}
