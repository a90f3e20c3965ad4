/* attn train vision, the vision branch of attn eval, attn classify-image and attn
 * vision-examples: the Recurrent Attention Model (Mnih et al. 2014), its baselines and soft
 * spatial attention on Fashion-MNIST's task variants (attn/vision.h, attn/vision_data.h).
 * The task images are rendered from the seed stored in the model directory, so a model says
 * everything needed to rebuild its test set; training runs through the library's trainer
 * (attn/vision_train.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/vision_train.h"
#include "attn/viz_image.h"
#include "cli.h"
#include "cli_s2s.h"
#include "cli_vision.h"

static const char TRAIN_HELP[] =
    "usage: attn train vision --model ram|cnn|fc|soft --task TASK --out DIR [options]\n"
    "\n"
    "Image classification on Fashion-MNIST (Debian: dataset-fashion-mnist) with the models of\n"
    "\"Recurrent Models of Visual Attention\" (Mnih, Heess, Graves, Kavukcuoglu 2014):\n"
    "  ram   the Recurrent Attention Model: an RNN that sees the image only through a few small\n"
    "        glimpses (k patches of g x g around a location, each twice as large as the last,\n"
    "        downscaled to g x g), chooses where to look next (a Gaussian policy trained by\n"
    "        REINFORCE with a learned baseline, reward 1 for the right class) and classifies\n"
    "        after the last glimpse: its cost does not grow with the image\n"
    "  fc    2 hidden layers of 256 ReLU units over every pixel\n"
    "  cnn   2 conv layers (5x5, 16 and 32 filters, ReLU, 2x2 max pooling) + linear\n"
    "  soft  the cnn's feature grid read by soft attention with a learned query (Xu et al. 2015):\n"
    "        differentiable, trained by backpropagation alone\n"
    "\n"
    "tasks (--task), made from a seed as the paper makes them from MNIST:\n"
    "  centred28     the 28x28 images\n"
    "  translated60  the image at a random place on a 60x60 canvas\n"
    "  cluttered60   translated, plus 4 distractor 8x8 patches from other images\n"
    "  cluttered100  100x100 with 8 distractors\n"
    "\n"
    "model options:\n"
    "  --glimpses N   ram: glimpses (default 6)\n"
    "  --patch G      ram: patch side g (default 8 for centred28, else 12: the paper's)\n"
    "  --scales K     ram: scales per glimpse (default 1 for centred28, 3 for 60x60, 4 for\n"
    "                 100x100)\n"
    "  --std F        ram: the location policy's standard deviation, in [-1, 1] units (0.1)\n"
    "  --loc-hidden N ram: a hidden ReLU layer of N units in the location net (default 0:\n"
    "                 none, the paper's one linear layer)\n"
    "  --core rnn|lstm  ram: the core network (default: rnn, lstm for the cluttered tasks)\n"
    "  --hidden H     fc: units per layer; ram: core size (default 256)\n"
    "  --c1 N, --c2 N  cnn, soft: filters of the conv layers (default 16, 32)\n"
    "\n"
    "data and training:\n"
    "  --data DIR     the Fashion-MNIST folder (default $ATTN_FASHION_DIR or\n"
    "                 /usr/share/datasets/fashion-mnist)\n"
    "  --train N      use the first N of the 55,000 training images (default all)\n"
    "  --valid N      validate on the first N of the 5,000 validation images (default all)\n"
    "  --test N       the final line's test accuracy on the first N test images (default all)\n"
    "  --seed S       task images, initialisation and order (default 1)\n"
    "  --epochs N (default 10), --batch N (default 64), --optim adam|adamw|sgd (adam),\n"
    "  --lr F (default 1e-3), --clip F (default 5), --patience N (early stopping on the\n"
    "  validation accuracy; 0 off), --max-steps N, --time-budget S, --save-every N, --resume,\n"
    "  --log FILE (CSV per epoch), --log-every N (default 100), --threads N, --quiet\n"
    CLI_TRAINER_SCHED_HELP
    "\n"
    "output: DIR is a checkpoint (config.json, model.safetensors, optim.safetensors).\n"
    "\n"
    "example:\n"
    "  attn train vision --model ram --task cluttered60 --glimpses 6 --out runs/ram-c60\n"
    "  attn train vision --model ram --task centred28 --epochs 30 --schedule cosine --out runs/ram-c28\n"
    "  attn eval --model runs/ram-c60\n"
    "  attn classify-image --model runs/ram-c60 --index 0 --show-glimpses ram.png\n";

static const char EVAL_HELP[] =
    "usage: attn eval --model DIR [--task TASK] [--test N] [--json] [--data DIR]\n"
    "\n"
    "Scores a vision model (from 'attn train vision') on Fashion-MNIST's test images rendered\n"
    "for its task (or --task, one of the same image size) with the seed stored in DIR: the\n"
    "error %, the accuracy per class and the confusion matrix (rows: the true class).\n"
    "  --test N   the first N test images (default all 10,000)\n"
    "  --json     one JSON object on the last line: model, task, params, madds, test,\n"
    "             accuracy (a fraction), error (a percentage)\n";

static const char CLASSIFY_HELP[] =
    "usage: attn classify-image --model DIR (--image IMG.png | --index I) [--task TASK]\n"
    "                           [--show-glimpses OUT.png|OUT.svg] [--data DIR]\n"
    "\n"
    "Classifies one image with a vision model: a PNG of the model's image size (any colour\n"
    "type; read as luminance, ink bright on black), or test image I of its task. Prints the\n"
    "class and its probability, and for ram the glimpse locations. --show-glimpses draws the\n"
    "image with ram's glimpse path (a numbered box per glimpse at each scale) or the soft\n"
    "model's attention heat map.\n"
    "\n"
    "example:\n"
    "  attn classify-image --model runs/ram-c60 --index 7 --show-glimpses glimpses.png\n";

static const char EXAMPLES_HELP[] =
    "usage: attn vision-examples --task TASK --out OUT.png [--n N] [--seed S] [--data DIR]\n"
    "\n"
    "Writes the first N (default 8) test images of a task variant, rendered from --seed\n"
    "(default 1, the seed 'attn train vision' uses by default), as one PNG grid.\n";

typedef struct {
    cli_trainer_opts t; /* the trainer's options */
    const char *model, *task, *data, *core;
    int hidden, c1, c2, glimpses, patch, scales, n_train, n_valid, n_test, seed, loc_hidden;
    float std;
} vision_opts;

static void report_line(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "%s\n", line);
}

static int option(cli_args *p, vision_opts *o) {
    if (cli_trainer_option(p, &o->t)) return 1;
    if (cli_str(p, "--model", &o->model) || cli_str(p, "--task", &o->task) || cli_str(p, "--data", &o->data) ||
        cli_str(p, "--core", &o->core))
        return 1;
    if (cli_int(p, "--hidden", 1, 65536, &o->hidden) || cli_int(p, "--c1", 1, 4096, &o->c1) || cli_int(p, "--c2", 1, 4096, &o->c2) ||
        cli_int(p, "--glimpses", 1, ATTN_VISION_MAX_GLIMPSES, &o->glimpses) || cli_int(p, "--patch", 1, 64, &o->patch) ||
        cli_int(p, "--scales", 1, 4, &o->scales) || cli_int(p, "--train", 1, 55000, &o->n_train) ||
        cli_int(p, "--valid", 0, 5000, &o->n_valid) || cli_int(p, "--test", 0, 10000, &o->n_test) ||
        cli_int(p, "--seed", 0, INT32_MAX, &o->seed) || cli_int(p, "--loc-hidden", 0, 65536, &o->loc_hidden))
        return 1;
    return cli_float(p, "--std", &o->std);
}

/* Fashion-MNIST's splits (any may be NULL), with a clear message when they are missing. */
static int load_images(const char *cmd, const char *dir, attn_images *train, attn_images *valid, attn_images *test) {
    int st = attn_fashion_load(dir, train, valid, test);
    return st ? cli_fail_lib(cmd, st, NULL) : CLI_OK;
}

/* A new model from the options, or the one checkpointed in o->t.out (resume: its config wins). */
static int get_model(const char *cmd, const vision_opts *o, attn_vision **m, attn_checkpoint *ck) {
    int st;
    if (o->t.resume) {
        attn_vision_config c;
        if ((st = attn_checkpoint_open(o->t.out, ck))) return cli_fail_lib(cmd, st, o->t.out);
        if ((st = attn_vision_config_from_json(ck->model_json, &c)) || (st = attn_vision_new(&c, 0, m)) ||
            (st = attn_checkpoint_load_params(ck, attn_vision_params(*m))))
            return cli_fail_lib(cmd, st, o->t.out);
        if (!o->t.quiet)
            fprintf(stderr, "resuming %s at epoch %lld, batch %lld (step %lld)\n", o->t.out, (long long)ck->state.epoch + 1,
                    (long long)ck->state.batch, (long long)ck->state.step);
        return CLI_OK;
    }
    attn_vision_config c = attn_vision_config_default(attn_vision_kind_parse(o->model), attn_vision_task_parse(o->task));
    if (o->hidden) c.hidden = o->hidden;
    if (o->c1) c.c1 = o->c1;
    if (o->c2) c.c2 = o->c2;
    if (o->glimpses) c.glimpses = o->glimpses;
    if (o->patch) c.patch = o->patch;
    if (o->scales) c.scales = o->scales;
    if (o->std > 0) c.std = o->std;
    c.loc_hidden = o->loc_hidden;
    if (o->core) c.lstm = !strcmp(o->core, "lstm");
    c.data_seed = (uint64_t)o->seed;
    if ((st = attn_vision_new(&c, attn_seed_mix((uint64_t)o->seed, 3), m))) return cli_fail_lib(cmd, st, NULL);
    return CLI_OK;
}

static void describe(const attn_vision *m, char *buf, size_t cap) {
    const attn_vision_config *c = attn_vision_get_config(m);
    int n = snprintf(buf, cap, "%s on %s", attn_vision_kind_name(c->kind), attn_vision_task_name(c->task));
    if (c->kind == ATTN_VISION_RAM)
        n += snprintf(buf + n, cap - (size_t)n, ", %d glimpses of %d scale(s) of %dx%d, %s core of %d, std %g", c->glimpses, c->scales,
                      c->patch, c->patch, c->lstm ? "LSTM" : "ReLU RNN", c->hidden, (double)c->std);
    if (c->kind == ATTN_VISION_RAM && c->loc_hidden) n += snprintf(buf + n, cap - (size_t)n, ", locator hidden layer of %d", c->loc_hidden);
    snprintf(buf + n, cap - (size_t)n, ", %lld parameters, %lld multiply-adds per image", (long long)attn_vision_num_params(m),
             (long long)attn_vision_madds(c));
}

/* The options of a new run, checked (resume takes the checkpoint's model). */
static int check_opts(const char *cmd, vision_opts *o) {
    int rc = cli_trainer_check(cmd, &o->t);
    if (rc) return rc;
    if (!o->t.resume && !o->model) return cli_usage(cmd, "--model KIND is required (ram, cnn, fc, soft)");
    if (!o->t.resume && !o->task) return cli_usage(cmd, "--task TASK is required (centred28, translated60, cluttered60, cluttered100)");
    if (o->model && attn_vision_kind_parse(o->model) < 0) return cli_usage(cmd, "unknown --model '%s' (ram, cnn, fc, soft)", o->model);
    if (o->task && attn_vision_task_parse(o->task) < 0)
        return cli_usage(cmd, "unknown --task '%s' (centred28, translated60, cluttered60, cluttered100)", o->task);
    if (o->core && strcmp(o->core, "rnn") && strcmp(o->core, "lstm")) return cli_usage(cmd, "unknown --core '%s' (rnn, lstm)", o->core);
    if (o->std < 0) return cli_usage(cmd, "--std must be >= 0");
    return CLI_OK;
}

int cli_train_vision(int argc, char **argv) {
    const char *cmd = "train vision";
    vision_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 1, o.t.epochs = 10, o.t.batch = 64, o.t.log_every = 100, o.t.optim = ATTN_OPTIM_ADAM, o.t.lr = 1e-3f, o.t.clip = 5.0f, o.t.min_lr = -1.0f;
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
    int rc = check_opts(cmd, &o), st;
    if (rc) return rc;
    attn_vision *m = NULL;
    attn_checkpoint ck = {0};
    attn_images d[3] = {{0}, {0}, {0}};
    attn_train_model tm = {0};
    if ((rc = load_images(cmd, o.data, &d[0], &d[1], &d[2]))) goto done;
    if ((rc = get_model(cmd, &o, &m, &ck))) goto done;
    if (o.n_train && o.n_train < d[0].n) d[0].n = o.n_train; /* the first N (the buffers stay as they are) */
    if (o.n_test && o.n_test < d[2].n) d[2].n = o.n_test;
    if (!o.t.resume && s2s_mkdirs(o.t.out)) {
        rc = cli_fail(cmd, "%s: cannot create the directory: %s", o.t.out, strerror(errno));
        goto done;
    }
    const attn_vision_config *c = attn_vision_get_config(m);
    char line[512];
    describe(m, line, sizeof line);
    if (!o.t.quiet)
        fprintf(stderr, "model: %s\ndata: Fashion-MNIST, %d train, %d valid, %d test images (task seed %llu)\n", line, d[0].n,
                o.n_valid ? o.n_valid : d[1].n, d[2].n, (unsigned long long)c->data_seed);
    char command[256];
    snprintf(command, sizeof command, "attn train vision --model %s --task %s", attn_vision_kind_name(c->kind), attn_vision_task_name(c->task));
    rc = CLI_EDATA;
    if ((st = attn_vision_train_model(m, &d[0], &d[1], o.n_valid, command, &tm))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    attn_trainer_config tc = cli_trainer_config(&o.t, attn_seed_mix(c->data_seed, 4), &ck, report_line);
    attn_train_result r;
    double te = 0;
    if ((st = attn_trainer_run(&tm, &tc, &r)) ||
        (st = attn_vision_accuracy(m, &d[2], attn_vision_split_seed(c->data_seed, 2), 0, &te, NULL))) {
        cli_fail_lib(cmd, st, NULL);
        goto done;
    }
    printf("%s: %lld updates in %.1f s (training %.1f s, %.0f images/s), test error %.2f%% (%d images), checkpoint %s%s\n",
           r.stopped == 1 ? "stopped" : r.stopped == 2 ? "early-stopped" : "trained", (long long)r.steps_run, r.wall_s, r.train_s,
           r.examples_per_s, 100 * (1 - te), d[2].n, o.t.out, r.stopped == 1 ? " (resume with --resume)" : "");
    rc = CLI_OK;
done:
    attn_vision_train_model_free(&tm);
    for (int s = 0; s < 3; s++) attn_images_free(&d[s]);
    attn_checkpoint_free(&ck);
    attn_vision_free(m);
    return rc;
}

int cli_is_vision(const char *dir) { return cli_model_kind_is(dir, "vision"); }

/* The model in dir, reading the images of `task` (NULL: its own), which must have the size of
 * its own; *trained gets the task it was trained on. */
static int load_model(const char *cmd, const char *dir, const char *task, attn_vision **m, attn_vision_task *trained) {
    int st = attn_vision_load(dir, m), k = task ? attn_vision_task_parse(task) : -1;
    if (st) return cli_fail_lib(cmd, st, dir);
    *trained = attn_vision_get_config(*m)->task;
    if (task && k < 0) return cli_usage(cmd, "unknown --task '%s' (centred28, translated60, cluttered60, cluttered100)", task);
    if (task && (st = attn_vision_set_task(*m, (attn_vision_task)k))) return cli_fail_lib(cmd, st, dir);
    return CLI_OK;
}

int cli_eval_vision(int argc, char **argv) {
    const char *cmd = "eval", *model = NULL, *task = NULL, *data = NULL;
    int json = 0, n_test = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(EVAL_HELP);
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_str(&p, "--task", &task) ||
                   cli_str(&p, "--data", &data) || cli_int(&p, "--test", 0, 10000, &n_test)) {
        } else if (cli_flag(&p, "--json")) {
            json = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model) return cli_usage(cmd, "--model DIR is required");
    attn_vision *m = NULL;
    attn_images test = {0};
    attn_vision_task t;
    int rc = load_model(cmd, model, task, &m, &t), st;
    if (!rc) rc = load_images(cmd, data, NULL, NULL, &test);
    if (rc) goto done;
    attn_vision_config c = *attn_vision_get_config(m);
    double acc = 0;
    int64_t cm[ATTN_VISION_CLASSES * ATTN_VISION_CLASSES];
    if ((st = attn_vision_accuracy(m, &test, attn_vision_split_seed(c.data_seed, 2), n_test, &acc, cm))) {
        rc = cli_fail_lib(cmd, st, model);
        goto done;
    }
    int n = n_test > 0 && n_test < test.n ? n_test : test.n;
    printf("%s on %s (trained on %s): test error %.2f%% (accuracy %.2f%%) on %d images, %lld parameters, %lld multiply-adds per image\n",
           attn_vision_kind_name(c.kind), attn_vision_task_name(c.task), attn_vision_task_name(t), 100 * (1 - acc), 100 * acc, n,
           (long long)attn_vision_num_params(m), (long long)attn_vision_madds(&c));
    printf("\nconfusion matrix (rows: the true class, columns: the predicted one)\n%-12s", "");
    for (int j = 0; j < ATTN_VISION_CLASSES; j++) printf(" %5d", j);
    printf("  accuracy\n");
    for (int i = 0; i < ATTN_VISION_CLASSES; i++) {
        int64_t row = 0;
        for (int j = 0; j < ATTN_VISION_CLASSES; j++) row += cm[i * ATTN_VISION_CLASSES + j];
        printf("%d %-10.10s", i, attn_fashion_class_name(i));
        for (int j = 0; j < ATTN_VISION_CLASSES; j++) printf(" %5lld", (long long)cm[i * ATTN_VISION_CLASSES + j]);
        printf("  %6.2f%%\n", row ? 100.0 * cm[i * ATTN_VISION_CLASSES + i] / row : 0.0);
    }
    if (json)
        printf("{\"model\": \"%s\", \"task\": \"%s\", \"trained_on\": \"%s\", \"params\": %lld, \"madds\": %lld, \"test\": %d, "
               "\"accuracy\": %.6f, \"error\": %.4f}\n",
               attn_vision_kind_name(c.kind), attn_vision_task_name(c.task), attn_vision_task_name(t), (long long)attn_vision_num_params(m),
               (long long)attn_vision_madds(&c), n, acc, 100 * (1 - acc));
    rc = CLI_OK;
done:
    attn_images_free(&test);
    attn_vision_free(m);
    return rc;
}

int cli_classify_image(int argc, char **argv) {
    const char *cmd = "classify-image", *model = NULL, *task = NULL, *data = NULL, *image = NULL, *show = NULL;
    int index = -1;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(CLASSIFY_HELP);
        } else if (cli_str(&p, "--model", &model) || cli_str(&p, "-m", &model) || cli_str(&p, "--task", &task) ||
                   cli_str(&p, "--data", &data) || cli_str(&p, "--image", &image) || cli_str(&p, "--show-glimpses", &show) ||
                   cli_int(&p, "--index", 0, 9999, &index)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!model) return cli_usage(cmd, "--model DIR is required");
    if (!image == (index < 0)) return cli_usage(cmd, "give one of --image IMG.png and --index I");
    attn_vision *m = NULL;
    attn_images test = {0};
    attn_vision_task t;
    float *px = NULL, *img = NULL, *locs = NULL, *heat = NULL;
    int rc = load_model(cmd, model, task, &m, &t), st, label = -1;
    if (rc) goto done;
    const attn_vision_config *c = attn_vision_get_config(m);
    (void)t;
    int S = attn_vision_task_size(c->task), G = (S / 2) / 2;
    if (image) {
        int h = 0, w = 0;
        if ((st = attn_png_read_gray(image, &px, &h, &w))) {
            rc = cli_fail_lib(cmd, st, image);
            goto done;
        }
        if (h != S || w != S) {
            rc = cli_fail(cmd, "%s is %dx%d; the model reads %dx%d images (%s)", image, w, h, S, S, attn_vision_task_name(c->task));
            goto done;
        }
        img = px;
    } else {
        if ((rc = load_images(cmd, data, NULL, NULL, &test))) goto done;
        if (!(img = px = malloc((size_t)S * S * sizeof(float)))) {
            rc = cli_fail(cmd, "out of memory");
            goto done;
        }
        if ((st = attn_vision_render(&test, c->task, attn_vision_split_seed(c->data_seed, 2), index, img, NULL))) {
            rc = cli_fail_lib(cmd, st, NULL);
            goto done;
        }
        label = test.labels[index];
    }
    locs = calloc((size_t)c->glimpses * 2, sizeof(float)), heat = calloc((size_t)G * G, sizeof(float));
    float probs[ATTN_VISION_CLASSES];
    int32_t pred;
    attn_vision_trace tr = {c->kind == ATTN_VISION_RAM ? locs : NULL, c->kind == ATTN_VISION_SOFT ? heat : NULL};
    if (!locs || !heat) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    if ((st = attn_vision_predict(m, 1, img, &pred, probs, &tr))) {
        rc = cli_fail_lib(cmd, st, model);
        goto done;
    }
    printf("%s: %s (class %d, p = %.3f)", image ? image : "test image", attn_fashion_class_name(pred), (int)pred, (double)probs[pred]);
    if (label >= 0) printf("; true class %s (%d)%s", attn_fashion_class_name(label), label, label == pred ? "" : ": WRONG");
    printf("\n");
    if (c->kind == ATTN_VISION_RAM)
        for (int i = 0; i < c->glimpses; i++)
            printf("glimpse %d at (row %+.2f, col %+.2f) = pixel (%.1f, %.1f)\n", i + 1, (double)locs[2 * i], (double)locs[2 * i + 1],
                   (locs[2 * i] + 1) * 0.5 * S, (locs[2 * i + 1] + 1) * 0.5 * S);
    if (show) {
        char caption[160];
        snprintf(caption, sizeof caption, "%s: %s (p %.2f)%s%s", attn_vision_kind_name(c->kind), attn_fashion_class_name(pred),
                 (double)probs[pred], label >= 0 ? ", true " : "", label >= 0 ? attn_fashion_class_name(label) : "");
        attn_glimpse_picture pic = {img, S, tr.locs, c->glimpses, c->patch, c->scales, tr.weights, G, caption};
        if ((st = attn_glimpse_picture_write(&pic, show))) {
            rc = cli_fail_lib(cmd, st, show);
            goto done;
        }
        if (c->kind != ATTN_VISION_RAM && c->kind != ATTN_VISION_SOFT)
            fprintf(stderr, "attn %s: a %s model does not attend: the picture shows the image alone\n", cmd, attn_vision_kind_name(c->kind));
    }
    rc = CLI_OK;
done:
    free(px), free(locs), free(heat);
    attn_images_free(&test);
    attn_vision_free(m);
    return rc;
}

int cli_vision_examples(int argc, char **argv) {
    const char *cmd = "vision-examples", *task = NULL, *out = NULL, *data = NULL;
    int n = 8, seed = 1;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(EXAMPLES_HELP);
        } else if (cli_str(&p, "--task", &task) || cli_str(&p, "--out", &out) || cli_str(&p, "-o", &out) || cli_str(&p, "--data", &data) ||
                   cli_int(&p, "--n", 1, 64, &n) || cli_int(&p, "--seed", 0, INT32_MAX, &seed)) {
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    if (p.npos) return cli_usage(cmd, "unexpected argument '%s'", p.pos[0]);
    if (!task || !out) return cli_usage(cmd, "--task TASK and --out OUT.png are required");
    int t = attn_vision_task_parse(task);
    if (t < 0) return cli_usage(cmd, "unknown --task '%s' (centred28, translated60, cluttered60, cluttered100)", task);
    attn_images test = {0};
    int rc = load_images(cmd, data, NULL, NULL, &test), S = attn_vision_task_size(t), st;
    float *buf = rc ? NULL : malloc((size_t)n * S * S * sizeof(float));
    if (!rc && !buf) rc = cli_fail(cmd, "out of memory");
    for (int i = 0; !rc && i < n; i++)
        if ((st = attn_vision_render(&test, (attn_vision_task)t, attn_vision_split_seed((uint64_t)seed, 2), i, buf + (size_t)i * S * S, NULL)))
            rc = cli_fail_lib(cmd, st, NULL);
    if (!rc && (st = attn_images_grid_png(buf, n, S, n < 8 ? n : 8, out))) rc = cli_fail_lib(cmd, st, out);
    if (!rc) printf("%s: %d test images of %s (seed %d)\n", out, n, task, seed);
    free(buf);
    attn_images_free(&test);
    return rc;
}
