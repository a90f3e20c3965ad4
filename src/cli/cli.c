/* The helpers every `attn` subcommand shares: errors, options, loading and saving arrays.
 * See cli.h for the conventions they implement. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Errors ------------------------------------------------------------------------------ */

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EDATA;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'attn %s --help')\n", cmd);
    va_end(ap);
    return CLI_EUSAGE;
}

int cli_fail_lib(const char *cmd, int status, const char *path) {
    const char *msg = attn_last_error();
    if (!msg || !*msg) msg = attn_strerror(status);
    if (path && !strstr(msg, path)) return cli_fail(cmd, "%s: %s", path, msg);
    return cli_fail(cmd, "%s", msg);
}

/* ---- Options ----------------------------------------------------------------------------- */

void cli_args_init(cli_args *p, const char *cmd, int argc, char **argv) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    p->i = 0; /* argv[0] is the subcommand's name */
}

int cli_next(cli_args *p) {
    while (!p->status && ++p->i < p->argc) {
        const char *a = p->argv[p->i];
        if (!p->only_pos && strcmp(a, "--") == 0) {
            p->only_pos = 1;
            continue;
        }
        if (p->only_pos || a[0] != '-' || a[1] == '\0') {
            if (p->npos == CLI_MAX_POS) {
                p->status = cli_usage(p->cmd, "too many arguments ('%s')", a);
                return 0;
            }
            p->pos[p->npos++] = a;
            continue;
        }
        p->arg = a;
        const char *eq = strchr(a, '=');
        p->name_len = eq ? (size_t)(eq - a) : strlen(a);
        return 1;
    }
    return 0;
}

static int is_opt(const cli_args *p, const char *name) {
    return strlen(name) == p->name_len && strncmp(p->arg, name, p->name_len) == 0;
}

int cli_flag(cli_args *p, const char *name) {
    if (!is_opt(p, name)) return 0;
    if (p->arg[p->name_len] == '=') p->status = cli_usage(p->cmd, "option %s takes no value", name);
    return 1;
}

int cli_str(cli_args *p, const char *name, const char **out) {
    if (!is_opt(p, name)) return 0;
    if (p->arg[p->name_len] == '=') {
        *out = p->arg + p->name_len + 1;
    } else if (p->i + 1 < p->argc && strncmp(p->argv[p->i + 1], "--", 2) != 0) {
        *out = p->argv[++p->i]; /* a following "--option" is taken as a forgotten value */
    } else {
        p->status = cli_usage(p->cmd, "option %s needs a value", name);
        return 1;
    }
    if (!**out) p->status = cli_usage(p->cmd, "option %s needs a non-empty value", name);
    return 1;
}

int cli_parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_int(cli_args *p, const char *name, long min, long max, int *out) {
    const char *s = "";
    if (!cli_str(p, name, &s)) return 0;
    if (p->status) return 1;
    long v;
    if (cli_parse_long(s, &v) || v < min || v > max) {
        if (max >= 2147483647L)
            p->status = cli_usage(p->cmd, "option %s expects an integer >= %ld, not '%s'", name, min, s);
        else
            p->status = cli_usage(p->cmd, "option %s expects an integer in [%ld, %ld], not '%s'", name, min, max, s);
        return 1;
    }
    *out = (int)v;
    return 1;
}

int cli_float(cli_args *p, const char *name, float *out) {
    const char *s = "";
    if (!cli_str(p, name, &s)) return 0;
    if (p->status) return 1;
    double v;
    if (cli_parse_float(s, &v) || !isfinite((float)v)) {
        p->status = cli_usage(p->cmd, "option %s expects a finite number, not '%s'", name, s);
        return 1;
    }
    *out = (float)v;
    return 1;
}

void cli_unknown(cli_args *p) {
    p->status = cli_usage(p->cmd, "unknown option '%.*s'", (int)p->name_len, p->arg);
}

int cli_positionals(cli_args *p, int min, int max, const char *what) {
    if (p->npos < min) return cli_usage(p->cmd, "missing %s", what);
    if (max >= 0 && p->npos > max) return cli_usage(p->cmd, "unexpected argument '%s'", p->pos[max]);
    return CLI_OK;
}

int cli_help(const char *text) {
    fputs(text, stdout);
    return CLI_OK;
}

/* ---- Arrays in ----------------------------------------------------------------------------- */

const char *cli_shape_str(char *buf, int ndim, const int64_t *shape) {
    size_t n = 0;
    buf[n++] = '(';
    for (int i = 0; i < ndim && n < CLI_SHAPE_BUF - 24; i++)
        n += (size_t)snprintf(buf + n, CLI_SHAPE_BUF - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (ndim == 1) buf[n++] = ',';
    buf[n++] = ')';
    buf[n] = '\0';
    return buf;
}

int cli_load_npy(const char *cmd, const char *path, attn_array *out) {
    int st = attn_npy_load(path, out);
    if (st) return cli_fail_lib(cmd, st, path);
    return CLI_OK;
}

int cli_load_float(const char *cmd, const char *path, const char *what, int min_ndim, int max_ndim,
                   attn_array *out) {
    if (cli_load_npy(cmd, path, out)) return CLI_EDATA;
    char sh[CLI_SHAPE_BUF];
    if (out->dtype != ATTN_F32 && out->dtype != ATTN_F64 && out->dtype != ATTN_F16) {
        cli_fail(cmd, "%s: %s must be float32 or float64, not %s", path, what, attn_dtype_name(out->dtype));
        attn_array_free(out);
        return CLI_EDATA;
    }
    if (out->ndim < min_ndim || out->ndim > max_ndim) {
        if (min_ndim == max_ndim)
            cli_fail(cmd, "%s: %s must have %d dimensions, not shape %s", path, what, min_ndim,
                     cli_shape_str(sh, out->ndim, out->shape));
        else
            cli_fail(cmd, "%s: %s must have %d to %d dimensions, not shape %s", path, what, min_ndim, max_ndim,
                     cli_shape_str(sh, out->ndim, out->shape));
        attn_array_free(out);
        return CLI_EDATA;
    }
    for (int i = 0; i < out->ndim; i++)
        if (out->shape[i] == 0 || out->shape[i] > INT32_MAX) {
            cli_fail(cmd, "%s: %s has shape %s; every dimension must be in [1, 2^31)", path, what,
                     cli_shape_str(sh, out->ndim, out->shape));
            attn_array_free(out);
            return CLI_EDATA;
        }
    int st = attn_array_to_f32(out);
    if (st) {
        attn_array_free(out);
        return cli_fail_lib(cmd, st, path);
    }
    return CLI_OK;
}

/* ---- Arrays out -------------------------------------------------------------------------- */

int cli_check_outputs(const char *cmd, const cli_output *outs, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n && outs[i].path; j++)
            if (outs[j].path && strcmp(outs[i].path, outs[j].path) == 0)
                return cli_usage(cmd, "two outputs would be written to the same file '%s'", outs[i].path);
    return CLI_OK;
}

int cli_not_input(const char *cmd, const char *out, const char *const *ins, int n_in) {
    struct stat so, si;
    if (!out || stat(out, &so) != 0 || !S_ISREG(so.st_mode)) return CLI_OK;
    for (int i = 0; i < n_in; i++)
        if (ins[i] && stat(ins[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return cli_usage(cmd, "the output '%s' is the input '%s': refusing to overwrite it", out, ins[i]);
    return CLI_OK;
}

int cli_check_io(const char *cmd, const cli_output *outs, int n, const char *const *ins, int n_in) {
    int rc = cli_check_outputs(cmd, outs, n);
    for (int i = 0; i < n && !rc; i++) rc = cli_not_input(cmd, outs[i].path, ins, n_in);
    return rc;
}

/* "warning: PATH: N of M values are NaN or infinite" for a float32 output that holds some. */
static void warn_nonfinite(const char *cmd, const cli_output *o) {
    if (o->dtype != ATTN_F32) return;
    int64_t m = 1, bad = 0;
    for (int d = 0; d < o->ndim; d++) m *= o->shape[d];
    for (int64_t k = 0; k < m; k++) bad += !isfinite(((const float *)o->data)[k]);
    if (bad) fprintf(stderr, "attn %s: warning: %s: %lld of %lld values are NaN or infinite\n", cmd, o->path, (long long)bad, (long long)m);
}

int cli_save_all(const char *cmd, const cli_output *outs, int n) {
    for (int i = 0; i < n; i++) {
        if (!outs[i].path) continue;
        warn_nonfinite(cmd, &outs[i]);
        int st = attn_npy_save(outs[i].path, outs[i].dtype, outs[i].ndim, outs[i].shape, outs[i].data);
        if (st) {
            cli_fail_lib(cmd, st, outs[i].path);
            struct stat sj; /* only regular files: never a link, a device or a FIFO */
            for (int j = 0; j < i; j++)
                if (outs[j].path && lstat(outs[j].path, &sj) == 0 && S_ISREG(sj.st_mode)) remove(outs[j].path);
            return CLI_EDATA;
        }
    }
    return CLI_OK;
}

int cli_model_kind_is(const char *dir, const char *kind) {
    char path[4200], want[128];
    snprintf(want, sizeof want, "\"kind\": \"%s\"", kind);
    /* a sound checkpoint by its model's kind (opening it also finishes a commit that a killed
     * run left half-installed); a broken one by the text of its config.json, so that the
     * command reports what is wrong with it */
    attn_checkpoint ck = {0};
    if (attn_checkpoint_open(dir, &ck) == ATTN_OK) {
        int yes = strstr(ck.model_json, want) != NULL;
        attn_checkpoint_free(&ck);
        return yes;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, want) != NULL;
}

int cli_trainer_option(cli_args *p, cli_trainer_opts *t) {
    if (cli_str(p, "--out", &t->out) || cli_str(p, "-o", &t->out) || cli_str(p, "--log", &t->log) || cli_str(p, "--optim", &t->optim_) ||
        cli_str(p, "--schedule", &t->sched_))
        return 1;
    if (cli_int(p, "--epochs", 0, 100000, &t->epochs) || cli_int(p, "--batch", 1, 1 << 16, &t->batch) ||
        cli_int(p, "--patience", 0, INT32_MAX, &t->patience) || cli_int(p, "--threads", 1, 1024, &t->threads) ||
        cli_int(p, "--log-every", 0, INT32_MAX, &t->log_every) || cli_int(p, "--max-steps", 0, INT32_MAX, &t->max_steps) ||
        cli_int(p, "--save-every", 0, INT32_MAX, &t->save_every) || cli_int(p, "--warmup", 0, INT32_MAX, &t->warmup))
        return 1;
    if (cli_float(p, "--lr", &t->lr) || cli_float(p, "--clip", &t->clip) || cli_float(p, "--time-budget", &t->time_budget) ||
        cli_float(p, "--min-lr", &t->min_lr))
        return 1;
    if (cli_flag(p, "--resume")) return t->resume = 1;
    if (cli_flag(p, "--quiet")) return t->quiet = 1;
    return 0;
}

int cli_trainer_check(const char *cmd, cli_trainer_opts *t) {
    if (!t->out) return cli_usage(cmd, "--out DIR is required");
    if (t->optim_ && (t->optim = attn_optim_parse(t->optim_)) < 0) return cli_usage(cmd, "unknown --optim '%s' (adam, adamw, sgd)", t->optim_);
    if (!(t->lr > 0)) return cli_usage(cmd, "--lr must be positive");
    if (t->clip < 0 || t->time_budget < 0) return cli_usage(cmd, "--clip and --time-budget must be >= 0");
    if (t->sched_ && (t->schedule = attn_sched_parse(t->sched_)) < 0)
        return cli_usage(cmd, "unknown --schedule '%s' (constant, cosine, linear, inv_sqrt)", t->sched_);
    if (t->min_lr > t->lr) return cli_usage(cmd, "--min-lr must not exceed --lr");
    if (t->min_lr < 0) t->min_lr = t->lr / 10;
    if (t->threads) attn_set_threads(t->threads);
    return CLI_OK;
}

attn_trainer_config cli_trainer_config(const cli_trainer_opts *t, uint64_t seed, const attn_checkpoint *resume,
                                       void (*report)(void *ud, const char *line)) {
    attn_trainer_config tc = attn_trainer_defaults();
    tc.epochs = t->epochs, tc.batch = t->batch;
    tc.optim = attn_optim_defaults((attn_optim_kind)t->optim);
    tc.optim.lr = t->lr;
    tc.sched = (attn_sched){(attn_sched_kind)t->schedule, t->lr, t->warmup, 0, t->min_lr};
    tc.clip = t->clip, tc.seed = seed;
    tc.max_steps = t->max_steps, tc.time_budget = t->time_budget, tc.save_every = t->save_every;
    tc.patience = t->patience, tc.log_every = t->quiet ? 0 : t->log_every;
    tc.out = t->out, tc.log_csv = t->log, tc.handle_signals = 1;
    tc.resume = t->resume ? resume : NULL;
    if (!t->quiet) tc.report = report;
    if (attn_dist_size() > 1) attn_dist_trainer(&tc); /* under mpirun: data-parallel (rank 0 reports) */
    return tc;
}
