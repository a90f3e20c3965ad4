from typing import Optional
import torch

def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attn_mask: Optional[torch.Tensor] = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None) -> torch.Tensor:
    """PyTorch 2's F.scaled_dot_product_attention in attn's fused kernels (forward and
    backward); falls back to PyTorch (one warning per reason) for CUDA, non-float32, dropout,
    masks needing a gradient, or key/value heads differing from the query's."""

def patch() -> None:
    """Runs PyTorch's attention in attn: F.scaled_dot_product_attention (PyTorch >= 2.0) or
    F.multi_head_attention_forward (older, e.g. Debian's 1.13)."""

def unpatch() -> None: ...
def is_patched() -> bool: ...
