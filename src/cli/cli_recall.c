/* attn train recall and attn eval of a recall model: the associative retrieval task of Ba et
 * al. 2016 (attn/recall.h). The data is generated from --seed (train, valid and test splits
 * from three seeds derived from it), so a model directory says everything needed to rebuild
 * its test set; training runs through the library's trainer (attn/recall_train.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/recall_train.h"
#include "cli.h"
#include "cli_recall.h"
#include "cli_s2s.h"

static const char TRAIN_HELP[] =
    "usage: attn train recall --model KIND --pairs K --out DIR [options]\n"
    "\n"
    "Associative recall (Ba et al. 2016, \"Using fast weights to attend to the recent past\"):\n"
    "a sequence of K key-digit pairs, two '?', then one of the keys; the answer is its digit:\n"
    "    c9k8j3f1??c  ->  9\n"
    "A plain recurrent network must carry all K pairs in its state of H numbers; with a memory\n"
    "of its own past states, read by a soft address, it only has to find the right one.\n"
    "\n"
    "models (--model):\n"
    "  gru         a GRU; its last state -> linear -> 10 digits\n"
    "  lstm        the same with an LSTM\n"
    "  gru-attn    the GRU plus a key-value memory written as it reads (key W_k h_t, value\n"
    "              W_v h_t for every step t), read at the end by the query W_q h_T with\n"
    "              softmax(q . k_t / sqrt(H)) weights: the soft address; [h_T; read] -> 10\n"
    "  gru-hard    the same memory read at the argmax of the scores only (one-hot), trained\n"
    "              with the softmax's gradient (straight-through): the hard address\n"
    "  gru-argmax  the hard address with its own gradient, zero: the scores never learn (the\n"
    "              control: the hard address learns only through the softmax's gradient)\n"
    "\n"
    "task and model:\n"
    "  --pairs K           key-digit pairs per sequence, 1..52 (default 16); keys are distinct\n"
    "                      letters a-z, or a-z A-Z when K > 26\n"
    "  --hidden H          the recurrent state size (default 32)\n"
    "  --embed E           the token embedding size (default 32)\n"
    "  --train N, --valid N, --test N   sequences per split (default 20000, 2000, 5000)\n"
    "  --seed S            data (three splits from it), initialisation and order (default 1)\n"
    "\n"
    "training:\n"
    "  --epochs N          passes over the training sequences (default 20)\n"
    "  --batch N           sequences per batch (default 64)\n"
    "  --optim adam|adamw|sgd   (default adam)\n"
    "  --lr F              learning rate (default 3e-3)\n"
    CLI_TRAINER_SCHED_HELP
    "  --clip F            gradient clipping by global norm (default 1)\n"
    "  --patience N        early stopping on the validation accuracy (default 0: off); OUT/best\n"
    "                      holds the best epoch's weights\n"
    "  --max-steps N, --time-budget S   stop early (with a checkpoint: --resume continues)\n"
    "  --save-every N      also checkpoint every N updates (default: after each epoch)\n"
    "  --resume            continue the run checkpointed in --out (same options)\n"
    "  --log FILE          one CSV line per epoch (loss, validation loss and accuracy)\n"
    "  --log-every N       a progress line every N updates (default 200)\n"
    "  --threads N         threads (default: all cores)\n"
    "  --quiet             only errors and the final line\n"
    "\n"
    "output: DIR is a checkpoint (config.json with the model and its data seed and sizes,\n"
    "model.safetensors, optim.safetensors). The last line gives the test accuracy.\n"
    "\n"
    "example:\n"
    "  attn train recall --model gru-attn --pairs 16 --hidden 32 --out runs/recall-attn\n"
    "  attn eval --model runs/recall-attn --show 3\n";

static const char EVAL_HELP[] =
    "usage: attn eval --model DIR [--show N] [--json] [--test N]\n"
    "\n"
    "Scores a recall model (from 'attn train recall') on its test split, generated again from\n"
    "the seed and size stored in DIR/config.json: the share of sequences whose digit it gets.\n"
    "  --test N    score N sequences of the test split instead of the stored size\n"
    "  --show N    print the first N test sequences with the answer, the prediction and, for\n"
    "              the memory models, the position the address weighs most\n"
    "  --json      one JSON object on stdout: model, pairs, hidden, embed, params, test,\n"
    "              accuracy (--show's lines then go to stderr)\n";

typedef struct {
    cli_trainer_opts t; /* the trainer's options */
    const char *model;
    int pairs, hidden, embed, n_train, n_valid, n_test, seed;
} recall_opts;

static void report_line(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "%s\n", line);
}

static int option(cli_args *p, recall_opts *o) {
    if (cli_trainer_option(p, &o->t) || cli_str(p, "--model", &o->model)) return 1;
    return cli_int(p, "--pairs", 1, ATTN_RECALL_MAX_PAIRS, &o->pairs) || cli_int(p, "--hidden", 1, 65536, &o->hidden) ||
           cli_int(p, "--embed", 1, 65536, &o->embed) || cli_int(p, "--train", 1, 100000000, &o->n_train) ||
           cli_int(p, "--valid", 0, 100000000, &o->n_valid) || cli_int(p, "--test", 0, 100000000, &o->n_test) ||
           cli_int(p, "--seed", 0, INT32_MAX, &o->seed);
}

/* The three splits of the config's seed and sizes (d[0..2]; test only when `test_only`). */
static int make_data(const char *cmd, const attn_recall_config *c, int test_only, attn_recall_data d[3]) {
    const int n[3] = {c->n_train, c->n_valid, c->n_test};
    for (int s = test_only ? 2 : 0; s < 3; s++) {
        int st = attn_recall_generate(c->pairs, n[s], attn_recall_split_seed(c->data_seed, s), &d[s]);
        if (st) return cli_fail_lib(cmd, st, NULL);
    }
    return CLI_OK;
}

/* A new model, or the one checkpointed in o->t.out (resume: its config wins, ck filled). */
static int get_model(const char *cmd, const recall_opts *o, attn_recall **m, attn_checkpoint *ck) {
    attn_recall_config c = attn_recall_config_default();
    int st;
    if (o->t.resume) {
        if ((st = attn_checkpoint_open(o->t.out, ck))) return cli_fail_lib(cmd, st, o->t.out);
        if ((st = attn_recall_config_from_json(ck->model_json, &c)) || (st = attn_recall_new(&c, 0, m)) ||
            (st = attn_checkpoint_load_params(ck, attn_recall_params(*m))))
            return cli_fail_lib(cmd, st, o->t.out);
        if (!o->t.quiet)
            fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o->t.out, (long long)ck->state.epoch + 1,
                    (long long)ck->state.batch, (long long)ck->state.step);
        return CLI_OK;
    }
    c.kind = (attn_recall_kind)attn_recall_kind_parse(o->model);
    c.pairs = o->pairs, c.hidden = o->hidden, c.embed = o->embed, c.data_seed = (uint64_t)o->seed;
    c.n_train = o->n_train, c.n_valid = o->n_valid, c.n_test = o->n_test;
    if ((st = attn_recall_new(&c, attn_seed_mix((uint64_t)o->seed, 3), m))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

int cli_train_recall(int argc, char **argv) {
    const char *cmd = "train recall";
    recall_opts o;
    memset(&o, 0, sizeof o);
    o.pairs = 16, o.hidden = 32, o.embed = 32, o.n_train = 20000, o.n_valid = 2000, o.n_test = 5000, o.seed = 1;
    o.t.epochs = 20, o.t.batch = 64, o.t.log_every = 200, o.t.optim = ATTN_OPTIM_ADAM, o.t.lr = 3e-3f, o.t.clip = 1.0f, o.t.min_lr = -1.0f;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(TRAIN_HELP);
        } else if (!option(&p, &o)) {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    int rc = cli_trainer_check(cmd, &o.t), st;
    if (rc) return rc;
    if (!o.t.resume && !o.model) return cli_usage(cmd, "--model KIND is required (gru, lstm, gru-attn, gru-hard, gru-argmax)");
    if (o.model && attn_recall_kind_parse(o.model) < 0)
        return cli_usage(cmd, "unknown --model '%s' (gru, lstm, gru-attn, gru-hard, gru-argmax)", o.model);
    attn_recall *m = NULL;
    attn_checkpoint ck = {0};
    attn_recall_data d[3] = {{0}, {0}, {0}};
    attn_train_model tm = {0};
    if ((rc = get_model(cmd, &o, &m, &ck))) goto done;
    const attn_recall_config *c = attn_recall_get_config(m);
    if ((rc = make_data(cmd, c, 0, d))) goto done;
    if (!o.t.resume && s2s_mkdirs(o.t.out)) {
        rc = cli_fail(cmd, "%s: cannot create the directory: %s", o.t.out, strerror(errno));
        goto done;
    }
    if (!o.t.quiet) {
        char ex[ATTN_RECALL_MAX_PAIRS * 2 + 4];
        attn_recall_format(&d[0], 0, ex);
        fprintf(stderr, "model: %s, %d pairs (keys from %d letters), hidden %d, embed %d, %lld parameters\n",
                attn_recall_kind_name(c->kind), c->pairs, attn_recall_alphabet(c->pairs), c->hidden, c->embed,
                (long long)attn_recall_num_params(m));
        fprintf(stderr, "data (seed %llu): %d train, %d valid, %d test sequences, e.g. %s -> %d\n", (unsigned long long)c->data_seed,
                d[0].n, d[1].n, d[2].n, ex, (int)d[0].answer[0]);
    }
    char command[128];
    snprintf(command, sizeof command, "attn train recall --model %s --pairs %d --hidden %d", attn_recall_kind_name(c->kind), c->pairs,
             c->hidden);
    rc = CLI_EDATA;
    if ((st = attn_recall_train_model(m, &d[0], &d[1], command, &tm))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    attn_trainer_config tc = cli_trainer_config(&o.t, attn_seed_mix((uint64_t)c->data_seed, 4), &ck, report_line);
    attn_train_result r;
    double va = 0, te = 0;
    if ((st = attn_trainer_run(&tm, &tc, &r)) || (st = attn_recall_accuracy(m, &d[1], &va)) || (st = attn_recall_accuracy(m, &d[2], &te))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    printf("%s: %lld updates in %.1f s (training %.1f s, %.0f sequences/s), valid accuracy %.2f%%, test accuracy %.2f%% (%d "
           "sequences), checkpoint %s%s\n",
           r.stopped == 1 ? "stopped" : r.stopped == 2 ? "early-stopped" : "trained", (long long)r.steps_run, r.wall_s, r.train_s,
           r.examples_per_s, 100 * va, 100 * te, d[2].n, o.t.out, r.stopped == 1 ? " (resume with --resume)" : "");
    rc = CLI_OK;
done:
    attn_recall_train_model_free(&tm);
    for (int s = 0; s < 3; s++) attn_recall_data_free(&d[s]);
    attn_checkpoint_free(&ck);
    attn_recall_free(m);
    return rc;
}

int cli_is_recall(const char *dir) { return cli_model_kind_is(dir, "recall"); }

int cli_eval_recall(int argc, char **argv) {
    const char *cmd = "eval", *model = NULL;
    int show = 0, json = 0, n_test = -1;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(EVAL_HELP);
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_int(&p, "--show", 0, 1000, &show) ||
                   cli_int(&p, "--test", 0, 100000000, &n_test)) {
        } else if (cli_flag(&p, "--json")) {
            json = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model) return cli_usage(cmd, "--model DIR is required");
    attn_recall *m = NULL;
    attn_recall_data d[3] = {{0}, {0}, {0}};
    int st, rc;
    if ((st = attn_recall_load(model, &m))) return cli_fail_lib(cmd, st, model);
    attn_recall_config c = *attn_recall_get_config(m);
    if (n_test >= 0) c.n_test = n_test;
    double acc = 0;
    if ((rc = make_data(cmd, &c, 1, d))) goto done;
    if ((st = attn_recall_accuracy(m, &d[2], &acc))) {
        rc = cli_fail_lib(cmd, st, model);
        goto done;
    }
    if (json)
        printf("{\"model\": \"%s\", \"pairs\": %d, \"hidden\": %d, \"embed\": %d, \"params\": %lld, \"test\": %d, \"accuracy\": %.6f}\n",
               attn_recall_kind_name(c.kind), c.pairs, c.hidden, c.embed, (long long)attn_recall_num_params(m), d[2].n, acc);
    else
        printf("%s, %d pairs, hidden %d: test accuracy %.2f%% on %d sequences (seed %llu; chance 10%%)\n", attn_recall_kind_name(c.kind),
               c.pairs, c.hidden, 100 * acc, d[2].n, (unsigned long long)c.data_seed);
    int T = d[2].T, ns = show < d[2].n ? show : d[2].n;
    if (ns > 0) {
        int32_t pred[1000];
        float *w = malloc((size_t)ns * T * sizeof(float));
        char text[ATTN_RECALL_MAX_PAIRS * 2 + 4];
        if (!w || (st = attn_recall_predict(m, ns, d[2].ids, pred, w))) {
            free(w);
            rc = cli_fail_lib(cmd, w ? st : ATTN_ENOMEM, NULL);
            goto done;
        }
        FILE *f = json ? stderr : stdout; /* stdout holds the JSON object alone */
        for (int i = 0; i < ns; i++) {
            attn_recall_format(&d[2], i, text);
            int top = 0;
            for (int t = 1; t < T; t++) top = w[(size_t)i * T + t] > w[(size_t)i * T + top] ? t : top;
            fprintf(f, "%s -> %d (answer %d)", text, (int)pred[i], (int)d[2].answer[i]);
            if (c.kind >= ATTN_RECALL_GRU_ATTN)
                fprintf(f, ", address weighs most step %d '%c' (%.2f)", top + 1, text[top], (double)w[(size_t)i * T + top]);
            fprintf(f, "\n");
        }
        free(w);
    }
    rc = CLI_OK;
done:
    for (int s = 0; s < 3; s++) attn_recall_data_free(&d[s]);
    attn_recall_free(m);
    return rc;
}
