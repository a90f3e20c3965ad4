/* The additive (Bahdanau) score's kernel (see additive.h): moved here from the seq2seq decoder
 * step (models/s2s_additive.c) so that the library has one additive implementation, with the
 * arithmetic that training has always run (the golden training hashes depend on it). */
#include "kernels/ref/additive.h"

/* tanh as a rational function (Eigen's generic_fast_tanh_float: odd degree-13 numerator over
 * even degree-6 denominator on [-7.9, 7.9]), relative error below 4e-7 against tanhf, and
 * plain arithmetic, so loops over it vectorise (glibc's tanhf is a scalar call that cost a
 * third of a training step). */
static inline float fast_tanh(float x) {
    const float c = 7.90531110763549805f;
    float xc = x > c ? c : x < -c ? -c : x;
    float x2 = xc * xc;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

float attn__dot8(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

float attn__additive_score(const float *wq, const float *uk, const float *va, int A, float *t) {
    for (int a = 0; a < A; a++) t[a] = fast_tanh(wq[a] + uk[a]);
    return attn__dot8(va, t, A);
}

void attn__additive_score_grad(float ds, const float *t, const float *va, int A, float *dva, float *dwq, float *duk) {
    if (dva)
        for (int a = 0; a < A; a++) dva[a] += ds * t[a];
    for (int a = 0; a < A; a++) {
        float dz = ds * va[a] * (1.0f - t[a] * t[a]);
        dwq[a] += dz;
        duk[a] += dz;
    }
}
