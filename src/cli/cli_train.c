/* attn train: trains a model on a data set. `attn train seq2seq` trains the encoder-decoder
 * translation models of attn/seq2seq.h (the distracted model, Bahdanau and Luong attention)
 * on sentence pairs such as Tatoeba's Chinese-English cmn.txt: split once by a seeded
 * shuffle (written out, so every model meets the same test sentences), vocabularies from the
 * training split, batches of similar lengths, Adam, gradient clipping, a learning-rate
 * schedule, a progress line, a checkpoint per epoch that resumes exactly.
 *
 * Not here: multi-GPU anything, early stopping (a fixed number of epochs; the validation loss
 * and BLEU are printed after each), sub-word vocabularies.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_s2s.h"

static const char HELP[] =
    "usage: attn train seq2seq --data PAIRS.tsv --out DIR [options]\n"
    "       attn train seq2seq --train TRAIN.tsv --valid VALID.tsv --out DIR [options]\n"
    "\n"
    "Trains an encoder-decoder translation model, with or without attention:\n"
    "  --attention none      the \"distracted\" model: the source is squeezed into one vector C\n"
    "                        that the decoder sees at every step (Cho et al. 2014)\n"
    "  --attention bahdanau  additive attention: a new context C_i = sum_j a_ij h_j for every\n"
    "                        target word, queried by the previous decoder state (default)\n"
    "  --attention luong-dot, luong-general   multiplicative attention (Luong et al. 2015)\n"
    "\n"
    "data (UTF-8 TSV, one pair per line: side0<TAB>side1[<TAB>anything]; Tatoeba's cmn.txt is\n"
    "English<TAB>Chinese<TAB>attribution):\n"
    "  --data FILE         all pairs: split into train/valid/test by a seeded shuffle, the split\n"
    "                      written to --split-dir (so that every model meets the same test set)\n"
    "  --split-dir DIR     where the split goes (default: DIR/split)\n"
    "  --split-seed N      the shuffle's seed (default 1)\n"
    "  --valid-frac F, --test-frac F   shares of the split (default 0.1 and 0.1)\n"
    "  --split-only        write the split and stop\n"
    "  --train FILE, --valid FILE      an existing split instead of --data\n"
    "  --direction zh-en|en-zh         source and target: zh-en (default) reads column 1 (Chinese,\n"
    "                      one token per character) and writes column 0 (English words)\n"
    "  --max-len N         training pairs with more than N tokens on a side are left out (default 30)\n"
    "  --min-count N       tokens seen fewer than N times in training become <unk> (default 2)\n"
    "  --max-vocab N       at most N ids per vocabulary (default: no limit)\n"
    "\n"
    "model:\n"
    "  --attention KIND    none, bahdanau, luong-dot, luong-general (default bahdanau)\n"
    "  --rnn gru|lstm      recurrent cell (default gru)\n"
    "  --bidirectional     encoder in both directions (H/2 each)\n"
    "  --emb N             embedding size (default 256)\n"
    "  --hidden N          hidden size H (default 256)\n"
    "  --attn-size N       hidden size of the additive score (default H)\n"
    "  --dropout F         (default 0.2)\n"
    "\n"
    "training:\n"
    "  --epochs N          passes over the training pairs (default 10)\n"
    "  --batch N           sentences per batch (default 64)\n"
    "  --optim adam|adamw|sgd   (default adam)      --weight-decay F (default 0)\n"
    "  --lr F              peak learning rate (default 1e-3)\n"
    "  --schedule constant|cosine|linear   (default cosine, to --min-lr = lr/10)\n"
    "  --warmup N          steps of linear warm-up (default 200)\n"
    "  --clip F            gradient clipping by global norm (default 1; 0: none)\n"
    "  --label-smoothing F (default 0.1)\n"
    "  --seed N            initialisation, dropout and data order (default 1)\n"
    "  --max-steps N       stop after N updates in all (a checkpoint is written)\n"
    "  --resume            continue the run checkpointed in --out (same data and options)\n"
    "  --save-every N      also checkpoint every N updates (default: after each epoch)\n"
    "  --weights-only      checkpoints without the optimiser state (a third of the size, to\n"
    "                      ship; such a run cannot be resumed)\n"
    "  --valid-bleu N      greedy BLEU on N evenly spaced validation pairs after each epoch\n"
    "                      (default 500; 0: none)\n"
    "  --log-every N       a progress line every N updates (default 100)\n"
    "  --threads N         threads (default: all cores; results do not depend on it)\n"
    "  --quiet             only errors and the final line\n"
    "  --export-batches F  write the first epoch's batches (ids, in training order) to F, for\n"
    "                      bench/torch_seq2seq.py to train PyTorch on exactly the same data\n"
    "\n"
    "output: DIR is a checkpoint (config.json, model.safetensors, optim.safetensors, the\n"
    "vocabularies) for 'attn translate --model DIR' and 'attn eval --model DIR'; its config.json\n"
    "records the command that made it.\n"
    "\n"
    "example:\n"
    "  attn train seq2seq --data ../shared/data/cmn-eng/cmn.txt --attention bahdanau --out runs/bahdanau\n"
    "  attn translate --model runs/bahdanau --show-attention \"我爱你。\"\n";

typedef struct {
    const char *data, *train, *valid, *out, *split_dir, *export_batches;
    int split_seed;
    float valid_frac, test_frac;
    int zh_en;
    int max_len, min_count, max_vocab;
    attn_s2s_config model;
    int epochs, batch, warmup, seed, max_steps, resume, save_every, valid_bleu, log_every, threads, quiet, split_only, weights_only;
    int optim;
    float lr, weight_decay, clip, label_smoothing, min_lr;
    int schedule;
} train_opts;

static int parse(int argc, char **argv, train_opts *o) {
    const char *cmd = "train seq2seq";
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    memset(o, 0, sizeof *o);
    o->split_seed = 1, o->valid_frac = 0.1f, o->test_frac = 0.1f, o->zh_en = 1;
    o->max_len = 30, o->min_count = 2;
    o->model = attn_s2s_defaults();
    o->epochs = 10, o->batch = 64, o->warmup = 200, o->seed = 1, o->valid_bleu = 500, o->log_every = 100;
    o->optim = ATTN_OPTIM_ADAM, o->lr = 1e-3f, o->clip = 1.0f, o->label_smoothing = 0.1f, o->min_lr = -1.0f;
    o->schedule = ATTN_SCHED_COSINE;
    const char *att = NULL, *rnn = NULL, *dir = NULL, *opt = NULL, *sched = NULL;
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) cli_help(HELP);
            return p.status ? p.status : -1;
        } else if (cli_str(&p, "--data", &o->data) || cli_str(&p, "--train", &o->train) || cli_str(&p, "--valid", &o->valid) ||
                   cli_str(&p, "--out", &o->out) || cli_str(&p, "-o", &o->out) || cli_str(&p, "--split-dir", &o->split_dir) ||
                   cli_str(&p, "--export-batches", &o->export_batches)) {
        } else if (cli_int(&p, "--split-seed", 0, INT32_MAX, &o->split_seed)) {
        } else if (cli_float(&p, "--valid-frac", &o->valid_frac) || cli_float(&p, "--test-frac", &o->test_frac)) {
        } else if (cli_str(&p, "--direction", &dir)) {
        } else if (cli_int(&p, "--max-len", 0, 100000, &o->max_len) || cli_int(&p, "--min-count", 0, INT32_MAX, &o->min_count) ||
                   cli_int(&p, "--max-vocab", 0, INT32_MAX, &o->max_vocab)) {
        } else if (cli_str(&p, "--attention", &att) || cli_str(&p, "--rnn", &rnn)) {
        } else if (cli_flag(&p, "--bidirectional")) {
            o->model.bidirectional = 1;
        } else if (cli_int(&p, "--emb", 1, 65536, &o->model.emb) || cli_int(&p, "--hidden", 1, 65536, &o->model.hidden) ||
                   cli_int(&p, "--attn-size", 0, 65536, &o->model.attn_size)) {
        } else if (cli_float(&p, "--dropout", &o->model.dropout)) {
        } else if (cli_int(&p, "--epochs", 0, 100000, &o->epochs) || cli_int(&p, "--batch", 1, 1 << 16, &o->batch) ||
                   cli_int(&p, "--warmup", 0, INT32_MAX, &o->warmup) || cli_int(&p, "--seed", 0, INT32_MAX, &o->seed) ||
                   cli_int(&p, "--max-steps", 0, INT32_MAX, &o->max_steps) ||
                   cli_int(&p, "--save-every", 0, INT32_MAX, &o->save_every) ||
                   cli_int(&p, "--valid-bleu", 0, INT32_MAX, &o->valid_bleu) ||
                   cli_int(&p, "--log-every", 0, INT32_MAX, &o->log_every) || cli_int(&p, "--threads", 1, 1024, &o->threads)) {
        } else if (cli_str(&p, "--optim", &opt) || cli_str(&p, "--schedule", &sched)) {
        } else if (cli_float(&p, "--lr", &o->lr) || cli_float(&p, "--weight-decay", &o->weight_decay) ||
                   cli_float(&p, "--clip", &o->clip) || cli_float(&p, "--label-smoothing", &o->label_smoothing) ||
                   cli_float(&p, "--min-lr", &o->min_lr)) {
        } else if (cli_flag(&p, "--resume")) {
            o->resume = 1;
        } else if (cli_flag(&p, "--quiet")) {
            o->quiet = 1;
        } else if (cli_flag(&p, "--weights-only")) {
            o->weights_only = 1;
        } else if (cli_flag(&p, "--split-only")) {
            o->split_only = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (o->split_only && !o->data) return cli_usage(cmd, "--split-only needs --data FILE");
    if (o->split_only && !o->out && !o->split_dir) return cli_usage(cmd, "--split-only needs --split-dir DIR (or --out DIR)");
    if (!o->out && !o->split_only) return cli_usage(cmd, "--out DIR is required");
    if (!o->data == !o->train) return cli_usage(cmd, "give either --data FILE (to be split) or --train FILE");
    if (o->data && o->valid) return cli_usage(cmd, "--valid goes with --train, not with --data");
    if (att && (int)(o->model.attention = (attn_s2s_attention)attn_s2s_attention_parse(att)) < 0)
        return cli_usage(cmd, "unknown --attention '%s' (none, bahdanau, luong-dot, luong-general)", att);
    if (rnn && (int)(o->model.rnn = (attn_s2s_rnn)attn_s2s_rnn_parse(rnn)) < 0) return cli_usage(cmd, "unknown --rnn '%s' (gru, lstm)", rnn);
    if (dir && strcmp(dir, "zh-en") && strcmp(dir, "en-zh")) return cli_usage(cmd, "unknown --direction '%s' (zh-en, en-zh)", dir);
    o->zh_en = !dir || !strcmp(dir, "zh-en");
    o->model.src_tok = o->zh_en ? ATTN_TOK_ZH : ATTN_TOK_EN;
    o->model.tgt_tok = o->zh_en ? ATTN_TOK_EN : ATTN_TOK_ZH;
    if (opt && (o->optim = attn_optim_parse(opt)) < 0) return cli_usage(cmd, "unknown --optim '%s' (adam, adamw, sgd)", opt);
    if (sched && (o->schedule = attn_sched_parse(sched)) < 0) return cli_usage(cmd, "unknown --schedule '%s'", sched);
    if (!(o->valid_frac >= 0 && o->test_frac >= 0 && o->valid_frac + o->test_frac < 1))
        return cli_usage(cmd, "--valid-frac and --test-frac must be >= 0 with a sum below 1");
    if (!(o->lr > 0)) return cli_usage(cmd, "--lr must be positive");
    if (!(o->model.dropout >= 0 && o->model.dropout < 1)) return cli_usage(cmd, "--dropout must be in [0, 1)");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1)) return cli_usage(cmd, "--label-smoothing must be in [0, 1)");
    if (o->clip < 0) return cli_usage(cmd, "--clip must be >= 0");
    if (o->model.bidirectional && o->model.hidden % 2) return cli_usage(cmd, "--bidirectional needs an even --hidden");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return CLI_OK;
}

/* ---- Batches ------------------------------------------------------------------------------ */

typedef struct {
    int32_t *src, *src_len, *tin, *tout; /* (S, B), (B), (T, B), (T, B) */
    int cap_s, cap_t, cap_b;
    int64_t tokens;                       /* real source + target tokens (with <eos>) */
} batch_buf;

static int batch_fill(batch_buf *bb, const s2s_data *d, const int *idx, int n, attn_s2s_batch *b) {
    int S = 1, T = 1;
    for (int i = 0; i < n; i++) {
        if (d->n_src[idx[i]] > S) S = d->n_src[idx[i]];
        if (d->n_tgt[idx[i]] + 1 > T) T = d->n_tgt[idx[i]] + 1;
    }
    if (S > bb->cap_s || T > bb->cap_t || n > bb->cap_b) {
        int cs = S > bb->cap_s ? S : bb->cap_s, ct = T > bb->cap_t ? T : bb->cap_t, cb = n > bb->cap_b ? n : bb->cap_b;
        free(bb->src), free(bb->src_len), free(bb->tin), free(bb->tout);
        bb->src = malloc((size_t)cs * cb * sizeof(int32_t));
        bb->src_len = malloc((size_t)cb * sizeof(int32_t));
        bb->tin = malloc((size_t)ct * cb * sizeof(int32_t));
        bb->tout = malloc((size_t)ct * cb * sizeof(int32_t));
        if (!bb->src || !bb->src_len || !bb->tin || !bb->tout) return ATTN_ENOMEM;
        bb->cap_s = cs, bb->cap_t = ct, bb->cap_b = cb;
    }
    bb->tokens = 0;
    for (int i = 0; i < n; i++) {
        int k = idx[i], ls = d->n_src[k], lt = d->n_tgt[k] + 1;
        const int32_t *s = d->src[k], *t = d->tgt[k];
        bb->src_len[i] = ls;
        for (int j = 0; j < S; j++) bb->src[j * n + i] = j < ls ? s[j] : ATTN_PAD;
        for (int j = 0; j < T; j++) {
            bb->tin[j * n + i] = j < lt ? t[j] : ATTN_PAD;
            bb->tout[j * n + i] = j < lt ? t[j + 1] : ATTN_PAD;
        }
        bb->tokens += ls + lt;
    }
    b->B = n, b->S = S, b->T = T;
    b->src = bb->src, b->src_len = bb->src_len, b->tgt_in = bb->tin, b->tgt_out = bb->tout;
    return ATTN_OK;
}

static void batch_free(batch_buf *bb) { free(bb->src), free(bb->src_len), free(bb->tin), free(bb->tout); }

/* ---- Data --------------------------------------------------------------------------------- */

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

/* The batches of one epoch as text: a header line, then per batch one line per pair
 * ("source ids<TAB>target ids", the target with <bos> and <eos>) and an empty line. */
static int export_batches(const char *path, const attn_s2s_config *c, const s2s_data *d, const attn_batches *bat) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "# attn seq2seq batches: src_vocab %d tgt_vocab %d batches %d\n", c->src_vocab, c->tgt_vocab, bat->n_batches);
    for (int b = 0; b < bat->n_batches; b++) {
        for (int i = bat->offsets[b]; i < bat->offsets[b + 1]; i++) {
            int k = bat->index[i];
            for (int j = 0; j < d->n_src[k]; j++) fprintf(f, j ? " %d" : "%d", (int)d->src[k][j]);
            fputc('\t', f);
            for (int j = 0; j < d->n_tgt[k] + 2; j++) fprintf(f, j ? " %d" : "%d", (int)d->tgt[k][j]);
            fputc('\n', f);
        }
        fputc('\n', f);
    }
    return fclose(f);
}

/* ---- Evaluation during training ----------------------------------------------------------- */

static double valid_loss(attn_s2s *m, attn_graph *g, const s2s_data *d, int batch, batch_buf *bb, int *ok) {
    double sum = 0.0;
    int64_t ntok = 0;
    *ok = 1;
    int *idx = malloc((size_t)batch * sizeof(int));
    if (!idx) {
        *ok = 0;
        return NAN;
    }
    for (int i0 = 0; i0 < d->n; i0 += batch) {
        int n = d->n - i0 < batch ? d->n - i0 : batch;
        for (int i = 0; i < n; i++) idx[i] = i0 + i;
        attn_s2s_batch b;
        if (batch_fill(bb, d, idx, n, &b)) {
            *ok = 0;
            break;
        }
        attn_graph_reset(g);
        attn_var *l = attn_s2s_loss(m, g, &b, 0.0f);
        if (!l) {
            *ok = 0;
            break;
        }
        int64_t k = 0;
        for (int i = 0; i < n; i++) k += d->n_tgt[idx[i]] + 1;
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

/* ---- seq2seq ------------------------------------------------------------------------------- */

static int train_seq2seq(int argc, char **argv) {
    const char *cmd = "train seq2seq";
    train_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (o.threads) attn_set_threads(o.threads);
    int src_col = o.zh_en ? 1 : 0;
    attn_pairs all = {0}, tr = {0}, va = {0}, te = {0};
    attn_s2s *m = NULL;
    attn_translator *tm = NULL; /* m seen through attn/translator.h, for the shared helpers */
    attn_optim *opt = NULL;
    attn_graph *g = NULL, *ge = NULL;
    s2s_data dtr = {0}, dva = {0};
    batch_buf bb = {0};
    attn_batches bat = {0};
    attn_checkpoint ck = {0};
    char *cmdline = s2s_command_line(argc, argv);
    int st;
    rc = CLI_EDATA;

    /* data: a fresh split, or given files */
    if (o.data) {
        if ((rc = read_pairs(cmd, o.data, &all, o.quiet))) goto done;
        rc = CLI_EDATA;
        if ((st = attn_pairs_split(&all, (uint64_t)o.split_seed, o.valid_frac, o.test_frac, &tr, &va, &te))) {
            cli_fail_lib(cmd, st, o.data);
            goto done;
        }
        char sd[4096];
        snprintf(sd, sizeof sd, "%s", o.split_dir ? o.split_dir : "");
        if (!o.split_dir) snprintf(sd, sizeof sd, "%s%s", o.out, o.split_only ? "" : "/split");
        if (write_split(cmd, sd, &tr, &va, &te)) goto done;
        if (!o.quiet)
            fprintf(stderr, "split (seed %d): %d train, %d valid, %d test pairs, written to %s/{train,valid,test}.tsv\n", o.split_seed,
                    tr.n, va.n, te.n, sd);
        if (o.split_only) {
            rc = CLI_OK;
            goto done;
        }
    } else {
        if ((rc = read_pairs(cmd, o.train, &tr, o.quiet))) goto done;
        if (o.valid && (rc = read_pairs(cmd, o.valid, &va, o.quiet))) goto done;
        rc = CLI_EDATA;
    }

    if (!o.resume && s2s_mkdirs(o.out)) {
        cli_fail(cmd, "%s: cannot create the directory: %s", o.out, strerror(errno));
        goto done;
    }
    /* model: from the checkpoint (resume) or new, with vocabularies from the training split */
    attn_train_state state;
    memset(&state, 0, sizeof state);
    state.data_seed = attn_seed_mix((uint64_t)o.seed, 0x5eed);
    if (o.resume) {
        if ((st = attn_s2s_load(o.out, &m, &ck))) {
            cli_fail_lib(cmd, st, o.out);
            goto done;
        }
        state = ck.state;
        if (!o.quiet) fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o.out, (long long)state.epoch + 1,
                              (long long)state.batch, (long long)state.step);
    } else {
        attn_vocab *sv = NULL, *tv = NULL;
        if ((st = s2s_build_vocabs(&tr, src_col, o.model.src_tok, o.model.tgt_tok, o.min_count, o.max_vocab, &sv, &tv))) {
            cli_fail_lib(cmd, st, o.train ? o.train : o.data);
            goto done;
        }
        o.model.src_vocab = attn_vocab_size(sv), o.model.tgt_vocab = attn_vocab_size(tv);
        if ((st = attn_s2s_new(&o.model, &m)) || (st = attn_s2s_init(m, (uint64_t)o.seed)) || (st = attn_s2s_set_vocabs(m, sv, tv))) {
            if (!m) attn_vocab_free(sv), attn_vocab_free(tv);
            cli_fail_lib(cmd, st, NULL);
            goto done;
        }
    }
    const attn_s2s_config *mc = attn_s2s_get_config(m);
    if ((st = attn_translator_wrap_seq2seq(m, &tm)) || (st = s2s_data_encode(tm, &tr, src_col, o.max_len, &dtr)) ||
        (st = s2s_data_encode(tm, &va, src_col, 0, &dva))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (dtr.n == 0) {
        cli_fail(cmd, "no training pair is left (--max-len %d)", o.max_len);
        goto done;
    }
    if (!o.quiet) {
        fprintf(stderr, "model: %s, %s%s, emb %d, hidden %d, vocabularies %d (source) and %d (target), %lld parameters\n",
                attn_s2s_attention_name(mc->attention), attn_s2s_rnn_name(mc->rnn), mc->bidirectional ? " bidirectional" : "", mc->emb,
                mc->hidden, mc->src_vocab, mc->tgt_vocab, (long long)attn_params_numel(attn_s2s_params(m)));
        fprintf(stderr, "training on %d pairs (%d longer than %d tokens left out), %.2f%% / %.2f%% unknown tokens\n", dtr.n,
                dtr.dropped, o.max_len, 100.0 * dtr.unk_src / (dtr.tok_src ? dtr.tok_src : 1),
                100.0 * dtr.unk_tgt / (dtr.tok_tgt ? dtr.tok_tgt : 1));
    }

    /* optimiser and schedule */
    attn_optim_config oc = attn_optim_defaults((attn_optim_kind)o.optim);
    oc.lr = o.lr;
    if (o.weight_decay > 0 || o.optim != ATTN_OPTIM_ADAMW) oc.weight_decay = o.weight_decay;
    if ((st = attn_optim_new(&oc, attn_s2s_params(m), &opt))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    if (o.resume && !ck.has_optim) {
        cli_fail(cmd, "%s: the checkpoint has no optimiser state (written with --weights-only): it cannot be resumed", o.out);
        goto done;
    }
    if (o.resume && (st = attn_checkpoint_load_optim(&ck, opt))) {
        cli_fail_lib(cmd, st, o.out);
        goto done;
    }
    int *lens = malloc((size_t)dtr.n * sizeof(int));
    if (!lens) goto done;
    for (int i = 0; i < dtr.n; i++) lens[i] = dtr.n_src[i] + dtr.n_tgt[i];
    st = attn_batches_make(lens, dtr.n, o.batch, 0, 50, attn_seed_mix(state.data_seed, 0), &bat);
    int per_epoch = bat.n_batches;
    attn_batches_free(&bat);
    if (st) {
        free(lens);
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    int64_t total = (int64_t)per_epoch * o.epochs;
    attn_sched sched = {(attn_sched_kind)o.schedule, o.lr, o.warmup, total, o.min_lr};
    if (o.warmup >= total) sched.warmup = total / 10;

    if (attn_graph_new(0, &g) || attn_graph_new(0, &ge)) {
        free(lens);
        goto done;
    }
    attn_graph_set_training(ge, 0);
    attn_graph_set_grad(ge, 0);
    if (o.resume) *attn_graph_rng(g) = state.rng;
    else attn_graph_seed(g, attn_seed_mix((uint64_t)o.seed, 0xd0));
    /* Warm-up: one forward and backward of a batch of the longest pairs, so that the graph's
     * arena reaches its largest size before timing starts and never grows (or faults pages
     * in) again. The dropout generator is restored and the gradients dropped: no effect on
     * the run. */
    {
        int nw = dtr.n < o.batch ? dtr.n : o.batch;
        int *widx = malloc((size_t)nw * sizeof(int));
        if (!widx) goto done;
        for (int i = 0, k = 0; i < dtr.n; i++) { /* the nw longest, by sum of lengths */
            int j = k < nw ? k++ : nw - 1;
            if (k == nw && j == nw - 1 && i >= nw && lens[i] <= lens[widx[j]]) continue;
            widx[j] = i;
            while (j > 0 && lens[widx[j]] > lens[widx[j - 1]]) {
                int t = widx[j];
                widx[j] = widx[j - 1], widx[j - 1] = t;
                j--;
            }
        }
        attn_rng keep = *attn_graph_rng(g);
        attn_s2s_batch b;
        if (!batch_fill(&bb, &dtr, widx, nw, &b)) {
            attn_graph_reset(g);
            attn_var *l = attn_s2s_loss(m, g, &b, o.label_smoothing);
            if (l) attn_graph_backward(g, l);
            attn_graph_reset(g);
        }
        attn_params_zero_grad(attn_s2s_params(m));
        *attn_graph_rng(g) = keep;
        free(widx);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    double t_start = attn_time_now(), t_train = 0.0, loss_sum = 0.0;
    int64_t tok_total = 0, loss_n = 0, steps_run = 0, tok_window = 0;
    double t_window = 0.0;
    int stopped = 0, printed = 0;
    if (!o.quiet)
        fprintf(stderr, "%d batches of up to %d pairs per epoch, %d epochs (%lld updates), %d threads\n", per_epoch, o.batch, o.epochs,
                (long long)total, attn_get_threads());
    for (int64_t ep = state.epoch; ep < o.epochs && !stopped; ep++) {
        if ((st = attn_batches_make(lens, dtr.n, o.batch, 0, 50, attn_seed_mix(state.data_seed, (uint64_t)ep), &bat))) break;
        if (o.export_batches && ep == state.epoch && export_batches(o.export_batches, mc, &dtr, &bat)) {
            cli_fail(cmd, "%s: cannot write", o.export_batches);
            st = ATTN_EIO, printed = 1;
            break;
        }
        for (int64_t bi = (ep == state.epoch ? state.batch : 0); bi < bat.n_batches; bi++) {
            double t0 = attn_time_now();
            attn_s2s_batch b;
            const int *idx = bat.index + bat.offsets[bi];
            int n = bat.offsets[bi + 1] - bat.offsets[bi];
            if ((st = batch_fill(&bb, &dtr, idx, n, &b))) break;
            attn_params_zero_grad(attn_s2s_params(m));
            attn_graph_reset(g);
            attn_var *loss = attn_s2s_loss(m, g, &b, o.label_smoothing);
            if (!loss || (st = attn_graph_backward(g, loss))) {
                st = st ? st : attn_graph_status(g);
                break;
            }
            float norm = 0.0f;
            if (o.clip > 0) attn_clip_grad_norm(attn_s2s_params(m), o.clip, &norm);
            if (isfinite(norm)) attn_optim_step(opt, attn_sched_lr(&sched, attn_optim_steps(opt)));
            else if (!o.quiet) fprintf(stderr, "step %lld: gradient norm %g, update skipped\n", (long long)state.step, (double)norm);
            state.step++;
            state.batch = bi + 1;
            steps_run++;
            double dt = attn_time_now() - t0;
            t_train += dt, t_window += dt;
            tok_total += bb.tokens, tok_window += bb.tokens;
            loss_sum += loss->data[0], loss_n++;
            if (!o.quiet && o.log_every && state.step % o.log_every == 0) {
                attn_progress pr = {ep, o.epochs, state.step, total, loss_sum / loss_n,
                                    attn_sched_lr(&sched, attn_optim_steps(opt)), tok_window / t_window,
                                    attn_eta(attn_time_now() - t_start, steps_run, total - state.step + steps_run)};
                char line[256];
                attn_progress_format(line, sizeof line, &pr);
                fprintf(stderr, "%s\n", line);
                loss_sum = 0.0, loss_n = 0, tok_window = 0, t_window = 0.0;
            }
            int save = o.save_every && state.step % o.save_every == 0;
            if ((o.max_steps && state.step >= o.max_steps) || g_stop) stopped = 1, save = 1;
            if (save) {
                state.rng = *attn_graph_rng(g);
                if ((st = attn_s2s_save(m, o.out, o.weights_only ? NULL : opt, &state, cmdline))) break;
            }
            if (stopped) break;
        }
        if (st) break;
        if (stopped) {
            attn_batches_free(&bat);
            break;
        }
        /* end of the epoch: checkpoint, then validation */
        state.epoch = ep + 1, state.batch = 0;
        state.rng = *attn_graph_rng(g);
        attn_batches_free(&bat);
        if ((st = attn_s2s_save(m, o.out, o.weights_only ? NULL : opt, &state, cmdline))) break;
        if (!o.quiet && dva.n > 0) {
            int ok;
            double vl = valid_loss(m, ge, &dva, o.batch, &bb, &ok);
            fprintf(stderr, "epoch %lld/%d: valid loss %.4f (ppl %.2f)", (long long)ep + 1, o.epochs, vl, exp(vl));
            if (o.valid_bleu > 0) {
                /* evenly spaced pairs (files such as cmn.txt are sorted by length) */
                int k = dva.n < o.valid_bleu ? dva.n : o.valid_bleu;
                s2s_data sub = dva;
                sub.src = malloc((size_t)k * sizeof *sub.src), sub.n_src = malloc((size_t)k * sizeof(int));
                sub.src_tokens = malloc((size_t)k * sizeof(int)), sub.ref = malloc((size_t)k * sizeof(char *));
                if (sub.src && sub.n_src && sub.src_tokens && sub.ref) {
                    for (int i = 0; i < k; i++) {
                        int j = (int)((int64_t)i * dva.n / k);
                        sub.src[i] = dva.src[j], sub.n_src[i] = dva.n_src[j], sub.src_tokens[i] = dva.src_tokens[j];
                        sub.ref[i] = dva.ref[j];
                    }
                    sub.n = k;
                    attn_s2s_decode_opts dopt = attn_s2s_decode_defaults();
                    s2s_eval_result r;
                    if (s2s_evaluate(tm, &sub, &dopt, NULL, 0, NULL, NULL, &r) == ATTN_OK)
                        fprintf(stderr, ", greedy BLEU %.2f on %d valid pairs", r.total.bleu, sub.n);
                }
                free(sub.src), free(sub.n_src), free(sub.src_tokens), free((void *)sub.ref);
            }
            fprintf(stderr, ", %.0f s so far\n", attn_time_now() - t_start);
        }
    }
    free(lens);
    if (st) {
        if (!printed) cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    double tps = t_train > 0 ? tok_total / t_train : 0.0;
    printf("%s: %lld updates in %.1f s (training %.1f s), %.0f tokens/s, checkpoint %s%s\n", stopped ? "stopped" : "trained",
           (long long)steps_run, attn_time_now() - t_start, t_train, tps, o.out,
           stopped ? " (resume with --resume)" : "");
    rc = CLI_OK;
done:
    attn_batches_free(&bat);
    batch_free(&bb);
    s2s_data_free(&dtr), s2s_data_free(&dva);
    attn_graph_free(g), attn_graph_free(ge);
    attn_optim_free(opt);
    attn_checkpoint_free(&ck);
    attn_translator_free(tm);
    attn_s2s_free(m);
    attn_pairs_free(&all), attn_pairs_free(&tr), attn_pairs_free(&va), attn_pairs_free(&te);
    free(cmdline);
    return rc;
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static const char TOP_HELP[] =
    "usage: attn train MODEL [options]      (attn train MODEL --help for its options)\n"
    "\n"
    "models:\n"
    "  seq2seq    encoder-decoder translation, with or without attention (Bahdanau, Luong)\n"
    "  transformer  the Transformer: self-attention, multi-head, position encodings\n";

int cli_train_transformer(int argc, char **argv); /* cli_train_transformer.c */

int cli_train(int argc, char **argv) {
    if (argc < 2) {
        fputs(TOP_HELP, stderr);
        return CLI_EUSAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return cli_help(TOP_HELP);
    if (!strcmp(argv[1], "seq2seq")) return train_seq2seq(argc - 1, argv + 1);
    if (!strcmp(argv[1], "transformer")) return cli_train_transformer(argc - 1, argv + 1);
    return cli_usage("train", "unknown model '%s' (seq2seq, transformer)", argv[1]);
}
