"""attn.torch: PyTorch's attention on a CPU, run by attn's fused kernels.

    import attn.torch
    attn.torch.patch()      # nn.MultiheadAttention / nn.Transformer now attend in attn
    ...                     # train or evaluate as usual
    attn.torch.unpatch()

scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None)
has PyTorch 2's semantics and is a torch.autograd.Function whose forward and backward are
attn's fused kernels (attention and attention_backward), reading contiguous CPU float32
tensors without copies. What attn does not cover (CUDA tensors, dtypes other than float32,
dropout, a mask that needs a gradient, key/value heads differing from query heads) falls back
to PyTorch, with a warning the first time for each reason.

patch() swaps F.scaled_dot_product_attention where PyTorch has it (2.0 on), and, in older
PyTorch (Debian's 1.13, whose F.multi_head_attention_forward inlines its own bmm/softmax),
F.multi_head_attention_forward for one that keeps the projections in PyTorch and runs the
attention -- float or bool attn_mask, key_padding_mask, is_causal -- in attn.

In eval mode under torch.no_grad(), PyTorch 1.13's nn.MultiheadAttention and
nn.TransformerEncoderLayer may take their own fused fast paths (torch._native_multi_head_attention,
torch._transformer_encoder_layer_fwd), which never reach F.multi_head_attention_forward: that
inference stays PyTorch's. Training, and inference with gradients, go through attn.

Differences from PyTorch, on purpose: a query that sees no key at all gets zero weights and a
zero output (PyTorch: NaN); results agree with PyTorch's to float32 rounding (the summation
orders differ), not bit for bit.
"""
import inspect
import math
import warnings

import torch
import torch.nn.functional as F

from . import _attn

__all__ = ["scaled_dot_product_attention", "patch", "unpatch", "is_patched"]

_ORIG_SDPA = getattr(F, "scaled_dot_product_attention", None)
_ORIG_MHA = F.multi_head_attention_forward
_MHA_SIG = inspect.signature(_ORIG_MHA)
_warned = set()


def _fallback(reason):
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"attn.torch: {reason}: running PyTorch's attention instead", RuntimeWarning, stacklevel=3)


def _np(t):
    """A CPU tensor as a numpy array over the same memory (copied only where the kernels cannot
    read it: a last dimension that is not contiguous, a tensor broadcast along every dimension)."""
    if (t.shape[-1] > 1 and t.stride(-1) != 1) or (t.dim() > 1 and not any(t.stride()[:-1])):
        t = t.contiguous()
    return t.detach().numpy()


class _Attention(torch.autograd.Function):
    """O = softmax(q k^T * scale + masks) v over (B, H, N, d) tensors, and the weights P when
    asked for, forward and backward in attn. mask: bool, True = may attend; bias: float, added."""

    @staticmethod
    def forward(ctx, q, k, v, mask, bias, causal, scale, need_weights):
        opts = dict(mask=None if mask is None else _np(mask), bias=None if bias is None else _np(bias),
                    causal=causal, scale=scale)
        res = _attn.attention(_np(q), _np(k), _np(v), return_weights=need_weights, return_lse=True, **opts)
        o = torch.from_numpy(res[0])
        p = torch.from_numpy(res[1]) if need_weights else None
        lse = torch.from_numpy(res[-1])
        ctx.opts = opts
        ctx.scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(q, k, v, o, lse, p)
        return o, p

    @staticmethod
    def backward(ctx, grad_o, grad_p):
        q, k, v, o, lse, p = ctx.saved_tensors
        if grad_o is None:
            grad_o = torch.zeros_like(o)
        elif grad_o.dtype != torch.float32:
            grad_o = grad_o.float()
        if not grad_o.is_contiguous():
            grad_o = grad_o.contiguous()
        dq, dk, dv = (torch.from_numpy(g) for g in
                      _attn.attention_backward(_np(q), _np(k), _np(v), _np(o), _np(grad_o), lse=_np(lse), **ctx.opts))
        if grad_p is not None:  # the weights were used too: through the softmax to the scores
            ds = p * (grad_p - (grad_p * p).sum(-1, keepdim=True)) * ctx.scale
            dq = dq + ds @ k
            dk = dk + ds.transpose(-2, -1) @ q
        return dq, dk, dv, None, None, None, None, None


def _math_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """PyTorch 2's definition of scaled_dot_product_attention, in PyTorch operations."""
    s = (q @ k.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
    if is_causal:
        keep = torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool, device=s.device).tril()
        s = s.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    p = torch.softmax(s, dim=-1)
    if dropout_p > 0.0:
        p = F.dropout(p, dropout_p)
    return p @ v


def _why_not(tensors, masks=(), dropout_p=0.0):
    """Why attn cannot run this call (None when it can)."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return "TorchScript"
    for t in tensors:
        if t.device.type != "cpu":
            return f"a {t.device.type} tensor"
        if t.dtype != torch.float32:
            return f"dtype {t.dtype}"
    for m in masks:
        if m is not None and (m.device.type != "cpu" or m.requires_grad or
                              m.dtype not in (torch.bool, torch.float32)):
            return "a mask on another device, of another dtype, or needing a gradient"
    if dropout_p > 0.0:
        return "dropout"
    return None


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """PyTorch 2's F.scaled_dot_product_attention in attn: query (..., L, E), key (..., S, E),
    value (..., S, Ev) with 2 to 4 dimensions; attn_mask bool (True = may attend) or float
    (added), broadcastable to (..., L, S); is_causal: query i sees keys j <= i."""
    why = _why_not((query, key, value), (attn_mask,), dropout_p)
    if why is None and not (2 <= query.dim() <= 4 and key.dim() == query.dim() == value.dim()):
        why = "tensors of other than 2 to 4 dimensions"
    if why is None and query.dim() == 4 and key.shape[1] != query.shape[1]:
        why = "key/value heads differing from query heads"
    if why is not None:
        _fallback(why)
        sdpa = _ORIG_SDPA or _math_sdpa
        kw = {} if scale is None else {"scale": scale}
        return sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kw)
    mask = attn_mask if attn_mask is not None and attn_mask.dtype == torch.bool else None
    bias = attn_mask if attn_mask is not None and attn_mask.dtype != torch.bool else None
    return _Attention.apply(query, key, value, mask, bias, bool(is_causal), scale, False)[0]


def _is_causal_mask(m):
    """Whether an (L, L) attn_mask of nn.MultiheadAttention is the causal one: -inf above the
    diagonal and 0 elsewhere (nn.Transformer.generate_square_subsequent_mask), or bool True
    (not allowed) above the diagonal. attn then skips the hidden half instead of adding -inf."""
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        return False
    upper = torch.ones(m.shape, dtype=torch.bool).triu(1)
    if m.dtype == torch.bool:
        return torch.equal(m, upper)
    return torch.equal(m.isneginf(), upper) and not bool(m.masked_fill(upper, 0).any())


def _mha_forward(*args, **kwargs):
    """F.multi_head_attention_forward with the attention in attn (projections in PyTorch)."""
    a = _MHA_SIG.bind(*args, **kwargs)
    a.apply_defaults()
    x = a.arguments
    query, key, value = x["query"], x["key"], x["value"]
    kpm, am = x["key_padding_mask"], x["attn_mask"]
    why = _why_not((query, key, value), (kpm, am), x["dropout_p"] if x["training"] else 0.0)
    if why is None:
        if x["bias_k"] is not None or x["bias_v"] is not None or x["add_zero_attn"]:
            why = "add_bias_kv or add_zero_attn"
        elif x["static_k"] is not None or x["static_v"] is not None:
            why = "static_k or static_v"
        elif query.dim() != 3:
            why = "unbatched input"
        elif not hasattr(F, "_in_projection_packed") or torch.overrides.has_torch_function(
                (query, key, value, x["in_proj_weight"], x["out_proj_weight"])):
            why = "a PyTorch without F._in_projection_packed, or tensor subclasses"
    if why is not None:
        _fallback(why)
        return _ORIG_MHA(*args, **kwargs)

    L, B, E = query.shape
    S = key.shape[0]
    H = x["num_heads"]
    d = E // H
    w_in, b_in = x["in_proj_weight"], x["in_proj_bias"]
    if not x["use_separate_proj_weight"]:
        q, k, v = F._in_projection_packed(query, key, value, w_in, b_in)
    else:
        b_q, b_k, b_v = b_in.chunk(3) if b_in is not None else (None, None, None)
        q, k, v = (F.linear(query, x["q_proj_weight"], b_q), F.linear(key, x["k_proj_weight"], b_k),
                   F.linear(value, x["v_proj_weight"], b_v))
    # (N, B, E) -> (B, H, N, d) views: the kernels read them where they lie.
    q, k, v = (t.unflatten(-1, (H, d)).permute(1, 2, 0, 3) for t in (q, k, v))

    mask = bias = None
    causal = bool(x.get("is_causal", False))
    if am is not None and _is_causal_mask(am):
        am, causal = None, True
    if am is not None:
        if am.dim() == 3:
            am = am.reshape(B, H, L, S)
        if am.dtype == torch.bool:
            mask = ~am
        else:
            bias = am
    if kpm is not None:
        kpm = kpm.reshape(B, 1, 1, S)
        if kpm.dtype == torch.bool:
            mask = ~kpm if mask is None else mask & ~kpm
        else:
            bias = kpm if bias is None else bias + kpm
    need = bool(x["need_weights"])
    o, p = _Attention.apply(q, k, v, mask, bias, causal, None, need)
    out = F.linear(o.permute(2, 0, 1, 3).reshape(L, B, E), x["out_proj_weight"], x["out_proj_bias"])
    if not need:
        return out, None
    return out, (p.mean(dim=1) if x["average_attn_weights"] else p)


def patch():
    """Runs PyTorch's attention in attn from now on: F.scaled_dot_product_attention (PyTorch
    2.0 on) or F.multi_head_attention_forward (older PyTorch). Idempotent."""
    if _ORIG_SDPA is not None:
        F.scaled_dot_product_attention = scaled_dot_product_attention
    else:
        F.multi_head_attention_forward = _mha_forward


def unpatch():
    """Restores PyTorch's own attention."""
    if _ORIG_SDPA is not None:
        F.scaled_dot_product_attention = _ORIG_SDPA
    F.multi_head_attention_forward = _ORIG_MHA


def is_patched():
    """Whether patch() is in force."""
    return F.multi_head_attention_forward is _mha_forward or (
        _ORIG_SDPA is not None and F.scaled_dot_product_attention is scaled_dot_product_attention)
