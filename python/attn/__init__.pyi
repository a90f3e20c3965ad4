"""Type hints and documentation of attn's Python API (the module is C: python/attnmodule.c).

Arrays: numpy.ndarray of float32 in native byte order. Inputs q, k, v (and v of
weighted_sum) may be strided views whose last dimension is contiguous (e.g. a transpose of a
projection's (B, N, H, d) output): they are read in place, never copied. Other array
arguments must be C-contiguous. Results are new C-contiguous float32 arrays.
Shapes: q (..., Nq, dq), k (..., Nk, dk), v (..., Nk, dv) with "..." = (B, H), (B,) or ()
(the same for all three; with (B, H), k and v may have Hkv heads, H % Hkv == 0: grouped
heads). No dimension may be 0. Masks broadcast, by numpy's rules, to the scores' shape
(..., Nq, Nk) with q's leading dimensions.
Errors: TypeError (not an array, wrong dtype), ValueError (shapes, strides, values; the
library's messages start with "attn: "), MemoryError, OSError (files), KeyError (a missing
tensor in a state_dict or file).
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
__version__: str

def attention(q: F32, k: F32, v: F32, *, score: str = "scaled", scale: Optional[float] = None,
              mask: Optional[npt.NDArray[Union[np.bool_, np.uint8]]] = None, bias: Optional[F32] = None,
              causal: bool = False, window: int = 0, key_lengths: Optional[npt.ArrayLike] = None,
              params: Optional[Dict[str, F32]] = None, return_weights: bool = False,
              return_lse: bool = False) -> Union[F32, Tuple[F32, ...]]:
    """softmax(score(q, k) + masks) v, fused (no (Nq, Nk) matrix unless return_weights).

    score: "dot" (q.k, times scale if given), "scaled" (q.k * scale, default 1/sqrt(dq)),
      "cosine" (cos(q, k) * scale, default 1), "general" (q^T W k, params={"W": (dq, dk)}),
      "additive" (va . tanh(Wa q + ba + Ua k + bu) + bv, params Wa (A, dq), ba (A,), Ua (A, dk),
      bu (A,), va (A,), bv (1,); Wa and Ua may both be left out for projected q, k of size A).
    Masks, combined (a key is visible when every mask allows it):
      mask: bool (or uint8), True = may attend (as F.scaled_dot_product_attention),
        broadcast to the scores' shape (..., Nq, Nk) by numpy's rules; bias: float32, added to the scores
        (-inf hides), broadcast the same way; causal: query i sees keys j <= i (top-left
        aligned); window W > 0: keys i-W < j <= i; key_lengths (B,) integers: batch b sees
        keys j < key_lengths[b].
    A query that sees no key gets zero weights and a zero output (never NaN).
    Returns o (..., Nq, dv); with return_weights and/or return_lse a tuple (o, p, lse):
    p (..., Nq, Nk) the attention weights, lse (..., Nq) the log-sum-exp of each masked
    score row (give it to attention_backward)."""

def attention_backward(q: F32, k: F32, v: F32, o: F32, grad_o: F32, *, lse: Optional[F32] = None,
                       score: str = "scaled", scale: Optional[float] = None, mask: Any = None,
                       bias: Optional[F32] = None, causal: bool = False, window: int = 0,
                       key_lengths: Optional[npt.ArrayLike] = None,
                       params: Optional[Dict[str, F32]] = None) -> Tuple[Any, ...]:
    """Gradients of attention(): (dq, dk, dv), plus a dict of the score parameters' gradients
    when params is given. o is attention()'s output, grad_o = dLoss/do, lse its log-sum-exp
    (recomputed if None); the options must be the forward's. dq, dk, dv are laid out as q,
    k, v (a transposed view gets a gradient with the same strides)."""

def scores(q: F32, k: F32, *, score: str = "scaled", scale: Optional[float] = None,
           params: Optional[Dict[str, F32]] = None) -> F32:
    """Step 1: the raw similarity scores s (..., Nq, Nk), scale included, no masks."""

def normalize(s: F32, *, mask: Any = None, bias: Optional[F32] = None, causal: bool = False, window: int = 0,
              key_lengths: Optional[npt.ArrayLike] = None) -> F32:
    """Step 2: masks and softmax over the last axis: s (..., Nq, Nk) -> p."""

def weighted_sum(p: F32, v: F32) -> F32:
    """Step 3: o = p v: p (..., Nq, Nk), v (..., Nk, dv) -> o (..., Nq, dv)."""

def set_threads(n: int) -> None:
    """Threads of the library's parallel work (default: the CPUs, or ATTN_THREADS)."""

def get_threads() -> int: ...
def get_isa() -> str:
    """The kernels in use: "ref", "avx2" or "avx512" (ATTN_ISA overrides)."""

class MultiheadAttention:
    """torch.nn.MultiheadAttention(embed_dim, num_heads, bias, kdim, vdim, batch_first=True)
    in inference mode, in attn. Weights start at zero: load_state_dict(), load() or
    MultiheadAttention.from_torch(module)."""
    embed_dim: int
    num_heads: int
    kdim: int
    vdim: int
    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, kdim: Optional[int] = None,
                 vdim: Optional[int] = None, batch_first: bool = True) -> None: ...
    @classmethod
    def from_torch(cls, module: Any) -> "MultiheadAttention": ...
    def load_state_dict(self, state_dict: Mapping[str, Any], prefix: str = "") -> None:
        """PyTorch's names: in_proj_weight (3E, E) (or q/k/v_proj_weight when kdim or vdim
        differ from E), in_proj_bias (3E,), out_proj.weight (E, E), out_proj.bias (E,).
        Tensors or arrays of any real dtype (copied as float32)."""
    def state_dict(self) -> Dict[str, F32]: ...
    def load(self, path: str, prefix: str = "") -> None:
        """The weights from a safetensors file under the state_dict names (F32/F64/F16/BF16)."""
    def save(self, path: str, prefix: str = "") -> None: ...
    def forward(self, query: F32, key: F32, value: F32, key_padding_mask: Optional[npt.NDArray[np.bool_]] = None,
                need_weights: bool = True, attn_mask: Optional[npt.NDArray[Any]] = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> Tuple[F32, Optional[F32]]:
        """query (B, Nq, E), key (B, Nk, kdim), value (B, Nk, vdim), C-contiguous.
        key_padding_mask (B, Nk) bool, True = padding. attn_mask (Nq, Nk), (B*H, Nq, Nk) or
        (H, Nq, Nk): bool (True = NOT allowed, as PyTorch's) or float32 (added).
        Returns (out (B, Nq, E), weights (B, Nq, Nk) averaged over the heads, (B, H, Nq, Nk)
        with average_attn_weights=False, or None with need_weights=False)."""
    def __call__(self, query: F32, key: F32, value: F32, key_padding_mask: Optional[npt.NDArray[np.bool_]] = None,
                 need_weights: bool = True, attn_mask: Optional[npt.NDArray[Any]] = None,
                 average_attn_weights: bool = True, is_causal: bool = False) -> Tuple[F32, Optional[F32]]: ...

class Translation(TypedDict):
    text: str                    # the translation, detokenised
    source: List[str]            # source tokens, "<eos>" last
    target: List[str]            # target tokens, "<eos>" last when decoding ended with it
    alignment: Optional[F32]     # (len(target), len(source)) attention weights, None without attention
    score: float                 # what the beam ranked: logp / len^len_alpha
    unknown: int                 # source tokens not in the vocabulary

class Translator:
    """A translation model of attn (seq2seq or Transformer) loaded from its checkpoint
    directory (config.json, model.safetensors, src_vocab.txt, tgt_vocab.txt), e.g.
    models/zh-en-small. One translator is for one thread at a time (RuntimeError otherwise)."""
    label: str
    def __init__(self, model_dir: str) -> None: ...
    def translate(self, sentences: Sequence[str], beam: int = 5, max_len: int = 0,
                  len_alpha: float = 1.0) -> List[Translation]:
        """Translates each sentence (beam 1 = greedy; max_len 0 = 2 * source + 10)."""

def plot_attention(weights: Union[npt.ArrayLike, Translation], source: Optional[Sequence[str]] = None,
                   target: Optional[Sequence[str]] = None, ax: Any = None, title: Optional[str] = None,
                   cmap: str = "viridis", show_values: bool = False) -> Any:
    """A heatmap of weights (rows = queries / target words, columns = keys / source words)
    with matplotlib; returns the Axes. Takes a Translation directly."""

def explain(query: Union[str, Sequence[float]] = "I", score: str = "scaled",
            scale: Optional[float] = None) -> Dict[str, Any]:
    """The worked example of `attn explain` (我爱你 -> "I love you") as data: keys, values,
    query, scores, weights, output and the closest word."""
