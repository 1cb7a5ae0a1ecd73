"""Small stand-ins for the authors' files, and PyTorch reference outputs for parity checks.

`make_tiny` writes a config of the v2 structure at tiny widths, a checkpoint in the published key
layout (component prefixes, LoRA, schedule buffers) and an OpenCLIP-layout image-encoder file.
Weights are random and perturbed everywhere: the published model zero-initialises many layers,
and a parity check on zeros proves nothing.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import yaml

from .auxiliary import AUX, AUX_GRAPHS, BIREFNET_TINY, FAMILIES, MASK_GRAPHS, calibrate, example_input, load_aux, open_aux, random_state
from .config import V2_YAML, ModelConfig, parse_config
from .convert import GRAPH_ORDER, aux_wrap, build_net, clip_prefix, load_net, wrap
from .checkpoint import TensorSource
from .graphs import CONTROL, UNET_INPUTS, UNetGraph, UNetInjectGraph, bank_shapes, example_inputs
from .nets.unet import BasicTransformerBlock, CrossAttention
from .safetensors_io import write_safetensors

def _tiny_yaml() -> str:
    """The published v2 config at tiny widths: 64 channels, 32-wide heads, context 64, VAE width 32
    with one res block per level, a 2-layer 64-wide ViT. Same structure, so the same code paths."""
    doc = yaml.safe_load(V2_YAML)
    params = doc["model"]["params"]
    params["image_size"] = 16
    for key in ("bg_encoder_config", "style_encoder_config", "unet_config"):
        params[key]["params"].update(model_channels=64, num_head_channels=32, context_dim=64)
    params["first_stage_config"]["params"]["ddconfig"].update(resolution=64, ch=32, num_res_blocks=1)
    params["cond_stage_config"]["params"] = {
        "arch": "tiny-vit", "image_size": 224, "patch_size": 14, "width": 64, "layers": 2, "heads": 2, "output_dim": 64,
    }
    params["control_encoder_config"]["params"]["model_channels"] = 64
    return yaml.safe_dump(doc, sort_keys=False)


TINY_YAML = _tiny_yaml()

PREFIX = {
    "unet": "model.diffusion_model.",
    "bg_encoder": "bg_encoder.",
    "style_encoder": "style_encoder.",
    "control_encoder": "control_encoder.",
    "vae": "first_stage_model.",
}


def _perturbed(net: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every tensor random: norms near 1, biases small, weights at 1/√fan-in."""
    out = {}
    for k, v in net.state_dict().items():
        if v.dim() <= 1 and ("norm" in k or k.endswith("ln_pre.weight") or k.endswith("ln_post.weight") or ".ln_" in k):
            t = 1.0 + 0.1 * torch.randn(v.shape, generator=gen) if k.endswith("weight") else 0.05 * torch.randn(v.shape, generator=gen)
        elif v.dim() <= 1:
            t = 0.05 * torch.randn(v.shape, generator=gen)
        else:
            fan_in = int(np.prod(v.shape[1:])) if k != "proj" else v.shape[0]
            t = torch.randn(v.shape, generator=gen) / max(fan_in, 1) ** 0.5
        out[k] = t.float()
    return out


# The auxiliary stand-ins: graph → (file name, width, how the file is written). Widths are an
# eighth or so of the published ones (the official classes have fixed widths; ours take a width
# and keep the key layout), which keeps a 1024² ISNet forward well under a second. The formats
# vary on purpose: safetensors with and without BatchNorm counters, a plain pickle, a pickle
# with DataParallel's `module.` prefixes, a pickle wrapped in {"state_dict": …}.
TINY_AUX = {
    "sketch_mask": ("sketch-segment.safetensors", 8, "safetensors"),
    "ref_mask": ("isnetis.safetensors", 8, "safetensors-no-counters"),
    "lineart_keras": ("model.pth", 4, "pickle"),
    "lineart": ("netG.pth", 8, "pickle-module-prefix"),
    "lineart_denoise": ("erika.pth", 3, "pickle-state-dict"),
    "lineart_sk": ("sk_model.pth", 8, "pickle"),
}
# RMBG-2.0 (BiRefNet), the other network --reference-mask takes: key "rmbg" of make_tiny's files,
# (file name, configuration, how). Swin embedding 16, depths 1, 1, 2, 1, window 4, decoder
# widths 8: a 1024² forward in a few seconds.
TINY_RMBG = ("rmbg-model.safetensors", BIREFNET_TINY, "safetensors")


def write_aux(path: str, graph: str, width: object, how: str, gen: torch.Generator, family: str | None = None) -> None:
    """One auxiliary stand-in in its published layout, random weights perturbed everywhere
    (`family`: the network, when the graph's option takes several)."""
    fam = FAMILIES[family or AUX[graph].family]
    net = fam.build(width)
    net.load_state_dict(random_state(net, gen), strict=True)
    net.eval()
    calibrate(graph, net, gen, side=256, family=family)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if how == "safetensors":
        write_safetensors(path, state)
    elif how == "safetensors-no-counters":
        write_safetensors(path, {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})
    elif how == "pickle-module-prefix":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    elif how == "pickle-state-dict":
        torch.save({"state_dict": state, "epoch": 3}, path)
    else:
        torch.save(state, path)


def make_tiny(out_dir: str, seed: int = 7, full_size: bool = False) -> dict[str, str]:
    """Writes tiny-v2.yaml, tiny-v2.safetensors (published layout) and tiny-clip.safetensors,
    and the auxiliary stand-ins tiny-<published name> (ISNet masks, four line extractors, and
    RMBG-2.0 under key "rmbg"); with `full_size`, random-v2.* and random-<published name> at the
    published sizes instead (about 11 GB, for benches)."""
    os.makedirs(out_dir, exist_ok=True)
    text = V2_YAML if full_size else TINY_YAML
    name = "random-v2" if full_size else "tiny-v2"
    cfg: ModelConfig = parse_config(text, "tiny config")
    gen = torch.Generator().manual_seed(seed)
    ckpt: dict[str, torch.Tensor] = {}
    for comp, prefix in PREFIX.items():
        net = build_net(comp, cfg)
        for k, v in _perturbed(net, gen).items():
            ckpt[prefix + k] = v
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ckpt["betas"] = betas.float()
    ckpt["alphas_cumprod"] = torch.cumprod(1 - betas, 0).float()
    clip_state = {"visual." + k: v for k, v in _perturbed(build_net("clip_image", cfg), gen).items()}
    # An OpenCLIP file also carries the text tower; the converter must ignore it.
    clip_state["text_projection"] = torch.randn(cfg.clip["output_dim"], cfg.clip["output_dim"], generator=gen)
    clip_state["logit_scale"] = torch.tensor(4.6)
    paths = {
        "config": os.path.join(out_dir, f"{name}.yaml"),
        "checkpoint": os.path.join(out_dir, f"{name}.safetensors"),
        "clip": os.path.join(out_dir, f"{name.split('-')[0]}-clip.safetensors"),
    }
    with open(paths["config"], "w", encoding="utf-8") as f:
        f.write(text.lstrip())
    write_safetensors(paths["checkpoint"], ckpt, {"format": "pt"})
    write_safetensors(paths["clip"], clip_state)
    del ckpt, clip_state
    prefix = name.split("-")[0]
    for graph, (file, width, how) in TINY_AUX.items():
        paths[graph] = os.path.join(out_dir, f"{prefix}-{file}")
        write_aux(paths[graph], graph, FAMILIES[AUX[graph].family].published_width if full_size else width, how, gen)
    file, config, how = TINY_RMBG
    paths["rmbg"] = os.path.join(out_dir, f"{prefix}-{file}")
    write_aux(paths["rmbg"], "ref_mask", FAMILIES["rmbg"].published_width if full_size else config, how, gen, family="rmbg")
    return paths


UNET_CASES = {
    "vanilla": {"mode": "vanilla"},
    "style": {"mode": "style"},
    "background": {"mode": "background"},
    "full": {"mode": "full"},
    "full-nolora": {"mode": "full", "lora": False},
}


def hooked_unet(graph: UNetGraph, inputs: list[torch.Tensor], banks: list[torch.Tensor] | None = None,
                blend: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The official attention-injection hook (refnet/sampling/hook.py, docs/attention-injection.md)
    as a reference for `unet_inject`, apart from its code: the plain `unet` graph runs with the
    self-attention of every transformer block replaced for the call. Without `banks` (a write
    pass) each block records its normalised input and attends as usual; with them (a read pass)
    block l attends to concat(its input, banks[l]) too, and entry i takes
    blend[i]·plain + (1 − blend[i])·banked. Returns the output and the recorded inputs, blocks in
    module traversal order (the hook's order)."""
    blocks = [m for m in graph.net.modules() if isinstance(m, BasicTransformerBlock)]
    recorded: list[torch.Tensor | None] = [None] * len(blocks)

    def replaced(index: int, attn: CrossAttention):
        def forward(x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
            assert context is None, "only the self-attention is replaced"
            recorded[index] = x.detach().clone()
            plain = CrossAttention.forward(attn, x)
            if banks is None:
                return plain
            assert blend is not None
            banked = CrossAttention.forward(attn, x, torch.cat([x, banks[index]], dim=1))
            out = banked.clone()
            for i in range(x.shape[0]):
                out[i] = blend[i] * plain[i] + (1.0 - blend[i]) * banked[i]
            return out
        return forward

    try:
        for index, block in enumerate(blocks):
            block.attn1.forward = replaced(index, block.attn1)
        with torch.no_grad():
            out = graph(*inputs)
    finally:
        for block in blocks:
            block.attn1.__dict__.pop("forward", None)
    assert all(t is not None for t in recorded), "every block ran"
    return out, recorded  # type: ignore[return-value]


def write_pass_inputs(call: list[torch.Tensor], gen: torch.Generator, control_scale: float = 0.4) -> list[torch.Tensor]:
    """A write pass for the UNet call `call` (docs/attention-injection.md): the same timestep,
    contexts, mask, features and knobs, with x one noised reference latent and the hints one
    sketch's hints scaled, both broadcast to every entry (random stand-ins for the real ones)."""
    a = dict(zip(UNET_INPUTS, call))
    n = a["x"].shape[0]
    a["x"] = torch.randn(1, *a["x"].shape[1:], generator=gen).expand_as(a["x"]).contiguous()
    for name in CONTROL:
        a[name] = (a[name][:1] * control_scale).expand_as(a[name]).contiguous()
    assert a["timestep"].shape[0] == n
    return [a[k] for k in UNET_INPUTS]


# Parity cases of `unet_inject`: (UNet knobs, blend per read-pass entry). The write pass of each is
# a case too ("<case>-write": one zero bank token per block, blend 1, so `unet`'s output).
INJECT_CASES = {
    "full": ({"mode": "full"}, [0.3, 0.75]),
    "vanilla": ({"mode": "vanilla"}, [0.5, 0.0]),  # the app's: injection_cfg on the U_ref entry, banked alone elsewhere
}


def inject_cases(cfg: ModelConfig, net: torch.nn.Module, gen: torch.Generator, size: int) -> dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """`unet_inject` parity cases (case → inputs, outputs in the graph's order), references from
    the plain graph and `hooked_unet`, never from UNetInjectGraph: per INJECT_CASES entry a write
    pass (blend 1, zero banks: model_output is the plain UNet's, the banks the hook's records) and
    the read pass on its banks with mixed per-entry blends."""
    plain = UNetGraph(net).eval()  # type: ignore[arg-type]
    h = w = size // 8
    cases: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for case, (knobs, blends) in INJECT_CASES.items():
        n = len(blends)
        call = example_inputs("unet", cfg, gen, size=size, batch=n, case=knobs)
        write = write_pass_inputs(call, gen)
        zero_banks = [torch.zeros(n, 1, c) for _, _, c in bank_shapes(cfg, n, h, w)]
        with torch.no_grad():
            write_out = plain(*write)
        _, banks = hooked_unet(plain, write)
        cases[f"{case}-write"] = ([*write, *zero_banks, torch.ones(n)], [write_out, *banks])
        blend = torch.tensor(blends)
        read_out, read_banks = hooked_unet(plain, call, banks, blend)
        cases[f"{case}-read"] = ([*call, *banks, blend], [read_out, *read_banks])
    return cases


def aux_cases(graph: str) -> dict[str, dict]:
    """Parity cases of an auxiliary graph: the contract's shape (masks with batch 2, as the
    runtime may batch them) and, for the line extractors, whose height, width and batch are
    dynamic, a second size."""
    if graph in MASK_GRAPHS:
        return {"default": {"batch": 2}}
    return {"default": {}, "dynamic": {"batch": 2, "side": 256}}


def parity_cases(cfg: ModelConfig, ckpt_path: str, clip_path: str | None, out_path: str, size: int = 128, seed: int = 11,
                 aux: dict[str, str] | None = None, attention_injection: bool = False) -> list[str]:
    """Runs our PyTorch modules on fixed random inputs; writes inputs and outputs per case as
    `<graph>/<case>/in/<tensor>` and `<graph>/<case>/out/<tensor>` into one safetensors file.
    `aux` (graph → file) adds the auxiliary graphs converted from those files;
    `attention_injection` the `unet_inject` cases (`inject_cases`)."""
    ckpt = TensorSource(ckpt_path, "checkpoint")
    clip = TensorSource(clip_path, "--clip") if clip_path else None
    if clip is None and clip_prefix(ckpt) is None:
        raise SystemExit("no image encoder in the checkpoint and no --clip")
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    names: list[str] = []
    for name in GRAPH_ORDER:
        net, _ = load_net(name, cfg, ckpt, clip)
        graph = wrap(name, net).eval()
        cases = UNET_CASES if name == "unet" else {"default": {}}
        for case, knobs in cases.items():
            batch = 2 if name in ("unet", "style_encoder") else 1
            inputs = example_inputs(name, cfg, gen, size=size, batch=batch, case=knobs)
            with torch.no_grad():
                outputs = graph(*inputs)
            if isinstance(outputs, torch.Tensor):
                outputs = (outputs,)
            in_names = UNET_INPUTS if name == "unet" else graph.inputs
            for n, t in zip(in_names, inputs):
                tensors[f"{name}/{case}/in/{n}"] = t
            for n, t in zip(graph.outputs, outputs):
                tensors[f"{name}/{case}/out/{n}"] = t
            names.append(f"{name}/{case}")
        if name == "unet" and attention_injection:
            for case, (inputs, outputs) in inject_cases(cfg, net, gen, size).items():
                for n, t in zip(UNetInjectGraph.inputs, inputs):
                    tensors[f"unet_inject/{case}/in/{n}"] = t
                for n, t in zip(UNetInjectGraph.outputs, outputs):
                    tensors[f"unet_inject/{case}/out/{n}"] = t
                names.append(f"unet_inject/{case}")
    for name in AUX_GRAPHS:
        if not (aux or {}).get(name):
            continue
        net, _, info = load_aux(name, open_aux(name, aux[name]))  # type: ignore[index]
        graph = aux_wrap(name, net, info["family"]).eval()
        for case, shape in aux_cases(name).items():
            x = example_input(name, gen, **shape, family=info["family"])
            with torch.no_grad():
                y = graph(x)
            tensors[f"{name}/{case}/in/image"] = x
            tensors[f"{name}/{case}/out/{graph.outputs[0]}"] = y
            names.append(f"{name}/{case}")
        del net, graph
    write_safetensors(out_path, tensors)
    return names
