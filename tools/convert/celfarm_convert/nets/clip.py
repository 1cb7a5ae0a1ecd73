"""CLIP image tower (OpenCLIP ViT layout) as ColorizeDiffusion uses it.

Parameter names follow OpenCLIP's ``visual.*`` tensors (releases up to 2.24) with the
prefix removed, so ``laion2b_s32b_b79k`` ViT-H-14 weights load with ``strict=True``.
Attention is written out by hand instead of using ``nn.MultiheadAttention`` so that the
ONNX graph is plain MatMul/Softmax, while the ``in_proj_*``/``out_proj`` names remain.

ColorizeDiffusion takes *every* token (class token included) through ``ln_post`` and the
projection, so :meth:`VisionTransformer.forward` returns ``[B, grid*grid + 1, output_dim]``
rather than OpenCLIP's pooled vector.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VIT_H_14", "VisionTransformer", "visual_state_from"]

# OpenCLIP "ViT-H-14" vision settings (head width 80 -> 16 heads, projection to 1024).
VIT_H_14 = dict(image_size=224, patch_size=14, width=1280, layers=32, heads=16, output_dim=1024)

# Where the image tower sits inside the files we accept, tried in this order:
# ColorizeDiffusion inference model (OpenCLIP wrapper -> image embedder -> open_clip visual),
# ColorizeDiffusion training configs (image embedder directly), and an OpenCLIP file.
_VISUAL_PREFIXES = (
    "cond_stage_model.visual.model.",
    "cond_stage_model.model.",
    "visual.",
)


class _Attention(nn.Module):
    """Multi-head self-attention holding the fused ``in_proj`` tensors of the checkpoint."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = width // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        fused = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        # [b, n, 3, heads, head_dim] -> three tensors of [b, heads, n, head_dim]
        fused = fused.reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = fused[0], fused[1], fused[2]
        scores = torch.matmul(query * (self.head_dim ** -0.5), key.transpose(-2, -1))
        mixed = torch.matmul(torch.softmax(scores, dim=-1), value)
        return self.out_proj(mixed.transpose(1, 2).reshape(b, n, d))


class _FeedForward(nn.Module):
    """Two-layer MLP with exact (erf) GELU; ``c_fc``/``c_proj`` are checkpoint names."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class _Block(nn.Module):
    """Pre-LN transformer block (ViT-H-14 has no layer-scale, so no ``ls_*`` tensors)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = _Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = _FeedForward(width, int(width * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Stack(nn.Module):
    """Holds the blocks under ``resblocks`` so keys read ``transformer.resblocks.{i}``."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(_Block(width, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class VisionTransformer(nn.Module):
    """Patch-14 ViT returning projected tokens for every position.

    Input: CLIP-normalised pixels ``[B, 3, image_size, image_size]`` (the caller does the
    bicubic resize and mean/std normalisation). The positional table is fixed, so the
    spatial size must equal ``image_size``.
    """

    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        self.grid = image_size // patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid * self.grid + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5)
        self.transformer = _Stack(width, layers, heads, mlp_ratio)
        self.ln_post = nn.LayerNorm(width, eps=1e-5)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    @property
    def num_tokens(self) -> int:
        """Tokens per image: one class token plus one per patch."""
        return self.grid * self.grid + 1

    def forward(self, pixels: Tensor) -> Tensor:
        patches = self.conv1(pixels).flatten(2).transpose(1, 2)  # [B, grid*grid, width]
        cls = self.class_embedding.to(patches.dtype).reshape(1, 1, -1).expand(patches.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.positional_embedding.to(patches.dtype)
        tokens = self.transformer(self.ln_pre(tokens))
        return self.ln_post(tokens) @ self.proj


def visual_state_from(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Pick the image-tower tensors out of a full checkpoint, prefix stripped.

    Accepts an OpenCLIP file (``visual.*`` next to text-tower keys, which are ignored)
    or a ColorizeDiffusion checkpoint (``cond_stage_model.visual.model.*``, or
    ``cond_stage_model.model.*`` from the training configs). A Lightning-style
    ``{"state_dict": ...}`` wrapper is unwrapped. Raises ``ValueError`` when no prefix
    yields a tower, so the caller can print a one-line message.
    """
    inner = state.get("state_dict") if isinstance(state, Mapping) else None
    if isinstance(inner, Mapping):
        state = inner
    for prefix in _VISUAL_PREFIXES:
        picked = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        if "conv1.weight" in picked:
            return picked
    if "conv1.weight" in state and "class_embedding" in state:
        return dict(state)
    raise ValueError(
        "no CLIP image tower found: expected keys under "
        + ", ".join(repr(p) for p in _VISUAL_PREFIXES)
    )
