"""KL-regularised image autoencoder (the Stable Diffusion "KL-f8" VAE).

The parameter names mirror the published ``first_stage_model.*`` tensors with that
prefix removed (``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``post_quant_conv.*``),
so a checkpoint loads with ``load_state_dict(strict=True)``. Only inference paths
exist: there is no sampling, no loss and no time embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AutoencoderKL", "LOGVAR_MIN", "LOGVAR_MAX"]

# The checkpoint's posterior clamps log-variance to this range before use.
LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0

# Attention variants that keep the plain (norm, q, k, v, proj_out) parameter set.
_DOT_ATTENTION = ("vanilla", "vanilla-xformers")


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm as trained: 32 groups and a small epsilon (1e-6, not torch's 1e-5)."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def _conv3(c_in: int, c_out: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=padding)


def _conv1(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1)


@dataclass(frozen=True)
class _Layout:
    """The ``ddconfig`` block of the yaml, validated once so both halves agree."""

    ch: int
    out_ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]
    in_channels: int
    resolution: int
    z_channels: int
    double_z: bool = True
    dropout: float = 0.0
    resamp_with_conv: bool = True
    give_pre_end: bool = False
    tanh_out: bool = False
    attn_type: str = "vanilla"

    @staticmethod
    def parse(ddconfig: Mapping[str, Any]) -> "_Layout":
        """Read a yaml ``ddconfig``; reject options that would change the weight layout."""
        cfg = dict(ddconfig)
        if cfg.pop("use_linear_attn", False):
            raise ValueError("ddconfig.use_linear_attn is not supported (the checkpoint format has no linear attention)")
        attn_type = str(cfg.get("attn_type", "vanilla"))
        if attn_type not in _DOT_ATTENTION + ("none",):
            raise ValueError(f"ddconfig.attn_type {attn_type!r} is not supported")
        required = ("ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions",
                    "in_channels", "resolution", "z_channels")
        missing = [name for name in required if name not in cfg]
        if missing:
            raise ValueError(f"ddconfig lacks {', '.join(missing)}")
        known = set(_Layout.__dataclass_fields__)
        # The reference implementation swallows unknown keys too; we keep that tolerance.
        cfg = {k: v for k, v in cfg.items() if k in known}
        cfg["ch_mult"] = tuple(int(m) for m in cfg["ch_mult"])
        cfg["attn_resolutions"] = tuple(int(r) for r in cfg["attn_resolutions"])
        return _Layout(**cfg)


class _ResBlock(nn.Module):
    """Pre-norm residual block; a 1x1 ``nin_shortcut`` appears only when widths differ."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = _conv3(c_in, c_out)
        self.norm2 = _norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv3(c_out, c_out)
        if c_in != c_out:
            self.nin_shortcut = _conv1(c_in, c_out)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class _SpatialSelfAttention(nn.Module):
    """Single-head attention over all pixels, written with matmul/softmax for clean export."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q = _conv1(channels, channels)
        self.k = _conv1(channels, channels)
        self.v = _conv1(channels, channels)
        self.proj_out = _conv1(channels, channels)
        self.scale = channels ** -0.5  # a Python float, so tracing keeps it constant

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        query = self.q(y).reshape(b, c, -1).transpose(1, 2)  # [b, hw, c]
        key = self.k(y).reshape(b, c, -1)  # [b, c, hw]
        value = self.v(y).reshape(b, c, -1).transpose(1, 2)  # [b, hw, c]
        weights = torch.softmax(torch.bmm(query, key) * self.scale, dim=-1)
        mixed = torch.bmm(weights, value).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(mixed)


def _attention(channels: int, kind: str) -> nn.Module:
    return nn.Identity() if kind == "none" else _SpatialSelfAttention(channels)


class _Downsample(nn.Module):
    """Halves resolution; the conv variant pads right/bottom only, as the weights expect."""

    def __init__(self, channels: int, with_conv: bool) -> None:
        super().__init__()
        if with_conv:
            self.conv = _conv3(channels, channels, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self, "conv"):
            return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class _Upsample(nn.Module):
    """Doubles resolution with nearest-neighbour repeat, optionally followed by a 3x3 conv."""

    def __init__(self, channels: int, with_conv: bool) -> None:
        super().__init__()
        if with_conv:
            self.conv = _conv3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if hasattr(self, "conv") else x


class _Stage(nn.Module):
    """One resolution level: ``block``/``attn`` lists plus an optional resampler.

    The resampler attribute is named ``downsample`` or ``upsample`` because those
    names are part of the checkpoint keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()

    def run_blocks(self, x: Tensor) -> Tensor:
        for idx, res in enumerate(self.block):
            x = res(x)
            if len(self.attn) > 0:
                x = self.attn[idx](x)
        return x


class _Middle(nn.Module):
    """Bottleneck: residual, attention, residual (present in both encoder and decoder)."""

    def __init__(self, channels: int, dropout: float, attn_type: str) -> None:
        super().__init__()
        self.block_1 = _ResBlock(channels, channels, dropout)
        self.attn_1 = _attention(channels, attn_type)
        self.block_2 = _ResBlock(channels, channels, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Encoder(nn.Module):
    def __init__(self, cfg: _Layout) -> None:
        super().__init__()
        self.conv_in = _conv3(cfg.in_channels, cfg.ch)
        widths = [cfg.ch * m for m in cfg.ch_mult]
        level_count = len(widths)
        res = cfg.resolution
        c_prev = cfg.ch
        self.down = nn.ModuleList()
        for level, width in enumerate(widths):
            stage = _Stage()
            for _ in range(cfg.num_res_blocks):
                stage.block.append(_ResBlock(c_prev, width, cfg.dropout))
                c_prev = width
                if res in cfg.attn_resolutions:
                    stage.attn.append(_attention(c_prev, cfg.attn_type))
            if level != level_count - 1:
                stage.downsample = _Downsample(c_prev, cfg.resamp_with_conv)
                res //= 2
            self.down.append(stage)
        self.mid = _Middle(c_prev, cfg.dropout, cfg.attn_type)
        self.norm_out = _norm(c_prev)
        self.conv_out = _conv3(c_prev, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage.run_blocks(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Decoder(nn.Module):
    def __init__(self, cfg: _Layout) -> None:
        super().__init__()
        self.give_pre_end = cfg.give_pre_end
        self.tanh_out = cfg.tanh_out
        widths = [cfg.ch * m for m in cfg.ch_mult]
        level_count = len(widths)
        c_prev = widths[-1]
        res = cfg.resolution // 2 ** (level_count - 1)
        self.conv_in = _conv3(cfg.z_channels, c_prev)
        self.mid = _Middle(c_prev, cfg.dropout, cfg.attn_type)
        # Built coarse-to-fine, but stored so that index == level (finest is up.0).
        stages: list[_Stage] = []
        for level in reversed(range(level_count)):
            stage = _Stage()
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(_ResBlock(c_prev, widths[level], cfg.dropout))
                c_prev = widths[level]
                if res in cfg.attn_resolutions:
                    stage.attn.append(_attention(c_prev, cfg.attn_type))
            if level != 0:
                stage.upsample = _Upsample(c_prev, cfg.resamp_with_conv)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = _norm(c_prev)
        self.conv_out = _conv3(c_prev, cfg.out_ch)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            h = stage.run_blocks(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        if self.give_pre_end:
            return h
        h = self.conv_out(F.silu(self.norm_out(h)))
        return torch.tanh(h) if self.tanh_out else h


class AutoencoderKL(nn.Module):
    """VAE used as ``first_stage_model``; takes the yaml's ``first_stage_config.params``.

    ``encode_moments`` returns the posterior's mean and clamped log-variance (callers
    that want the deterministic latent use the mean); ``decode`` maps latents back to
    images in [-1, 1]. The latent scale factor (0.18215) belongs to the diffusion
    model, not to this module.
    """

    def __init__(self, *, embed_dim: int, ddconfig: Mapping[str, Any]) -> None:
        super().__init__()
        cfg = _Layout.parse(ddconfig)
        if not cfg.double_z:
            raise ValueError("ddconfig.double_z must be true: the KL autoencoder predicts mean and log-variance")
        self.embed_dim = int(embed_dim)
        self.encoder = _Encoder(cfg)
        self.decoder = _Decoder(cfg)
        self.quant_conv = _conv1(2 * cfg.z_channels, 2 * self.embed_dim)
        self.post_quant_conv = _conv1(self.embed_dim, cfg.z_channels)

    def encode_moments(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Image ``[B, C, H, W]`` -> ``(mean, logvar)``, each ``[B, embed_dim, H/f, W/f]``."""
        moments = self.quant_conv(self.encoder(image))
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, latent: Tensor) -> Tensor:
        """Unscaled latent ``[B, embed_dim, h, w]`` -> image ``[B, out_ch, h*f, w*f]``."""
        return self.decoder(self.post_quant_conv(latent))

