/* attn explain: a guided walk through attention's three steps on the seed's example, the
 * translation of 我爱你 into "I love you". A query for the English word being written meets the
 * keys of the three Chinese words; the scores, the softmax weights (as numbers and bars) and the
 * weighted sum are printed with the arithmetic behind them.
 *
 * The numbers come from the library's own three steps (attn_scores, attn_normalize,
 * attn_weighted_sum); this file only chooses the tiny example and prints. The embeddings are
 * hand-made with readable features so that the query for "I" clearly prefers 我.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define D 4 /* features per word */
#define NW 3 /* words */
#define A_HID 3 /* hidden size of the additive score */

static const char *const FEATURES[D] = {"speaker", "action", "listener", "person"};

typedef struct {
    const char *zh, *pinyin, *en;
    float v[D];
} word;

/* Keys and values (K = V, as often in language tasks). */
static const word WORDS[NW] = {
    {"我", "wǒ", "I", {1.0f, 0.1f, 0.0f, 0.8f}},
    {"爱", "ài", "love", {0.1f, 1.0f, 0.1f, 0.0f}},
    {"你", "nǐ", "you", {0.0f, 0.1f, 1.0f, 0.8f}},
};

/* What the decoder looks for when it is about to write each English word. */
static const struct {
    const char *en, *looks_for;
    float q[D];
} QUERIES[NW] = {
    {"I", "the speaker, a person", {4.0f, 0.0f, 0.0f, 1.0f}},
    {"love", "an action", {0.0f, 4.0f, 0.0f, 0.0f}},
    {"you", "the listener, a person", {0.0f, 0.0f, 4.0f, 1.0f}},
};

/* general: q^T W k with W (D, D): features meet their own kind; "person" counts a quarter. */
static const float W_GENERAL[D * D] = {
    1, 0, 0, 0,
    0, 1, 0, 0,
    0, 0, 1, 0,
    0, 0, 0, 0.25f,
};
/* additive: hidden unit c detects "query and key both have feature c" (speaker, action,
 * listener): tanh(q_c / 2 - 1.5 + 2 k_c - 1.5) is near +1 only when both are present. */
static const float WA[A_HID * D] = {0.5f, 0, 0, 0, 0, 0.5f, 0, 0, 0, 0, 0.5f, 0};
static const float BA[A_HID] = {-1.5f, -1.5f, -1.5f};
static const float UA[A_HID * D] = {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0};
static const float BU[A_HID] = {-1.5f, -1.5f, -1.5f};
static const float VA[A_HID] = {2, 2, 2};
static const float BV[1] = {0};

static const char HELP[] =
    "usage: attn explain [--score KIND] [--query WORD | --query a,b,c,d] [--scale S]\n"
    "       attn explain --memory [...]     attention as a soft key-value lookup (--memory --help)\n"
    "\n"
    "Walks through attention on the classic example: translating 我爱你 into \"I love you\".\n"
    "To write the English word \"I\", the translator compares a query for \"I\" with the keys\n"
    "of 我, 爱 and 你 (step 1: scores), turns the scores into weights that sum to 1 (step 2:\n"
    "softmax), and mixes the values with those weights (step 3: weighted sum). Every number is\n"
    "printed with the arithmetic that made it, computed by the library itself.\n"
    "\n"
    "  --score KIND     the similarity of step 1:\n"
    "                     dot       q . k\n"
    "                     scaled    q . k / sqrt(d)     (the Transformer's; the default)\n"
    "                     cosine    q . k / (|q| |k|)\n"
    "                     general   q^T W k             (Luong; W fixed here)\n"
    "                     additive  va . tanh(Wa q + Ua k)  (Bahdanau; Wa, Ua, va fixed here)\n"
    "  --query WORD     the English word being written: I (default), love or you\n"
    "  --query a,b,c,d  or your own query: 4 numbers for the features\n"
    "                   speaker, action, listener, person\n"
    "  --scale S        the factor on q . k (replacing scaled's 1/sqrt(d)), an inverse\n"
    "                   temperature: large S sharpens the weights, small S flattens them\n"
    "                   (not for additive)\n"
    "  --memory         another walk-through: attention read as a memory, a soft lookup of\n"
    "                   key -> value pairs beside the hard one (see attn explain --memory --help)\n"
    "  -h, --help       this help\n"
    "\n"
    "examples:\n"
    "  attn explain\n"
    "  attn explain --query love --score cosine\n"
    "  attn explain --query 1,0,1,0        (halfway between I and you)\n";

/* ---- Printing helpers -------------------------------------------------------------------- */

/* Display columns of a UTF-8 string: CJK ideographs take two, everything else one. */
static int columns(const char *s) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned cp;
        int n;
        if (*p < 0x80) cp = *p, n = 1;
        else if ((*p & 0xe0) == 0xc0) cp = *p & 0x1f, n = 2;
        else if ((*p & 0xf0) == 0xe0) cp = *p & 0x0f, n = 3;
        else cp = *p & 0x07, n = 4;
        for (int i = 1; i < n && p[i]; i++) cp = (cp << 6) | (p[i] & 0x3f);
        for (int i = 0; i < n && *p; i++) p++;
        w += (cp >= 0x2e80 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) ? 2 : 1;
    }
    return w;
}

/* Prints s left-aligned in `width` columns. */
static void padded(const char *s, int width) {
    fputs(s, stdout);
    for (int w = columns(s); w < width; w++) putchar(' ');
}

static void vec(const float *x, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? " %5.2f" : "%5.2f", (double)x[i]);
    putchar(']');
}

/* A horizontal bar of `cells` character cells for x in [0, 1], in eighths of a cell. */
static void bar(double x, int cells) {
    static const char *const part[8] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    long eighths = lround(x * cells * 8);
    if (eighths < 0) eighths = 0;
    for (long i = 0; i < eighths / 8; i++) fputs("█", stdout);
    fputs(part[eighths % 8], stdout);
}

static void heading(const char *title) {
    printf("\n%s\n", title);
    int n = columns(title);
    for (int i = 0; i < n; i++) putchar('-');
    putchar('\n');
}

/* Case-insensitive ASCII comparison. */
static int same_word(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float norm(const float *a, int n) { return sqrtf(dot(a, a, n)); }

/* ---- The walk-through -------------------------------------------------------------------- */

static void intro(const float *q, const char *query_name, const char *looks_for) {
    printf("Attention, step by step\n"
           "=======================\n"
           "\n"
           "A translator turns 我爱你 into \"I love you\". Before writing each English word it\n"
           "looks back at the Chinese words and asks: which of them matters now? A query q (what\n"
           "it is looking for) is compared with a key k_j for each word j, and the answer is a mix\n"
           "of the words' values v_j:\n"
           "\n"
           "  1. score   compare q with every key        s_j = score(q, k_j)\n"
           "  2. weigh   turn scores into weights        a_j = exp(s_j) / Σ_i exp(s_i)   (softmax)\n"
           "  3. sum     mix the values                  c   = Σ_j a_j v_j\n"
           "\n"
           "Each word here is a vector of %d features, made by hand so you can read them (a trained\n"
           "model learns its own, hundreds of them). Keys and values are the same vectors (K = V),\n"
           "as is common in language tasks.\n\n",
           D);
    padded("", 18);
    for (int f = 0; f < D; f++) printf("%9s", FEATURES[f]);
    putchar('\n');
    for (int j = 0; j < NW; j++) {
        char label[96];
        snprintf(label, sizeof label, "  %s (%s, %s)", WORDS[j].zh, WORDS[j].pinyin, WORDS[j].en);
        padded(label, 18);
        for (int f = 0; f < D; f++) printf("%9.2f", (double)WORDS[j].v[f]);
        printf(j == 0 ? "     key k_j = value v_j\n" : "\n");
    }
    char label[128];
    snprintf(label, sizeof label, "  query q %s", query_name);
    padded(label, 18);
    for (int f = 0; f < D; f++) printf("%9.2f", (double)q[f]);
    if (looks_for) printf("     looks for: %s", looks_for);
    putchar('\n');
}

static void step1(const attn_desc *d, const float *q, const float *S) {
    char title[160];
    switch (d->score) {
    case ATTN_SCORE_DOT:
        snprintf(title, sizeof title, "Step 1: scores, by the dot product   s_j = q·k_j%s",
                 d->scale != 1.0f ? " × scale" : "");
        break;
    case ATTN_SCORE_SCALED:
        snprintf(title, sizeof title, "Step 1: scores, by the scaled dot product   s_j = q·k_j %s",
                 fabsf(d->scale - 1.0f / sqrtf((float)D)) < 1e-7f ? "/ √d" : "× scale (instead of 1/√d)");
        break;
    case ATTN_SCORE_COSINE:
        snprintf(title, sizeof title, "Step 1: scores, by the cosine   s_j = q·k_j / (|q| |k_j|)%s",
                 d->scale != 1.0f ? " × scale" : "");
        break;
    case ATTN_SCORE_GENERAL:
        snprintf(title, sizeof title, "Step 1: scores, by the general (bilinear) form   s_j = q^T W k_j%s",
                 d->scale != 1.0f ? " × scale" : "");
        break;
    default:
        snprintf(title, sizeof title, "Step 1: scores, by the additive (MLP) form   s_j = va·tanh(Wa q + ba + Ua k_j + bu)");
        break;
    }
    heading(title);
    if (d->score == ATTN_SCORE_DOT || d->score == ATTN_SCORE_SCALED) {
        printf("The dot product adds up feature by feature: large when q and k_j are large in the same\n"
               "features.%s\n\n",
               d->score == ATTN_SCORE_SCALED
                   ? " Dividing by √d keeps scores of long vectors from growing with d,\n"
                     "which would make the softmax of step 2 too peaked (Vaswani et al. 2017)."
                   : "");
        for (int j = 0; j < NW; j++) {
            printf("  %s   ", WORDS[j].zh);
            for (int f = 0; f < D; f++) printf(f ? " + %.2f×%.2f" : "%.2f×%.2f", (double)q[f], (double)WORDS[j].v[f]);
            float s = dot(q, WORDS[j].v, D);
            printf(" = %5.2f", (double)s);
            int default_scale = d->score == ATTN_SCORE_SCALED && fabsf(d->scale - 1.0f / sqrtf((float)D)) < 1e-7f;
            if (default_scale) printf("   / √%d = %6.3f", D, (double)S[j]);
            else if (d->scale != 1.0f) printf("   × %g = %6.3f", (double)d->scale, (double)S[j]);
            putchar('\n');
        }
    } else if (d->score == ATTN_SCORE_COSINE) {
        printf("The cosine is the dot product of the directions only: it ignores how long the vectors\n"
               "are and lies in [-1, 1], so on its own it gives gentle weights.\n\n");
        float nq = norm(q, D);
        for (int j = 0; j < NW; j++) {
            float nk = norm(WORDS[j].v, D);
            printf("  %s   %5.2f / (%.2f × %.2f) = %6.3f", WORDS[j].zh, (double)dot(q, WORDS[j].v, D), (double)nq,
                   (double)nk, (double)(S[j] / d->scale));
            if (d->scale != 1.0f) printf("   × %g = %.3f", (double)d->scale, (double)S[j]);
            putchar('\n');
        }
    } else if (d->score == ATTN_SCORE_GENERAL) {
        printf("A learned matrix W says which query feature should meet which key feature. This W\n"
               "matches each feature with its own kind and counts \"person\" only a quarter:\n\n");
        float qW[D];
        for (int c = 0; c < D; c++) {
            qW[c] = 0;
            for (int r = 0; r < D; r++) qW[c] += q[r] * W_GENERAL[r * D + c];
        }
        for (int r = 0; r < D; r++) {
            printf("  %s", r == 0 ? "W = " : "    ");
            vec(W_GENERAL + r * D, D);
            putchar('\n');
        }
        printf("\n  q^T W = ");
        vec(qW, D);
        printf("   then s_j = (q^T W)·k_j:\n");
        for (int j = 0; j < NW; j++) {
            printf("  %s   ", WORDS[j].zh);
            for (int f = 0; f < D; f++) printf(f ? " + %.2f×%.2f" : "%.2f×%.2f", (double)qW[f], (double)WORDS[j].v[f]);
            printf(" = %5.2f", (double)(S[j] / d->scale));
            if (d->scale != 1.0f) printf("   × %g = %.3f", (double)d->scale, (double)S[j]);
            putchar('\n');
        }
    } else {
        printf("A small network scores each pair: its %d hidden units here are detectors, unit c\n"
               "fires (tanh near +1) only when the query and the key both have feature c\n"
               "(speaker, action, listener); va adds the detectors up.\n\n", A_HID);
        float wq[A_HID];
        for (int c = 0; c < A_HID; c++) wq[c] = dot(WA + c * D, q, D) + BA[c];
        for (int r = 0; r < A_HID; r++) {
            printf("  %s", r == 0 ? "Wa = " : "     ");
            vec(WA + r * D, D);
            if (r == 0) {
                printf("   ba = ");
                vec(BA, A_HID);
            }
            putchar('\n');
        }
        for (int r = 0; r < A_HID; r++) {
            printf("  %s", r == 0 ? "Ua = " : "     ");
            vec(UA + r * D, D);
            if (r == 0) {
                printf("   bu = ");
                vec(BU, A_HID);
            }
            putchar('\n');
        }
        printf("\n  Wa q + ba = ");
        vec(wq, A_HID);
        printf("   (computed once per query)\n");
        printf("  va        = ");
        vec(VA, A_HID);
        printf("\n\n");
        printf("        Ua k_j + bu           tanh(Wa q + ba + Ua k_j + bu)      s_j\n");
        for (int j = 0; j < NW; j++) {
            float uk[A_HID], t[A_HID];
            for (int c = 0; c < A_HID; c++) {
                uk[c] = dot(UA + c * D, WORDS[j].v, D) + BU[c];
                t[c] = tanhf(wq[c] + uk[c]);
            }
            printf("  %s   ", WORDS[j].zh);
            vec(uk, A_HID);
            printf("    ");
            vec(t, A_HID);
            printf("          %6.3f\n", (double)S[j]);
        }
    }
}

static int step2(const float *S, const float *P) {
    heading("Step 2: weights, by the softmax   a_j = exp(s_j) / Σ_i exp(s_i)");
    float m = S[0];
    for (int j = 1; j < NW; j++) m = S[j] > m ? S[j] : m;
    printf("exp makes every score positive and widens the gaps between them; dividing by the sum\n"
           "makes the weights add up to 1. (Subtracting the largest score first, %.3f, changes\n"
           "nothing, since it cancels, but keeps exp from overflowing: every implementation does it.)\n\n",
           (double)m);
    printf("        score   exp(s - max)    weight\n");
    double sum = 0;
    int best = 0;
    for (int j = 0; j < NW; j++) {
        double e = exp((double)S[j] - m);
        sum += e;
        if (P[j] > P[best]) best = j;
        printf("  %s   %6.3f   %10.4f    %6.3f   ", WORDS[j].zh, (double)S[j], e, (double)P[j]);
        bar(P[j], 30);
        putchar('\n');
    }
    printf("                 ----------    ------\n");
    printf("          sum    %10.4f    %6.3f\n", sum, (double)(P[0] + P[1] + P[2]));
    return best;
}

static void step3(const float *P, const float *c, int best, const char *query_name, int query_word) {
    heading("Step 3: the weighted sum   c = Σ_j a_j v_j");
    printf("Every value is read, in proportion to its weight: a soft lookup, not an exact one.\n\n");
    for (int j = 0; j < NW; j++) {
        printf("  %s %5.3f × %s ", j ? "+" : " ", (double)P[j], WORDS[j].zh);
        vec(WORDS[j].v, D);
        putchar('\n');
    }
    printf("  =            ");
    vec(c, D);
    printf("   the context vector c\n\n");
    int second = best == 0 ? 1 : 0;
    for (int j = 0; j < NW; j++)
        if (j != best && P[j] > P[second]) second = j;
    if (P[best] - P[second] < 0.05f) {
        printf("No word wins: c blends %s (%s) and %s (%s), weights %.2f and %.2f.\n", WORDS[best].zh, WORDS[best].en,
               WORDS[second].zh, WORDS[second].en, (double)P[best], (double)P[second]);
    } else {
        printf("c is %s %s (%s): with weight %.2f, %s is the word this query attends to.\n",
               P[best] >= 0.5f ? "mostly" : "closest to", WORDS[best].zh, WORDS[best].en, (double)P[best], WORDS[best].zh);
        if (query_word >= 0 && query_word == best)
            printf("That is the right alignment: \"%s\" translates %s.\n", query_name, WORDS[best].zh);
        else if (query_word >= 0)
            printf("That is not the word \"%s\" translates (%s): with these vectors this score misleads.\n",
                   query_name, WORDS[query_word].zh);
    }
    printf("The decoder reads c, with its own state, to write the next English word. For the next word\n"
           "it asks again with a new query, so every target word gets its own context c_i (Bahdanau et\n"
           "al. 2014) instead of one vector for the whole sentence. The weights a_ij for every target\n"
           "word i are the alignment matrix people draw.\n");
}

int cli_explain(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--memory") == 0) return cli_explain_memory(argc, argv);
    const char *cmd = "explain", *score_name = "scaled", *query = "I";
    float scale = 0.0f;
    int has_scale = 0;
    cli_args p;
    cli_args_init(&p, cmd, argc, argv);
    while (cli_next(&p)) {
        if (cli_flag(&p, "-h") || cli_flag(&p, "--help")) {
            if (!p.status) return cli_help(HELP);
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
    if (score < 0) return cli_usage(cmd, "unknown score '%s' (dot, scaled, cosine, general or additive)", score_name);
    if (has_scale && scale == 0.0f) return cli_usage(cmd, "--scale 0 would make every score 0");
    if (has_scale && score == ATTN_SCORE_ADDITIVE) return cli_usage(cmd, "--scale has no effect on the additive score");

    /* The query: a word, or 4 numbers. */
    float q[D];
    int qw = -1;
    for (int i = 0; i < NW; i++)
        if (same_word(query, QUERIES[i].en)) qw = i;
    if (qw >= 0) {
        memcpy(q, QUERIES[qw].q, sizeof q);
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", query);
        int n = 0;
        for (char *tok = buf, *next; tok && n <= D; tok = next, n++) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            double v;
            if (n == D || cli_parse_float(tok, &v)) { n = -1; break; }
            q[n] = (float)v;
        }
        if (n != D)
            return cli_usage(cmd, "--query takes I, love, you or %d comma-separated numbers (speaker, action, "
                             "listener, person), not '%s'", D, query);
    }

    /* The library's three steps on B = H = Nq = 1, Nk = 3, d = 4. */
    attn_score_params params = {0};
    params.W = (float *)W_GENERAL;
    params.A = A_HID;
    params.Wa = (float *)WA, params.ba = (float *)BA, params.Ua = (float *)UA, params.bu = (float *)BU;
    params.va = (float *)VA, params.bv = (float *)BV;
    attn_desc d = {0};
    d.B = d.H = d.Nq = 1;
    d.Nk = NW;
    d.dq = D;
    d.score = (attn_score)score;
    d.scale = scale;
    d.params = &params;
    float K[NW * D], S[NW], P[NW], c[D];
    for (int j = 0; j < NW; j++) memcpy(K + j * D, WORDS[j].v, sizeof WORDS[j].v);
    int st = attn_desc_check(&d);
    if (!st) st = attn_scores(&d, q, K, S);
    if (!st) st = attn_normalize(&d, S, P);
    if (!st) st = attn_weighted_sum(&d, P, K, c);
    if (st) return cli_fail_lib(cmd, st, NULL);

    char qname[80];
    if (qw >= 0) snprintf(qname, sizeof qname, "\"%s\"", QUERIES[qw].en);
    else snprintf(qname, sizeof qname, "(yours)");
    intro(q, qname, qw >= 0 ? QUERIES[qw].looks_for : NULL);
    step1(&d, q, S);
    int best = step2(S, P);
    step3(P, c, best, qw >= 0 ? QUERIES[qw].en : "", qw);
    printf("\nTry:  attn explain --query love          another English word (I, love, you)\n"
           "      attn explain --score cosine        another similarity (dot, scaled, cosine, general, additive)\n"
           "      attn explain --query 1,0,1,0       your own query (speaker, action, listener, person)\n"
           "      attn explain --scale 4             a sharper softmax (a temperature)\n"
           "      attn explain --memory              attention as a soft key -> value lookup\n");
    return CLI_OK;
}
