"""The auxiliary graphs: sketch mask (G8), reference mask (G9, RMBG-2.0 or ISNet), line extractors (G10).

Each comes from its own published file, not from the colorizer checkpoint. A file is opened like
the checkpoint (safetensors or PyTorch pickle, a `state_dict` wrapper unwrapped), every `module.`
level of its key names removed as the official loaders do, then checked key by key and shape by shape
against our module before anything is exported.

Channel widths are read from the file (the first convolution's filter count; BiRefNet's several
widths, depths, heads and window from the shapes of its tensors); the published files have the
published widths. Any other width loads too (the tiny test stand-ins use it) and is reported as a
note; when such a file fails the checks, the error is given against the published architecture.

`--reference-mask` takes either network the app offers for the reference mask: BRIA's RMBG-2.0
(BiRefNet, the app's default; recognised by its Swin backbone's keys) or ISNet
(`isnetis.safetensors`); the pack records which (`inputs.refMaskNetwork`), since the runtime
prepares each one's input differently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import Component, TensorSource, _first, component_state
from .errors import ConvertError
from .nets.birefnet import PUBLISHED as BIREFNET_PUBLISHED
from .nets.birefnet import SIGNATURE_KEY as BIREFNET_KEY
from .nets.birefnet import BiRefNet, BiRefNetConfig, WindowAttention
from .nets.isnet import ISNetDIS
from .nets.line_extractors import Anime2Sketch, InformativeDrawings, MangaLineNet, SketchKeras

LINE_EXTRACTORS = ["lineart_keras", "lineart", "lineart_denoise", "lineart_sk"]
# `ref_mask` holds the network of the first --reference-mask file; a second file of the other
# network becomes `ref_mask_<network>` (the request's `referenceMaskExtractor` picks one).
OTHER_REF_MASKS = ["ref_mask_rmbg", "ref_mask_isnet"]
MASK_GRAPHS = ["sketch_mask", "ref_mask", *OTHER_REF_MASKS]
AUX_GRAPHS = [*MASK_GRAPHS, *LINE_EXTRACTORS]


@dataclass(frozen=True)
class Family:
    """One network architecture and how to recognise and size it from a file's keys."""

    network: str
    build: Callable[[Any], nn.Module]
    width_key: str  # a convolution whose filter count is the width
    published_width: Any  # an int; with `infer`, the published configuration
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
    # Networks sized by more than one width (BiRefNet): the configuration — `build`'s argument —
    # the file's tensor shapes imply, None when they do not tell.
    infer: Callable[[dict[str, tuple[int, ...]]], Any] | None = None
    # Input normalisation (per-channel mean, std) after drawing uniformly in [low, high].
    normalise: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # The terms its publisher states for the weights, for the pack's licence (None: none stated).
    licence: str | None = None
    licence_id: str | None = None
    # pack.json `inputs.refMaskNetwork` when this family is the `ref_mask` graph.
    ref_mask_network: str | None = None


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
RMBG_LICENCE = (
    "BRIA AI's RMBG-2.0 (briaai/RMBG-2.0), licensed CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/): "
    "non-commercial use only; commercial use needs an agreement with BRIA AI"
)
# The tiny BiRefNet of the tests (the published key names at a fraction of the widths and depths).
BIREFNET_TINY = BiRefNetConfig(embed_dim=16, depths=(1, 1, 2, 1), heads=(1, 1, 2, 2), window=4, dec_inter=8, aspp_planes=8, ipt_inter=4, gdt_channels=4)


FAMILIES: dict[str, Family] = {
    "isnet": Family("ISNet-DIS (SkyTNT anime-segmentation)", lambda w: ISNetDIS(width=w), "conv_in.weight", 64, 3, 1, 1024, -1.0, 1.0, "side1", 0.0, 1.5, False, 4,
                    ref_mask_network="isnet"),
    # RMBG-2.0: the graph is the sigmoid of the logits (`mask`); its input the ImageNet-normalised image.
    "rmbg": Family("BiRefNet (BRIA RMBG-2.0, Swin-L)", lambda c: BiRefNet(c), "bb.patch_embed.proj.weight", BIREFNET_PUBLISHED, 3, 1, 1024, 0.0, 1.0,
                   "decoder.conv_out1.0", 0.0, 1.5, False, 0, "mask", infer=BiRefNetConfig.from_shapes, normalise=IMAGENET,
                   licence=RMBG_LICENCE, licence_id="CC-BY-NC-4.0", ref_mask_network="rmbg"),
    "sketchkeras": Family("sketchKeras", lambda w: SketchKeras(width=w), "downblock_1.1.weight", 32, 1, 3, 512, -1.0, 1.0, "last_conv", 0.0, 0.5, True, 1),
    "anime2sketch": Family("Anime2Sketch U-net", lambda w: Anime2Sketch(ngf=w), "model.model.0.weight", 64, 3, 1, 512, -1.0, 1.0, "model.model.3", 0.0, 1.0, True, 1),
    "mangaline": Family("MangaLineExtraction res_skip", lambda w: MangaLineNet(width=w), "block0.model.0.conv1.model.2.weight", 24, 1, 1, 512, 0.0, 255.0, "conv15.model.2", 127.5, 60.0, True, 2, "raw"),
    "informative": Family("informative-drawings generator", lambda w: InformativeDrawings(ngf=w), "model0.1.weight", 64, 3, 1, 512, 0.0, 255.0, "model4.1", 0.0, 1.5, True, 1),
}


@dataclass(frozen=True)
class AuxGraph:
    graph: str
    family: str  # the network; with `alternatives`, the one assumed when a file is none of them
    flag: str  # the command-line option that names its file
    published: str  # the published file's name and hub
    input_range: str  # for messages and docs
    # Networks the option takes, when several: (family, the top-level key prefixes only it has
    # (after `module.` removal), its published file). A file is taken for the one most of its keys
    # belong to.
    alternatives: tuple[tuple[str, tuple[str, ...], str], ...] = ()


AUX: dict[str, AuxGraph] = {
    "sketch_mask": AuxGraph("sketch_mask", "isnet", "--sketch-mask", "sketch-segment.safetensors (tellurion/line_extractor)", "[-1, 1]"),
    "ref_mask": AuxGraph("ref_mask", "isnet", "--reference-mask", "isnetis.safetensors (tellurion/line_extractor)", "[0, 1]",
                         alternatives=(("rmbg", ("bb.", "squeeze_module.", "decoder."), "model.safetensors (briaai/RMBG-2.0)"),
                                       ("isnet", ("conv_in.", "stage", "side"), "isnetis.safetensors (tellurion/line_extractor)"))),
    "ref_mask_rmbg": AuxGraph("ref_mask_rmbg", "rmbg", "--reference-mask", "model.safetensors (briaai/RMBG-2.0)", "[0, 1]"),
    "ref_mask_isnet": AuxGraph("ref_mask_isnet", "isnet", "--reference-mask", "isnetis.safetensors (tellurion/line_extractor)", "[0, 1]"),
    "lineart_keras": AuxGraph("lineart_keras", "sketchkeras", "--line-extractor lineart_keras", "model.pth (tellurion/line_extractor)", "blur difference / max"),
    "lineart": AuxGraph("lineart", "anime2sketch", "--line-extractor lineart", "netG.pth (lllyasviel/Annotators)", "[-1, 1]"),
    "lineart_denoise": AuxGraph("lineart_denoise", "mangaline", "--line-extractor lineart_denoise", "erika.pth (lllyasviel/Annotators)", "[0, 255]"),
    "lineart_sk": AuxGraph("lineart_sk", "informative", "--line-extractor lineart_sk", "sk_model.pth (lllyasviel/Annotators)", "[0, 255]"),
}

# A key only each architecture has (after `module.` removal), to say what a wrong file is.
_SIGNATURES = {
    "stage1.rebnconvin.conv_s1.weight": "an ISNet segmentation network (isnetis.safetensors or sketch-segment.safetensors): pass it as --sketch-mask or --reference-mask",
    BIREFNET_KEY: "BiRefNet, BRIA's RMBG-2.0 background remover (model.safetensors): pass it as --reference-mask",
    "downblock_1.1.weight": "the lineart_keras extractor (model.pth): pass it as --line-extractor lineart_keras=FILE",
    "model.model.1.model.1.weight": "the lineart extractor (netG.pth): pass it as --line-extractor lineart=FILE",
    "block0.model.0.conv1.model.2.weight": "the lineart_denoise extractor (erika.pth): pass it as --line-extractor lineart_denoise=FILE",
    "model2.0.conv_block.1.weight": "the lineart_sk extractor (sk_model.pth): pass it as --line-extractor lineart_sk=FILE",
    "model.diffusion_model.out.2.weight": "the colorizer checkpoint: pass it as --checkpoint",
}


_MODULE = re.compile(r"(?:^|(?<=\.))module\.")


def strip_module(key: str) -> str:
    """The key without DataParallel's `module.` levels, as the official loaders remove them —
    whole key segments only (BiRefNet's `squeeze_module.` stays)."""
    return _MODULE.sub("", key)


def what_file(keys: list[str]) -> str | None:
    """A hint naming the architecture a file of auxiliary weights holds, if recognised."""
    stripped = {strip_module(k) for k in keys}
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


_BUFFERS = "num_batches_tracked", "relative_position_index"


def _component(graph: str, family: str) -> Component:
    # The official loader runs BatchNorm's own legacy rule: a missing `num_batches_tracked`
    # counter is filled in. It plays no part in inference.
    if family == "rmbg":
        # BiRefNet's Swin also keeps each window's relative-position index as a buffer, fixed by
        # the window size; a file without it gets the one the module builds (`load_aux`).
        return Component(graph, "", lambda k: k.rsplit(".", 1)[-1] in _BUFFERS,
                         absent="buffers absent: BatchNorm num_batches_tracked counters (unused at inference) or Swin relative_position_index tables (rebuilt from the window size, as the official module does)")
    return Component(graph, "", lambda k: k.endswith(".num_batches_tracked") or k == "num_batches_tracked", absent="BatchNorm num_batches_tracked counters absent (unused at inference; the official loader fills them in too)")


def family_of(graph: str, keys: dict[str, str], source: TensorSource) -> str:
    """The network a file given for `graph` holds: the graph's own one, or for an option that
    takes several (`--reference-mask`: RMBG-2.0 or ISNet) the one most of the file's keys belong
    to; a file with keys of none of them is refused, naming its first keys."""
    spec = AUX[graph]
    if not spec.alternatives:
        return spec.family
    counts = [(sum(1 for k in keys if k.startswith(prefixes)), family) for family, prefixes, _p in spec.alternatives]
    best, family = max(counts, key=lambda c: c[0])
    if best:
        return family
    names = "; ".join(f"{FAMILIES[f].network}, {p}, keys {', '.join(q + '*' for q in prefixes)}" for f, prefixes, p in spec.alternatives)
    hint = what_file(source.keys())
    raise ConvertError(
        f"{source.role} {source.path}, component {graph}: none of the networks {spec.flag} takes — {names}; "
        f"this file's keys: {_first(source.keys())} ({len(source.keys())} in all){'; this looks like ' + hint if hint else ''}"
    )


def reference_mask_graphs(paths: list[str]) -> dict[str, str]:
    """graph → file of the --reference-mask files: the first is `ref_mask`; a second, of the other
    network (told by its keys), `ref_mask_<network>`. More than two, or two of one network, refused."""
    if len(paths) > 2:
        raise ConvertError(f"--reference-mask given {len(paths)} times: give at most one RMBG-2.0 and one ISNet file")
    out = {"ref_mask": paths[0]} if paths else {}
    if len(paths) == 2:
        networks = []
        for path in paths:
            source = open_aux("ref_mask", path)
            family = family_of("ref_mask", {strip_module(k): k for k in source.keys()}, source)
            networks.append(FAMILIES[family].ref_mask_network)
        if networks[0] == networks[1]:
            raise ConvertError(f"--reference-mask {paths[0]} and {paths[1]} both hold {networks[0]}: give one RMBG-2.0 and one ISNet file, or one of them")
        out[f"ref_mask_{networks[1]}"] = paths[1]
    return out


def _width_of(source: TensorSource, keys: dict[str, str], family: Family) -> Any:
    if family.infer is not None:
        return family.infer({k: tuple(source.shape(v)) for k, v in keys.items()}) or family.published_width
    key = keys.get(family.width_key)
    if key is None:
        return family.published_width
    shape = source.shape(key)
    if len(shape) != 4 or shape[0] <= 0:
        return family.published_width
    width = int(shape[0])
    return width if width >= family.min_width else family.published_width


@lru_cache(maxsize=8)
def _layout(family: str, width: Any) -> dict[str, tuple[int, ...]]:
    """key → shape of a family's module at `width` (cached: the published BiRefNet takes seconds to build)."""
    return {k: tuple(v.shape) for k, v in FAMILIES[family].build(width).state_dict().items()}


def _mismatches(source: TensorSource, keys: dict[str, str], comp: Component, expected: dict[str, tuple[int, ...]]) -> int:
    """How many keys are missing, unexpected or of the wrong shape for a module of layout `expected`."""
    missing = sum(1 for k in expected if k not in keys and not comp.optional_key(k))
    unexpected = sum(1 for k in keys if k not in expected)
    wrong = sum(1 for k in keys if k in expected and tuple(source.shape(keys[k])) != expected[k])
    return missing + unexpected + wrong


def _width_label(width: Any) -> int:
    return width.embed_dim if isinstance(width, BiRefNetConfig) else int(width)


def _describe(width: Any) -> str:
    return width.describe() if isinstance(width, BiRefNetConfig) else f"width {width}"


def open_aux(graph: str, path: str) -> TensorSource:
    return TensorSource(path, AUX[graph].flag)


def load_aux(graph: str, source: TensorSource) -> tuple[nn.Module, list[str], dict]:
    """Our module for `graph` with the file's weights, strictly checked; (module, notes, info).
    info: file, network, width, family (the key of FAMILIES) and, for BiRefNet, config."""
    spec = AUX[graph]
    keys = {strip_module(k): k for k in source.keys()}
    if not keys:
        raise ConvertError(f"{source.role} {source.path}: holds no tensors (expected {spec.published})")
    family_name = family_of(graph, keys, source)
    family = FAMILIES[family_name]
    published = next((p for f, _k, p in spec.alternatives if f == family_name), spec.published)
    width = _width_of(source, keys, family)
    comp = _component(graph, family_name)
    if width != family.published_width and _mismatches(source, keys, comp, _layout(family_name, family.published_width)) < _mismatches(source, keys, comp, _layout(family_name, width)):
        # A damaged first convolution, not a scaled network: check against the published one.
        width = family.published_width
    net = family.build(width)
    try:
        state, notes = component_state(source, comp, net, prefix="", keys=keys)
    except ConvertError as e:
        hint = what_file(source.keys())
        if hint and hint.endswith(f"pass it as {spec.flag}"):
            hint = None  # the right kind of file, damaged: the keys say what is wrong
        expected = f"expected {family.network}, {published}"
        raise ConvertError(f"{e} ({expected}{'; this looks like ' + hint if hint else ''})") from None
    own = net.state_dict()
    for k in state:
        if k.endswith("relative_position_index") and k not in keys:
            state[k] = own[k]  # not in the file: the table the module builds from its window size
    net.load_state_dict(state, strict=True)
    net.eval()
    if width != family.published_width:
        notes.append(f"{graph}: {family.network} at {_describe(width)} (published {_describe(family.published_width)}) — not the published weights, a reduced stand-in")
    info = {"file": source.path, "network": family.network, "width": _width_label(width), "family": family_name}
    if isinstance(width, BiRefNetConfig):
        info["config"] = width.describe()
    return net, notes, info


def example_input(graph: str, gen: torch.Generator, batch: int | None = None, side: int | None = None, family: str | None = None) -> torch.Tensor:
    """A random input of the graph's contract shape and value range (`family`: the network the
    graph holds, when the option takes several)."""
    fam = FAMILIES[family or AUX[graph].family]
    b = fam.batch if batch is None else batch
    s = fam.side if side is None else side
    x = torch.rand(b, fam.channels, s, s, generator=gen)
    if graph == "lineart_keras":
        # blur difference ÷ its maximum: mostly near 0, peaks at 1, a few negative swings
        x = (torch.randn(b, 1, s, s, generator=gen) * 0.3).clamp(-1.5, 1.0)
        return x
    x = fam.low + (fam.high - fam.low) * x
    if fam.normalise is not None:
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in fam.normalise)
        x = (x - mean) / std
    return x


def dynamic_axes(graph: str) -> dict[str, dict[int, str]]:
    family = FAMILIES[AUX[graph].family]
    out = "mask" if graph in MASK_GRAPHS else "lines"
    if family.spatial_dynamic:
        return {"image": {0: "batch", 2: "height", 3: "width"}, out: {0: "batch", 2: "height", 3: "width"}}
    return {"image": {0: "batch"}, out: {0: "batch"}}


def random_state(net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights for a stand-in, perturbed everywhere: BatchNorm statistics included
    (variances positive), convolutions and linear maps at 1/√fan-in, biases small, LayerNorms
    near 1, Swin's relative-position bias tables of a visible size (their index tables kept)."""
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
        elif isinstance(module, nn.Linear):
            state[p + "weight"] = torch.randn(module.weight.shape, generator=gen) / module.in_features ** 0.5
            if module.bias is not None:
                state[p + "bias"] = 0.05 * torch.randn(module.bias.shape, generator=gen)
        elif isinstance(module, nn.LayerNorm):
            state[p + "weight"] = 1 + 0.1 * torch.randn(module.weight.shape, generator=gen)
            state[p + "bias"] = 0.05 * torch.randn(module.bias.shape, generator=gen)
        elif isinstance(module, WindowAttention):
            state[p + "relative_position_bias_table"] = 0.5 * torch.randn(module.relative_position_bias_table.shape, generator=gen)
            state[p + "relative_position_index"] = module.relative_position_index.clone()
    missing = set(net.state_dict()) - set(state)
    assert not missing, f"random_state: no rule for {sorted(missing)[:3]}"
    return state


def calibrate(graph: str, net: nn.Module, gen: torch.Generator, side: int, family: str | None = None) -> None:
    """Rescales the head convolution of a random stand-in so that, on a random input, its output
    has the family's mean and spread (no saturated sigmoid/tanh/clamp, no flat output)."""
    fam = FAMILIES[family or AUX[graph].family]
    head = dict(net.named_modules())[fam.head]
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            net(example_input(graph, gen, side=side, family=family))
    finally:
        hook.remove()
    y = seen[0]
    k = fam.head_std / max(float(y.std()), 1e-6)
    with torch.no_grad():
        head.weight.mul_(k)
        head.bias.copy_((head.bias - float(y.mean())) * k + fam.head_mean)
