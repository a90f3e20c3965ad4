"""Float64 numpy references for the Python tests: attention with every score and mask, and
numerical gradients (central differences) of any function of arrays."""
import numpy as np


def scores(q, k, score="scaled", scale=None, params=None):
    q, k = q.astype(np.float64), k.astype(np.float64)
    H, Hkv = q.shape[-3] if q.ndim == 4 else 1, k.shape[-3] if k.ndim == 4 else 1
    if q.ndim == 4 and H != Hkv:
        k = np.repeat(k, H // Hkv, axis=1)
    if score in ("dot", "scaled"):
        s = q @ np.swapaxes(k, -1, -2)
        s = s * (scale if scale is not None else (1.0 / np.sqrt(q.shape[-1]) if score == "scaled" else 1.0))
    elif score == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
        kn = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
        s = (qn @ np.swapaxes(kn, -1, -2)) * (scale if scale is not None else 1.0)
    elif score == "general":
        s = (q @ params["W"].astype(np.float64) @ np.swapaxes(k, -1, -2)) * (scale if scale is not None else 1.0)
    elif score == "additive":
        p = {n: v.astype(np.float64) for n, v in params.items()}
        wq = q @ p["Wa"].T + p.get("ba", 0.0)
        uk = k @ p["Ua"].T + p.get("bu", 0.0)
        s = np.tanh(wq[..., :, None, :] + uk[..., None, :, :]) @ p["va"] + p.get("bv", np.zeros(1))[0]
    return s


def normalize(s, mask=None, bias=None, causal=False, window=0, key_lengths=None):
    s = s.astype(np.float64)
    nq, nk = s.shape[-2:]
    allow = np.ones(s.shape, dtype=bool)
    i, j = np.arange(nq)[:, None], np.arange(nk)[None, :]
    if causal or window:
        allow &= j <= i
    if window:
        allow &= j > i - window
    if key_lengths is not None:
        kl = np.asarray(key_lengths).reshape((-1,) + (1,) * (s.ndim - 1))
        allow &= np.arange(nk) < kl
    if mask is not None:
        allow &= np.broadcast_to(mask.astype(bool), s.shape)
    if bias is not None:
        s = s + bias
    s = np.where(allow, s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(allow, np.exp(s - m), 0.0)
    z = e.sum(axis=-1, keepdims=True)
    return np.where(z > 0, e / np.where(z > 0, z, 1.0), 0.0)


def weighted_sum(p, v):
    H, Hkv = p.shape[-3] if p.ndim == 4 else 1, v.shape[-3] if v.ndim == 4 else 1
    v = v.astype(np.float64)
    if p.ndim == 4 and H != Hkv:
        v = np.repeat(v, H // Hkv, axis=1)
    return p @ v


def attention(q, k, v, score="scaled", scale=None, params=None, **masks):
    return weighted_sum(normalize(scores(q, k, score, scale, params), **masks), v)


def numeric_grad(f, arrays, weights, eps=1e-6):
    """Gradients of sum(f(*arrays) * weights) with respect to each array, by central
    differences in float64."""
    arrays = [a.astype(np.float64) for a in arrays]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = a[idx]
            a[idx] = old + eps
            hi = np.sum(f(*arrays) * weights)
            a[idx] = old - eps
            lo = np.sum(f(*arrays) * weights)
            a[idx] = old
            g[idx] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads
