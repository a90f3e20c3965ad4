/* libFuzzer target: the checkpoint directory reader. The input is the config.json of a
 * directory that also holds a tiny seq2seq checkpoint's other files (copied from
 * tests/fuzz/ckpt, or $ATTN_FUZZ_CKPT, at the start; the seed corpus/checkpoint/config.json is
 * theirs), opened as a training checkpoint and loaded as a translator. */
#include "fuzz.h"
#include "attn/translator.h"
#include "attn/train.h"

static void copy_in(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || ferror(f)) {
        fprintf(stderr, "fuzz_checkpoint: cannot read %s (run from the repository root or set ATTN_FUZZ_CKPT)\n", path);
        abort();
    }
    fclose(f);
    fuzz_file(name, buf, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static int ready;
    if (!ready) {
        const char *dir = getenv("ATTN_FUZZ_CKPT");
        dir = dir && *dir ? dir : "tests/fuzz/ckpt";
        copy_in(dir, "model.safetensors"), copy_in(dir, "src_vocab.txt"), copy_in(dir, "tgt_vocab.txt");
        ready = 1;
    }
    fuzz_file("config.json", data, n);
    attn_checkpoint ck;
    if (attn_checkpoint_open(fuzz_dir(), &ck) == ATTN_OK) attn_checkpoint_free(&ck);
    attn_translator *t = NULL;
    if (attn_translator_load(fuzz_dir(), &t) == ATTN_OK) attn_translator_free(t);
    return 0;
}
