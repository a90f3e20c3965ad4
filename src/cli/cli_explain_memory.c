/* attn explain --memory: attention read as soft addressing, the seed's sixth part. A tiny store
 * of key -> value pairs (fruits: the key is what you search by, the value what you get back)
 * is looked up by a query twice: hard (the exact address, or the best-matching key: argmax)
 * and soft (the softmax of the similarities, then the weighted sum of every value). The
 * walk-through turns the scale (an inverse temperature) up until soft becomes hard, asks with
 * a query that matches no key, and shows why only the soft lookup has a gradient with respect
 * to the query and the keys. `--json` prints the same numbers for a program (and for the test
 * that checks them against PyTorch, tests/cli_explain_memory.sh).
 *
 * The soft lookup, its weights and its gradients come from the library (attn_scores,
 * attn_forward, attn_backward on B = H = Nq = 1, Nk = 4, dk = 4, dv = 3); this file chooses the
 * store, computes the hard lookup (which is not attention) and prints. Content-based addressing
 * with a cosine and a "key strength" beta is the Neural Turing Machine's (Graves et al. 2014).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define NI 4 /* items in the store */
#define DK 4 /* key features */
#define DV 3 /* value features */
#define NSHARP 8 /* scales in the sharpening table */

static const char *const KEY_FEATURES[DK] = {"sweet", "sour", "red", "yellow"};
static const char *const VALUE_FEATURES[DV] = {"kcal", "vitamin C mg", "sugar g"};
static const char *const VALUE_SHORT[DV] = {"kcal", "vit C", "sugar"};

/* Keys: two readable features each; values: per 100 g, rounded from USDA FoodData Central. */
static const struct {
    const char *name, *looks_for;
    float key[DK], value[DV];
} ITEMS[NI] = {
    {"strawberry", "sweet and red", {1, 0, 1, 0}, {32, 59, 4.9f}},
    {"banana", "sweet and yellow", {1, 0, 0, 1}, {89, 9, 12}},
    {"lemon", "sour and yellow", {0, 1, 0, 1}, {29, 53, 2.5f}},
    {"cranberry", "sour and red", {0, 1, 1, 0}, {46, 14, 4}},
};

/* The query of the "matches no key" section when the user's own query matches one. */
static const float NO_MATCH[DK] = {1, 1, 0, 0};
static const float SHARP_SCALES[NSHARP] = {0.5f, 1, 2, 4, 8, 16, 32, 64};
static const float NUDGE = 0.01f; /* the finite-difference step */

static const char HELP[] =
    "usage: attn explain --memory [--query NAME | --query a,b,c,d] [--score KIND] [--scale S] [--json]\n"
    "\n"
    "Attention read as a memory. A store holds items as (key, value) pairs: the key is the\n"
    "item's address (what you search by), the value its content (what you get back). A\n"
    "dictionary looks up hard: the one value whose key equals the query, or nothing; argmax\n"
    "looks up the value of the best-matching key. Attention looks up soft: it scores the query\n"
    "against every key, turns the scores into weights (softmax) and returns the weighted sum of\n"
    "all the values. The walk-through, on a store of 4 fruits, shows both lookups side by side,\n"
    "turns the scale up until soft becomes hard, asks with a query that matches no key, and\n"
    "shows why only the soft lookup has a gradient with respect to the query and the keys\n"
    "(which is how a model learns them). Every number of the soft lookup, gradients included,\n"
    "is computed by the library itself.\n"
    "\n"
    "  --query NAME     search by an item's key: strawberry (default), banana, lemon, cranberry\n"
    "  --query a,b,c,d  or your own query: 4 numbers for the key features sweet, sour, red,\n"
    "                   yellow (1,1,0,0 asks for a sweet and sour fruit: there is none)\n"
    "  --score KIND     the similarity: cosine (default; as the Neural Turing Machine), dot or\n"
    "                   scaled (q . k / sqrt(d))\n"
    "  --scale S        the factor on the similarities, an inverse temperature (S > 0; default\n"
    "                   5 for cosine, 1 for dot, 1/sqrt(4) = 0.5 for scaled): large S sharpens\n"
    "                   the weights towards the argmax, small S flattens them towards the plain\n"
    "                   average of the values\n"
    "  --json           print the numbers (weights, lookups, gradients, the sharpening table)\n"
    "                   as JSON instead of the walk-through\n"
    "  -h, --help       this help\n"
    "\n"
    "examples:\n"
    "  attn explain --memory\n"
    "  attn explain --memory --query 1,1,0,0      (no fruit is sweet and sour)\n"
    "  attn explain --memory --scale 20           (almost a hard lookup)\n"
    "  attn explain --memory --query lemon --json\n";

/* ---- Printing helpers -------------------------------------------------------------------- */

static void bar(double x, int cells) {
    static const char *const part[8] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    long eighths = lround(x * cells * 8);
    if (eighths < 0) eighths = 0;
    for (long i = 0; i < eighths / 8; i++) fputs("█", stdout);
    fputs(part[eighths % 8], stdout);
}

static void heading(const char *title) {
    printf("\n%s\n", title);
    for (const unsigned char *p = (const unsigned char *)title; *p; p++)
        if ((*p & 0xc0) != 0x80) putchar('-'); /* one dash per character */
    putchar('\n');
}

/* Prints s left-aligned in `width` columns (UTF-8: one column per character). */
static void padded(const char *s, int width) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xc0) != 0x80;
    fputs(s, stdout);
    for (; w < width; w++) putchar(' ');
}

/* A number for a table: %*.*f, with -0.000 shown as 0.000. */
static void num(double x, int width, int prec) {
    double unit = pow(10.0, -prec) / 2;
    printf("%*.*f", width, prec, fabs(x) < unit ? 0.0 : x);
}

static void query_str(const float *q, char *buf, size_t n) {
    snprintf(buf, n, "(%g, %g, %g, %g)", (double)q[0], (double)q[1], (double)q[2], (double)q[3]);
}

static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static float dotf(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- The lookups ------------------------------------------------------------------------- */

typedef struct {
    attn_desc d;            /* checked: the effective scale filled in */
    float K[NI * DK], V[NI * DV];
} store;

/* One query's lookups at the store's scale. */
typedef struct {
    float q[DK];
    float S[NI], P[NI], O[DV]; /* scores (scale included), weights, the soft lookup */
    int argmax;                /* the best-matching key (the first of a tie) */
    int exact;                 /* the key equal to the query, or -1 */
    int ntied;                 /* keys whose score equals the best */
    double entropy_bits;       /* of the weights */
} lookup;

static int store_init(store *s, int score, float scale) {
    memset(s, 0, sizeof *s);
    for (int j = 0; j < NI; j++) {
        memcpy(s->K + j * DK, ITEMS[j].key, sizeof ITEMS[j].key);
        memcpy(s->V + j * DV, ITEMS[j].value, sizeof ITEMS[j].value);
    }
    s->d.B = s->d.H = s->d.Nq = 1;
    s->d.Nk = NI;
    s->d.dq = DK;
    s->d.dv = DV;
    s->d.score = (attn_score)score;
    s->d.scale = scale;
    return attn_desc_check(&s->d);
}

/* Soft output alone, at a given scale (the sharpening table, the finite differences). */
static int soft_at(const store *s, float scale, const float *q, float *O, float *P) {
    attn_desc d = s->d;
    d.scale = scale;
    return attn_forward(&d, q, s->K, s->V, O, P, NULL);
}

static int hard_argmax(const float *S) {
    int best = 0;
    for (int j = 1; j < NI; j++)
        if (S[j] > S[best]) best = j;
    return best;
}

static int do_lookup(const store *s, const float *q, lookup *l) {
    memset(l, 0, sizeof *l);
    memcpy(l->q, q, sizeof l->q);
    int st = attn_scores(&s->d, q, s->K, l->S);
    if (!st) st = soft_at(s, s->d.scale, q, l->O, l->P);
    if (st) return st;
    l->argmax = hard_argmax(l->S);
    l->exact = -1;
    for (int j = 0; j < NI && l->exact < 0; j++)
        if (memcmp(q, ITEMS[j].key, sizeof ITEMS[j].key) == 0) l->exact = j;
    for (int j = 0; j < NI; j++) {
        l->ntied += l->S[j] == l->S[l->argmax];
        if (l->P[j] > 0) l->entropy_bits -= (double)l->P[j] * log2((double)l->P[j]);
    }
    return ATTN_OK;
}

/* d soft / d query (DV, DK) and d soft / d keys (DV, NI, DK), one backward per output feature
 * (dO = the unit vector of that feature). */
static int soft_grads(const store *s, const lookup *l, float *dq, float *dk) {
    for (int m = 0; m < DV; m++) {
        float dO[DV] = {0};
        dO[m] = 1;
        int st = attn_backward(&s->d, l->q, s->K, s->V, l->O, NULL, dO, dq + m * DK, dk + m * NI * DK, NULL, NULL);
        if (st) return st;
    }
    return ATTN_OK;
}

/* The largest relative difference between the soft output and the value of key `best`. */
static double off_by(const float *O, int best) {
    double worst = 0;
    for (int m = 0; m < DV; m++) {
        double h = ITEMS[best].value[m], r = fabs((double)O[m] - h) / fabs(h);
        worst = r > worst ? r : worst;
    }
    return worst;
}

/* The sharpening table: weights, soft output and off_by at each of SHARP_SCALES. Returns the
 * index of the first scale from which on the soft lookup is within 1% of the argmax, or -1. */
typedef struct {
    float P[NSHARP][NI], O[NSHARP][DV];
    double off[NSHARP];
    int hard_from;
} sharpening;

static int sharpen(const store *s, const lookup *l, sharpening *t) {
    t->hard_from = -1;
    for (int i = 0; i < NSHARP; i++) {
        int st = soft_at(s, SHARP_SCALES[i], l->q, t->O[i], t->P[i]);
        if (st) return st;
        t->off[i] = off_by(t->O[i], l->argmax);
        if (t->off[i] <= 0.01) {
            if (t->hard_from < 0) t->hard_from = i;
        } else {
            t->hard_from = -1;
        }
    }
    return ATTN_OK;
}

/* ---- --json ------------------------------------------------------------------------------ */

static void json_vec(const float *x, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", %.9g" : "%.9g", (double)x[i]);
    putchar(']');
}

static void json_names(const char *const *names, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", \"%s\"" : "\"%s\"", names[i]);
    putchar(']');
}

static void print_json(const store *s, const lookup *l, const float *dq, const float *dk, const sharpening *t) {
    const char *items[NI];
    for (int j = 0; j < NI; j++) items[j] = ITEMS[j].name;
    printf("{\n  \"score\": \"%s\",\n  \"scale\": %.9g,\n  \"items\": ", attn_score_name(s->d.score),
           (double)s->d.scale);
    json_names(items, NI);
    printf(",\n  \"key_features\": ");
    json_names(KEY_FEATURES, DK);
    printf(",\n  \"value_features\": ");
    json_names(VALUE_FEATURES, DV);
    printf(",\n  \"keys\": [");
    for (int j = 0; j < NI; j++) printf(j ? ", " : ""), json_vec(s->K + j * DK, DK);
    printf("],\n  \"values\": [");
    for (int j = 0; j < NI; j++) printf(j ? ", " : ""), json_vec(s->V + j * DV, DV);
    printf("],\n  \"query\": ");
    json_vec(l->q, DK);
    printf(",\n  \"scores\": ");
    json_vec(l->S, NI);
    printf(",\n  \"weights\": ");
    json_vec(l->P, NI);
    printf(",\n  \"soft\": ");
    json_vec(l->O, DV);
    printf(",\n  \"argmax\": %d,\n  \"exact\": ", l->argmax);
    if (l->exact >= 0) printf("%d", l->exact);
    else printf("null");
    printf(",\n  \"entropy_bits\": %.9g,\n  \"d_soft_d_query\": [", l->entropy_bits);
    for (int m = 0; m < DV; m++) printf(m ? ", " : ""), json_vec(dq + m * DK, DK);
    printf("],\n  \"d_soft_d_keys\": [");
    for (int m = 0; m < DV; m++) {
        printf(m ? ", [" : "[");
        for (int j = 0; j < NI; j++) printf(j ? ", " : ""), json_vec(dk + (m * NI + j) * DK, DK);
        printf("]");
    }
    printf("],\n  \"sharpen\": [");
    for (int i = 0; i < NSHARP; i++) {
        printf("%s\n    {\"scale\": %.9g, \"weights\": ", i ? "," : "", (double)SHARP_SCALES[i]);
        json_vec(t->P[i], NI);
        printf(", \"soft\": ");
        json_vec(t->O[i], DV);
        printf(", \"off_by\": %.9g}", t->off[i]);
    }
    printf("\n  ],\n  \"hard_from_scale\": ");
    if (t->hard_from >= 0) printf("%.9g\n}\n", (double)SHARP_SCALES[t->hard_from]);
    else printf("null\n}\n");
}

/* ---- The walk-through -------------------------------------------------------------------- */

static void values_row(const float *v) {
    printf("%8.1f %12.1f %9.1f", (double)v[0], (double)v[1], (double)v[2]);
}

static void intro(const lookup *l, const char *qname, const char *looks_for) {
    printf("Attention as a memory: soft addressing\n"
           "======================================\n"
           "\n"
           "A memory stores items as (key, value) pairs: the key is the item's address, what you\n"
           "search by; the value is its content, what you get back. A dictionary looks up hard:\n"
           "it returns the one value whose key equals the query, or nothing. Attention looks up\n"
           "soft: it compares the query with every key and returns a mix of all the values,\n"
           "weighted by how well each key matches (content-based addressing, as in the Neural\n"
           "Turing Machine, Graves et al. 2014; a Transformer's every attention layer reads its\n"
           "keys and values this way).\n"
           "\n"
           "The store: %d fruits. Each key has %d readable features (made by hand; a trained model\n"
           "learns its own), each value %d numbers, per 100 g:\n\n",
           NI, DK, DV);
    printf("%-24s", "");
    for (int f = 0; f < DK; f++) printf("%7s", KEY_FEATURES[f]);
    printf("   │");
    for (int m = 0; m < DV; m++) printf(m == 1 ? "%13s" : m ? "%10s" : "%9s", VALUE_FEATURES[m]);
    putchar('\n');
    for (int j = 0; j < NI; j++) {
        printf("  %-22s", ITEMS[j].name);
        for (int f = 0; f < DK; f++) printf("%7.2f", (double)ITEMS[j].key[f]);
        printf("   │");
        values_row(ITEMS[j].value);
        printf(j == 0 ? "     key k_j │ value v_j\n" : "\n");
    }
    char label[128];
    snprintf(label, sizeof label, "  query q %s", qname);
    printf("%-24s", label);
    for (int f = 0; f < DK; f++) printf("%7.2f", (double)l->q[f]);
    printf("   │   looks for: %s\n", looks_for);
}

static void step1(const store *s, const lookup *l) {
    char title[160];
    const attn_desc *d = &s->d;
    if (d->score == ATTN_SCORE_COSINE)
        snprintf(title, sizeof title, "Step 1: similarities, by the cosine   s_j = β · q·k_j / (|q| |k_j|),  β = %g", (double)d->scale);
    else
        snprintf(title, sizeof title, "Step 1: similarities, by the %sdot product   s_j = β · q·k_j,  β = %g",
                 d->score == ATTN_SCORE_SCALED ? "scaled " : "", (double)d->scale);
    heading(title);
    if (d->score == ATTN_SCORE_COSINE)
        printf("The cosine compares directions only: 1 when the query points where the key points, 0\n"
               "when they share no feature. β, the scale, sets how much the differences count (the\n"
               "Neural Turing Machine calls it the key strength).\n\n");
    else
        printf("The dot product adds up the features the query and the key share; β, the scale, sets\n"
               "how much the differences count%s. A longer query sharpens like a larger β.\n\n",
               d->score == ATTN_SCORE_SCALED ? " (here 1/√d unless you give --scale)" : "");
    float nq = sqrtf(dotf(l->q, l->q, DK));
    for (int j = 0; j < NI; j++) {
        float dp = dotf(l->q, ITEMS[j].key, DK);
        printf("  %-11s q·k = %5.2f", ITEMS[j].name, (double)dp);
        if (d->score == ATTN_SCORE_COSINE)
            printf("   / (%.2f × %.2f) = %6.3f", (double)nq, (double)sqrtf(dotf(ITEMS[j].key, ITEMS[j].key, DK)),
                   (double)(l->S[j] / d->scale));
        printf("   × %g = %6.3f\n", (double)d->scale, (double)l->S[j]);
    }
}

static void step2(const lookup *l) {
    heading("Step 2: weights, by the softmax   a_j = exp(s_j) / Σ_i exp(s_i)");
    printf("Every key gets a share of the attention, the better match the larger; the shares add\n"
           "up to 1.\n\n");
    printf("%-15s%6s   %6s\n", "", "s_j", "a_j");
    for (int j = 0; j < NI; j++) {
        printf("  %-11s %6.3f   %6.3f   ", ITEMS[j].name, (double)l->S[j], (double)l->P[j]);
        bar(l->P[j], 30);
        putchar('\n');
    }
}

static void step3(const lookup *l, const char *qs) {
    heading("Step 3: the soft lookup next to the hard ones");
    printf("%-38s%8s %12s %9s\n", "", VALUE_SHORT[0], VALUE_FEATURES[1], VALUE_SHORT[2]);
    printf("  ");
    padded("soft:   c = Σ_j a_j v_j", 36);
    values_row(l->O);
    printf("   every value, mixed by its weight\n");
    printf("  %-36s", "hard:   argmax_j s_j");
    values_row(ITEMS[l->argmax].value);
    printf("   %s: the best-matching key%s\n", ITEMS[l->argmax].name, l->ntied > 1 ? " (first of a tie)" : "");
    if (l->exact >= 0) {
        printf("  %-36s", "hard:   the key equal to q");
        values_row(ITEMS[l->exact].value);
        printf("   %s: found at its exact address\n", ITEMS[l->exact].name);
    } else {
        printf("  %-36s%-31s   no key equals %s\n", "hard:   the key equal to q", "   not found", qs);
    }
    int w = l->argmax;
    if (l->exact < 0)
        printf("\nThe exact lookup needs the exact address; the argmax and the soft lookup need only\n"
               "a near one.\n");
    printf("\nThe soft answer is %.0f%% %s and %.0f%% the other fruits, so it is off %s's own\n"
           "numbers by up to %.0f%%. Attention never returns one item: it returns a blend, and the\n"
           "weights say how much of each went in.\n",
           100.0 * l->P[w], ITEMS[w].name, 100.0 * (1 - l->P[w]), ITEMS[w].name, 100.0 * off_by(l->O, w));
}

static void section_sharpen(const lookup *l, const sharpening *t, float scale) {
    heading("Step 4: turn the scale up, and soft becomes hard");
    printf("Multiplying the similarities by a larger β widens the gaps between them, and the softmax\n"
           "turns wider gaps into more lopsided weights. (β is an inverse temperature: softmax(s/T)\n"
           "with T = 1/β.) \"off\" is the soft answer's largest difference from the argmax's value.\n\n");
    printf("   β     ");
    for (int j = 0; j < NI; j++) printf("%11s", ITEMS[j].name);
    printf("   │ soft:%6s %6s %6s │   off\n", VALUE_SHORT[0], VALUE_SHORT[1], VALUE_SHORT[2]);
    for (int i = 0; i < NSHARP; i++) {
        printf("  %5g  ", (double)SHARP_SCALES[i]);
        for (int j = 0; j < NI; j++) printf("%11.4f", (double)t->P[i][j]);
        printf("   │ %11.1f %6.1f %6.1f │ %5.1f%%%s\n", (double)t->O[i][0], (double)t->O[i][1], (double)t->O[i][2],
               100.0 * t->off[i], i == t->hard_from ? "   ← within 1% of hard" : "");
    }
    printf("  %5s  ", "∞");
    for (int j = 0; j < NI; j++) printf("%11d", j == l->argmax);
    printf("   │ %11.1f %6.1f %6.1f │   0%%     the argmax\n\n", (double)ITEMS[l->argmax].value[0],
           (double)ITEMS[l->argmax].value[1], (double)ITEMS[l->argmax].value[2]);
    if (t->hard_from >= 0)
        printf("From β = %g on, the soft lookup is within 1%% of the hard one: the softmax has become\n"
               "an argmax. At small β it tends the other way, to the plain average of all values.\n"
               "(This walk-through used β = %g.)\n",
               (double)SHARP_SCALES[t->hard_from], (double)scale);
    else if (l->ntied > 1)
        printf("The soft lookup never becomes hard here: %d keys tie for the best match, and no β\n"
               "can break a tie, so their weights stay equal however large it gets.\n",
               l->ntied);
    else
        printf("Even at β = %g the soft lookup is more than 1%% off the hard one: the best key leads\n"
               "by too little. A still larger β would get there.\n",
               (double)SHARP_SCALES[NSHARP - 1]);
}

static void section_no_match(const store *s, const lookup *main, const lookup *nm) {
    char qs[96];
    query_str(nm->q, qs, sizeof qs);
    heading("Step 5: a query that matches no key");
    if (nm == main)
        printf("Your query %s equals no key in the store.\n\n", qs);
    else
        printf("Ask for a fruit that is sweet and sour, q = %s: the store has none.\n\n", qs);
    printf("  hard, exact:   not found. A dictionary has nothing to give.\n");
    if (nm->ntied > 1) {
        printf("  hard, argmax:  %s, but only because it comes first: %d keys tie at s = %.3f, and\n"
               "                 the argmax must pick one of them, arbitrarily.\n",
               ITEMS[nm->argmax].name, nm->ntied, (double)nm->S[nm->argmax]);
    } else {
        printf("  hard, argmax:  %s, with weight %.2f: the argmax reports it as if it were a match.\n",
               ITEMS[nm->argmax].name, (double)nm->P[nm->argmax]);
    }
    printf("  soft:          weights");
    for (int j = 0; j < NI; j++) printf(" %.2f", (double)nm->P[j]);
    printf(", the answer (%.1f kcal, %.1f mg, %.1f g):\n"
           "                 %s, which is no fruit in the store.\n\n",
           (double)nm->O[0], (double)nm->O[1], (double)nm->O[2],
           nm->ntied == NI ? "the plain average of every fruit" : "a blend of every fruit");
    printf("The soft lookup says how unsure it is: the entropy of its weights, -Σ_j a_j log2 a_j, is\n"
           "%.2f bits of a possible %.2f (%d keys; 0 would be one key taking all the weight)",
           nm->entropy_bits, log2((double)NI), NI);
    if (nm != main)
        printf(", against\n%.2f bits for the query %s above.\n", main->entropy_bits,
               main->exact >= 0 ? ITEMS[main->exact].name : "of the steps above");
    else
        printf(".\n");
    (void)s;
}

static void section_gradients(const store *s, const lookup *l, const float *dq, const float *dk) {
    heading("Step 6: gradients, or why attention is soft");
    printf("A model learns its queries and keys by gradient descent, so it needs to know how the\n"
           "answer changes when a query or a key moves. For the soft lookup the library's backward\n"
           "(attn_backward) gives, at the query above (β = %g):\n\n",
           (double)s->d.scale);
    printf("  d soft / d query   ");
    for (int f = 0; f < DK; f++) printf("%9s", KEY_FEATURES[f]);
    putchar('\n');
    for (int m = 0; m < DV; m++) {
        printf("    %-17s", VALUE_FEATURES[m]);
        for (int f = 0; f < DK; f++) num(dq[m * DK + f], 9, 3);
        putchar('\n');
    }
    int fb = 0;
    for (int f = 1; f < DK; f++)
        if (fabsf(dq[f]) > fabsf(dq[fb])) fb = f;
    printf("\n  Read a number as a slope: d kcal / d q_%s = %.3f says that raising the query's\n"
           "  \"%s\" by 0.1 would change the answer's kcal by about %+.2f.\n",
           KEY_FEATURES[fb], (double)dq[fb], KEY_FEATURES[fb], 0.1 * (double)dq[fb]);
    printf("\n  d kcal / d keys    ");
    for (int f = 0; f < DK; f++) printf("%9s", KEY_FEATURES[f]);
    putchar('\n');
    for (int j = 0; j < NI; j++) {
        printf("    %-17s", ITEMS[j].name);
        for (int f = 0; f < DK; f++) num(dk[j * DK + f], 9, 3);
        putchar('\n');
    }
    if (l->exact >= 0 && s->d.score == ATTN_SCORE_COSINE)
        printf("  (%s's row is 0: its key points exactly where the query does, and the cosine,\n"
               "  at its maximum, is flat there.)\n",
               ITEMS[l->exact].name);
    printf("\n(And d soft / d v_j = a_j: every value gets a share of the gradient. The hard lookup\n"
           "passes gradient to the chosen value only.)\n\n");

    printf("The hard lookup has none with respect to the query or the keys: a small nudge does not\n"
           "change which key wins, so the answer stays put, and d hard / d query = 0 almost\n"
           "everywhere (where two keys tie, the answer jumps and there is no derivative at all).\n"
           "The exact lookup is worse still: any nudge loses the match. Check it by nudging each\n"
           "query feature by ±%g and dividing the change in kcal by %g:\n\n",
           (double)NUDGE, 2 * (double)NUDGE);
    printf("  %-9s%12s%20s  │  %17s\n", "d kcal", "soft:", "soft:", "hard:");
    printf("  %-9s%12s%20s  │  %17s\n", "/ d q", "library", "finite diff.", "finite diff.");
    for (int f = 0; f < DK; f++) {
        float qp[DK], qm[DK], Op[DV], Om[DV], Sp[NI], Sm[NI];
        memcpy(qp, l->q, sizeof qp);
        memcpy(qm, l->q, sizeof qm);
        qp[f] += NUDGE;
        qm[f] -= NUDGE;
        int st = soft_at(s, s->d.scale, qp, Op, NULL);
        if (!st) st = soft_at(s, s->d.scale, qm, Om, NULL);
        if (!st) st = attn_scores(&s->d, qp, s->K, Sp);
        if (!st) st = attn_scores(&s->d, qm, s->K, Sm);
        if (st) return; /* cannot fail: the same call succeeded above */
        int hp = hard_argmax(Sp), hm = hard_argmax(Sm);
        printf("  %-9s", KEY_FEATURES[f]);
        num(dq[f], 12, 3);
        num(((double)Op[0] - Om[0]) / (2 * (double)NUDGE), 20, 3);
        printf("  │  ");
        if (hp == hm)
            num(((double)ITEMS[hp].value[0] - ITEMS[hm].value[0]) / (2 * (double)NUDGE), 17, 3), putchar('\n');
        else
            printf("  jumps: %s → %s\n", ITEMS[hm].name, ITEMS[hp].name);
    }
    printf("\nGradient descent on a hard lookup gets no signal about which key it should have\n"
           "picked; the soft lookup tells the query and every key which way to move. That is why\n"
           "attention is soft (Bahdanau et al. 2014), and why a trained model can still sharpen its\n"
           "weights to almost hard by learning larger scores.\n");
}

int cli_explain_memory(int argc, char **argv) {
    const char *cmd = "explain", *score_name = "cosine", *query = "strawberry";
    float scale = 0.0f;
    int has_scale = 0, json = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
        } else if (cli_flag(&p, "--memory")) {
        } else if (cli_flag(&p, "--json")) {
            json = 1;
        } else if (cli_str(&p, "--score", &score_name) || cli_str(&p, "--query", &query)) {
        } else if (cli_float(&p, "--scale", &scale)) {
            has_scale = 1;
        } else {
            cli_unknown(&p);
        }
    }
    if (p.status) return p.status;
    int rc = cli_positionals(&p, 0, 0, "");
    if (rc) return rc;
    int score = attn_score_parse(score_name);
    if (score != ATTN_SCORE_DOT && score != ATTN_SCORE_SCALED && score != ATTN_SCORE_COSINE)
        return cli_usage(cmd, "--memory takes --score cosine, dot or scaled, not '%s'", score_name);
    if (has_scale && !(scale > 0.0f))
        return cli_usage(cmd, "--scale must be positive (it is an inverse temperature), not %g", (double)scale);
    if (!has_scale && score == ATTN_SCORE_COSINE) scale = 5.0f;

    /* The query: an item's name, or DK numbers. */
    float q[DK];
    int qi = -1;
    for (int j = 0; j < NI; j++)
        if (same_name(query, ITEMS[j].name)) qi = j;
    if (qi >= 0) {
        memcpy(q, ITEMS[qi].key, sizeof q);
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", query);
        int n = 0;
        for (char *tok = buf, *next; tok && n <= DK; tok = next, n++) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            double v;
            if (n == DK || cli_parse_float(tok, &v)) { n = -1; break; }
            q[n] = (float)v;
        }
        if (n != DK)
            return cli_usage(cmd, "--query takes strawberry, banana, lemon, cranberry or %d comma-separated "
                             "numbers (sweet, sour, red, yellow), not '%s'", DK, query);
    }

    store s;
    lookup l, nm;
    sharpening t;
    float dq[DV * DK], dk[DV * NI * DK];
    int st = store_init(&s, score, scale);
    if (!st) st = do_lookup(&s, q, &l);
    if (!st) st = soft_grads(&s, &l, dq, dk);
    if (!st) st = sharpen(&s, &l, &t);
    if (!st && l.exact >= 0) st = do_lookup(&s, NO_MATCH, &nm);
    if (st) return cli_fail_lib(cmd, st, NULL);
    if (json) {
        print_json(&s, &l, dq, dk, &t);
        return CLI_OK;
    }

    char qname[80], qs[96];
    query_str(q, qs, sizeof qs);
    if (qi >= 0) snprintf(qname, sizeof qname, "\"%s\"", ITEMS[qi].name);
    else snprintf(qname, sizeof qname, "(yours)");
    intro(&l, qname, qi >= 0 ? ITEMS[qi].looks_for : "what you asked");
    step1(&s, &l);
    step2(&l);
    step3(&l, qs);
    section_sharpen(&l, &t, s.d.scale);
    section_no_match(&s, &l, l.exact >= 0 ? &nm : &l);
    section_gradients(&s, &l, dq, dk);
    printf("\nTry:  attn explain --memory --query lemon        another fruit's key\n"
           "      attn explain --memory --query 1,1,0,0      a query that matches no key (sweet, sour, red, yellow)\n"
           "      attn explain --memory --scale 20           a sharper softmax, almost hard\n"
           "      attn explain --memory --score dot          another similarity (cosine, dot, scaled)\n"
           "      attn explain --memory --json               the numbers, for a program\n");
    return CLI_OK;
}
