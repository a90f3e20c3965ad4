/* Learning-rate schedules: constant, inverse square root (the Transformer paper's), cosine and
 * linear decay, each after an optional linear warm-up. Pure functions of the step, so a
 * resumed run continues the same curve. */
#include <math.h>
#include <string.h>

#include "attn/train.h"

double attn_sched_lr(const attn_sched *s, int64_t step) {
    if (!s) return 0.0;
    double t = (double)(step < 0 ? 1 : step + 1), w = (double)(s->warmup > 0 ? s->warmup : 0);
    if (w > 0 && t <= w) return s->lr * t / w;
    switch (s->kind) {
    case ATTN_SCHED_INV_SQRT: return w > 0 ? s->lr * sqrt(w / t) : s->lr / sqrt(t);
    case ATTN_SCHED_COSINE:
    case ATTN_SCHED_LINEAR: {
        double span = (double)s->total - w, p = span > 0 ? ((double)step - w) / span : 1.0;
        if (p < 0) p = 0;
        if (p > 1) p = 1;
        double f = s->kind == ATTN_SCHED_COSINE ? 0.5 * (1.0 + cos(3.14159265358979323846 * p)) : 1.0 - p;
        return s->min_lr + (s->lr - s->min_lr) * f;
    }
    default: return s->lr;
    }
}

attn_sched attn_sched_noam(int d_model, int64_t warmup, double factor) {
    attn_sched s;
    memset(&s, 0, sizeof s);
    s.kind = ATTN_SCHED_INV_SQRT;
    s.warmup = warmup;
    /* factor * d^-0.5 * min(t^-0.5, t w^-1.5) peaks at t = w with factor * d^-0.5 * w^-0.5, and
     * equals lr * t / w before and lr * sqrt(w / t) after. */
    s.lr = factor / sqrt((double)(d_model > 0 ? d_model : 1)) / sqrt((double)(warmup > 0 ? warmup : 1));
    return s;
}

static const char *const NAMES[] = {"constant", "inv_sqrt", "cosine", "linear"};
const char *attn_sched_name(attn_sched_kind kind) { return (unsigned)kind <= ATTN_SCHED_LINEAR ? NAMES[kind] : "?"; }
int attn_sched_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, NAMES[i])) return i;
    return -1;
}
