/* attn train transformer: trains the Transformer of attn/transformer.h on sentence pairs, with
 * the data pipeline of `attn train seq2seq` (the same seeded split, tokenisers, vocabularies,
 * length filter, batches of similar lengths, checkpoint layout), so the two families meet
 * the same test sentences and `attn translate` / `attn eval` take either checkpoint.
 * Differences: batches are batch-major (B, N), the default schedule is the paper's warm-up
 * then inverse square root, and --time-budget stops a run after a fixed training time (for
 * comparisons at equal wall-clock cost).
 *
 * Not here: attention dropout, sub-word vocabularies, gradient accumulation.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/transformer.h"
#include "attn/translator.h"
#include "cli.h"
#include "cli_s2s.h"

int cli_train_transformer(int argc, char **argv);

static const char HELP[] =
    "usage: attn train transformer --data PAIRS.tsv --out DIR [options]\n"
    "       attn train transformer --train TRAIN.tsv --valid VALID.tsv --out DIR [options]\n"
    "\n"
    "Trains a Transformer encoder-decoder (Vaswani et al. 2017, \"Attention is all you need\"):\n"
    "self-attention instead of recurrence, every position meeting every other at distance one,\n"
    "a whole sentence computed in parallel; position encodings tell it the order.\n"
    "\n"
    "data (as 'attn train seq2seq'; Tatoeba's cmn.txt is English<TAB>Chinese<TAB>attribution):\n"
    "  --data FILE         all pairs: split into train/valid/test by a seeded shuffle, written to\n"
    "                      --split-dir (default DIR/split); same seed = same split as seq2seq's\n"
    "  --split-seed N, --valid-frac F, --test-frac F     (default 1, 0.1, 0.1)\n"
    "  --train FILE, --valid FILE      an existing split instead of --data\n"
    "  --direction zh-en|en-zh|plain   zh-en (default): column 1 (Chinese characters) to column 0\n"
    "                      (English words); plain: column 0 to column 1, split on spaces\n"
    "  --max-len N         training pairs with more than N tokens on a side are left out (default 30)\n"
    "  --min-count N       rarer tokens become <unk> (default 2)    --max-vocab N (default: none)\n"
    "\n"
    "model:\n"
    "  --d-model N         E (default 256)          --heads N       H (default 4)\n"
    "  --kv-heads N        grouped key/value heads (default H)\n"
    "  --ff N              feed-forward size (default 1024)\n"
    "  --layers N          encoder and decoder layers (default 3); --enc-layers N, --dec-layers N\n"
    "  --pos KIND          none, sinusoidal (default), learned, rope, alibi\n"
    "  --norm post|pre     layer norm after the residual (the paper, default) or before\n"
    "  --share none|tgt|all   tie the generator to the target embedding (tgt, default), or all\n"
    "                      three tables (one vocabulary for both sides)\n"
    "  --activation relu|gelu (default relu)   --dropout F (default 0.1)\n"
    "  --max-pos N         longest sequence the model takes (default 256)\n"
    "\n"
    "training:\n"
    "  --epochs N (default 20)   --batch N sentences (default 64)\n"
    "  --optim adam|adamw|sgd (default adam, betas 0.9, 0.98, eps 1e-9 as the paper)\n"
    "  --lr F              peak learning rate (default 1e-3)   --weight-decay F (default 0)\n"
    "  --schedule inv_sqrt|noam|cosine|linear|constant   (default inv_sqrt: the paper's linear\n"
    "                      warm-up then lr * sqrt(warmup / step); noam: the paper's formula\n"
    "                      d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) times --noam-factor\n"
    "                      (default 1), --lr unused)\n"
    "  --warmup N          warm-up steps (default 400)   --min-lr F (cosine/linear; default lr/10)\n"
    "  --clip F            gradient clipping by global norm (default 1; 0: none)\n"
    "  --label-smoothing F (default 0.1)\n"
    "  --seed N            initialisation, dropout and data order (default 1)\n"
    "  --max-steps N       stop after N updates     --time-budget S   stop after S seconds of training\n"
    "  --resume            continue the run checkpointed in --out\n"
    "  --save-every N      also checkpoint every N updates (default: after each epoch)\n"
    "  --valid-bleu N      greedy BLEU on the first N validation pairs after each epoch (default 500)\n"
    "  --log FILE          one CSV line per epoch: epoch,step,train_s,wall_s,train_loss,valid_loss,\n"
    "                      valid_bleu,tokens_per_s\n"
    "  --log-every N       a progress line every N updates (default 100)\n"
    "  --timing-skip N     leave the first N updates out of the final tokens/s (default 0)\n"
    "  --threads N         threads (default: all cores)      --quiet\n"
    "\n"
    "output: DIR is a checkpoint for 'attn translate --model DIR' and 'attn eval --model DIR'.\n"
    "\n"
    "example:\n"
    "  attn train transformer --data ../shared/data/cmn-eng/cmn.txt --out runs/transformer\n"
    "  attn translate --model runs/transformer --attention-html heads.html \"我爱你。\"\n";

typedef struct {
    const char *data, *train, *valid, *out, *split_dir, *log;
    int split_seed;
    float valid_frac, test_frac;
    int src_col;
    int max_len, min_count, max_vocab;
    attn_transformer_config model;
    int epochs, batch, warmup, seed, max_steps, resume, save_every, valid_bleu, log_every, threads, quiet, timing_skip;
    int optim, schedule;
    float lr, weight_decay, clip, label_smoothing, min_lr, time_budget, noam_factor;
    int noam;
} topts;

static int parse_enum(const char *cmd, const char *opt, const char *v, int (*fn)(const char *), int *out, const char *list) {
    int k = fn(v);
    if (k < 0) return cli_usage(cmd, "unknown %s '%s' (%s)", opt, v, list);
    *out = k;
    return CLI_OK;
}
static int act_parse(const char *s) { return !strcmp(s, "relu") ? 0 : !strcmp(s, "gelu") ? 1 : -1; }
static int norm_parse(const char *s) { return !strcmp(s, "post") ? 0 : !strcmp(s, "pre") ? 1 : -1; }

static int parse(int argc, char **argv, topts *o) {
    const char *cmd = "train transformer";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    memset(o, 0, sizeof *o);
    o->split_seed = 1, o->valid_frac = 0.1f, o->test_frac = 0.1f;
    o->max_len = 30, o->min_count = 2;
    o->model = attn_transformer_config_default();
    o->epochs = 20, o->batch = 64, o->warmup = 400, o->seed = 1, o->valid_bleu = 500, o->log_every = 100;
    o->optim = ATTN_OPTIM_ADAM, o->lr = 1e-3f, o->clip = 1.0f, o->label_smoothing = 0.1f, o->min_lr = -1.0f;
    o->schedule = ATTN_SCHED_INV_SQRT;
    o->noam_factor = 1.0f;
    const char *dir = NULL, *opt = NULL, *sched = NULL, *pos = NULL, *norm = NULL, *share = NULL, *act = NULL;
    int layers = 0, enc = 0, dec = 0;
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) cli_help(HELP);
            return p.status ? p.status : -1;
        } else if (cli_str(&p, "--data", &o->data) || cli_str(&p, "--train", &o->train) || cli_str(&p, "--valid", &o->valid) ||
                   cli_str(&p, "--out", &o->out) || cli_str(&p, "-o", &o->out) || cli_str(&p, "--split-dir", &o->split_dir) ||
                   cli_str(&p, "--log", &o->log)) {
        } else if (cli_int(&p, "--split-seed", 0, INT32_MAX, &o->split_seed)) {
        } else if (cli_float(&p, "--valid-frac", &o->valid_frac) || cli_float(&p, "--test-frac", &o->test_frac)) {
        } else if (cli_str(&p, "--direction", &dir) || cli_str(&p, "--pos", &pos) || cli_str(&p, "--norm", &norm) ||
                   cli_str(&p, "--share", &share) || cli_str(&p, "--activation", &act) || cli_str(&p, "--optim", &opt) ||
                   cli_str(&p, "--schedule", &sched)) {
        } else if (cli_int(&p, "--max-len", 0, 100000, &o->max_len) || cli_int(&p, "--min-count", 0, INT32_MAX, &o->min_count) ||
                   cli_int(&p, "--max-vocab", 0, INT32_MAX, &o->max_vocab)) {
        } else if (cli_int(&p, "--d-model", 1, 65536, &o->model.d_model) || cli_int(&p, "--heads", 1, 4096, &o->model.heads) ||
                   cli_int(&p, "--kv-heads", 0, 4096, &o->model.kv_heads) || cli_int(&p, "--ff", 1, 1 << 20, &o->model.d_ff) ||
                   cli_int(&p, "--layers", 1, 1000, &layers) || cli_int(&p, "--enc-layers", 1, 1000, &enc) ||
                   cli_int(&p, "--dec-layers", 1, 1000, &dec) || cli_int(&p, "--max-pos", 2, 1 << 20, &o->model.max_len)) {
        } else if (cli_float(&p, "--dropout", &o->model.dropout)) {
        } else if (cli_int(&p, "--epochs", 0, 100000, &o->epochs) || cli_int(&p, "--batch", 1, 1 << 16, &o->batch) ||
                   cli_int(&p, "--warmup", 0, INT32_MAX, &o->warmup) || cli_int(&p, "--seed", 0, INT32_MAX, &o->seed) ||
                   cli_int(&p, "--max-steps", 0, INT32_MAX, &o->max_steps) ||
                   cli_int(&p, "--save-every", 0, INT32_MAX, &o->save_every) ||
                   cli_int(&p, "--valid-bleu", 0, INT32_MAX, &o->valid_bleu) ||
                   cli_int(&p, "--log-every", 0, INT32_MAX, &o->log_every) || cli_int(&p, "--threads", 1, 1024, &o->threads) ||
                   cli_int(&p, "--timing-skip", 0, INT32_MAX, &o->timing_skip)) {
        } else if (cli_float(&p, "--lr", &o->lr) || cli_float(&p, "--weight-decay", &o->weight_decay) ||
                   cli_float(&p, "--clip", &o->clip) || cli_float(&p, "--label-smoothing", &o->label_smoothing) ||
                   cli_float(&p, "--min-lr", &o->min_lr) || cli_float(&p, "--time-budget", &o->time_budget) ||
                   cli_float(&p, "--noam-factor", &o->noam_factor)) {
        } else if (cli_flag(&p, "--resume")) {
            o->resume = 1;
        } else if (cli_flag(&p, "--quiet")) {
            o->quiet = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!o->out) return cli_usage(cmd, "--out DIR is required");
    if (!o->data == !o->train) return cli_usage(cmd, "give either --data FILE (to be split) or --train FILE");
    if (o->data && o->valid) return cli_usage(cmd, "--valid goes with --train, not with --data");
    int rc, k = 0;
    if (!dir || !strcmp(dir, "zh-en")) o->src_col = 1, o->model.src_tok = ATTN_TOK_ZH, o->model.tgt_tok = ATTN_TOK_EN;
    else if (!strcmp(dir, "en-zh")) o->src_col = 0, o->model.src_tok = ATTN_TOK_EN, o->model.tgt_tok = ATTN_TOK_ZH;
    else if (!strcmp(dir, "plain")) o->src_col = 0, o->model.src_tok = ATTN_TOK_SPACE, o->model.tgt_tok = ATTN_TOK_SPACE;
    else return cli_usage(cmd, "unknown --direction '%s' (zh-en, en-zh, plain)", dir);
    if (pos && (rc = parse_enum(cmd, "--pos", pos, attn_pos_parse, &k, "none, sinusoidal, learned, rope, alibi"))) return rc;
    if (pos) o->model.pos = (attn_pos_kind)k;
    if (share && (rc = parse_enum(cmd, "--share", share, attn_share_parse, &k, "none, tgt, all"))) return rc;
    if (share) o->model.share = (attn_share_kind)k;
    if (act && (rc = parse_enum(cmd, "--activation", act, act_parse, &k, "relu, gelu"))) return rc;
    if (act) o->model.activation = (attn_act_kind)k;
    if (norm && (rc = parse_enum(cmd, "--norm", norm, norm_parse, &k, "post, pre"))) return rc;
    if (norm) o->model.norm_first = k;
    if (opt && (rc = parse_enum(cmd, "--optim", opt, attn_optim_parse, &o->optim, "adam, adamw, sgd"))) return rc;
    if (sched && !strcmp(sched, "noam")) o->noam = 1, o->schedule = ATTN_SCHED_INV_SQRT;
    else if (sched && (rc = parse_enum(cmd, "--schedule", sched, attn_sched_parse, &o->schedule,
                                       "inv_sqrt, noam, cosine, linear, constant")))
        return rc;
    if (!(o->noam_factor > 0)) return cli_usage(cmd, "--noam-factor must be positive");
    if (layers) o->model.enc_layers = o->model.dec_layers = layers;
    if (enc) o->model.enc_layers = enc;
    if (dec) o->model.dec_layers = dec;
    if (!(o->valid_frac >= 0 && o->test_frac >= 0 && o->valid_frac + o->test_frac < 1))
        return cli_usage(cmd, "--valid-frac and --test-frac must be >= 0 with a sum below 1");
    if (!(o->lr > 0)) return cli_usage(cmd, "--lr must be positive");
    if (!(o->model.dropout >= 0 && o->model.dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1)) return cli_usage(cmd, "--label-smoothing must be in [0, 1)");
    if (o->clip < 0 || o->time_budget < 0) return cli_usage(cmd, "--clip and --time-budget must be >= 0");
    if (o->model.d_model % o->model.heads) return cli_usage(cmd, "--d-model %d is not a multiple of --heads %d", o->model.d_model, o->model.heads);
    if (o->model.kv_heads && o->model.heads % o->model.kv_heads)
        return cli_usage(cmd, "--heads %d is not a multiple of --kv-heads %d", o->model.heads, o->model.kv_heads);
    if (o->max_len > 0 && o->max_len + 2 > o->model.max_len)
        return cli_usage(cmd, "--max-pos %d must exceed --max-len %d by 2 (<bos>/<eos>)", o->model.max_len, o->max_len);
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return CLI_OK;
}

/* ---- Batches (batch-major) ------------------------------------------------------------------ */

typedef struct {
    int32_t *src, *src_len, *tin, *tout; /* (B, S), (B), (B, T), (B, T) */
    size_t cap_s, cap_t, cap_b;
    int64_t tokens; /* real source + target tokens (with <eos>), as seq2seq counts them */
} tbatch;

static int tbatch_fill(tbatch *bb, const s2s_data *d, const int *idx, int n, attn_transformer_batch *b) {
    int S = 1, T = 1;
    for (int i = 0; i < n; i++) {
        if (d->n_src[idx[i]] > S) S = d->n_src[idx[i]];
        if (d->n_tgt[idx[i]] + 1 > T) T = d->n_tgt[idx[i]] + 1;
    }
    size_t ns = (size_t)S * n, nt = (size_t)T * n;
    if (ns > bb->cap_s || nt > bb->cap_t || (size_t)n > bb->cap_b) {
        free(bb->src), free(bb->src_len), free(bb->tin), free(bb->tout);
        bb->cap_s = ns > bb->cap_s ? ns : bb->cap_s;
        bb->cap_t = nt > bb->cap_t ? nt : bb->cap_t;
        bb->cap_b = (size_t)n > bb->cap_b ? (size_t)n : bb->cap_b;
        bb->src = malloc(bb->cap_s * sizeof(int32_t));
        bb->src_len = malloc(bb->cap_b * sizeof(int32_t));
        bb->tin = malloc(bb->cap_t * sizeof(int32_t));
        bb->tout = malloc(bb->cap_t * sizeof(int32_t));
        if (!bb->src || !bb->src_len || !bb->tin || !bb->tout) {
            bb->cap_s = bb->cap_t = bb->cap_b = 0;
            return ATTN_ENOMEM;
        }
    }
    bb->tokens = 0;
    for (int i = 0; i < n; i++) {
        int k = idx[i], ls = d->n_src[k], lt = d->n_tgt[k] + 1;
        const int32_t *s = d->src[k], *t = d->tgt[k];
        bb->src_len[i] = ls;
        for (int j = 0; j < S; j++) bb->src[(size_t)i * S + j] = j < ls ? s[j] : ATTN_PAD;
        for (int j = 0; j < T; j++) {
            bb->tin[(size_t)i * T + j] = j < lt ? t[j] : ATTN_PAD;
            bb->tout[(size_t)i * T + j] = j < lt ? t[j + 1] : ATTN_PAD;
        }
        bb->tokens += ls + lt;
    }
    b->B = n, b->S = S, b->T = T;
    b->src = bb->src, b->src_len = bb->src_len, b->tgt_in = bb->tin, b->tgt_out = bb->tout;
    return ATTN_OK;
}

static void tbatch_free(tbatch *bb) { free(bb->src), free(bb->src_len), free(bb->tin), free(bb->tout); }

/* ---- Data -------------------------------------------------------------------------------- */

static int read_pairs(const char *cmd, const char *path, attn_pairs *p, int quiet) {
    int st = attn_pairs_read(path, p);
    if (st) return cli_fail_lib(cmd, st, path);
    if (p->malformed) {
        char rep[512];
        fprintf(stderr, "attn %s: %s: %s\n", cmd, path, attn_pairs_report(p, rep, sizeof rep));
    }
    if (!quiet) fprintf(stderr, "%s: %d pairs\n", path, p->n);
    return CLI_OK;
}

static int write_split(const char *cmd, const char *dir, const attn_pairs *tr, const attn_pairs *va, const attn_pairs *te) {
    if (s2s_mkdirs(dir)) return cli_fail(cmd, "%s: cannot create the directory: %s", dir, strerror(errno));
    const attn_pairs *ps[3] = {tr, va, te};
    const char *names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int st = attn_pairs_write(ps[i], path);
        if (st) return cli_fail_lib(cmd, st, path);
    }
    return CLI_OK;
}

/* One vocabulary from both sides (for --share all), given to both. */
static int joint_vocab(const attn_pairs *train, int src_col, attn_tok_kind stok, attn_tok_kind ttok, int min_count, int max_size,
                       attn_vocab **src, attn_vocab **tgt) {
    *src = *tgt = NULL;
    attn_counter *c = NULL;
    attn_tokens t = {0};
    int st = attn_counter_new(&c);
    for (int i = 0; i < train->n && !st; i++) {
        st = attn_tokenize(stok, train->pair[i].side[src_col], &t);
        if (!st) st = attn_counter_add_tokens(c, &t);
        if (!st) st = attn_tokenize(ttok, train->pair[i].side[1 - src_col], &t);
        if (!st) st = attn_counter_add_tokens(c, &t);
    }
    if (!st) st = attn_vocab_build(c, min_count, max_size, src);
    if (!st) st = attn_vocab_build(c, min_count, max_size, tgt);
    attn_tokens_free(&t);
    attn_counter_free(c);
    if (st) attn_vocab_free(*src), attn_vocab_free(*tgt), *src = *tgt = NULL;
    return st;
}

static double valid_loss(attn_transformer *m, attn_graph *g, const s2s_data *d, int batch, tbatch *bb, int *ok) {
    double sum = 0.0;
    int64_t ntok = 0;
    *ok = 1;
    int *idx = malloc((size_t)batch * sizeof(int));
    if (!idx) return *ok = 0, NAN;
    for (int i0 = 0; i0 < d->n; i0 += batch) {
        int n = d->n - i0 < batch ? d->n - i0 : batch;
        for (int i = 0; i < n; i++) idx[i] = i0 + i;
        attn_transformer_batch b;
        if (tbatch_fill(bb, d, idx, n, &b)) {
            *ok = 0;
            break;
        }
        attn_graph_reset(g);
        int64_t k = 0;
        attn_var *l = attn_transformer_loss(m, g, &b, 0.0f, &k);
        if (!l) {
            *ok = 0;
            break;
        }
        sum += (double)l->data[0] * k;
        ntok += k;
    }
    free(idx);
    return ntok ? sum / ntok : NAN;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int cli_train_transformer(int argc, char **argv) {
    const char *cmd = "train transformer";
    topts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (o.threads) attn_set_threads(o.threads);
    attn_pairs all = {0}, tr = {0}, va = {0}, te = {0};
    attn_transformer *m = NULL;
    attn_translator *tm = NULL;
    attn_optim *opt = NULL;
    attn_graph *g = NULL, *ge = NULL;
    s2s_data dtr = {0}, dva = {0};
    tbatch bb = {0};
    attn_batches bat = {0};
    attn_checkpoint ck = {0};
    FILE *logf = NULL;
    int *lens = NULL;
    char *cmdline = s2s_command_line(argc, argv);
    int st;
    rc = CLI_EDATA;

    if (o.data) {
        if ((rc = read_pairs(cmd, o.data, &all, o.quiet))) goto done;
        rc = CLI_EDATA;
        if ((st = attn_pairs_split(&all, (uint64_t)o.split_seed, o.valid_frac, o.test_frac, &tr, &va, &te))) {
            cli_fail_lib(cmd, st, o.data);
            goto done;
        }
        char sd[4096];
        if (o.split_dir) snprintf(sd, sizeof sd, "%s", o.split_dir);
        else snprintf(sd, sizeof sd, "%s/split", o.out);
        if (write_split(cmd, sd, &tr, &va, &te)) goto done;
        if (!o.quiet)
            fprintf(stderr, "split (seed %d): %d train, %d valid, %d test pairs, written to %s/{train,valid,test}.tsv\n", o.split_seed,
                    tr.n, va.n, te.n, sd);
    } else {
        if ((rc = read_pairs(cmd, o.train, &tr, o.quiet))) goto done;
        if (o.valid && (rc = read_pairs(cmd, o.valid, &va, o.quiet))) goto done;
        rc = CLI_EDATA;
    }

    attn_train_state state;
    memset(&state, 0, sizeof state);
    state.data_seed = attn_seed_mix((uint64_t)o.seed, 0x5eed);
    if (o.resume) {
        if ((st = attn_transformer_load(o.out, &m, &ck))) {
            cli_fail_lib(cmd, st, o.out);
            goto done;
        }
        state = ck.state;
        if (!o.quiet) fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o.out, (long long)state.epoch + 1,
                              (long long)state.batch, (long long)state.step);
    } else {
        attn_vocab *sv = NULL, *tv = NULL;
        st = o.model.share == ATTN_SHARE_ALL
                 ? joint_vocab(&tr, o.src_col, o.model.src_tok, o.model.tgt_tok, o.min_count, o.max_vocab, &sv, &tv)
                 : s2s_build_vocabs(&tr, o.src_col, o.model.src_tok, o.model.tgt_tok, o.min_count, o.max_vocab, &sv, &tv);
        if (st) {
            cli_fail_lib(cmd, st, o.train ? o.train : o.data);
            goto done;
        }
        o.model.src_vocab = attn_vocab_size(sv), o.model.tgt_vocab = attn_vocab_size(tv);
        if ((st = attn_transformer_new(&o.model, (uint64_t)o.seed, &m))) {
            attn_vocab_free(sv), attn_vocab_free(tv);
            cli_fail_lib(cmd, st, NULL);
            goto done;
        }
        if ((st = attn_transformer_set_vocabs(m, sv, tv))) {
            cli_fail_lib(cmd, st, NULL);
            goto done;
        }
    }
    const attn_transformer_config *mc = attn_transformer_get_config(m);
    if ((st = attn_translator_wrap_transformer(m, &tm))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    int max_len = o.max_len > 0 ? o.max_len : mc->max_len - 2;
    if (max_len > mc->max_len - 2) max_len = mc->max_len - 2;
    if ((st = s2s_data_encode(tm, &tr, o.src_col, max_len, &dtr)) || (st = s2s_data_encode(tm, &va, o.src_col, mc->max_len - 2, &dva))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (dtr.n == 0) {
        cli_fail(cmd, "no training pair is left (--max-len %d)", max_len);
        goto done;
    }
    if (!o.quiet) {
        fprintf(stderr,
                "model: transformer, %d+%d layers, d_model %d, %d heads (%d key/value), d_ff %d, %s positions, %s-LN, %s, "
                "share %s, vocabularies %d (source) and %d (target), %lld parameters\n",
                mc->enc_layers, mc->dec_layers, mc->d_model, mc->heads, mc->kv_heads, mc->d_ff, attn_pos_name(mc->pos),
                mc->norm_first ? "pre" : "post", mc->activation == ATTN_ACT_GELU ? "gelu" : "relu", attn_share_name(mc->share),
                mc->src_vocab, mc->tgt_vocab, (long long)attn_transformer_num_params(m));
        fprintf(stderr, "training on %d pairs (%d longer than %d tokens left out), %.2f%% / %.2f%% unknown tokens\n", dtr.n,
                dtr.dropped, max_len, 100.0 * dtr.unk_src / (dtr.tok_src ? dtr.tok_src : 1),
                100.0 * dtr.unk_tgt / (dtr.tok_tgt ? dtr.tok_tgt : 1));
    }

    attn_optim_config oc = attn_optim_defaults((attn_optim_kind)o.optim);
    oc.lr = o.lr;
    if (o.optim != ATTN_OPTIM_SGD) oc.beta2 = 0.98, oc.eps = 1e-9; /* the paper's */
    if (o.weight_decay > 0 || o.optim != ATTN_OPTIM_ADAMW) oc.weight_decay = o.weight_decay;
    if ((st = attn_optim_new(&oc, attn_transformer_params(m), &opt))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (o.resume && (st = attn_checkpoint_load_optim(&ck, opt))) {
        cli_fail_lib(cmd, st, o.out);
        goto done;
    }
    if (!(lens = malloc((size_t)dtr.n * sizeof(int)))) goto done;
    for (int i = 0; i < dtr.n; i++) lens[i] = dtr.n_src[i] + dtr.n_tgt[i];
    st = attn_batches_make(lens, dtr.n, o.batch, 0, 50, attn_seed_mix(state.data_seed, 0), &bat);
    int per_epoch = bat.n_batches;
    attn_batches_free(&bat);
    if (st) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    int64_t total = (int64_t)per_epoch * o.epochs;
    attn_sched sched = {(attn_sched_kind)o.schedule, o.lr, o.warmup, total, o.min_lr};
    if (o.noam) sched = attn_sched_noam(mc->d_model, o.warmup, o.noam_factor);
    if (o.schedule != ATTN_SCHED_INV_SQRT && o.warmup >= total) sched.warmup = total / 10;

    if (attn_graph_new(0, &g) || attn_graph_new(0, &ge)) goto done;
    attn_graph_set_training(ge, 0);
    attn_graph_set_grad(ge, 0);
    if (o.resume) *attn_graph_rng(g) = state.rng;
    else attn_graph_seed(g, attn_seed_mix((uint64_t)o.seed, 0xd0));
    /* Size the arena once for the largest batch of the first epoch (a forward and backward
     * whose gradients are thrown away, with the dropout generator restored), so that the
     * arena does not grow, and fault in fresh pages, step after step. */
    if ((st = attn_batches_make(lens, dtr.n, o.batch, 0, 50, attn_seed_mix(state.data_seed, (uint64_t)state.epoch), &bat))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    {
        int big = 0;
        int64_t most = -1;
        for (int bi = 0; bi < bat.n_batches; bi++) {
            int64_t S = 0, T = 0, n = bat.offsets[bi + 1] - bat.offsets[bi];
            for (int i = bat.offsets[bi]; i < bat.offsets[bi + 1]; i++) {
                int k = bat.index[i];
                S = dtr.n_src[k] > S ? dtr.n_src[k] : S;
                T = dtr.n_tgt[k] + 1 > T ? dtr.n_tgt[k] + 1 : T;
            }
            if (n * (S + T) > most) most = n * (S + T), big = bi;
        }
        attn_transformer_batch b;
        attn_rng keep = *attn_graph_rng(g);
        /* twice: the first grows the arena by chunks, which the reset merges into one fresh
         * chunk; the second touches that chunk's pages */
        for (int k = 0; k < 2 && bat.n_batches > 0; k++)
            if (!tbatch_fill(&bb, &dtr, bat.index + bat.offsets[big], bat.offsets[big + 1] - bat.offsets[big], &b)) {
                attn_var *l = attn_transformer_loss(m, g, &b, o.label_smoothing, NULL);
                if (l) attn_graph_backward(g, l);
                attn_graph_reset(g);
            }
        *attn_graph_rng(g) = keep;
        attn_batches_free(&bat);
    }
    if (o.log) {
        if (!(logf = fopen(o.log, o.resume ? "a" : "w"))) {
            cli_fail(cmd, "%s: cannot write: %s", o.log, strerror(errno));
            goto done;
        }
        if (!o.resume) fprintf(logf, "epoch,step,train_s,wall_s,train_loss,valid_loss,valid_bleu,tokens_per_s\n");
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    double t_start = attn_time_now(), t_train = 0.0, t_timed = 0.0, loss_sum = 0.0, ep_loss = 0.0;
    int64_t tok_total = 0, tok_timed = 0, loss_n = 0, steps_run = 0, tok_window = 0, ep_n = 0;
    double t_window = 0.0;
    int stopped = 0;
    st = ATTN_OK;
    if (!o.quiet)
        fprintf(stderr, "%d batches of up to %d pairs per epoch, %d epochs (%lld updates), %d threads\n", per_epoch, o.batch, o.epochs,
                (long long)total, attn_get_threads());
    for (int64_t ep = state.epoch; ep < o.epochs && !stopped; ep++) {
        if ((st = attn_batches_make(lens, dtr.n, o.batch, 0, 50, attn_seed_mix(state.data_seed, (uint64_t)ep), &bat))) break;
        ep_loss = 0.0, ep_n = 0;
        for (int64_t bi = (ep == state.epoch ? state.batch : 0); bi < bat.n_batches; bi++) {
            double t0 = attn_time_now();
            attn_transformer_batch b;
            const int *idx = bat.index + bat.offsets[bi];
            int n = bat.offsets[bi + 1] - bat.offsets[bi];
            if ((st = tbatch_fill(&bb, &dtr, idx, n, &b))) break;
            attn_params_zero_grad(attn_transformer_params(m));
            attn_graph_reset(g);
            attn_var *loss = attn_transformer_loss(m, g, &b, o.label_smoothing, NULL);
            if (!loss || (st = attn_graph_backward(g, loss))) {
                st = st ? st : attn_graph_status(g);
                break;
            }
            float norm = 0.0f;
            if (o.clip > 0) attn_clip_grad_norm(attn_transformer_params(m), o.clip, &norm);
            if (isfinite(norm)) attn_optim_step(opt, attn_sched_lr(&sched, attn_optim_steps(opt)));
            else if (!o.quiet) fprintf(stderr, "step %lld: gradient norm %g, update skipped\n", (long long)state.step, (double)norm);
            state.step++;
            state.batch = bi + 1;
            steps_run++;
            double dt = attn_time_now() - t0;
            t_train += dt, t_window += dt;
            if (steps_run > o.timing_skip) t_timed += dt, tok_timed += bb.tokens;
            tok_total += bb.tokens, tok_window += bb.tokens;
            loss_sum += loss->data[0], loss_n++;
            ep_loss += loss->data[0], ep_n++;
            if (!o.quiet && o.log_every && state.step % o.log_every == 0) {
                attn_progress pr = {ep, o.epochs, state.step, total, loss_sum / loss_n, attn_sched_lr(&sched, attn_optim_steps(opt)),
                                    tok_window / t_window, attn_eta(attn_time_now() - t_start, steps_run, total - state.step + steps_run)};
                char line[256];
                attn_progress_format(line, sizeof line, &pr);
                fprintf(stderr, "%s\n", line);
                loss_sum = 0.0, loss_n = 0, tok_window = 0, t_window = 0.0;
            }
            int save = o.save_every && state.step % o.save_every == 0;
            if ((o.max_steps && state.step >= o.max_steps) || (o.time_budget > 0 && t_train >= o.time_budget) || g_stop)
                stopped = 1, save = 1;
            if (save) {
                state.rng = *attn_graph_rng(g);
                if ((st = attn_transformer_save(m, o.out, opt, &state, cmdline))) break;
            }
            if (stopped) break;
        }
        attn_batches_free(&bat);
        if (st) break;
        if (!stopped) {
            state.epoch = ep + 1, state.batch = 0;
            state.rng = *attn_graph_rng(g);
            if ((st = attn_transformer_save(m, o.out, opt, &state, cmdline))) break;
        }
        /* validation after each epoch (and at a stop), printed and logged */
        double vl = NAN, vb = NAN;
        if (dva.n > 0 && (!o.quiet || logf)) {
            int ok;
            vl = valid_loss(m, ge, &dva, o.batch, &bb, &ok);
            if (o.valid_bleu > 0) {
                s2s_data sub = dva;
                if (sub.n > o.valid_bleu) sub.n = o.valid_bleu;
                attn_s2s_decode_opts dopt = attn_s2s_decode_defaults();
                s2s_eval_result r;
                if (s2s_evaluate(tm, &sub, &dopt, NULL, 0, NULL, NULL, &r) == ATTN_OK) vb = r.total.bleu;
            }
            if (!o.quiet) {
                fprintf(stderr, "epoch %lld/%d: valid loss %.4f (ppl %.2f)", (long long)ep + 1, o.epochs, vl, exp(vl));
                if (!isnan(vb)) fprintf(stderr, ", greedy BLEU %.2f on %d valid pairs", vb, dva.n < o.valid_bleu ? dva.n : o.valid_bleu);
                fprintf(stderr, ", training %.0f s, %.0f s so far\n", t_train, attn_time_now() - t_start);
            }
        }
        if (logf) {
            fprintf(logf, "%lld,%lld,%.2f,%.2f,%.4f,%.4f,%.2f,%.0f\n", (long long)ep + 1, (long long)state.step, t_train,
                    attn_time_now() - t_start, ep_n ? ep_loss / ep_n : NAN, vl, vb, t_train > 0 ? tok_total / t_train : 0.0);
            fflush(logf);
        }
    }
    if (st) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    double tps = t_timed > 0 ? tok_timed / t_timed : 0.0;
    printf("%s: %lld updates in %.1f s (training %.1f s), %.0f tokens/s, checkpoint %s%s\n", stopped ? "stopped" : "trained",
           (long long)steps_run, attn_time_now() - t_start, t_train, tps, o.out, stopped ? " (resume with --resume)" : "");
    rc = CLI_OK;
done:
    if (logf) fclose(logf);
    free(lens);
    attn_batches_free(&bat);
    tbatch_free(&bb);
    s2s_data_free(&dtr), s2s_data_free(&dva);
    attn_graph_free(g), attn_graph_free(ge);
    attn_optim_free(opt);
    attn_checkpoint_free(&ck);
    attn_translator_free(tm);
    attn_transformer_free(m);
    attn_pairs_free(&all), attn_pairs_free(&tr), attn_pairs_free(&va), attn_pairs_free(&te);
    free(cmdline);
    return rc;
}
