/* Tests of the error messages (attn_last_error):
 *  - a message that quotes an earlier message (attn__error(st, "%s: %s", dir, attn_last_error()))
 *    reads exactly as intended, through the public loaders of both model families;
 *  - an error a task sets on a pool worker thread reaches the caller's attn_last_error(), and
 *    the lowest failing task's message wins, whatever the thread count. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attn/attn.h"
#include "attn/seq2seq.h"
#include "attn/transformer.h"
#include "core/internal.h"
#include "attn/translator.h"
#include "testutil.h"

/* ---- Messages that quote messages -------------------------------------------------------- */

static attn_vocab *vocab_of(const char *const *toks, int n) {
    attn_counter *c = NULL;
    attn_vocab *v = NULL;
    if (attn_counter_new(&c) != ATTN_OK) return NULL;
    for (int i = 0; i < n; i++) attn_counter_add(c, toks[i], strlen(toks[i]), n - i, NULL);
    attn_vocab_build(c, 1, 0, &v);
    attn_counter_free(c);
    return v;
}

/* Replaces the first `from` in dir/config.json with `to` (of the same length); 1 on success. */
static int edit_config(const char *dir, const char *from, const char *to) {
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n = 0;
    char *text = (char *)tu_read_file(path, &n), *at = text ? strstr(text, from) : NULL;
    int ok = at && strlen(from) == strlen(to);
    if (ok) {
        memcpy(at, to, strlen(to));
        tu_write_file(path, text, n);
    }
    free(text);
    return ok;
}

/* The loader's status is a failure, it returned no model (m2 is what it gave), and the message
 * is "<ck>: <tail>" exactly. */
static void check_load_failure(int st, const void *m2, const char *ck, const char *tail) {
    char want[700];
    snprintf(want, sizeof want, "%s: %s", ck, tail);
    CHECK(st != ATTN_OK && !m2 && !strcmp(attn_last_error(), want), "load: %d \"%s\", want \"%s\"", st, attn_last_error(), want);
}

static void test_quoted_message_s2s(void) {
    /* A configuration that parses but fails the check: the message is the check's, verbatim. */
    attn_s2s_config c;
    int st = attn_s2s_config_from_json("{\"kind\": \"seq2seq\", \"src_vocab\": 9, \"tgt_vocab\": 8, \"emb\": 8, "
                                       "\"hidden\": 0, \"attn_size\": 0}", &c);
    const char *want = "seq2seq: sizes emb 8, hidden 0, attn_size 0";
    CHECK(st == ATTN_EFORMAT && !strcmp(attn_last_error(), want), "config: %d \"%s\", want \"%s\"", st, attn_last_error(), want);

    /* The loader prefixes the directory to that message. */
    static const char *const zh[] = {"我", "你", "。"}, *const en[] = {"i", "you", "."};
    attn_s2s_config mc = attn_s2s_defaults();
    mc.src_vocab = 7, mc.tgt_vocab = 7, mc.emb = 8, mc.hidden = 8;
    attn_translator *m = NULL, *m2 = NULL;
    attn_vocab *sv = vocab_of(zh, 3), *tv = vocab_of(en, 3);
    CHECK(sv && tv && attn_translator_new("seq2seq", &mc, 1, sv, tv, &m) == ATTN_OK, "new: %s", attn_last_error());
    const char *ck = tu_path("s2s");
    CHECK(attn_translator_save(m, ck, NULL) == ATTN_OK && edit_config(ck, "\"hidden\": 8", "\"hidden\": 0"), "save: %s",
          attn_last_error());
    check_load_failure(attn_translator_load(ck, &m2), m2, ck, "seq2seq: sizes emb 8, hidden 0, attn_size 8");
    attn_translator_free(m2);
    attn_translator_free(m);
}

static void test_quoted_message_transformer(void) {
    static const char *const zh[] = {"我", "你", "。"}, *const en[] = {"i", "you", "."};
    attn_transformer_config c = attn_transformer_config_default();
    c.src_vocab = c.tgt_vocab = 7;
    c.d_model = 16, c.heads = 4, c.d_ff = 16, c.enc_layers = 1, c.dec_layers = 1, c.max_len = 8;
    attn_translator *m = NULL, *m2 = NULL;
    attn_vocab *sv = vocab_of(zh, 3), *tv = vocab_of(en, 3);
    CHECK(sv && tv && attn_translator_new("transformer", &c, 1, sv, tv, &m) == ATTN_OK, "new: %s", attn_last_error());
    const char *ck = tu_path("transformer");
    CHECK(attn_translator_save(m, ck, NULL) == ATTN_OK && edit_config(ck, "\"d_model\": 16", "\"d_model\": 15"),
          "save: %s", attn_last_error());
    check_load_failure(attn_translator_load(ck, &m2), m2, ck, "transformer config: d_model 15 is not a multiple of heads 4");
    attn_translator_free(m2);
    attn_translator_free(m);
}

/* ---- Errors set on pool threads ---------------------------------------------------------- */

#define NTASKS 64

/* Task t fails (with the message "task t failed") if fail[t]; ran_on[t] gets its thread. */
typedef struct {
    int fail[NTASKS];
    int ran_on[NTASKS];
} fail_ctx;

static void failing_task(void *ctx, int task, int thread) {
    fail_ctx *c = ctx;
    c->ran_on[task] = thread;
    /* Long enough for the workers to wake and take tasks of their own. */
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    if (c->fail[task]) attn__error(ATTN_EINVAL, "task %d failed", task);
}

/* Runs the tasks with every task from `first` on failing; returns 1 if one of them ran on a
 * worker thread. The caller's message must then be the lowest failing task's. */
static int run_failing(int threads, int first) {
    fail_ctx c;
    memset(&c, 0, sizeof c);
    for (int t = first; t < NTASKS; t++) c.fail[t] = 1;
    attn_set_threads(threads);
    attn__error(ATTN_OK, "before");
    attn__parallel(NTASKS, failing_task, &c);
    char want[64];
    snprintf(want, sizeof want, "task %d failed", first);
    CHECK(!strcmp(attn_last_error(), want), "%d threads: \"%s\", want \"%s\"", threads, attn_last_error(), want);
    int on_worker = 0;
    for (int t = first; t < NTASKS; t++) on_worker |= c.ran_on[t] != 0;
    return on_worker;
}

static void test_pool_errors(void) {
    int saved = attn_get_threads();
    /* Serially, the first error wins too (not the last). */
    run_failing(1, 5);
    /* The failing tasks are the last ones, so workers run some of them. */
    int on_worker = 0;
    for (int i = 0; i < 5; i++) on_worker |= run_failing(4, NTASKS - 8);
    CHECK(on_worker, "a failing task ran on a worker thread");
    /* Every task fails: task 0's message, wherever task 0 ran. */
    run_failing(4, 0);
    /* A call in which nothing fails leaves the caller's message alone. */
    fail_ctx ok;
    memset(&ok, 0, sizeof ok);
    attn__error(ATTN_OK, "untouched");
    attn__parallel(NTASKS, failing_task, &ok);
    CHECK(!strcmp(attn_last_error(), "untouched"), "no error: \"%s\"", attn_last_error());
    attn_set_threads(saved);
}

int main(void) {
    if (!tu_scratch_new("attn_test_status")) return 1;
    test_quoted_message_s2s();
    test_quoted_message_transformer();
    tu_scratch_remove();
    test_pool_errors();
    return tu_summary("test_status");
}
