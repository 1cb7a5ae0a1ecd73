"""The auxiliary graphs: sketch mask (G8), reference mask (G9, ISNet), line extractors (G10).

Each comes from its own published file, not from the colorizer checkpoint. A file is opened like
the checkpoint (safetensors or PyTorch pickle, a `state_dict` wrapper unwrapped), every `module.`
in its key names removed as the official loader does, then checked key by key and shape by shape
against our module before anything is exported.

Channel widths are read from the file (the first convolution's filter count); the published
files have the published widths. Any other width loads too (the tiny test stand-ins use it) and
is reported as a note; when such a file fails the checks, the error is given against the
published architecture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .checkpoint import Component, TensorSource, component_state
from .errors import ConvertError
from .nets.isnet import ISNetDIS
from .nets.line_extractors import Anime2Sketch, InformativeDrawings, MangaLineNet, SketchKeras

LINE_EXTRACTORS = ["lineart_keras", "lineart", "lineart_denoise", "lineart_sk"]
MASK_GRAPHS = ["sketch_mask", "ref_mask"]
AUX_GRAPHS = [*MASK_GRAPHS, *LINE_EXTRACTORS]


@dataclass(frozen=True)
class Family:
    """One network architecture and how to recognise and size it from a file's keys."""

    network: str
    build: Callable[[int], nn.Module]
    width_key: str  # a convolution whose filter count is the width
    published_width: int
    # Example input for tracing and parity: channels, batch, side, value range.
    channels: int
    batch: int
    side: int
    low: float
    high: float
    # The last layer before the output activation, and the spread its output gets in the tiny
    # stand-ins (so random weights give outputs that are neither saturated nor flat).
    head: str
    head_mean: float
    head_std: float
    spatial_dynamic: bool
    min_width: int  # the smallest width that keeps every channel count ≥ 1
    # The module method the graph runs (the contract leaves a fixed output mapping to the runtime).
    method: str = "forward"


FAMILIES: dict[str, Family] = {
    "isnet": Family("ISNet-DIS (SkyTNT anime-segmentation)", lambda w: ISNetDIS(width=w), "conv_in.weight", 64, 3, 1, 1024, -1.0, 1.0, "side1", 0.0, 1.5, False, 4),
    "sketchkeras": Family("sketchKeras", lambda w: SketchKeras(width=w), "downblock_1.1.weight", 32, 1, 3, 512, -1.0, 1.0, "last_conv", 0.0, 0.5, True, 1),
    "anime2sketch": Family("Anime2Sketch U-net", lambda w: Anime2Sketch(ngf=w), "model.model.0.weight", 64, 3, 1, 512, -1.0, 1.0, "model.model.3", 0.0, 1.0, True, 1),
    "mangaline": Family("MangaLineExtraction res_skip", lambda w: MangaLineNet(width=w), "block0.model.0.conv1.model.2.weight", 24, 1, 1, 512, 0.0, 255.0, "conv15.model.2", 127.5, 60.0, True, 2, "raw"),
    "informative": Family("informative-drawings generator", lambda w: InformativeDrawings(ngf=w), "model0.1.weight", 64, 3, 1, 512, 0.0, 255.0, "model4.1", 0.0, 1.5, True, 1),
}


@dataclass(frozen=True)
class AuxGraph:
    graph: str
    family: str
    flag: str  # the command-line option that names its file
    published: str  # the published file's name and hub
    input_range: str  # for messages and docs


AUX: dict[str, AuxGraph] = {
    "sketch_mask": AuxGraph("sketch_mask", "isnet", "--sketch-mask", "sketch-segment.safetensors (tellurion/line_extractor)", "[-1, 1]"),
    "ref_mask": AuxGraph("ref_mask", "isnet", "--reference-mask", "isnetis.safetensors (tellurion/line_extractor)", "[0, 1]"),
    "lineart_keras": AuxGraph("lineart_keras", "sketchkeras", "--line-extractor lineart_keras", "model.pth (tellurion/line_extractor)", "blur difference / max"),
    "lineart": AuxGraph("lineart", "anime2sketch", "--line-extractor lineart", "netG.pth (lllyasviel/Annotators)", "[-1, 1]"),
    "lineart_denoise": AuxGraph("lineart_denoise", "mangaline", "--line-extractor lineart_denoise", "erika.pth (lllyasviel/Annotators)", "[0, 255]"),
    "lineart_sk": AuxGraph("lineart_sk", "informative", "--line-extractor lineart_sk", "sk_model.pth (lllyasviel/Annotators)", "[0, 255]"),
}

# A key only each architecture has (after `module.` removal), to say what a wrong file is.
_SIGNATURES = {
    "stage1.rebnconvin.conv_s1.weight": "an ISNet segmentation network (isnetis.safetensors or sketch-segment.safetensors): pass it as --sketch-mask or --reference-mask",
    "downblock_1.1.weight": "the lineart_keras extractor (model.pth): pass it as --line-extractor lineart_keras=FILE",
    "model.model.1.model.1.weight": "the lineart extractor (netG.pth): pass it as --line-extractor lineart=FILE",
    "block0.model.0.conv1.model.2.weight": "the lineart_denoise extractor (erika.pth): pass it as --line-extractor lineart_denoise=FILE",
    "model2.0.conv_block.1.weight": "the lineart_sk extractor (sk_model.pth): pass it as --line-extractor lineart_sk=FILE",
    "model.diffusion_model.out.2.weight": "the colorizer checkpoint: pass it as --checkpoint",
}


def what_file(keys: list[str]) -> str | None:
    """A hint naming the architecture a file of auxiliary weights holds, if recognised."""
    stripped = {k.replace("module.", "") for k in keys}
    for key, hint in _SIGNATURES.items():
        if key in stripped:
            return hint
    return None


def parse_line_extractors(values: list[str] | None) -> dict[str, str]:
    """`NAME=FILE` strings of `--line-extractor` → {name: file}; one-line errors."""
    out: dict[str, str] = {}
    for value in values or []:
        name, eq, path = value.partition("=")
        name = name.strip()
        if not eq or not path:
            raise ConvertError(f"--line-extractor {value}: expected NAME=FILE with NAME one of {', '.join(LINE_EXTRACTORS)}")
        if name not in LINE_EXTRACTORS:
            raise ConvertError(f"--line-extractor {value}: unknown extractor {name!r}; choose {', '.join(LINE_EXTRACTORS)}")
        if name in out:
            raise ConvertError(f"--line-extractor {name} given twice ({out[name]} and {path})")
        out[name] = path
    return out


def _component(graph: str) -> Component:
    # The official loader runs BatchNorm's own legacy rule: a missing `num_batches_tracked`
    # counter is filled in. It plays no part in inference.
    return Component(graph, "", lambda k: k.endswith(".num_batches_tracked") or k == "num_batches_tracked", absent="BatchNorm num_batches_tracked counters absent (unused at inference; the official loader fills them in too)")


def _width_of(source: TensorSource, keys: dict[str, str], family: Family) -> int:
    key = keys.get(family.width_key)
    if key is None:
        return family.published_width
    shape = source.shape(key)
    if len(shape) != 4 or shape[0] <= 0:
        return family.published_width
    width = int(shape[0])
    return width if width >= family.min_width else family.published_width


def _mismatches(source: TensorSource, keys: dict[str, str], comp: Component, net: nn.Module) -> int:
    """How many keys are missing, unexpected or of the wrong shape for `net`."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sum(1 for k in expected if k not in keys and not comp.optional_key(k))
    unexpected = sum(1 for k in keys if k not in expected)
    wrong = sum(1 for k in keys if k in expected and tuple(source.shape(keys[k])) != expected[k])
    return missing + unexpected + wrong


def open_aux(graph: str, path: str) -> TensorSource:
    return TensorSource(path, AUX[graph].flag)


def load_aux(graph: str, source: TensorSource) -> tuple[nn.Module, list[str], dict]:
    """Our module for `graph` with the file's weights, strictly checked; (module, notes, info)."""
    spec = AUX[graph]
    family = FAMILIES[spec.family]
    keys = {k.replace("module.", ""): k for k in source.keys()}
    if not keys:
        raise ConvertError(f"{source.role} {source.path}: holds no tensors (expected {spec.published})")
    width = _width_of(source, keys, family)
    comp = _component(graph)
    net = family.build(width)
    if width != family.published_width and _mismatches(source, keys, comp, family.build(family.published_width)) < _mismatches(source, keys, comp, net):
        # A damaged first convolution, not a scaled network: check against the published one.
        width, net = family.published_width, family.build(family.published_width)
    try:
        state, notes = component_state(source, comp, net, prefix="", keys=keys)
    except ConvertError as e:
        hint = what_file(source.keys())
        expected = f"expected {family.network}, {spec.published}"
        raise ConvertError(f"{e} ({expected}{'; this looks like ' + hint if hint else ''})") from None
    net.load_state_dict(state, strict=True)
    net.eval()
    if width != family.published_width:
        notes.append(f"{graph}: {family.network} at width {width} (published {family.published_width}) — not the published weights, a reduced stand-in")
    info = {"file": source.path, "network": family.network, "width": width}
    return net, notes, info


def example_input(graph: str, gen: torch.Generator, batch: int | None = None, side: int | None = None) -> torch.Tensor:
    """A random input of the graph's contract shape and value range."""
    family = FAMILIES[AUX[graph].family]
    b = family.batch if batch is None else batch
    s = family.side if side is None else side
    x = torch.rand(b, family.channels, s, s, generator=gen)
    if graph == "lineart_keras":
        # blur difference ÷ its maximum: mostly near 0, peaks at 1, a few negative swings
        x = (torch.randn(b, 1, s, s, generator=gen) * 0.3).clamp(-1.5, 1.0)
        return x
    return family.low + (family.high - family.low) * x


def dynamic_axes(graph: str) -> dict[str, dict[int, str]]:
    family = FAMILIES[AUX[graph].family]
    out = "mask" if graph in MASK_GRAPHS else "lines"
    if family.spatial_dynamic:
        return {"image": {0: "batch", 2: "height", 3: "width"}, out: {0: "batch", 2: "height", 3: "width"}}
    return {"image": {0: "batch"}, out: {0: "batch"}}


def random_state(net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights for a stand-in, perturbed everywhere: BatchNorm statistics included
    (variances positive), convolutions at 1/√fan-in, biases small."""
    state: dict[str, torch.Tensor] = {}
    for name, module in net.named_modules():
        p = f"{name}." if name else ""
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            state[p + "weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
            state[p + "bias"] = 0.05 * torch.randn(c, generator=gen)
            state[p + "running_mean"] = 0.1 * torch.randn(c, generator=gen)
            state[p + "running_var"] = 0.5 + torch.rand(c, generator=gen)
            state[p + "num_batches_tracked"] = torch.tensor(int(torch.randint(1, 10_000, (1,), generator=gen)), dtype=torch.long)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            w = module.weight
            if isinstance(module, nn.ConvTranspose2d):
                fan_in = w.shape[0] * w.shape[2] * w.shape[3] / (module.stride[0] * module.stride[1])
            else:
                fan_in = w[0].numel()
            state[p + "weight"] = torch.randn(w.shape, generator=gen) / fan_in ** 0.5
            if module.bias is not None:
                state[p + "bias"] = 0.05 * torch.randn(module.bias.shape, generator=gen)
    missing = set(net.state_dict()) - set(state)
    assert not missing, f"random_state: no rule for {sorted(missing)[:3]}"
    return state


def calibrate(graph: str, net: nn.Module, gen: torch.Generator, side: int) -> None:
    """Rescales the head convolution of a random stand-in so that, on a random input, its output
    has the family's mean and spread (no saturated sigmoid/tanh/clamp, no flat output)."""
    family = FAMILIES[AUX[graph].family]
    head = dict(net.named_modules())[family.head]
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            net(example_input(graph, gen, side=side))
    finally:
        hook.remove()
    y = seen[0]
    k = family.head_std / max(float(y.std()), 1e-6)
    with torch.no_grad():
        head.weight.mul_(k)
        head.bias.copy_((head.bias - float(y.mean())) * k + family.head_mean)
