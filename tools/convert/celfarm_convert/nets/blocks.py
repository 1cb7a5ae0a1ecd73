"""Building blocks shared by the colorizer UNet and its two encoders.

Parameter names follow the published checkpoint's layout (the latent-diffusion "openaimodel"
lineage: `in_layers.0`, `emb_layers.1`, `op`, `conv`, ...), because the weights are loaded into
these modules by key. Everything is written for export: plain tensor ops, no in-place updates on
values that tracing must see, shapes taken from tensors so that H, W and batch stay dynamic.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """32-group GroupNorm computed in the weights' dtype (fp32 in our fp32 export)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(32, channels, eps=eps)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoid of the (possibly fractional) timestep: cosine half first, periods up to 10^4."""
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / half)
    angles = t.float()[:, None] * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] → [B, H·W, C]."""
    return x.flatten(2).transpose(1, 2)


def untokens(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B, H·W, C] → [B, C, H, W] with the spatial size of `like`."""
    b, c = t.shape[0], t.shape[2]
    return t.transpose(1, 2).reshape(b, c, like.shape[2], like.shape[3])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(q·kᵀ/√d)·v over `heads` heads; q [B, n, h·d], k/v [B, m, h·d] → [B, n, h·d]."""
    b, n, inner = q.shape
    m = k.shape[1]
    d = inner // heads
    qh = q.reshape(b, n, heads, d).transpose(1, 2)
    kh = k.reshape(b, m, heads, d).transpose(1, 2)
    vh = v.reshape(b, m, heads, d).transpose(1, 2)
    weights = torch.softmax(torch.matmul(qh, kh.transpose(2, 3)) * (d ** -0.5), dim=-1)
    return torch.matmul(weights, vh).transpose(1, 2).reshape(b, n, inner)


class ResBlock(nn.Module):
    """Residual block with the time embedding added between its two convolutions."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip_connection: nn.Module = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, out_channels or channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward of the transformer blocks (keys `net.0.proj`, `net.2`)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
