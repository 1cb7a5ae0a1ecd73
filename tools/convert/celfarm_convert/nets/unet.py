"""The v2 colorizer UNet and its background/style encoders, as graphs with explicit knobs.

State-dict keys and shapes are those of the published checkpoint (`model.diffusion_model.*`,
`bg_encoder.*`, `style_encoder.*`, prefixes stripped), so the weights load with strict=True.
What the official modules keep as Python attributes set per request (reference scales, fg/bg/merge
scales, mask threshold, LoRA mode, "is there a style/background input") are tensors here, so one
exported graph serves every mode (shared/model-contract.md G7).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    Downsample,
    FeedForward,
    GroupNorm32,
    ResBlock,
    Upsample,
    attention,
    timestep_embedding,
    tokens,
    untokens,
)


@dataclass
class SplitInputs:
    """Per-call tensors of the mask-split cross-attention (contract G7 step 4)."""

    context_fg: torch.Tensor
    context_bg: torch.Tensor
    mask: torch.Tensor  # [N, 1, h, w] at latent resolution
    threshold: torch.Tensor
    ref_scales: torch.Tensor  # [16]
    fg_scale: torch.Tensor
    bg_scale: torch.Tensor
    merge_scale: torch.Tensor
    lora_fg_gate: torch.Tensor
    lora_bg_gate: torch.Tensor


@dataclass
class InjectionInputs:
    """Per-call tensors of attention injection (docs/attention-injection.md, graph `unet_inject`).

    `banks[l]` [N, B_l, C_l] are the keys/values block l's self-attention takes besides its own
    tokens, `blend` [N] weighs plain against banked self-attention per batch entry, and each block
    stores its LayerNorm-1 output (its self-attention input, [N, T_l, C_l]) in `recorded[l]`.
    Blocks are indexed by `layer`, the module traversal order (0–5 encoder, 6 middle, 7–15 decoder)."""

    banks: Sequence[torch.Tensor]
    blend: torch.Tensor
    recorded: list[torch.Tensor | None]


class LoraLinear(nn.Linear):
    """A bias-free projection with rank-r foreground and background side paths.

    Keys: `weight`, `lora_down_fg.weight`, `lora_up_fg.weight`, `lora_down_bg.weight`,
    `lora_up_bg.weight`. Which path is on is a gate tensor, not a mode attribute.
    """

    def __init__(self, in_features: int, out_features: int, fg_rank: int, bg_rank: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.lora_down_fg = nn.Linear(in_features, fg_rank, bias=False)
        self.lora_up_fg = nn.Linear(fg_rank, out_features, bias=False)
        self.lora_down_bg = nn.Linear(in_features, bg_rank, bias=False)
        self.lora_up_bg = nn.Linear(bg_rank, out_features, bias=False)

    def branch(self, x: torch.Tensor, gate: torch.Tensor, foreground: bool) -> torch.Tensor:
        down, up = (self.lora_down_fg, self.lora_up_fg) if foreground else (self.lora_down_bg, self.lora_up_bg)
        return F.linear(x, self.weight) + gate * up(down(x))


class CrossAttention(nn.Module):
    """q from the image tokens, k/v from a context; keys `to_q`, `to_k`, `to_v`, `to_out.0`."""

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None = None,
        lora: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads = heads
        self.has_lora = lora is not None
        if lora is not None:
            fg_rank, bg_rank = lora
            self.to_q: nn.Linear = LoraLinear(query_dim, inner, fg_rank, bg_rank)
            self.to_k: nn.Linear = LoraLinear(context_dim, inner, fg_rank, bg_rank)
            self.to_v: nn.Linear = LoraLinear(context_dim, inner, fg_rank, bg_rank)
        else:
            self.to_q = nn.Linear(query_dim, inner, bias=False)
            self.to_k = nn.Linear(context_dim, inner, bias=False)
            self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Unmasked attention (self-attention when no context), no reference scale."""
        context = x if context is None else context
        return self.to_out(attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads))

    def injected(self, x: torch.Tensor, bank: torch.Tensor, blend: torch.Tensor) -> torch.Tensor:
        """blend·plain + (1 − blend)·banked per batch entry, after the output projection: plain is
        self-attention over x, banked takes keys/values from concat(x, bank) along tokens. The
        projections are bias-free and row-wise, so x's keys and values serve both."""
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        plain = self.to_out(attention(q, k, v, self.heads))
        k_all = torch.cat([k, self.to_k(bank)], dim=1)
        v_all = torch.cat([v, self.to_v(bank)], dim=1)
        banked = self.to_out(attention(q, k_all, v_all, self.heads))
        w = blend.reshape(-1, 1, 1)
        return w * plain + (1 - w) * banked

    def _branch(self, x: torch.Tensor, context: torch.Tensor, gate: torch.Tensor, foreground: bool) -> torch.Tensor:
        if self.has_lora:
            q = self.to_q.branch(x, gate, foreground)  # type: ignore[attr-defined]
            k = self.to_k.branch(context, gate, foreground)  # type: ignore[attr-defined]
            v = self.to_v.branch(context, gate, foreground)  # type: ignore[attr-defined]
        else:
            q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        return attention(q, k, v, self.heads)

    def split(self, x: torch.Tensor, s: SplitInputs, layer: int, mask_tokens: torch.Tensor) -> torch.Tensor:
        """Mask-split cross-attention of layer `layer` (0..15): background tokens outside the
        sketch mask, reference tokens inside, each scaled, with `merge_scale` of the background
        mixed into the foreground. The decoder layers (with LoRA) compare with `>`, the others
        with `<`, as the published model does (they differ only at equality)."""
        scale = s.ref_scales[layer]
        bg = self._branch(x, s.context_bg, s.lora_bg_gate, foreground=False) * scale * s.bg_scale
        fg = self._branch(x, s.context_fg, s.lora_fg_gate, foreground=True) * scale * s.fg_scale
        fg = fg * (1 - s.merge_scale) + bg * s.merge_scale
        if self.has_lora:
            out = torch.where(mask_tokens > s.threshold, fg, bg)
        else:
            out = torch.where(mask_tokens < s.threshold, bg, fg)
        return self.to_out(out)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, lora: tuple[int, int] | None) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads, dim_head, context_dim=context_dim, lora=lora)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)


class SpatialTransformer(nn.Module):
    """GroupNorm → 1×1 conv → one transformer block over tokens → 1×1 conv, residual.

    `layer` is this block's index among the UNet's 16 cross-attentions (module traversal order)
    and `mask_scale` the fixed factor that brings the latent-size mask to its resolution."""

    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        context_dim: int,
        lora: tuple[int, int] | None = None,
        layer: int = -1,
        mask_scale: float = 1.0,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = GroupNorm32(channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head, context_dim, lora)])
        self.proj_out = nn.Conv2d(inner, channels, 1)
        self.layer = layer
        self.mask_scale = mask_scale

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None, split: SplitInputs | None, inject: InjectionInputs | None = None
    ) -> torch.Tensor:
        h = tokens(self.proj_in(self.norm(x)))
        block = self.transformer_blocks[0]
        xn = block.norm1(h)
        if inject is None:
            h = block.attn1(xn) + h
        else:
            inject.recorded[self.layer] = xn
            h = block.attn1.injected(xn, inject.banks[self.layer], inject.blend) + h
        if split is None:
            h = block.attn2(block.norm2(h), context) + h
        else:
            m = split.mask
            if self.mask_scale != 1.0:
                m = F.interpolate(m, scale_factor=self.mask_scale, mode="bicubic", align_corners=False)
            h = block.attn2.split(block.norm2(h), split, self.layer, tokens(m)) + h
        h = block.ff(block.norm3(h)) + h
        return self.proj_out(untokens(h, x)) + x


class Stage(nn.Sequential):
    """One entry of input_blocks/middle_block/output_blocks: children indexed as in the checkpoint."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None, split: SplitInputs | None = None,
        inject: InjectionInputs | None = None,
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, split, inject)
            else:
                x = layer(x)
        return x


class WarpBlock(nn.Module):
    """Decoder skip features attend to the background encoder's features (heads 64 wide)."""

    def __init__(self, dim: int, dim_head: int = 64) -> None:
        super().__init__()
        self.attn = CrossAttention(dim, dim // dim_head, dim_head)
        self.ff = nn.Sequential(nn.Linear(dim, dim * 4), nn.SiLU(), nn.Linear(dim * 4, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        t = tokens(x)
        t = self.attn(self.norm1(t), context) + t
        t = self.ff(self.norm2(t)) + t
        return untokens(t, x)


@dataclass(frozen=True)
class UNetConfig:
    """The `unet_config`/`*_encoder_config` params of the official inference yaml that matter."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_head_channels: int = 64
    context_dim: int = 1024
    adm_in_channels: int = 512
    lora_ranks: tuple[int, int] = (4, 4)  # (fr, br)
    warp_head_channels: int = 64


def _build_encoder_half(unet: nn.Module, cfg: UNetConfig, emb_dim: int, counter: list[int] | None) -> list[int]:
    """input_blocks as in the checkpoint; returns the channel count of every stored skip."""
    ch = cfg.model_channels
    blocks = nn.ModuleList([Stage(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
    skip_channels = [ch]
    ds = 1
    for level, mult in enumerate(cfg.channel_mult):
        for _ in range(cfg.num_res_blocks):
            out = mult * cfg.model_channels
            layers: list[nn.Module] = [ResBlock(ch, emb_dim, out)]
            ch = out
            if ds in cfg.attention_resolutions:
                layer = -1
                if counter is not None:
                    layer = counter[0]
                    counter[0] += 1
                layers.append(
                    SpatialTransformer(ch, ch // cfg.num_head_channels, cfg.num_head_channels, cfg.context_dim, None, layer, 1.0 / ds)
                )
            blocks.append(Stage(*layers))
            skip_channels.append(ch)
        if level != len(cfg.channel_mult) - 1:
            blocks.append(Stage(Downsample(ch, ch)))
            skip_channels.append(ch)
            ds *= 2
    unet.input_blocks = blocks
    unet._ds = ds
    return skip_channels


class ColorizerUNet(nn.Module):
    """DualCondUNet with the v2 decoder: sketch hints, warp injection, style modulation, LoRA."""

    HINT_BLOCKS = (0, 3, 6, 9, 11)

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        mc = cfg.model_channels
        emb_dim = mc * 4
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        counter = [0]
        skips = _build_encoder_half(self, cfg, emb_dim, counter)
        ds: int = self._ds
        ch = skips[-1]
        heads = ch // cfg.num_head_channels
        middle_layer = counter[0]
        counter[0] += 1
        self.middle_block = Stage(
            ResBlock(ch, emb_dim),
            SpatialTransformer(ch, heads, cfg.num_head_channels, cfg.context_dim, None, middle_layer, 1.0 / ds),
            ResBlock(ch, emb_dim),
        )
        self.output_blocks = nn.ModuleList()
        self.warp_modules = nn.ModuleList()
        self.style_modules = nn.ModuleList()
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                ich = skips.pop()
                layers: list[nn.Module] = [ResBlock(ch + ich, emb_dim, mc * mult)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers.append(
                        SpatialTransformer(
                            ch, ch // cfg.num_head_channels, cfg.num_head_channels, cfg.context_dim,
                            cfg.lora_ranks, counter[0], 1.0 / ds,
                        )
                    )
                    counter[0] += 1
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Stage(*layers))
                self.warp_modules.append(WarpBlock(ich, cfg.warp_head_channels))
                self.style_modules.append(nn.ModuleList([nn.LayerNorm(ch * 2), nn.Linear(emb_dim, ch * 2), nn.Linear(ch * 2, ch * 2)]))
        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(mc, cfg.out_channels, 3, padding=1))
        self.cross_attention_layers = counter[0]

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        control: Sequence[torch.Tensor],
        hs_bg: Sequence[torch.Tensor],
        style: Sequence[torch.Tensor],
        split: SplitInputs,
        style_gate: torch.Tensor,
        bg_inject_gate: torch.Tensor,
        inject: InjectionInputs | None = None,
    ) -> torch.Tensor:
        """`inject` runs every transformer block in attention-injection mode (see InjectionInputs);
        without it the forward is the plain one."""
        emb = self.time_embed(timestep_embedding(timestep, self.cfg.model_channels))
        h = x
        skips: list[torch.Tensor] = []
        hint = iter(control)
        for idx, block in enumerate(self.input_blocks):
            h = block(h, emb, None, split, inject)
            if idx in self.HINT_BLOCKS:
                h = h + next(hint)
            skips.append(h)
        h = self.middle_block(h, emb, None, split, inject)
        for j, block in enumerate(self.output_blocks):
            skip = skips.pop()
            cm = F.interpolate(split.mask, size=(skip.shape[2], skip.shape[3]), mode="bicubic", align_corners=False)
            warped = skip + bg_inject_gate * (self.warp_modules[j](skip, hs_bg[j]) - skip)
            h = block(torch.cat([h, torch.where(cm > split.threshold, skip, warped)], dim=1), emb, None, split, inject)
            norm, emb_proj, proj = self.style_modules[j]
            m = proj(norm(style[j] + emb_proj(emb)))[:, :, None, None]
            scale, shift = m.chunk(2, dim=1)
            h = h + style_gate * (h * scale + shift)
        return self.out(h)


class ConditionEncoder(nn.Module):
    """UNetEncoder of the published model: the UNet's encoder half with a size-embedding MLP,
    one zero-initialised hint layer per block; `style=True` pools each block output to a vector
    (style encoder), otherwise hints are token maps (background encoder). Hints are returned in
    decoder order (coarsest first)."""

    def __init__(self, cfg: UNetConfig, style: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.style = style
        mc = cfg.model_channels
        emb_dim = mc * 4
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Sequential(nn.Sequential(nn.Linear(cfg.adm_in_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)))
        _build_encoder_half(self, cfg, emb_dim, None)
        layers: list[nn.Module] = []
        ch = mc
        layers.append(nn.Linear(ch, ch * 2) if style else nn.Conv2d(ch, ch, 1))
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                ch = mult * mc
                layers.append(nn.Linear(ch, ch * 2) if style else nn.Conv2d(ch, ch, 1))
            if level != len(cfg.channel_mult) - 1:
                layers.append(nn.Linear(ch, min(mc * 8, ch * 4)) if style else nn.Conv2d(ch, ch, 1))
        self.zero_layers = nn.ModuleList(layers)

    def forward(self, latent: torch.Tensor, y: torch.Tensor, context: torch.Tensor, timestep: torch.Tensor | None = None) -> list[torch.Tensor]:
        if timestep is None:
            timestep = torch.zeros(latent.shape[0], dtype=torch.float32, device=latent.device)
        emb = self.time_embed(timestep_embedding(timestep, self.cfg.model_channels)) + self.label_emb(y)
        h = latent
        hints: list[torch.Tensor] = []
        for zero_layer, block in zip(self.zero_layers, self.input_blocks):
            h = block(h, emb, context, None)
            hints.append(zero_layer(h.mean(dim=[2, 3])) if self.style else tokens(zero_layer(h)))
        hints.reverse()
        return hints
