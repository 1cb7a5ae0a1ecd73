"""Sketch (line-art) encoder that produces the per-level control hints for the UNet.

Mirrors the ``control_encoder.*`` tensors of the published checkpoints with the prefix
removed. Index numbers in the keys (``model.14.weight``, ``output_blocks.0.3.bias``) count
every child of a sequential container, the weight-less SiLUs included, so the containers
below keep exactly that child order.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

__all__ = ["MultiEncoder"]

# Stem: (out_channels, stride) per 3x3 conv before the final one; total stride 8.
_STEM = ((16, 1), (16, 1), (32, 2), (32, 1), (96, 2), (96, 1), (256, 2))


def _conv3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1)


def _zero_conv(channels: int) -> nn.Sequential:
    """1x1 conv, zero-initialised as in training; wrapped so its key is ``<name>.0.*``."""
    conv = nn.Conv2d(channels, channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv)


class MultiEncoder(nn.Module):
    """Downsamples a sketch and emits one hint per UNet level, finest first.

    With ``ch_mults=[1, 2, 4, 4]`` and an ``S x S`` input the hints are
    ``[c, S/8]``, ``[c, S/16]``, ``[2c, S/32]``, ``[4c, S/64]``, ``[4c, S/64]`` where
    ``c = model_channels``: the stem works at 1/8 (matching the VAE latent), each
    further level halves resolution except the last.
    """

    def __init__(self, *, in_ch: int, model_channels: int, ch_mults: Sequence[int]) -> None:
        super().__init__()
        widths = [model_channels * int(m) for m in ch_mults]
        if not widths:
            raise ValueError("ch_mults must not be empty")

        stem: list[nn.Module] = []
        c_prev = in_ch
        for c_out, stride in _STEM:
            stem += [_conv3(c_prev, c_out, stride), nn.SiLU()]
            c_prev = c_out
        stem.append(_conv3(c_prev, widths[0]))
        self.model = nn.Sequential(*stem)
        self.zero_layer = _zero_conv(widths[0])

        self.output_blocks = nn.ModuleList()
        self.zero_blocks = nn.ModuleList()
        c_prev = widths[0]
        last = len(widths) - 1
        for level, width in enumerate(widths):
            self.output_blocks.append(nn.Sequential(
                nn.SiLU(),
                _conv3(c_prev, width, stride=1 if level == last else 2),
                nn.SiLU(),
                _conv3(width, width),
            ))
            self.zero_blocks.append(_zero_conv(width))
            c_prev = width

    def forward(self, sketch: Tensor) -> list[Tensor]:
        """Sketch ``[B, in_ch, H, W]`` (H, W multiples of 64) -> ``len(ch_mults) + 1`` hints."""
        h = self.model(sketch)
        hints = [self.zero_layer(h)]
        for block, zero in zip(self.output_blocks, self.zero_blocks):
            h = block(h)
            hints.append(zero(h))
        return hints
