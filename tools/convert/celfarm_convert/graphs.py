"""The pack's graphs as torch modules with the contract's tensor names (model-contract.md §1).

Each wrapper takes and returns tensors in the order of its `inputs`/`outputs` name lists, so the
export and the parity check agree on names; `dynamic_axes` keeps batch, H, W and token counts
symbolic. `example_inputs(size)` builds inputs for tracing and parity at a latent-friendly size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .auxiliary import AUX
from .auxiliary import dynamic_axes as aux_dynamic_axes
from .config import ModelConfig
from .nets.clip import VisionTransformer
from .nets.control import MultiEncoder
from .nets.unet import ColorizerUNet, ConditionEncoder, InjectionInputs, SplitInputs
from .nets.vae import AutoencoderKL

CONTROL = [f"control_{i}" for i in range(5)]
HS_BG = [f"hs_bg_{i}" for i in range(12)]
STYLE = [f"style_{i}" for i in range(12)]
UNET_SCALARS = ["mask_threshold", "fg_scale", "bg_scale", "merge_scale", "lora_fg_gate", "lora_bg_gate", "style_gate", "bg_inject_gate"]
UNET_INPUTS = ["x", "timestep", "context_fg", "context_bg", *CONTROL, *HS_BG, *STYLE, "mask", "ref_scales", *UNET_SCALARS]
# Attention injection (docs/attention-injection.md): one bank per transformer block, in and out.
INJECT_BLOCKS = 16
BANK_IN = [f"bank_in_{i}" for i in range(INJECT_BLOCKS)]
BANKS = [f"bank_{i}" for i in range(INJECT_BLOCKS)]
UNET_INJECT_INPUTS = [*UNET_INPUTS, *BANK_IN, "injection_blend"]


class ClipGraph(nn.Module):
    inputs = ["pixels"]
    outputs = ["local_tokens", "pooled"]

    def __init__(self, net: VisionTransformer) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.net(pixels)
        return t[:, 1:], t[:, 0]


class VaeEncoderGraph(nn.Module):
    inputs = ["image"]
    outputs = ["mean", "logvar"]

    def __init__(self, net: AutoencoderKL) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.encode_moments(image)


class VaeDecoderGraph(nn.Module):
    inputs = ["latent"]
    outputs = ["image"]

    def __init__(self, net: AutoencoderKL) -> None:
        super().__init__()
        self.net = net

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net.decode(latent)


class ControlGraph(nn.Module):
    inputs = ["sketch"]
    outputs = CONTROL

    def __init__(self, net: MultiEncoder) -> None:
        super().__init__()
        self.net = net

    def forward(self, sketch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(sketch))


class EncoderGraph(nn.Module):
    """bg_encoder (hs_bg_*) or style_encoder (style_*); the timestep is the constant 0."""

    inputs = ["latent", "y", "context"]

    def __init__(self, net: ConditionEncoder) -> None:
        super().__init__()
        self.net = net
        self.outputs = STYLE if net.style else HS_BG

    def forward(self, latent: torch.Tensor, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(latent, y, context))


def _run_unet(net: ColorizerUNet, a: dict[str, torch.Tensor], inject: InjectionInputs | None = None) -> torch.Tensor:
    split = SplitInputs(
        context_fg=a["context_fg"], context_bg=a["context_bg"], mask=a["mask"], threshold=a["mask_threshold"],
        ref_scales=a["ref_scales"], fg_scale=a["fg_scale"], bg_scale=a["bg_scale"], merge_scale=a["merge_scale"],
        lora_fg_gate=a["lora_fg_gate"], lora_bg_gate=a["lora_bg_gate"],
    )
    return net(
        a["x"], a["timestep"], [a[n] for n in CONTROL], [a[n] for n in HS_BG], [a[n] for n in STYLE],
        split, a["style_gate"], a["bg_inject_gate"], inject,
    )


class UNetGraph(nn.Module):
    inputs = UNET_INPUTS
    outputs = ["model_output"]

    def __init__(self, net: ColorizerUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return _run_unet(self.net, dict(zip(UNET_INPUTS, args)))


class UNetInjectGraph(nn.Module):
    """`unet_inject` (docs/attention-injection.md): the `unet` graph plus, per transformer block l,
    `bank_in_l` [N,B_l,C_l] (B_l free) that its self-attention also attends to, weighed per entry by
    `injection_blend` [N] (blend·plain + (1 − blend)·banked, after the output projection), and the
    block's LayerNorm-1 output `bank_l` [N,T_l,C_l]. Blend 1 gives `unet`'s output: the write pass."""

    inputs = UNET_INJECT_INPUTS
    outputs = ["model_output", *BANKS]

    def __init__(self, net: ColorizerUNet) -> None:
        super().__init__()
        if net.cross_attention_layers != INJECT_BLOCKS:
            raise ValueError(f"unet_inject needs {INJECT_BLOCKS} transformer blocks, this UNet has {net.cross_attention_layers}")
        self.net = net

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = dict(zip(UNET_INJECT_INPUTS, args))
        inject = InjectionInputs(banks=[a[n] for n in BANK_IN], blend=a["injection_blend"], recorded=[None] * INJECT_BLOCKS)
        out = _run_unet(self.net, a, inject)
        assert all(t is not None for t in inject.recorded)
        return (out, *inject.recorded)  # type: ignore[arg-type]


class MaskGraph(nn.Module):
    """sketch_mask (G8) and ref_mask (G9): `image` [B,3,1024,1024] → `mask` [B,1,1024,1024] in
    (0, 1). ISNet: the sigmoid of its finest side output (what the official forward returns);
    RMBG-2.0 (BiRefNet, `method` "mask"): the sigmoid of the last prediction. The graph is only
    the network: sketch_mask expects the white sketch in [−1, 1] stretched to 1024²; an ISNet
    ref_mask the letterboxed reference mapped to 1 − (x+1)/2, in [0, 1]; an RMBG ref_mask the
    reference's (x+1)/2 stretched to 1024² and ImageNet-normalised (contract G8/G9)."""

    inputs = ["image"]
    outputs = ["mask"]

    def __init__(self, net: nn.Module, method: str = "forward") -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image) if self.method == "forward" else getattr(self.net, self.method)(image)


class LinesGraph(nn.Module):
    """A line extractor (G10): `image` [B,C,H,W] → `lines` [B,1,H,W], the published network
    (`method` "raw" for lineart_denoise: without the final clamp/rescale, which the contract gives
    to the runtime). Ranges per class in nets/line_extractors.py."""

    inputs = ["image"]
    outputs = ["lines"]

    def __init__(self, net: nn.Module, method: str = "forward") -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image) if self.method == "forward" else getattr(self.net, self.method)(image)


@dataclass
class GraphPlan:
    name: str
    build: Callable[[], nn.Module]
    dynamic_axes: dict[str, dict[int, str]]


def _spatial(names: list[str], batch: str = "batch") -> dict[str, dict[int, str]]:
    return {n: {0: batch, 2: f"{n}_h", 3: f"{n}_w"} for n in names}


def dynamic_axes(name: str) -> dict[str, dict[int, str]]:
    if name == "clip_image":
        return {"pixels": {0: "batch"}, "local_tokens": {0: "batch"}, "pooled": {0: "batch"}}
    if name == "vae_encoder":
        return _spatial(["image", "mean", "logvar"])
    if name == "vae_decoder":
        return _spatial(["latent", "image"])
    if name == "control_encoder":
        return _spatial(["sketch", *CONTROL])
    if name == "bg_encoder":
        return {**_spatial(["latent"]), "y": {0: "batch"}, "context": {0: "batch", 1: "context_tokens"}, **{n: {0: "batch", 1: f"{n}_tokens"} for n in HS_BG}}
    if name == "style_encoder":
        return {**_spatial(["latent"]), "y": {0: "batch"}, "context": {0: "batch", 1: "context_tokens"}, **{n: {0: "batch"} for n in STYLE}}
    if name in AUX:
        return aux_dynamic_axes(name)
    if name == "unet":
        return {
            **_spatial(["x", *CONTROL, "mask", "model_output"], "n"),
            "timestep": {0: "n"},
            "context_fg": {0: "n", 1: "fg_tokens"},
            "context_bg": {0: "n", 1: "bg_tokens"},
            **{n: {0: "n", 1: f"{n}_tokens"} for n in HS_BG},
            **{n: {0: "n"} for n in STYLE},
        }
    if name == "unet_inject":
        # Each bank's token axis is its own: a write pass feeds one zero token, a read pass T_l.
        return {
            **dynamic_axes("unet"),
            **{n: {0: "n", 1: f"{n}_tokens"} for n in BANK_IN},
            "injection_blend": {0: "n"},
            **{n: {0: "n", 1: f"{n}_tokens"} for n in BANKS},
        }
    raise KeyError(name)


def level_widths(cfg: ModelConfig) -> list[int]:
    return [cfg.unet.model_channels * m for m in cfg.unet.channel_mult]


def hs_bg_shapes(cfg: ModelConfig, n: int, h: int, w: int, tokens: bool = True) -> list[tuple[int, ...]]:
    """Decoder-order shapes of the background features for an h×w latent."""
    widths = level_widths(cfg)
    enc: list[tuple[int, int]] = [(widths[0], 0)]  # (channels, level) of each encoder block
    for level, c in enumerate(widths):
        enc += [(c, level)] * 2
        if level != len(widths) - 1:
            enc.append((c, level + 1))
    out = []
    for c, level in reversed(enc):
        t = (h >> level) * (w >> level)
        out.append((n, t if tokens else 1, c))
    return out


def bank_shapes(cfg: ModelConfig, n: int, h: int, w: int) -> list[tuple[int, int, int]]:
    """[N, T_l, C_l] of the 16 transformer blocks' banks for an h×w latent, in module traversal
    order: the encoder's levels whose down-sampling factor is an attention resolution (two blocks
    each), the middle, then the decoder's (num_res_blocks + 1 each, coarsest first)."""
    u = cfg.unet
    levels = [lv for lv in range(len(u.channel_mult)) if 2 ** lv in u.attention_resolutions]
    middle = len(u.channel_mult) - 1
    order = [lv for lv in levels for _ in range(u.num_res_blocks)] + [middle]
    order += [lv for lv in reversed(levels) for _ in range(u.num_res_blocks + 1)]
    return [(n, (h >> lv) * (w >> lv), u.model_channels * u.channel_mult[lv]) for lv in order]


def style_widths(cfg: ModelConfig) -> list[int]:
    widths = level_widths(cfg)
    mc = cfg.unet.model_channels
    enc = [widths[0] * 2]
    for level, c in enumerate(widths):
        enc += [c * 2] * 2
        if level != len(widths) - 1:
            enc.append(min(mc * 8, c * 4))
    return list(reversed(enc))


def control_shapes(cfg: ModelConfig, n: int, h: int, w: int) -> list[tuple[int, ...]]:
    widths = level_widths(cfg)
    return [(n, widths[0], h, w), (n, widths[0], h // 2, w // 2), (n, widths[1], h // 4, w // 4), (n, widths[2], h // 8, w // 8), (n, widths[3], h // 8, w // 8)]


def example_inputs(name: str, cfg: ModelConfig, gen: torch.Generator, *, size: int = 128, batch: int = 1, case: dict | None = None) -> list[torch.Tensor]:
    """Random inputs of the graph's shapes at `size`×`size` pixels (`case` sets the UNet's knobs)."""
    h = w = size // 8
    ctx = cfg.unet.context_dim
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    if name == "clip_image":
        return [r(batch, 3, cfg.clip["image_size"], cfg.clip["image_size"])]
    if name in ("vae_encoder",):
        return [r(batch, 3, size, size).clamp(-1, 1)]
    if name == "vae_decoder":
        return [r(batch, 4, h, w)]
    if name == "control_encoder":
        return [r(batch, 3, size, size).sign()]
    if name in ("bg_encoder", "style_encoder"):
        return [r(batch, 4, h, w), r(batch, cfg.unet.adm_in_channels), r(batch, 256 if size >= 128 else 16, ctx)]
    if name == "unet":
        c = {"mode": "full", **(case or {})}
        n = batch
        masked = c["mode"] in ("background", "full")
        styled = c["mode"] in ("style", "full")
        vals: dict[str, torch.Tensor] = {
            "x": r(n, 4, h, w),
            "timestep": torch.rand(n, generator=gen) * 999,
            "context_fg": r(n, 16, ctx),
            "context_bg": r(n, 16, ctx) if masked else torch.zeros(n, 1, ctx),
            "mask": torch.rand(n, 1, h, w, generator=gen) if masked else torch.ones(n, 1, h, w),
            "ref_scales": torch.rand(16, generator=gen) * 0.8 + 0.2,
            "mask_threshold": torch.tensor(0.45 if masked else 0.5),
            "fg_scale": torch.tensor(0.9 if masked else 1.0),
            "bg_scale": torch.tensor(0.7),
            "merge_scale": torch.tensor(0.3 if masked else 0.0),
            "lora_fg_gate": torch.tensor(float(c.get("lora", masked))),
            "lora_bg_gate": torch.tensor(float(c.get("lora", masked))),
            "style_gate": torch.tensor(1.0 if styled else 0.0),
            "bg_inject_gate": torch.tensor(1.0 if masked else 0.0),
        }
        for i, s in enumerate(control_shapes(cfg, n, h, w)):
            vals[CONTROL[i]] = r(*s) * 0.5
        for i, s in enumerate(hs_bg_shapes(cfg, n, h, w, tokens=masked)):
            vals[HS_BG[i]] = r(*s) if masked else torch.zeros(*s)
        for i, wdt in enumerate(style_widths(cfg)):
            vals[STYLE[i]] = r(n, wdt) * 0.5 if styled else torch.zeros(n, wdt)
        return [vals[k] for k in UNET_INPUTS]
    if name == "unet_inject":
        # Banks with their own token counts (neither T_l nor each other's), blends not 0 or 1:
        # the trace must keep every bank's token axis and the blend symbolic.
        c = case or {}
        base = example_inputs("unet", cfg, gen, size=size, batch=batch, case=c)
        banks = [r(n, t // 2 + 1 + i % 3, ch) for i, (n, t, ch) in enumerate(bank_shapes(cfg, batch, h, w))]
        blend = torch.rand(batch, generator=gen) * 0.6 + 0.2
        return [*base, *banks, blend]
    raise KeyError(name)
