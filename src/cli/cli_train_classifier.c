/* attn train classifier: trains a text classifier on labelled texts (SST-2's TSV, the Chinese
 * review CSVs): the shared options and the data (read, split once with a seed, the tokeniser
 * chosen), then the family of --model (cli_cls.h) trains with the library's trainer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cls.h"
#include "cli_s2s.h"

static const char HELP_HEAD[] =
    "usage: attn train classifier --model KIND --data FILE --out DIR [options]\n"
    "       attn train classifier --model KIND --train FILE [--valid FILE] --out DIR [options]\n"
    "\n"
    "Trains a text classifier: it reads labelled texts and learns to give a new text its label.\n"
    "\n"
    "data (CSV or TSV told by the extension; the first line names the columns: the text is the\n"
    "column named sentence, content, review or text, the label the one named label; every file\n"
    "of ../shared/data reads as it is; malformed rows are skipped with a count):\n"
    "  --data FILE         all texts: split 80/10/10 into train/valid/test, seeded and stratified\n"
    "                      (each label keeps its share), written to --split-dir as TSV\n"
    "  --split-dir DIR     where the split goes (default: OUT/split); evaluate on its test.tsv\n"
    "  --split-seed N      the split's seed (default 1: every model meets the same test set)\n"
    "  --train FILE, --valid FILE   an existing split instead of --data (--valid is optional)\n"
    "  --label-column NAME the label column (default label; e.g. cat for the 10 categories of\n"
    "                      online_shopping_10_cats.csv)\n"
    "  --tok auto|en|zh|space   tokens: en = English words (lower-cased), zh = one token per\n"
    "                      Chinese character, space = split on white space; auto (default): zh\n"
    "                      when the training texts hold more Chinese characters than ASCII\n"
    "                      letters, else en\n"
    "\n"
    "models (--model):\n";

static const char HELP_TRAINING[] =
    "training:\n"
    "  --epochs N          passes over the training texts (default 5)\n"
    "  --batch N           texts per batch (default 64)\n"
    "  --optim adam|adamw|sgd   (default adam)\n"
    "  --lr F              learning rate, constant (default 1e-3)\n"
    "  --weight-decay F    L2 regularisation (default 0)\n"
    "  --clip F            gradient clipping by global norm (default 0: none)\n"
    "  --on-divergence stop|skip-batch   a batch whose loss (or, with --clip, gradient norm) is\n"
    "                      NaN or infinite, or whose loss is over 1000 times the run's first:\n"
    "                      stop with an error (default; its update is not made), or skip it\n"
    "  --patience N        early stopping: stop when the validation accuracy has not improved\n"
    "                      for N epochs (default 0: off); OUT is the last epoch's model, OUT/best\n"
    "                      the best epoch's (weights only: evaluate or classify with it)\n"
    "  --seed N            data order (default 1)\n"
    "  --max-steps N, --time-budget S   stop early (with a checkpoint: --resume continues)\n"
    "  --save-every N      also checkpoint every N updates (default: after each epoch)\n"
    "  --resume            continue the run checkpointed in --out (same data and options)\n"
    "  --log FILE          one CSV line per epoch (loss, validation loss and accuracy)\n"
    "  --log-every N       a progress line every N updates (default 200)\n"
    "  --threads N         threads (default: all cores)\n"
    "  --timing-skip N     leave the first N updates out of the final sentences/s and tokens/s\n"
    "                      (default 0)\n"
    "  --quiet             only errors and the final line\n"
    "\n"
    "output: DIR is a checkpoint (config.json with the label names, model.safetensors,\n"
    "optim.safetensors, the model's own files) for 'attn classify' and 'attn eval'. Ctrl-C\n"
    "(SIGINT) or SIGTERM stops with a checkpoint first.\n"
    "\n"
    "example (SST-2, the Stanford Sentiment Treebank, labels 0 = negative, 1 = positive):\n"
    "  attn train classifier --model nbsvm --train ../shared/data/sst2/train.tsv \\\n"
    "      --valid ../shared/data/sst2/dev.tsv --out runs/nbsvm\n"
    "  attn classify --model runs/nbsvm --explain 5 \"a gorgeous , witty , seductive movie\"\n"
    "  attn eval --model runs/nbsvm --data ../shared/data/sst2/test.tsv\n";

static void defaults(cls_opts *o) {
    memset(o, 0, sizeof *o);
    o->split_seed = 1, o->tok = -1;
    o->epochs = 5, o->batch = 64, o->seed = 1, o->log_every = 200;
    o->optim = ATTN_OPTIM_ADAM, o->lr = 1e-3f;
}

static int shared_option(cli_args *p, cls_opts *o) {
    if (cli_str(p, "--model", &o->model) || cli_str(p, "--data", &o->data) || cli_str(p, "--train", &o->train) ||
        cli_str(p, "--valid", &o->valid) || cli_str(p, "--out", &o->out) || cli_str(p, "-o", &o->out) ||
        cli_str(p, "--split-dir", &o->split_dir) || cli_str(p, "--log", &o->log) || cli_str(p, "--label-column", &o->label_col) ||
        cli_str(p, "--tok", &o->tok_) || cli_str(p, "--optim", &o->optim_) || cli_str(p, "--on-divergence", &o->div_))
        return 1;
    if (cli_int(p, "--split-seed", 0, INT32_MAX, &o->split_seed) || cli_int(p, "--epochs", 0, 100000, &o->epochs) ||
        cli_int(p, "--batch", 1, 1 << 16, &o->batch) || cli_int(p, "--seed", 0, INT32_MAX, &o->seed) ||
        cli_int(p, "--patience", 0, INT32_MAX, &o->patience) || cli_int(p, "--threads", 1, 1024, &o->threads) ||
        cli_int(p, "--log-every", 0, INT32_MAX, &o->log_every) || cli_int(p, "--max-steps", 0, INT32_MAX, &o->max_steps) ||
        cli_int(p, "--save-every", 0, INT32_MAX, &o->save_every) || cli_int(p, "--timing-skip", 0, INT32_MAX, &o->timing_skip))
        return 1;
    if (cli_float(p, "--lr", &o->lr) || cli_float(p, "--weight-decay", &o->weight_decay) || cli_float(p, "--clip", &o->clip) ||
        cli_float(p, "--time-budget", &o->time_budget))
        return 1;
    if (cli_flag(p, "--resume")) return o->resume = 1;
    if (cli_flag(p, "--quiet")) return o->quiet = 1;
    return 0;
}

static int check(const char *cmd, cls_opts *o) {
    if (!o->model) return cli_usage(cmd, "--model KIND is required (%s)", cls_kind_list());
    if (!o->out) return cli_usage(cmd, "--out DIR is required");
    if (!o->data == !o->train) return cli_usage(cmd, "give either --data FILE (to be split) or --train FILE");
    if (o->data && o->valid) return cli_usage(cmd, "--valid goes with --train, not with --data");
    if (o->tok_) {
        static const char *const TOK[] = {"space", "en", NULL, "zh"};
        o->tok = -2;
        for (int k = 0; k < 4; k++)
            if (TOK[k] && !strcmp(o->tok_, TOK[k])) o->tok = k;
        if (!strcmp(o->tok_, "auto")) o->tok = -1;
        if (o->tok == -2) return cli_usage(cmd, "unknown --tok '%s' (auto, en, zh, space)", o->tok_);
    }
    if (o->optim_ && (o->optim = attn_optim_parse(o->optim_)) < 0)
        return cli_usage(cmd, "unknown --optim '%s' (adam, adamw, sgd)", o->optim_);
    if (!(o->lr > 0)) return cli_usage(cmd, "--lr must be positive");
    if (o->weight_decay < 0 || o->clip < 0 || o->time_budget < 0)
        return cli_usage(cmd, "--weight-decay, --clip and --time-budget must be >= 0");
    if (o->div_ && strcmp(o->div_, "stop") && strcmp(o->div_, "skip-batch"))
        return cli_usage(cmd, "unknown --on-divergence '%s' (stop, skip-batch)", o->div_);
    return CLI_OK;
}

/* The training and validation texts: a fresh split of --data (written out), or --train and
 * --valid. */
static int load_data(const char *cmd, const cls_opts *o, cls_data *d) {
    int rc, st;
    if (!o->data) {
        if ((rc = cls_read(cmd, o->train, o->label_col, o->quiet, &d->train_data))) return rc;
        return o->valid ? cls_read(cmd, o->valid, o->label_col, o->quiet, &d->valid_data) : CLI_OK;
    }
    attn_cls_data all = {0}, test = {0};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o->split_dir ? o->split_dir : o->out);
    if (!o->split_dir) snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/split");
    if ((rc = cls_read(cmd, o->data, o->label_col, o->quiet, &all))) return rc;
    rc = CLI_EDATA;
    if ((st = attn_cls_split(&all, (uint64_t)o->split_seed, ATTN_SPLIT_VALID, ATTN_SPLIT_TEST, &d->train_data, &d->valid_data, &test)))
        cli_fail_lib(cmd, st, o->data);
    else if (s2s_mkdirs(dir)) cli_fail(cmd, "%s: cannot create the directory: %s", dir, strerror(errno));
    else {
        const attn_cls_data *parts[3] = {&d->train_data, &d->valid_data, &test};
        const char *names[3] = {"train", "valid", "test"};
        rc = CLI_OK;
        for (int i = 0; i < 3 && !rc; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.tsv", dir, names[i]);
            if ((st = attn_cls_write(parts[i], path))) rc = cli_fail_lib(cmd, st, path);
        }
        if (!rc && !o->quiet)
            fprintf(stderr, "split (seed %d, stratified): %d train, %d valid, %d test texts, written to %s/{train,valid,test}.tsv\n",
                    o->split_seed, d->train_data.n, d->valid_data.n, test.n, dir);
    }
    attn_cls_free(&all), attn_cls_free(&test);
    return rc;
}

int cli_train_classifier(int argc, char **argv) {
    const char *cmd = "train classifier";
    cls_opts o;
    defaults(&o);
    /* The family (and its options) follow --model, wherever it is on the line. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--model")) o.model = argv[i + 1];
    const cls_family *f = o.model ? cls_family_of(o.model) : NULL;
    int help = 0;
    for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
    if (help) {
        fputs(HELP_HEAD, stdout);
        for (int k = 0; cls_family_at(k); k++) fputs(cls_family_at(k)->help, stdout);
        fputs(HELP_TRAINING, stdout);
        return CLI_OK;
    }
    if (o.model && !f) return cli_usage(cmd, "unknown --model '%s' (%s)", o.model, cls_kind_list());
    void *cfg = f ? f->cfg_new() : NULL;
    if (f && !cfg) return cli_fail_lib(cmd, ATTN_ENOMEM, NULL);
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p))
        if (!shared_option(&p, &o) && !(f && f->option(&p, cfg))) cli_unknown(&p);
    int rc = p.status ? p.status : p.npos ? cli_usage(cmd, "unexpected argument '%s'", p.pos[0]) : check(cmd, &o);
    cls_data d = {0};
    if (rc) goto done;
    if (o.threads) attn_set_threads(o.threads);
    if ((rc = load_data(cmd, &o, &d))) goto done;
    if (!o.resume && s2s_mkdirs(o.out)) {
        rc = cli_fail(cmd, "%s: cannot create the directory: %s", o.out, strerror(errno));
        goto done;
    }
    d.labels = (const char *const *)d.train_data.label_name, d.n_labels = d.train_data.n_labels;
    d.tok = o.tok >= 0 ? (attn_tok_kind)o.tok : cls_auto_tok(&d.train_data);
    if (d.n_labels < 2) rc = cli_fail(cmd, "%s: one label only ('%s'): nothing to classify", o.data ? o.data : o.train, d.labels[0]);
    else rc = f->train(cmd, &o, cfg, &d);
done:
    attn_cls_free(&d.train_data), attn_cls_free(&d.valid_data);
    free(cfg);
    return rc;
}
