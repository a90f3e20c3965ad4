"""attn: the attention mechanism in C, from Python.

numpy in and out, without copies: float32 arrays whose last dimension is contiguous are read
where they lie, and results are new C-contiguous float32 arrays. A wrong dtype is a TypeError,
a wrong shape or layout a ValueError, and an error of the library carries attn's own message.
The GIL is released while the kernels run, so Python threads may call attn at once.

    import numpy as np, attn
    q = k = v = np.random.rand(2, 4, 16, 32).astype(np.float32)   # (B, H, N, d)
    o = attn.attention(q, k, v, causal=True)                       # (B, H, N, d)

attn.torch runs PyTorch's attention in attn (attn.torch.patch()); see its docstring.
The signatures and their documentation are in __init__.pyi beside this file.
"""
import numpy as _np

from ._attn import (Translator, __version__, attention, attention_backward, get_isa, get_threads, normalize,
                    scores, set_threads, weighted_sum)
from ._attn import MultiheadAttention as _MultiheadAttention

__all__ = ["attention", "attention_backward", "scores", "normalize", "weighted_sum", "MultiheadAttention",
           "Translator", "plot_attention", "explain", "set_threads", "get_threads", "get_isa", "__version__"]


def _to_numpy(x):
    """A torch tensor or array-like as a numpy array (tensors detached, moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return _np.asarray(x)


class MultiheadAttention(_MultiheadAttention):
    __doc__ = _MultiheadAttention.__doc__

    def load_state_dict(self, state_dict, prefix=""):
        """Copies the weights of torch.nn.MultiheadAttention's state_dict() (tensors or arrays)."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict must be a mapping of names to arrays, not {type(state_dict).__name__}")
        super().load_state_dict({k: _to_numpy(v) for k, v in state_dict.items()}, prefix)

    @classmethod
    def from_torch(cls, module):
        """The same layer as a torch.nn.MultiheadAttention, its weights copied."""
        if getattr(module, "bias_k", None) is not None or getattr(module, "add_zero_attn", False):
            raise ValueError("add_bias_kv and add_zero_attn are not supported")
        m = cls(module.embed_dim, module.num_heads, bias=module.in_proj_bias is not None, kdim=module.kdim,
                vdim=module.vdim)
        m.load_state_dict(module.state_dict())
        return m


def plot_attention(weights, source=None, target=None, ax=None, title=None, cmap="viridis", show_values=False):
    """Draws attention weights (rows = queries / target words, columns = keys / source words)
    with matplotlib and returns the Axes. weights may also be one result of
    Translator.translate(), whose alignment, source and target are used.
    Chinese labels need a CJK font (Debian: fonts-wqy-microhei); one is picked if installed."""
    import matplotlib.pyplot as plt
    from matplotlib import font_manager
    if isinstance(weights, dict):
        source = weights["source"] if source is None else source
        target = weights["target"] if target is None else target
        title = weights.get("text") if title is None else title
        weights = weights["alignment"]
        if weights is None:
            raise ValueError("this translation has no alignment (a model without attention)")
    w = _np.asarray(weights, dtype=_np.float32)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (rows, cols), not of shape {w.shape}")
    for name, labels, n in (("source", source, w.shape[1]), ("target", target, w.shape[0])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} {name} labels for {n} {'columns' if name == 'source' else 'rows'}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.5 * w.shape[1], 1 + 0.5 * w.shape[0]))
    ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(1e-9, float(w.max())), aspect="auto")
    cjk = [f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name or "WenQuanYi" in f.name]
    font = {"fontfamily": cjk[0]} if cjk else {}
    ax.set_xticks(range(w.shape[1]))
    ax.set_yticks(range(w.shape[0]))
    if source is not None:
        ax.set_xticklabels(source, rotation=90, **font)
    if target is not None:
        ax.set_yticklabels(target, **font)
    ax.set_xlabel("source (key)")
    ax.set_ylabel("target (query)")
    if title:
        ax.set_title(title, **font)
    if show_values:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if w[i, j] < 0.5 * w.max() else "black")
    return ax


# The worked example of `attn explain`: translating 我爱你 into "I love you". Keys = values are
# hand-made embeddings of the Chinese words with readable features; a query describes what
# the decoder looks for when it is about to write an English word.
_FEATURES = ["speaker", "action", "listener", "person"]
_WORDS = [("我", "wǒ", "I", [1.0, 0.1, 0.0, 0.8]), ("爱", "ài", "love", [0.1, 1.0, 0.1, 0.0]),
          ("你", "nǐ", "you", [0.0, 0.1, 1.0, 0.8])]
_QUERIES = {"I": [4.0, 0.0, 0.0, 1.0], "love": [0.0, 4.0, 0.0, 0.0], "you": [0.0, 0.0, 4.0, 1.0]}


def explain(query="I", score="scaled", scale=None):
    """The worked example of `attn explain` as data: the three steps of attention on the
    translation of 我爱你 into "I love you", computed by the library.

    query: the English word being written ("I", "love", "you") or 4 numbers for the features
    speaker, action, listener, person. score: "dot", "scaled" or "cosine".
    Returns a dict: words (Chinese, pinyin, English), features, keys (3, 4), values (3, 4),
    query (4,), scores (3,), weights (3,), output (4,), and the word the output is closest to."""
    q = _np.asarray(_QUERIES[query] if isinstance(query, str) and query in _QUERIES else query, dtype=_np.float32)
    if q.shape != (4,):
        raise ValueError(f"query must be one of {sorted(_QUERIES)} or 4 numbers, not {query!r}")
    keys = _np.array([w[3] for w in _WORDS], dtype=_np.float32)
    s = scores(q.reshape(1, 4), keys, score=score, scale=scale)
    p = normalize(s)
    o = weighted_sum(p, keys)
    closest = int(_np.argmin(((keys - o) ** 2).sum(axis=1)))
    return {
        "sentence": "我爱你", "translation": "I love you",
        "words": [{"zh": w[0], "pinyin": w[1], "en": w[2]} for w in _WORDS],
        "features": list(_FEATURES), "keys": keys, "values": keys.copy(), "query": q, "score": score,
        "scores": s[0], "weights": p[0], "output": o[0], "closest": _WORDS[closest][0],
    }
