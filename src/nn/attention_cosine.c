/* The cosine score's two helpers (attention.c): rows normalised before the dot-product
 * kernels, and the chain rule through that normalisation after them. */
#include <math.h>
#include <stddef.h>

#include "nn/nn_internal.h"

#define COS_EPS 1e-12f

/* Normalise rows of X (B, Hx, N, d) with strides xs into contiguous out; norms kept. */
void attn__cos_normalise_rows(const float *X, const int64_t xs[3], int B, int Hx, int N, int d, float *out, float *norms) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hx; h++)
            for (int n = 0; n < N; n++) {
                const float *x = X + b * xs[0] + h * xs[1] + n * xs[2];
                size_t r = ((size_t)b * Hx + h) * N + n;
                double ss = 0.0;
                for (int c = 0; c < d; c++) ss += (double)x[c] * x[c];
                float nrm = (float)sqrt(ss);
                if (nrm < COS_EPS) nrm = COS_EPS;
                norms[r] = nrm;
                for (int c = 0; c < d; c++) out[r * d + c] = x[c] / nrm;
            }
}

/* Cosine chain rule, in place on dX (contiguous, rows of d): x̂ = x / n with n = max(|x|, eps):
 * dx = (dx̂ - x̂ (x̂ . dx̂)) / n when |x| > eps, else dx̂ / eps. Result written with strides. */
void attn__cos_backward(const float *xhat, const float *norms, const float *dxhat, size_t rows, int d,
                        float *dx, const int64_t s[3], int Hx, int N) {
    for (size_t r = 0; r < rows; r++) {
        const float *xh = xhat + r * d, *g = dxhat + r * d;
        int b = (int)(r / ((size_t)Hx * N)), h = (int)(r / N % Hx), n = (int)(r % N);
        float *out = dx + b * s[0] + h * s[1] + n * s[2];
        float proj = 0.0f;
        if (norms[r] > COS_EPS)
            for (int c = 0; c < d; c++) proj += xh[c] * g[c];
        for (int c = 0; c < d; c++) out[c] = (g[c] - xh[c] * proj) / norms[r];
    }
}
