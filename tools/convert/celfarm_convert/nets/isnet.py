"""ISNet-DIS, the segmentation network behind the sketch mask (G8) and the ISNet reference mask (G9).

The published files (`sketch-segment.safetensors`, `isnetis.safetensors`, SkyTNT's anime
segmentation layout) hold a two-level U-structure: an outer encoder/decoder of six stages, each
stage itself a small U-net of 3×3 conv + BatchNorm + ReLU units ("RSU" blocks, 7 down to 4 levels
deep; the two deepest stages use dilation instead of pooling). Only the finest side output feeds
the mask: side1 on the last decoder stage, bilinearly upsampled to the input size, then a sigmoid.
The five other side convolutions are in the files (and in this module, so they load strictly) but
take no part in the result.

`width` scales every channel count (64 = the published network); smaller widths keep the key
layout and only exist for tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _resize_as(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


def _halve(x: Tensor) -> Tensor:
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


class ConvUnit(nn.Module):
    """3×3 convolution (optionally dilated, padding = dilation) → BatchNorm → ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)
        self.bn_s1 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn_s1(self.conv_s1(x)))


class ResidualU(nn.Module):
    """One stage: an input unit, a U-net of `height` levels on its output, and the sum of both.

    Pooled form: levels 1…height−1 run at halving resolutions, the bottom level (dilation 2) at
    the coarsest one, and the decoder walks back up, concatenating each level's encoder output.
    Dilated form ("4F"): no resampling at all; level i uses dilation 2^(i−1) on the way down and
    the same on the way up.
    Units are named `rebnconvin`, `rebnconv1…rebnconv{height}`, `rebnconv{height−1}d…rebnconv1d`.
    """

    def __init__(self, height: int, cin: int, mid: int, cout: int, dilated: bool = False) -> None:
        super().__init__()
        self.height = height
        self.dilated = dilated
        self.rebnconvin = ConvUnit(cin, cout)
        for level in range(1, height + 1):
            dilation = 2 ** (level - 1) if dilated else (2 if level == height else 1)
            self.add_module(f"rebnconv{level}", ConvUnit(cout if level == 1 else mid, mid, dilation))
        for level in range(height - 1, 0, -1):
            dilation = 2 ** (level - 1) if dilated else 1
            self.add_module(f"rebnconv{level}d", ConvUnit(2 * mid, cout if level == 1 else mid, dilation))

    def unit(self, name: str) -> ConvUnit:
        return getattr(self, f"rebnconv{name}")

    def forward(self, x: Tensor) -> Tensor:
        top = self.rebnconvin(x)
        skips: list[Tensor] = []
        h = top
        for level in range(1, self.height):
            h = self.unit(str(level))(h)
            skips.append(h)
            if not self.dilated and level < self.height - 1:
                h = _halve(h)
        h = self.unit(str(self.height))(h)
        for level in range(self.height - 1, 0, -1):
            h = self.unit(f"{level}d")(torch.cat((h, skips[level - 1]), 1))
            if not self.dilated and level > 1:
                h = _resize_as(h, skips[level - 2])
        return h + top


class ISNetDIS(nn.Module):
    """x [B, in_ch, H, W] → sigmoid mask [B, out_ch, H, W] (H, W even; the app uses 1024)."""

    PUBLISHED_WIDTH = 64

    def __init__(self, in_ch: int = 3, out_ch: int = 1, width: int = PUBLISHED_WIDTH) -> None:
        super().__init__()
        c = lambda n: n * width // 64  # noqa: E731
        self.width = width
        self.conv_in = nn.Conv2d(in_ch, c(64), 3, stride=2, padding=1)
        # Encoder: (levels, in, mid, out, dilated) per stage.
        self.stage1 = ResidualU(7, c(64), c(32), c(64))
        self.stage2 = ResidualU(6, c(64), c(32), c(128))
        self.stage3 = ResidualU(5, c(128), c(64), c(256))
        self.stage4 = ResidualU(4, c(256), c(128), c(512))
        self.stage5 = ResidualU(4, c(512), c(256), c(512), dilated=True)
        self.stage6 = ResidualU(4, c(512), c(256), c(512), dilated=True)
        # Decoder: each stage sees the upsampled deeper result beside the encoder stage's output.
        self.stage5d = ResidualU(4, c(1024), c(256), c(512), dilated=True)
        self.stage4d = ResidualU(4, c(1024), c(128), c(256))
        self.stage3d = ResidualU(5, c(512), c(64), c(128))
        self.stage2d = ResidualU(6, c(256), c(32), c(64))
        self.stage1d = ResidualU(7, c(128), c(16), c(64))
        for i, ch in enumerate((64, 64, 128, 256, 512, 512), 1):
            self.add_module(f"side{i}", nn.Conv2d(c(ch), out_ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        enc = [self.stage1(self.conv_in(x))]
        for stage in (self.stage2, self.stage3, self.stage4, self.stage5, self.stage6):
            enc.append(stage(_halve(enc[-1])))
        h = enc[-1]
        for stage, skip in zip((self.stage5d, self.stage4d, self.stage3d, self.stage2d, self.stage1d), reversed(enc[:-1])):
            h = stage(torch.cat((_resize_as(h, skip), skip), 1))
        return torch.sigmoid(_resize_as(self.side1(h), x))
