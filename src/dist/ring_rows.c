/* Which rows of the sequence a rank holds in ring attention (attn/dist.h): plain arithmetic,
 * in the library with or without MPI. */
#include "attn/dist.h"

int64_t attn_ring_row(int64_t N, int P, int rank, attn_ring_layout layout, int64_t i) {
    int c = layout == ATTN_RING_ZIGZAG ? 2 : 1;
    if (P < 1 || N < 1 || rank < 0 || rank >= P || N % ((int64_t)P * c) || (layout != ATTN_RING_CONTIGUOUS && c == 1)) return -1;
    int64_t nloc = N / P, len = nloc / c;
    if (i < 0 || i >= nloc) return -1;
    int64_t k = i / len, chunk = k == 0 ? rank : 2 * (int64_t)P - 1 - rank;
    return chunk * len + i % len;
}
