"""BiRefNet with the Swin-L backbone: BRIA's RMBG-2.0, the app's default reference mask (G9).

The published file (`model.safetensors` of `briaai/RMBG-2.0`) holds BiRefNet in its general-use
configuration; this module has the same state-dict keys and shapes, so that file loads with
`strict=True`:

- `bb.*` — a Swin Transformer v1 (patch 4, LayerNorm after the patch embedding, windowed
  self-attention with a relative position bias table, a shifted window on every odd block,
  patch merging between the four stages, LayerNorm `norm0…norm3` on each stage's output).
  Swin-L: embedding 192, depths 2, 2, 18, 2, heads 6, 12, 24, 48, window 12, MLP ratio 4.
- Multi-scale input ("cat"): the backbone runs on the image and on the image at half size
  (bilinear, corners aligned); each stage's two outputs are concatenated (the half-size one
  upsampled), which doubles every width: 384, 768, 1536, 3072 at full size.
- Context: the three finer stages, resized to the coarsest one, are concatenated in front of it
  (5760 channels) and `squeeze_module.0` (one decoder block) brings it back to 3072.
- `decoder.*` — four decoder blocks, coarse to fine, each a 3×3 conv → BN → ReLU → ASPP with
  deformable convolutions → 3×3 conv → BN; a 1×1 lateral convolution adds each backbone stage;
  each level also sees the input image cut into a grid of patches stacked along channels
  (`ipt_blk*`, two plain 3×3 convolutions; the stacking order in `image_patches`); the three
  coarser levels are gated by a sigmoid
  attention from a small gradient branch (`gdt_convs_*`, `gdt_convs_attn_*`); a 1×1 convolution
  (`conv_out1`) gives the logits at full resolution.

Only the final prediction is computed. The deep-supervision heads (`conv_ms_spvn_*`) and the
gradient predictions (`gdt_convs_pred_*`) are training-only outputs; they are in the file and in
this module (so the load is strict) but take no part in the result. `forward` returns the logits
[B,1,H,W]; the published pipeline (and `mask`) takes their sigmoid.

Which code: RMBG-2.0's remote code is BiRefNet as of late October 2024. Two details of that code
differ from BiRefNet's repository today and are followed here: the image patches are stacked
patch by patch, columns outermost (`get_patches_batch`; the repository switched to einops'
channel-major order on 2024-11-05 — the same keys and shapes, other channels under each filter),
and the shifted-window mask is −100, not −∞ (the same softmax in float32).

The deformable convolution (`deform_conv2d`) is ours, written with `F.grid_sample` so that the
graph exports to plain ONNX (opset ≥ 16): the semantics of torchvision.ops.deform_conv2d with a
modulation mask and one offset group.

`BiRefNetConfig` holds every width; smaller ones keep the key names and only exist for tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIGNATURE_KEY = "bb.layers.0.blocks.0.attn.relative_position_bias_table"


@dataclass(frozen=True)
class BiRefNetConfig:
    """The widths of a BiRefNet (defaults: the published RMBG-2.0, Swin-L)."""

    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    heads: tuple[int, ...] = (6, 12, 24, 48)
    window: int = 12
    mlp_ratio: int = 4
    dec_inter: int = 64  # decoder blocks' inner width (config dec_channels_inter "fixed")
    aspp_planes: int = 256  # each ASPP branch's width
    ipt_inter: int = 64  # the image-patch blocks' inner width
    gdt_channels: int = 16  # the gradient branch's width

    def describe(self) -> str:
        return (f"Swin embed {self.embed_dim}, depths {','.join(map(str, self.depths))}, heads {','.join(map(str, self.heads))}, "
                f"window {self.window}; decoder {self.dec_inter}/{self.aspp_planes}/{self.ipt_inter}/{self.gdt_channels}")

    @property
    def stage_widths(self) -> list[int]:
        return [self.embed_dim * 2 ** i for i in range(len(self.depths))]

    @staticmethod
    def from_shapes(shapes: dict[str, tuple[int, ...]]) -> "BiRefNetConfig | None":
        """The widths a file's tensors imply (keys without any `module.`), or None when the
        keys that tell them are missing or odd."""
        try:
            embed = shapes["bb.patch_embed.proj.weight"][0]
            depths: list[int] = []
            heads: list[int] = []
            window = 0
            for i in range(4):
                n = 0
                while f"bb.layers.{i}.blocks.{n}.norm1.weight" in shapes:
                    n += 1
                table = shapes[f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table"]
                side = int(round(table[0] ** 0.5))
                if side * side != table[0] or side % 2 == 0:
                    return None
                window = (side + 1) // 2
                depths.append(n)
                heads.append(table[1])
            fc1 = shapes["bb.layers.0.blocks.0.mlp.fc1.weight"]
            cfg = BiRefNetConfig(
                embed_dim=embed,
                depths=tuple(depths),
                heads=tuple(heads),
                window=window,
                mlp_ratio=max(1, fc1[0] // max(fc1[1], 1)),
                dec_inter=shapes["decoder.decoder_block4.conv_in.weight"][0],
                aspp_planes=shapes["decoder.decoder_block4.dec_att.aspp1.atrous_conv.regular_conv.weight"][0],
                ipt_inter=shapes["decoder.ipt_blk5.conv1.weight"][0],
                gdt_channels=shapes["decoder.gdt_convs_4.0.weight"][0],
            )
        except (KeyError, IndexError):
            return None
        if min(cfg.depths) < 1 or any(cfg.embed_dim * 2 ** i % h for i, h in enumerate(cfg.heads)):
            return None
        return cfg


PUBLISHED = BiRefNetConfig()


def _dims(x: Tensor, *axes: int) -> tuple[int, ...]:
    """Sizes as plain ints: the graph is exported at one fixed size (only the batch, always
    reshaped as −1, stays dynamic), so they become constants rather than shape arithmetic."""
    return tuple(int(x.shape[a]) for a in axes)


# ---------------------------------------------------------------------------------------------
# The deformable convolution


def deform_conv2d(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0,
                  dilation: int = 1, mask: Tensor | None = None) -> Tensor:
    """torchvision.ops.deform_conv2d with one offset group, from `F.grid_sample`.

    x [B,C,H,W]; weight [O,C,kh,kw]; offset [B,2·kh·kw,Ho,Wo], per tap t = i·kw + j the pair
    (Δy, Δx) at channels 2t, 2t+1; mask [B,kh·kw,Ho,Wo] (modulation, multiplies each tap's
    sample). Tap (i, j) of output (ho, wo) samples x bilinearly at
    y = ho·stride − padding + i·dilation + Δy, x = wo·stride − padding + j·dilation + Δx,
    reading zero outside the image — grid_sample's zero padding over pixel centres
    (align_corners False: pixel p is at (2p + 1)/size − 1). One grid_sample per kernel row
    (kw taps at once), then a 1×1 convolution of the row's weights over the taps' samples.
    """
    out_ch, in_ch, kh, kw = weight.shape
    taps = kh * kw
    if int(offset.shape[1]) != 2 * taps or (mask is not None and int(mask.shape[1]) != taps):
        raise ValueError(f"deform_conv2d: one offset group only (offset {list(offset.shape)}, mask {None if mask is None else list(mask.shape)}, kernel {kh}×{kw})")
    h, w = _dims(x, 2, 3)
    ho, wo = _dims(offset, 2, 3)
    # Where each tap of each output samples without offsets, in grid_sample's units: [K,Ho,Wo,(x,y)].
    py = (np.arange(ho) * stride - padding)[None, :, None] + np.repeat(np.arange(kh) * dilation, kw)[:, None, None]
    px = (np.arange(wo) * stride - padding)[None, None, :] + np.tile(np.arange(kw) * dilation, kh)[:, None, None]
    base = torch.from_numpy(np.stack(np.broadcast_arrays((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), axis=-1)).to(x.dtype)
    # The offsets (Δy, Δx) of each tap as steps (Δx, Δy) in the same units.
    steps = offset.reshape(-1, taps, 2, ho, wo).permute(0, 1, 3, 4, 2).index_select(-1, torch.tensor([1, 0]))
    grid = base + steps * torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype)
    modulation = None if mask is None else mask.reshape(-1, 1, taps, ho, wo)
    out: Tensor | None = None
    for i in range(kh):
        row = slice(i * kw, (i + 1) * kw)
        sampled = F.grid_sample(x, grid[:, row].reshape(-1, kw * ho, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.reshape(-1, in_ch, kw, ho, wo)
        if modulation is not None:
            sampled = sampled * modulation[:, :, row]
        y = F.conv2d(sampled.reshape(-1, in_ch * kw, ho, wo), weight[:, :, i, :].reshape(out_ch, in_ch * kw, 1, 1))
        out = y if out is None else out + y
    assert out is not None
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class DeformConv(nn.Module):
    """A modulated deformable convolution: offsets and a modulation (2·sigmoid) predicted by two
    plain convolutions of the same geometry (`offset_conv`, `modulator_conv`), the filter in
    `regular_conv` (no bias)."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int) -> None:
        super().__init__()
        self.padding = padding
        self.offset_conv = nn.Conv2d(cin, 2 * kernel * kernel, kernel, 1, padding)
        self.modulator_conv = nn.Conv2d(cin, kernel * kernel, kernel, 1, padding)
        self.regular_conv = nn.Conv2d(cin, cout, kernel, 1, padding, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        offset = self.offset_conv(x)
        modulation = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(x, offset, self.regular_conv.weight, None, 1, self.padding, 1, modulation)


# ---------------------------------------------------------------------------------------------
# Swin Transformer v1


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 4, 4)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        h, w = _dims(x, 2, 3)
        if w % 4:
            x = F.pad(x, (0, 4 - w % 4))
        if h % 4:
            x = F.pad(x, (0, 0, 0, 4 - h % 4))
        x = self.proj(x)
        c, gh, gw = _dims(x, 1, 2, 3)
        x = self.norm(x.reshape(-1, c, gh * gw).transpose(1, 2))
        return x.transpose(1, 2).reshape(-1, c, gh, gw)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window of window² tokens, with the learned bias of each
    relative offset (table of (2·window − 1)² rows, one column per head)."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        n, c = _dims(x, 1, 2)
        qkv = self.qkv(x).reshape(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            windows = int(mask.shape[0])
            attn = (attn.reshape(-1, windows, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).reshape(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(-1, n, c))


def relative_position_index(window: int) -> Tensor:
    """Row of the bias table for each (query, key) pair of a window: (Δy + w − 1)·(2w − 1) + Δx + w − 1."""
    ys, xs = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([ys.reshape(-1), xs.reshape(-1)])  # 2, N
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return torch.from_numpy((rel[0] * (2 * window - 1) + rel[1]).astype(np.int64))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def _windows(x: Tensor, window: int) -> Tensor:
    """[B,H,W,C] (H, W multiples of window) → [B·nW, window², C], windows in row-major order."""
    h, w, c = _dims(x, 1, 2, 3)
    x = x.reshape(-1, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _unwindow(x: Tensor, window: int, h: int, w: int) -> Tensor:
    c = int(x.shape[2])
    x = x.reshape(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shift_mask(hp: int, wp: int, window: int, shift: int) -> Tensor:
    """The shifted-window mask [nW, N, N]: 0 between tokens of the same region of the rolled map,
    −100 between regions (three bands per axis: before the last window, the last window's
    first window − shift rows/columns, the last shift ones). −100 as in RMBG-2.0's Swin (and the
    original Swin); BiRefNet's repository now uses −∞, which gives the same softmax in float32."""
    region = np.zeros((hp, wp), dtype=np.float32)
    bands = lambda n: (slice(0, n - window), slice(n - window, n - shift), slice(n - shift, n))  # noqa: E731
    label = 0
    for hs in bands(hp):
        for ws in bands(wp):
            region[hs, ws] = label
            label += 1
    wins = region.reshape(hp // window, window, wp // window, window).transpose(0, 2, 1, 3).reshape(-1, window * window)
    diff = wins[:, None, :] - wins[:, :, None]
    return torch.from_numpy(np.where(diff != 0, np.float32(-100.0), np.float32(0.0)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: int) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, h: int, w: int, mask: Tensor) -> Tensor:
        c = int(x.shape[2])
        y = self.norm1(x).reshape(-1, h, w, c)
        # The map padded at the bottom and right to whole windows (zeros, after the norm).
        pad_b = (self.window - h % self.window) % self.window
        pad_r = (self.window - w % self.window) % self.window
        if pad_b or pad_r:
            y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(_windows(y, self.window), mask if self.shift else None)
        y = _unwindow(y, self.window, hp, wp)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_b or pad_r:
            y = y[:, :h, :w, :]
        x = x + y.reshape(-1, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 neighbours concatenated (order (0,0), (1,0), (0,1), (1,1) as (row, column)), LayerNorm,
    a linear map 4C → 2C without bias; odd sizes padded by one row/column of zeros."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        c = int(x.shape[2])
        x = x.reshape(-1, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.reshape(-1, ((h + 1) // 2) * ((w + 1) // 2), 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: int, merge: bool) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList([SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio) for i in range(depth)])
        self.downsample = PatchMerging(dim) if merge else None

    def forward(self, x: Tensor, h: int, w: int) -> tuple[Tensor, Tensor | None]:
        hp = -(-h // self.window) * self.window
        wp = -(-w // self.window) * self.window
        mask = shift_mask(hp, wp, self.window, self.window // 2)
        for block in self.blocks:
            x = block(x, h, w, mask)
        return x, (self.downsample(x, h, w) if self.downsample is not None else None)


class SwinBackbone(nn.Module):
    """x [B,3,H,W] → the four stages' outputs [B,C·2^i,H/2^(i+2),W/2^(i+2)] (sizes rounded up)."""

    def __init__(self, cfg: BiRefNetConfig) -> None:
        super().__init__()
        self.widths = cfg.stage_widths
        self.patch_embed = PatchEmbed(cfg.embed_dim)
        self.layers = nn.ModuleList([
            SwinStage(width, depth, heads, cfg.window, cfg.mlp_ratio, i < len(cfg.depths) - 1)
            for i, (width, depth, heads) in enumerate(zip(self.widths, cfg.depths, cfg.heads))
        ])
        for i, width in enumerate(self.widths):
            self.add_module(f"norm{i}", nn.LayerNorm(width))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.patch_embed(x)
        h, w = _dims(x, 2, 3)
        x = x.reshape(-1, self.widths[0], h * w).transpose(1, 2)
        outs = []
        for i, stage in enumerate(self.layers):
            y, down = stage(x, h, w)
            y = getattr(self, f"norm{i}")(y)
            outs.append(y.reshape(-1, h, w, self.widths[i]).permute(0, 3, 1, 2))
            if down is not None:
                x, h, w = down, (h + 1) // 2, (w + 1) // 2
        return outs


# ---------------------------------------------------------------------------------------------
# Decoder


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear with corners aligned, as BiRefNet resizes everywhere (same size: identity)."""
    if _dims(x, 2, 3) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _size(x: Tensor) -> tuple[int, int]:
    return _dims(x, 2, 3)  # type: ignore[return-value]


def image_patches(x: Tensor, like: Tensor) -> Tensor:
    """The image cut into a g_h × g_w grid of patches the size of `like`'s map (g = image size //
    map size), stacked along channels patch by patch, the grid's columns outermost: channel
    (s·g_h + r)·C + c is channel c of the patch in grid row r, column s. This is the order of
    RMBG-2.0's code (BiRefNet's `get_patches_batch`, splitting into columns, then each column
    into rows); BiRefNet's repository later changed to channel-major (c·g_h·g_w + r·g_w + s) —
    the same tensors, the filters of `ipt_blk*` meeting other channels."""
    c, h, w = _dims(x, 1, 2, 3)
    gh, gw = h // int(like.shape[2]), w // int(like.shape[3])
    ph, pw = h // gh, w // gw
    x = x.reshape(-1, c, gh, ph, gw, pw).permute(0, 4, 2, 1, 3, 5)  # B, s, r, c, y, x
    return x.reshape(-1, gw * gh * c, ph, pw)


class ASPPBranch(nn.Module):
    """A deformable convolution (`atrous_conv`) → BatchNorm → ReLU."""

    def __init__(self, cin: int, planes: int, kernel: int) -> None:
        super().__init__()
        self.atrous_conv = DeformConv(cin, planes, kernel, kernel // 2)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    """Parallel branches — deformable 1×1 (`aspp1`), deformable 1×1, 3×3, 7×7 (`aspp_deforms`),
    and the global average (1×1 conv → BN → ReLU, broadcast back) — concatenated, 1×1 conv → BN
    → ReLU (the dropout after it is inactive at inference)."""

    def __init__(self, cin: int, planes: int, kernels: tuple[int, ...] = (1, 3, 7)) -> None:
        super().__init__()
        self.aspp1 = ASPPBranch(cin, planes, 1)
        self.aspp_deforms = nn.ModuleList([ASPPBranch(cin, planes, k) for k in kernels])
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU())
        self.conv1 = nn.Conv2d(planes * (2 + len(kernels)), cin, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)

    def forward(self, x: Tensor) -> Tensor:
        first = self.aspp1(x)
        pooled = self.global_avg_pool(x).repeat(1, 1, *_dims(first, 2, 3))
        y = torch.cat([first, *(branch(x) for branch in self.aspp_deforms), pooled], dim=1)
        return F.relu(self.bn1(self.conv1(y)))


class DecoderBlock(nn.Module):
    """BiRefNet's BasicDecBlk: 3×3 conv → BN → ReLU → ASPPDeformable → 3×3 conv → BN."""

    def __init__(self, cin: int, cout: int, cfg: BiRefNetConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(cin, cfg.dec_inter, 3, 1, 1)
        self.bn_in = nn.BatchNorm2d(cfg.dec_inter)
        self.dec_att = ASPPDeformable(cfg.dec_inter, cfg.aspp_planes)
        self.conv_out = nn.Conv2d(cfg.dec_inter, cout, 3, 1, 1)
        self.bn_out = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn_out(self.conv_out(self.dec_att(F.relu(self.bn_in(self.conv_in(x))))))


class LateralBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class PatchBlock(nn.Module):
    """Two 3×3 convolutions, no activation between (BiRefNet's SimpleConvs)."""

    def __init__(self, cin: int, cout: int, inter: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inter, 3, 1, 1)
        self.conv_out = nn.Conv2d(inter, cout, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv1(x))


class Decoder(nn.Module):
    def __init__(self, channels: list[int], cfg: BiRefNetConfig) -> None:
        """`channels`: the encoder widths, coarsest first (after the multi-scale concatenation)."""
        super().__init__()
        patch_out = [c // 8 for c in channels]
        # Image patches: grids of 32², 16², 8², 4² and 1 over 3 channels.
        patch_in = [3 * 4 ** k for k in (5, 4, 3, 2, 0)]
        self.ipt_blk5 = PatchBlock(patch_in[0], patch_out[0], cfg.ipt_inter)
        self.ipt_blk4 = PatchBlock(patch_in[1], patch_out[0], cfg.ipt_inter)
        self.ipt_blk3 = PatchBlock(patch_in[2], patch_out[1], cfg.ipt_inter)
        self.ipt_blk2 = PatchBlock(patch_in[3], patch_out[2], cfg.ipt_inter)
        self.ipt_blk1 = PatchBlock(patch_in[4], patch_out[3], cfg.ipt_inter)
        outs = [*channels[1:], channels[-1] // 2]
        ins = [channels[i] + patch_out[max(0, i - 1)] for i in range(4)]
        self.decoder_block4 = DecoderBlock(ins[0], outs[0], cfg)
        self.decoder_block3 = DecoderBlock(ins[1], outs[1], cfg)
        self.decoder_block2 = DecoderBlock(ins[2], outs[2], cfg)
        self.decoder_block1 = DecoderBlock(ins[3], outs[3], cfg)
        self.conv_out1 = nn.Sequential(nn.Conv2d(outs[3] + patch_out[3], 1, 1))
        self.lateral_block4 = LateralBlock(channels[1], outs[0])
        self.lateral_block3 = LateralBlock(channels[2], outs[1])
        self.lateral_block2 = LateralBlock(channels[3], outs[2])
        g = cfg.gdt_channels
        for level, width in zip((4, 3, 2), outs[:3]):
            # Deep supervision and gradient predictions: training-only outputs, loaded but unused.
            self.add_module(f"conv_ms_spvn_{level}", nn.Conv2d(width, 1, 1))
        for level, width in zip((4, 3, 2), outs[:3]):
            self.add_module(f"gdt_convs_{level}", nn.Sequential(nn.Conv2d(width, g, 3, 1, 1), nn.BatchNorm2d(g), nn.ReLU()))
        for level in (4, 3, 2):
            self.add_module(f"gdt_convs_pred_{level}", nn.Sequential(nn.Conv2d(g, 1, 1)))
        for level in (4, 3, 2):
            self.add_module(f"gdt_convs_attn_{level}", nn.Sequential(nn.Conv2d(g, 1, 1)))

    def _with_patches(self, h: Tensor, x: Tensor, block: nn.Module) -> Tensor:
        return torch.cat([h, block(_resize(image_patches(x, h), _size(h)))], dim=1)

    def _gate(self, p: Tensor, level: int) -> Tensor:
        attn = getattr(self, f"gdt_convs_attn_{level}")(getattr(self, f"gdt_convs_{level}")(p))
        return p * torch.sigmoid(attn)

    def forward(self, x: Tensor, x1: Tensor, x2: Tensor, x3: Tensor, x4: Tensor) -> Tensor:
        p = self._gate(self.decoder_block4(self._with_patches(x4, x, self.ipt_blk5)), 4)
        h = _resize(p, _size(x3)) + self.lateral_block4(x3)
        p = self._gate(self.decoder_block3(self._with_patches(h, x, self.ipt_blk4)), 3)
        h = _resize(p, _size(x2)) + self.lateral_block3(x2)
        p = self._gate(self.decoder_block2(self._with_patches(h, x, self.ipt_blk3)), 2)
        h = _resize(p, _size(x1)) + self.lateral_block2(x1)
        p = _resize(self.decoder_block1(self._with_patches(h, x, self.ipt_blk2)), _size(x))
        return self.conv_out1(self._with_patches(p, x, self.ipt_blk1))


class BiRefNet(nn.Module):
    """x [B,3,H,W], ImageNet-normalised (H, W multiples of 32; RMBG-2.0 runs at 1024²) →
    logits [B,1,H,W] of the foreground (`mask`: their sigmoid)."""

    def __init__(self, cfg: BiRefNetConfig = PUBLISHED) -> None:
        super().__init__()
        if len(cfg.depths) != 4 or len(cfg.heads) != 4:
            raise ValueError("BiRefNet: the decoder needs four backbone stages")
        self.cfg = cfg
        self.bb = SwinBackbone(cfg)
        channels = [2 * c for c in reversed(cfg.stage_widths)]  # multi-scale input "cat" doubles every width
        context = sum(channels[1:])  # the three finer stages in front of the coarsest
        self.squeeze_module = nn.Sequential(DecoderBlock(channels[0] + context, channels[0], cfg))
        self.decoder = Decoder(channels, cfg)

    def encode(self, x: Tensor) -> list[Tensor]:
        full = self.bb(x)
        h, w = _dims(x, 2, 3)
        half = self.bb(F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=True))
        feats = [torch.cat([f, _resize(g, _size(f))], dim=1) for f, g in zip(full, half)]
        x1, x2, x3, x4 = feats
        x4 = torch.cat([_resize(x1, _size(x4)), _resize(x2, _size(x4)), _resize(x3, _size(x4)), x4], dim=1)
        return [x1, x2, x3, self.squeeze_module(x4)]

    def forward(self, x: Tensor) -> Tensor:
        x1, x2, x3, x4 = self.encode(x)
        return self.decoder(x, x1, x2, x3, x4)

    def mask(self, x: Tensor) -> Tensor:
        """What RMBG-2.0's pipeline reads: the sigmoid of the last prediction."""
        return torch.sigmoid(self.forward(x))
