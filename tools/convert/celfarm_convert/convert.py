"""Checkpoint → model pack: build each module, load and check its weights, export its graph.

The pack is written into a temporary folder next to the destination and renamed into place at
the end, so a failed or interrupted conversion never leaves a half-written pack behind.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import onnx
import torch
from torch import nn

from . import __version__
from .auxiliary import AUX, AUX_GRAPHS, FAMILIES, LINE_EXTRACTORS, MASK_GRAPHS, OTHER_REF_MASKS, example_input, load_aux, open_aux, reference_mask_graphs
from .checkpoint import COMPONENTS, Component, TensorSource, check_schedule, check_unclaimed, component_state
from .config import ModelConfig
from .errors import ConvertError
from .graphs import (
    ClipGraph,
    ControlGraph,
    EncoderGraph,
    LinesGraph,
    MaskGraph,
    UNetGraph,
    UNetInjectGraph,
    VaeDecoderGraph,
    VaeEncoderGraph,
    dynamic_axes,
    example_inputs,
)
from .nets.clip import VisionTransformer
from .nets.control import MultiEncoder
from .nets.unet import ColorizerUNet, ConditionEncoder
from .nets.vae import AutoencoderKL

CONTRACT = "colorize-diffusion-v2@1"
# ONNX protobufs cannot exceed 2 GiB; larger graphs keep their weights in `<graph>.onnx.data`.
EXTERNAL_DATA_OVER = 1_900_000_000
GRAPH_ORDER = ["control_encoder", "vae_encoder", "vae_decoder", "clip_image", "bg_encoder", "style_encoder", "unet"]
# Optional colorizer graphs, each written after `unet` from the same weights when asked for.
OPTIONAL_GRAPHS = ["unet_inject"]
# pack.json `inputs` key of each auxiliary graph's fixed input size.
INPUT_KEY = {"sketch_mask": "sketchMask", "ref_mask": "refMask", **{n: "refMask" for n in OTHER_REF_MASKS}, **{n: "lineExtractor" for n in LINE_EXTRACTORS}}
CLIP_PREFIXES = ("visual.", "cond_stage_model.visual.model.", "cond_stage_model.model.")
LICENCE_TEXT = (
    "ColorizeDiffusion v2 weights by the ColorizeDiffusion authors, licensed CC BY-NC-SA 4.0 "
    "(https://creativecommons.org/licenses/by-nc-sa/4.0/): attribution, non-commercial use only, "
    "derived works under the same licence. The UNet and VAE descend from Stable Diffusion 2.1 "
    "(CreativeML Open RAIL++-M use restrictions may apply); the image encoder is OpenCLIP "
    "ViT-H-14 laion2b_s32b_b79k."
)


@dataclass
class Options:
    checkpoint: str
    clip: str | None
    out: str
    config: ModelConfig
    dtype: str = "fp32"
    pack_id: str = "colorize-v2"
    version: str | None = None
    prediction: str | None = None
    size_min: int = 512
    size_max: int = 1536
    size_default: int = 512
    aux_pack: str | None = None
    # Auxiliary graphs from their own published files (they win over --aux-pack's).
    sketch_mask: str | None = None
    reference_mask: str | None = None
    # A second reference-mask file, of the other network: graph ref_mask_<network>.
    other_reference_mask: str | None = None
    line_extractors: dict[str, str] = field(default_factory=dict)
    force: bool = False
    external_data_over: int = EXTERNAL_DATA_OVER
    graphs: list[str] = field(default_factory=lambda: list(GRAPH_ORDER))
    # Also export `unet_inject` (docs/attention-injection.md), an optional graph.
    attention_injection: bool = False
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)


def build_net(name: str, cfg: ModelConfig) -> nn.Module:
    """The torch module that holds a graph's weights (random init until loaded)."""
    if name in ("unet", "unet_inject"):
        return ColorizerUNet(cfg.unet)
    if name == "bg_encoder":
        return ConditionEncoder(cfg.bg_encoder, style=False)
    if name == "style_encoder":
        return ConditionEncoder(cfg.style_encoder, style=True)
    if name == "control_encoder":
        c = cfg.control
        return MultiEncoder(in_ch=int(c["in_ch"]), model_channels=int(c["model_channels"]), ch_mults=[int(m) for m in c["ch_mults"]])
    if name in ("vae_encoder", "vae_decoder", "vae"):
        return AutoencoderKL(embed_dim=int(cfg.vae["embed_dim"]), ddconfig=cfg.vae["ddconfig"])
    if name == "clip_image":
        return VisionTransformer(**cfg.clip)
    raise KeyError(name)


def wrap(name: str, net: nn.Module) -> nn.Module:
    return {
        "unet": lambda: UNetGraph(net),  # type: ignore[arg-type]
        "unet_inject": lambda: UNetInjectGraph(net),  # type: ignore[arg-type]
        "bg_encoder": lambda: EncoderGraph(net),  # type: ignore[arg-type]
        "style_encoder": lambda: EncoderGraph(net),  # type: ignore[arg-type]
        "control_encoder": lambda: ControlGraph(net),  # type: ignore[arg-type]
        "vae_encoder": lambda: VaeEncoderGraph(net),  # type: ignore[arg-type]
        "vae_decoder": lambda: VaeDecoderGraph(net),  # type: ignore[arg-type]
        "clip_image": lambda: ClipGraph(net),  # type: ignore[arg-type]
    }[name]()


def clip_prefix(source: TensorSource) -> str | None:
    keys = set(source.keys())
    for p in CLIP_PREFIXES:
        if f"{p}conv1.weight" in keys:
            return p
    return None


def weights_of(name: str) -> str:
    """The checkpoint component a colorizer graph is exported from (graphs may share one)."""
    return "vae" if name.startswith("vae_") else "unet" if name == "unet_inject" else name


def load_net(name: str, cfg: ModelConfig, ckpt: TensorSource, clip: TensorSource | None) -> tuple[nn.Module, list[str]]:
    """Builds the module of `name` and loads its weights with strict key and shape checks."""
    net = build_net(name, cfg)
    if name == "clip_image":
        src = clip or ckpt
        prefix = clip_prefix(src)
        if prefix is None:
            from .checkpoint import describe_keys

            where = "--clip" if clip else "checkpoint (no --clip given)"
            raise ConvertError(f"{where} {src.path}: no CLIP image encoder (no `visual.conv1.weight`); {describe_keys(src.keys())}")
        state, notes = component_state(src, Component("clip_image", prefix), net, prefix=prefix)
    else:
        comp = COMPONENTS[weights_of(name)]
        state, notes = component_state(ckpt, comp, net)
    net.load_state_dict(state, strict=True)
    net.eval()
    return net, notes


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return h.hexdigest()


def torch_export(name: str, graph: nn.Module, inputs: list[torch.Tensor], folder: str) -> str:
    """Traces `graph` into a scratch folder; returns the path of the raw .onnx. Graphs over 2 GB
    come out with one external file per tensor (torch's own big-model format)."""
    scratch = tempfile.mkdtemp(prefix=f"{name}-", dir=folder)
    raw = os.path.join(scratch, f"{name}.onnx")
    with torch.no_grad():
        torch.onnx.export(
            graph,
            tuple(inputs),
            raw,
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=dynamic_axes(name),
            opset_version=17,
            do_constant_folding=True,
        )
    return raw


def finish_graph(name: str, raw: str, folder: str, external_over: int) -> dict:
    """Writes `<folder>/<name>.onnx` from the traced graph; its weights go into one
    `<name>.onnx.data` (4 KiB-aligned tensors) when they exceed `external_over` bytes. Tensors are
    copied one at a time, so a 4 GB UNet never sits in memory twice. Returns the pack entry."""
    scratch = os.path.dirname(raw)
    model = onnx.load(raw, load_external_data=False)
    inits = list(model.graph.initializer)

    def external_info(t: onnx.TensorProto) -> dict[str, str]:
        return {e.key: e.value for e in t.external_data}

    def size_of(t: onnx.TensorProto) -> int:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            return int(external_info(t).get("length") or os.path.getsize(os.path.join(scratch, external_info(t)["location"])))
        return len(t.raw_data)

    total = sum(size_of(t) for t in inits)
    path = os.path.join(folder, f"{name}.onnx")
    entry: dict = {"file": f"{name}.onnx", "required": True}
    if total > external_over:
        data_name = f"{name}.onnx.data"
        offset = 0
        with open(os.path.join(folder, data_name), "wb") as data:
            for t in inits:
                if t.data_location == onnx.TensorProto.EXTERNAL:
                    info = external_info(t)
                    with open(os.path.join(scratch, info["location"]), "rb") as f:
                        f.seek(int(info.get("offset", 0)))
                        blob = f.read(int(info["length"])) if "length" in info else f.read()
                elif len(t.raw_data) >= 1024:
                    blob = t.raw_data
                else:
                    continue  # small tensors stay inline
                pad = (-offset) % 4096
                data.write(b"\0" * pad)
                offset += pad
                data.write(blob)
                del t.external_data[:]
                t.ClearField("raw_data")
                t.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(blob)))):
                    kv = t.external_data.add()
                    kv.key, kv.value = key, value
                offset += len(blob)
        onnx.save_model(model, path)
        entry["data"] = [{"file": data_name, "sha256": sha256_file(os.path.join(folder, data_name))}]
    else:
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in inits):
            onnx.load_external_data_for_model(model, scratch)
        onnx.save_model(model, path)
    del model
    shutil.rmtree(scratch)
    entry["sha256"] = sha256_file(path)
    return entry


def _copy_aux(aux_dir: str, folder: str, log: Callable[[str], None], converted: dict[str, int] | None = None) -> tuple[dict, dict, dict]:
    """Auxiliary graphs (masks, line extractors) taken from another pack, hash-checked.
    `converted` maps the graphs converted from files in this run to their input size: those are
    not copied, nor are extractors whose input size differs from the converted ones' (a pack has
    one line-extractor size)."""
    try:
        with open(os.path.join(aux_dir, "pack.json"), encoding="utf-8") as f:
            aux = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConvertError(f"--aux-pack {aux_dir}: no readable pack.json ({e})") from None
    converted = converted or {}
    sizes = {**{"sketchMask": 1024, "refMask": 1024, "lineExtractor": 512}, **(aux.get("inputs") or {})}
    fixed = {INPUT_KEY[g]: size for g, size in converted.items()}
    graphs: dict = {}
    for name in AUX_GRAPHS:
        entry = aux.get("graphs", {}).get(name)
        if not entry:
            continue
        if name in converted:
            log(f"  {name}: converted from its own file, not copied from --aux-pack")
            continue
        key = INPUT_KEY[name]
        if key in fixed and sizes.get(key) != fixed[key]:
            log(f"  {name}: not copied from --aux-pack (it runs at {sizes.get(key)} px, the converted line extractors at {fixed[key]}; a pack has one size)")
            continue
        files = [entry["file"]] + [d["file"] for d in entry.get("data", [])]
        hashes = [entry["sha256"]] + [d["sha256"] for d in entry.get("data", [])]
        for file, want in zip(files, hashes):
            src = os.path.join(aux_dir, file)
            if not os.path.isfile(src) or sha256_file(src) != want:
                raise ConvertError(f"--aux-pack {aux_dir}: graph {name} file {file} is missing or does not match its sha256")
            shutil.copyfile(src, os.path.join(folder, file))
        graphs[name] = {**entry, "required": False}
        log(f"  {name}: copied from {aux.get('id')}@{aux.get('version')}")
    inputs = {INPUT_KEY[g]: sizes[INPUT_KEY[g]] for g in graphs}
    if "ref_mask" in graphs:
        # The runtime prepares the ref_mask input for the network it holds (contract G9).
        inputs["refMaskNetwork"] = sizes.get("refMaskNetwork", "rmbg")
    return graphs, inputs, {"id": aux.get("id"), "version": aux.get("version"), "graphs": sorted(graphs)}


def aux_files(opts: Options) -> dict[str, str]:
    """graph → file of the auxiliary graphs to convert, in pack order; unknown names refused."""
    for name in opts.line_extractors:
        if name not in LINE_EXTRACTORS:
            raise ConvertError(f"--line-extractor {name}: unknown extractor; choose {', '.join(LINE_EXTRACTORS)}")
    masks = reference_mask_graphs([f for f in (opts.reference_mask, opts.other_reference_mask) if f])
    given = {"sketch_mask": opts.sketch_mask, **masks, **opts.line_extractors}
    return {g: given[g] for g in AUX_GRAPHS if given.get(g)}


def aux_wrap(name: str, net: nn.Module, family: str | None = None) -> nn.Module:
    """The graph module of an auxiliary network (`family`: the network the graph holds, when its
    option takes several — load_aux's info["family"])."""
    method = FAMILIES[family or AUX[name].family].method
    return MaskGraph(net, method) if name in MASK_GRAPHS else LinesGraph(net, method)


def convert(opts: Options) -> dict:
    """Runs the whole conversion; returns the written manifest."""
    log = opts.log
    cfg = opts.config
    if opts.dtype != "fp32":
        raise ConvertError(f"--dtype {opts.dtype}: only fp32 export is implemented so far (fp16 packs are planned; fp32 runs on CUDA too)")
    for s, label in ((opts.size_min, "--min-size"), (opts.size_max, "--max-size"), (opts.size_default, "--default-size")):
        if s % 64 or s <= 0:
            raise ConvertError(f"{label} {s}: must be a positive multiple of 64 (the UNet's three down-samplings of the latent)")
    if not opts.size_min <= opts.size_default <= opts.size_max:
        raise ConvertError("sizes: need --min-size ≤ --default-size ≤ --max-size")
    out = os.path.abspath(opts.out)
    if os.path.exists(out) and not opts.force:
        raise ConvertError(f"--out {opts.out}: already exists (pass --force to replace it)")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)

    ckpt = TensorSource(opts.checkpoint, "checkpoint")
    clip = TensorSource(opts.clip, "--clip") if opts.clip else None
    check_unclaimed(ckpt)
    check_schedule(ckpt, cfg.schedule["linear_start"], cfg.schedule["linear_end"], int(cfg.schedule["timesteps"]))
    prediction = opts.prediction or ("eps" if "eps" in os.path.basename(opts.checkpoint).lower() else "v")

    # Check every component before the slow part, so a wrong file fails in seconds.
    log("checking weights against the v2 architecture …")
    notes: list[str] = []
    # The auxiliary files first: they are small, so a wrong one fails at once.
    files = aux_files(opts)
    aux_sources: dict[str, TensorSource] = {}
    aux_info: dict[str, dict] = {}
    aux_family: dict[str, str] = {}  # graph → the network (FAMILIES key) its file holds
    for name, path in files.items():
        aux_sources[name] = open_aux(name, path)
        net, n, info = load_aux(name, aux_sources[name])
        notes += n
        aux_family[name] = info["family"]
        aux_info[name] = {"file": os.path.basename(path), "network": info["network"], "width": info["width"]}
        if "config" in info:
            aux_info[name]["config"] = info["config"]
        if FAMILIES[info["family"]].licence_id:
            aux_info[name]["licence"] = FAMILIES[info["family"]].licence_id
        del net
        gc.collect()
    colorizer = [*opts.graphs]
    if opts.attention_injection and "unet_inject" not in colorizer:
        # Right after `unet`, from the same module (loaded once); on its own otherwise.
        at = colorizer.index("unet") + 1 if "unet" in colorizer else len(colorizer)
        colorizer.insert(at, "unet_inject")
    checked: set[str] = set()
    for name in colorizer:
        if weights_of(name) in checked:
            continue  # one component's weights serve several graphs (VAE encoder/decoder, unet/unet_inject)
        checked.add(weights_of(name))
        net, n = load_net(name, cfg, ckpt, clip)
        notes += n
        del net
        gc.collect()
    for n in notes:
        log(f"  note: {n}")

    work = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        graphs: dict = {}
        gen = torch.Generator().manual_seed(0)
        kept: tuple[str, nn.Module] | None = None  # (component, module) for the next graph
        plan = [*colorizer, *files]
        for i, name in enumerate(plan, 1):
            t0 = time.monotonic()
            log(f"[{i}/{len(plan)}] {name}: exporting …")
            if name in files:
                net = load_aux(name, aux_sources[name])[0]
                graph = aux_wrap(name, net, aux_family[name]).eval()
                example = [example_input(name, gen, family=aux_family[name])]
            else:
                component = weights_of(name)
                net = kept[1] if kept and kept[0] == component else load_net(name, cfg, ckpt, clip)[0]
                graph = wrap(name, net).eval()
                example = example_inputs(name, cfg, gen, size=128)
                # The VAE decoder follows the encoder, unet_inject follows unet: one module each.
                following = plan[i] if i < len(plan) else None
                kept = (component, net) if following in colorizer and weights_of(following) == component else None
            raw = torch_export(name, graph, example, work)
            del graph, net, example
            gc.collect()
            graphs[name] = finish_graph(name, raw, work, opts.external_data_over)
            if name in files or name in OPTIONAL_GRAPHS:
                graphs[name]["required"] = False
            size = os.path.getsize(os.path.join(work, graphs[name]["file"])) + sum(
                os.path.getsize(os.path.join(work, d["file"])) for d in graphs[name].get("data", [])
            )
            log(f"[{i}/{len(plan)}] {name}: {size / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")
        converted_sizes = {name: FAMILIES[aux_family[name]].side for name in files}
        inputs = {"clip": int(cfg.clip["image_size"]), "sketchMask": 1024, "refMask": 1024, "lineExtractor": 512}
        inputs.update({INPUT_KEY[g]: s for g, s in converted_sizes.items()})
        if "ref_mask" in converted_sizes:
            # --reference-mask takes RMBG-2.0 or ISNet; the runtime prepares the input for the one it is.
            inputs["refMaskNetwork"] = FAMILIES[aux_family["ref_mask"]].ref_mask_network
        aux_pack_info = None
        if opts.aux_pack:
            aux_graphs, aux_inputs, aux_pack_info = _copy_aux(opts.aux_pack, work, log, converted_sizes)
            graphs.update(aux_graphs)
            inputs.update(aux_inputs)
        log("hashing source files …")
        sources = [{"role": "checkpoint", "file": os.path.basename(ckpt.path), "sha256": ckpt.sha256(), "bytes": ckpt.bytes}]
        if clip:
            sources.append({"role": "clip", "file": os.path.basename(clip.path), "sha256": clip.sha256(), "bytes": clip.bytes})
        digests: dict[str, str] = {}
        for name, src in aux_sources.items():
            real = os.path.realpath(src.path)
            digests[real] = digests.get(real) or src.sha256()
            sources.append({"role": name, "file": os.path.basename(src.path), "sha256": digests[real], "bytes": src.bytes})
        extractors = [g for g in LINE_EXTRACTORS if g in graphs]
        defaults: dict = {}
        if extractors and "lineart_keras" not in graphs:
            defaults["lineExtractor"] = extractors[0]  # the runtime's default, lineart_keras, is absent
        licence_text = LICENCE_TEXT
        licence_source = "ColorizeDiffusion v2 checkpoint from the authors' model hub (tellurion/ColorizeDiffusion); OpenCLIP ViT-H-14 laion2b_s32b_b79k"
        if aux_info:
            terms = {g: FAMILIES[aux_family[g]].licence for g in aux_info}
            licence_text += (
                " Auxiliary graphs converted from separately published files, each under the terms its publisher gives "
                "(none stated unless named here): "
                + "; ".join(f"{g} from {i['file']} ({i['network']}{'; ' + terms[g] if terms[g] else ''})" for g, i in aux_info.items())
                + "."
            )
            if any(aux_family[g] == "rmbg" for g in aux_info):
                licence_source += "; RMBG-2.0 from BRIA AI's model hub (briaai/RMBG-2.0)"
        version = opts.version or f"{sources[0]['sha256'][:12]}"
        factor = 2 ** (len(cfg.vae["ddconfig"]["ch_mult"]) - 1)
        manifest = {
            "contract": CONTRACT,
            "id": opts.pack_id,
            "version": version,
            "description": f"ColorizeDiffusion v2 converted from {os.path.basename(ckpt.path)} by celfarm-convert {__version__}",
            "licence": {
                "name": "CC-BY-NC-SA-4.0",
                "text": licence_text,
                "commercialUse": False,
                "source": licence_source,
            },
            "prediction": prediction,
            "latent": {"factor": factor, "channels": int(cfg.vae["embed_dim"]), "scale": cfg.scale_factor},
            "size": {"multiple": 64, "min": opts.size_min, "max": opts.size_max, "default": opts.size_default},
            "inputs": inputs,
            "graphs": graphs,
            "defaults": defaults,
            "provenance": {
                "converter": f"celfarm-convert@{__version__}",
                "dtype": opts.dtype,
                "sources": sources,
                "config": {
                    **cfg.describe(),
                    "source": cfg.source,
                    **({"auxGraphs": aux_info} if aux_info else {}),
                    **({"auxPack": aux_pack_info} if aux_pack_info else {}),
                },
            },
        }
        with open(os.path.join(work, "pack.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        if os.path.exists(out):
            old = f"{out}.old-{os.getpid()}"
            os.rename(out, old)
            os.rename(work, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(work, out)
        os.chmod(out, 0o755)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
