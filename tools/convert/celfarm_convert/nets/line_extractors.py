"""The four line extractors of the "extract" sketch preprocessor (contract G10).

Each class reproduces one published network's computation and state-dict layout, so the
published file loads with `strict=True` (after the official loader's `module.` removal):

| class            | graph             | published file (hub)                         | layout of the file           |
|------------------|-------------------|----------------------------------------------|------------------------------|
| `SketchKeras`    | `lineart_keras`   | tellurion/line_extractor `model.pth`         | `downblock_*`, `upblock_*`, `last_conv` |
| `Anime2Sketch`   | `lineart`         | lllyasviel/Annotators `netG.pth`             | nested `model.model.1.model.3…` |
| `MangaLineNet`   | `lineart_denoise` | lllyasviel/Annotators `erika.pth`            | `block0…block9`, `conv15`    |
| `InformativeDrawings` | `lineart_sk` | lllyasviel/Annotators `sk_model.pth`         | `model0…model4` (the generator alone) |

Every class takes a width (the published value by default); smaller widths keep the key names
and only exist for tests. What each network expects and returns is in its docstring; the
pre- and post-processing around it (blur difference, ×255, negation, …) is the runtime's.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def _scaled(width: int, published: int) -> Callable[[int], int]:
    return lambda n: n * width // published


# --- lineart_keras -------------------------------------------------------------------------------

def _keras_conv(cin: int, cout: int, kernel: int, stride: int = 1, pad: tuple[int, int, int, int] = (1, 1, 1, 1)) -> list[nn.Module]:
    """Reflection padding, convolution, BatchNorm (Keras' ε = 1e-3), ReLU: four list entries."""
    return [nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, kernel, stride=stride), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.0), nn.ReLU()]


class SketchKeras(nn.Module):
    """sketchKeras (a Keras model ported to PyTorch): a 5-level U-net on one grey channel.

    Input: `[B, 1, H, W]`, H and W multiples of 16. The app feeds the three colour channels of a
    512×512 image as a batch of three, each the (image − Gaussian blur) difference ÷ 127.5 ÷ its
    global maximum. Output: `[B, 1, H, W]`, the raw last convolution (no activation).
    """

    PUBLISHED_WIDTH = 32

    def __init__(self, width: int = PUBLISHED_WIDTH) -> None:
        super().__init__()
        c = _scaled(width, 32)
        self.downblock_1 = nn.Sequential(*_keras_conv(1, c(32), 3))
        self.downblock_2 = nn.Sequential(*_keras_conv(c(32), c(64), 4, 2), *_keras_conv(c(64), c(64), 3))
        self.downblock_3 = nn.Sequential(*_keras_conv(c(64), c(128), 4, 2), *_keras_conv(c(128), c(128), 3))
        self.downblock_4 = nn.Sequential(*_keras_conv(c(128), c(256), 4, 2), *_keras_conv(c(256), c(256), 3))
        self.downblock_5 = nn.Sequential(*_keras_conv(c(256), c(512), 4, 2))
        self.downblock_6 = nn.Sequential(*_keras_conv(c(512), c(512), 3))
        # Each up block: bicubic ×2, a 4×4 convolution on asymmetric (1, 2, 1, 2) padding, a 3×3 one.
        for i, (cin, mid, cout) in enumerate(((1024, 512, 256), (512, 256, 128), (256, 128, 64), (128, 64, 32)), 1):
            layers = [nn.Upsample(scale_factor=2, mode="bicubic"), *_keras_conv(c(cin), c(mid), 4, pad=(1, 2, 1, 2)), *_keras_conv(c(mid), c(cout), 3)]
            self.add_module(f"upblock_{i}", nn.Sequential(*layers))
        self.last_pad = nn.ReflectionPad2d(1)
        self.last_conv = nn.Conv2d(c(64), 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        downs = []
        h = x
        for i in range(1, 7):
            h = getattr(self, f"downblock_{i}")(h)
            downs.append(h)
        # Up path: the deepest pair first, then each result beside the next-finer down output.
        h = torch.cat((downs[4], downs[5]), 1)
        for i, skip in zip(range(1, 5), (downs[3], downs[2], downs[1], downs[0])):
            h = torch.cat((skip, getattr(self, f"upblock_{i}")(h)), 1)
        return self.last_conv(self.last_pad(h))


# --- lineart (Anime2Sketch) ----------------------------------------------------------------------

class _UNetLevel(nn.Module):
    """One level of the pix2pix-style U-net, its `model` Sequential laid out like the original:
    outermost `[down, inner, relu, up, tanh]`, middle `[lrelu, down, norm, inner, relu, up, norm]`,
    innermost `[lrelu, down, relu, up, norm]`. Norms are InstanceNorm without affine parameters
    (so every convolution has a bias). Non-outermost levels return `cat(x, level(x))`."""

    def __init__(self, outer: int, inner: int, cin: int | None = None, child: nn.Module | None = None, outermost: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        cin = outer if cin is None else cin
        down = nn.Conv2d(cin, inner, 4, stride=2, padding=1)
        norm = lambda n: nn.InstanceNorm2d(n, affine=False, track_running_stats=False)  # noqa: E731
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [down, child, nn.ReLU(), up, nn.Tanh()]
        elif child is None:
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1)
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), up, norm(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [nn.LeakyReLU(0.2), down, norm(inner), child, nn.ReLU(), up, norm(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x).clamp(-1, 1)
        return torch.cat((x, self.model(x)), 1)


class Anime2Sketch(nn.Module):
    """Anime2Sketch's generator: a U-net of `downs` stride-2 levels (8 published, `ngf` 64).

    Input: `[B, 3, H, W]` in [−1, 1] (an RGB image normalised with mean 0.5, std 0.5), H and W
    multiples of 2^downs (256). Output: `[B, 1, H, W]`, tanh (then clamped to [−1, 1], a no-op),
    dark lines on white.
    """

    PUBLISHED_WIDTH = 64

    def __init__(self, in_ch: int = 3, out_ch: int = 1, downs: int = 8, ngf: int = PUBLISHED_WIDTH) -> None:
        super().__init__()
        level = _UNetLevel(ngf * 8, ngf * 8)  # innermost
        for _ in range(downs - 5):
            level = _UNetLevel(ngf * 8, ngf * 8, child=level)
        for mult in (4, 2, 1):
            level = _UNetLevel(ngf * mult, ngf * mult * 2, child=level)
        self.model = _UNetLevel(out_ch, ngf, cin=in_ch, child=level, outermost=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


# --- lineart_denoise (MangaLineExtraction, "erika") ----------------------------------------------

class _NormActConv(nn.Module):
    """BatchNorm (ε 1e-3) → LeakyReLU 0.2 → k×k convolution (same padding), optionally followed by
    a nearest ×2 upsampling; `model` = [bn, act, conv(, upsample)]."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(cin, eps=1e-3), nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)]
        if upsample:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class _Projection(nn.Module):
    """The residual path's shortcut: identity when shapes agree, else a 1×1 convolution
    (strided, or followed by a nearest ×2 upsampling) in `model`."""

    def __init__(self, cin: int, cout: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        self.model: nn.Sequential | None = None
        if cin != cout or (stride != 1 and not upsample):
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, stride=stride)]
            if upsample:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (x if self.model is None else self.model(x)) + y


class _ResUnit(nn.Module):
    """conv1 → residual, plus the shortcut of the input; `upsample` makes conv1 and the shortcut
    double the resolution (the decoder's first unit of each level)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        self.conv1 = _NormActConv(cin, cout, 3, stride, upsample=upsample)
        self.residual = _NormActConv(cout, cout, 3)
        self.shortcut = _Projection(cin, cout, stride, upsample=upsample)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x, self.residual(self.conv1(x)))


class _Stack(nn.Module):
    """`units` residual units in `model`. Down stacks: the last unit strides by 2 unless `first`.
    Up stacks: the first unit upsamples ×2."""

    def __init__(self, cin: int, cout: int, units: int, first: bool = False, up: bool = False) -> None:
        super().__init__()
        layers = []
        for i in range(units):
            src = cin if i == 0 else cout
            if up:
                layers.append(_ResUnit(src, cout, upsample=i == 0))
            else:
                layers.append(_ResUnit(src, cout, stride=2 if (i == units - 1 and not first) else 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MangaLineNet(nn.Module):
    """MangaLineExtraction's residual U-net ("res_skip", `erika.pth`).

    Input: `[B, 1, H, W]` on a 0–255 scale (the app: the red channel × 255), H and W multiples of
    16. `raw` is the last convolution, on the 0–255 scale (dark lines on white); `forward`, as the
    published class, ends with clamp(raw, 0, 255) / 127.5 − 1. The graph stops at `raw`: the
    contract (G10) gives the clamp and the rescale to the runtime.
    """

    PUBLISHED_WIDTH = 24

    def __init__(self, width: int = PUBLISHED_WIDTH) -> None:
        super().__init__()
        c = _scaled(width, 24)
        widths = [c(24), c(48), c(96), c(192), c(384)]
        depths = [2, 3, 5, 7, 12]
        src = 1
        for i, (w, d) in enumerate(zip(widths, depths)):
            self.add_module(f"block{i}", _Stack(src, w, d, first=i == 0))
            src = w
        # Decoder levels 5…8 climb back; res1…res4 add the encoder output of the same level
        # (identity shortcuts: same width, so they hold no weights).
        for i, (w, d) in enumerate(zip(reversed(widths[:-1]), reversed(depths[:-1])), 5):
            self.add_module(f"block{i}", _Stack(src, w, d, up=True))
            self.add_module(f"res{i - 4}", _Projection(w, w))
            src = w
        self.block9 = _Stack(src, c(16), 2, first=True)
        self.conv15 = _NormActConv(c(16), 1, 1)

    def raw(self, x: Tensor) -> Tensor:
        skips = []
        h = x
        for i in range(5):
            h = getattr(self, f"block{i}")(h)
            skips.append(h)
        for i in range(5, 9):
            h = getattr(self, f"res{i - 4}")(skips[8 - i], getattr(self, f"block{i}")(h))
        return self.conv15(self.block9(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.raw(x).clamp(0, 255) / 127.5 - 1.0


# --- lineart_sk (informative-drawings generator) -------------------------------------------------

class _ResidualReflect(nn.Module):
    """x + (reflect-pad, 3×3 conv, InstanceNorm, ReLU, reflect-pad, 3×3 conv, InstanceNorm)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class InformativeDrawings(nn.Module):
    """The generator of "Learning to generate line drawings" as the annotator uses it
    (`sk_model.pth`: 3 residual blocks, sigmoid output; the file holds the generator's own keys).

    Input: `[B, 3, H, W]`; the app feeds raw 0–255 RGB values (no /255). H and W multiples of 4.
    Output: `[B, 1, H, W]`, sigmoid, in (0, 1).
    """

    PUBLISHED_WIDTH = 64

    def __init__(self, in_ch: int = 3, out_ch: int = 1, blocks: int = 3, ngf: int = PUBLISHED_WIDTH) -> None:
        super().__init__()
        inorm = nn.InstanceNorm2d
        self.model0 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), inorm(ngf), nn.ReLU())
        self.model1 = nn.Sequential(
            nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1), inorm(ngf * 2), nn.ReLU(),
            nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1), inorm(ngf * 4), nn.ReLU(),
        )
        self.model2 = nn.Sequential(*[_ResidualReflect(ngf * 4) for _ in range(blocks)])
        self.model3 = nn.Sequential(
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, stride=2, padding=1, output_padding=1), inorm(ngf * 2), nn.ReLU(),
            nn.ConvTranspose2d(ngf * 2, ngf, 3, stride=2, padding=1, output_padding=1), inorm(ngf), nn.ReLU(),
        )
        self.model4 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.model4(self.model3(self.model2(self.model1(self.model0(x)))))

