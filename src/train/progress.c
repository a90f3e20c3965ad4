/* Progress lines as strings (the library never prints), durations, a monotonic clock, the
 * estimated time left, and the early-stopping bookkeeping. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "attn/train.h"

double attn_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double attn_eta(double elapsed_s, int64_t done, int64_t total) {
    if (done <= 0 || total < done || !(elapsed_s >= 0)) return -1.0;
    return elapsed_s * (double)(total - done) / (double)done;
}

int attn_format_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || !isfinite(s)) return snprintf(buf, cap, "?");
    long long t = (long long)(s + 0.5);
    if (t < 60) return snprintf(buf, cap, "%llds", t);
    if (t < 3600) return snprintf(buf, cap, "%lldm%02llds", t / 60, t % 60);
    if (t < 86400) return snprintf(buf, cap, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    return snprintf(buf, cap, "%lldd%02lldh", t / 86400, (t % 86400) / 3600);
}

int attn_progress_format(char *buf, size_t cap, const attn_progress *p) {
    if (!buf || cap == 0) return 0;
    buf[0] = 0;
    if (!p) return 0;
    size_t k = 0;
    int n;
#define PUT(...)                                                    \
    do {                                                            \
        n = snprintf(buf + (k < cap ? k : cap - 1), k < cap ? cap - k : 1, __VA_ARGS__); \
        if (n > 0) k += (size_t)n;                                  \
    } while (0)
    if (p->epochs > 0) PUT("epoch %lld/%lld ", (long long)p->epoch + 1, (long long)p->epochs);
    else if (p->epoch >= 0) PUT("epoch %lld ", (long long)p->epoch + 1);
    if (p->total_steps > 0) PUT("step %lld/%lld", (long long)p->step, (long long)p->total_steps);
    else PUT("step %lld", (long long)p->step);
    if (isfinite(p->loss)) PUT(" loss %.4f", p->loss);
    if (p->lr >= 0) PUT(" lr %.2e", p->lr);
    if (p->tokens_per_s >= 0) PUT(" %.0f tok/s", p->tokens_per_s);
    if (p->eta_s >= 0) {
        char d[32];
        attn_format_duration(d, sizeof d, p->eta_s);
        PUT(" eta %s", d);
    }
#undef PUT
    return (int)k;
}

int attn_train_observe(attn_train_state *st, double metric) {
    if (!st) return 0;
    if (metric < st->best_metric) {
        st->best_metric = metric;
        st->bad_epochs = 0;
        return 1;
    }
    st->bad_epochs++;
    return 0;
}
