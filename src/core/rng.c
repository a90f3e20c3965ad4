/* Seeded random numbers: xoroshiro128+ seeded through splitmix64, Box-Muller normals.
 * The same sequence on every platform for a given seed. */
#include "attn/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void attn_rng_seed(attn_rng *r, uint64_t seed) {
    r->s[0] = splitmix64(&seed);
    r->s[1] = splitmix64(&seed);
}

static uint64_t next64(attn_rng *r) {
    uint64_t s0 = r->s[0], s1 = r->s[1], result = s0 + s1;
    s1 ^= s0;
    r->s[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
    r->s[1] = rotl(s1, 37);
    return result;
}

uint32_t attn_rng_u32(attn_rng *r) { return (uint32_t)(next64(r) >> 32); }

float attn_rng_uniform(attn_rng *r) { return (float)(next64(r) >> 40) * (1.0f / 16777216.0f); }

float attn_rng_normal(attn_rng *r) {
    double u1 = ((double)(next64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (double)(next64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t attn_seed_mix(uint64_t seed, uint64_t k) {
    uint64_t z = seed ^ (k * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
