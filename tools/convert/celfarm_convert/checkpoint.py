"""Opening the authors' files and matching their tensors to our modules, key by key.

The v2 checkpoint holds several components under top-level prefixes; the image encoder comes from
OpenCLIP's own file. Every component is checked against the module that will receive it —
missing keys, unexpected keys, wrong shapes — before anything is exported, and the error names
the file and the first offending keys.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .errors import ConvertError
from .safetensors_io import SafetensorsFile


class TensorSource:
    """A file of named tensors: safetensors (memory-mapped) or a PyTorch pickle (.ckpt/.bin/.pt)."""

    def __init__(self, path: str, role: str) -> None:
        self.path = path
        self.role = role
        if not os.path.isfile(path):
            raise ConvertError(f"{role} {path}: no such file")
        self.bytes = os.path.getsize(path)
        self._st: SafetensorsFile | None = None
        self._dict: dict[str, torch.Tensor] | None = None
        with open(path, "rb") as f:
            magic = f.read(8)
        if path.endswith(".safetensors") or (len(magic) == 8 and not magic.startswith(b"PK") and not magic.startswith(b"\x80")):
            self._st = SafetensorsFile(path)
        else:
            self._dict = self._load_pickle(path)

    def _load_pickle(self, path: str) -> dict[str, torch.Tensor]:
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as z:
                    bad = z.testzip()
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ConvertError(f"{self.role} {path}: damaged PyTorch checkpoint ({e})") from None
            if bad is not None:
                raise ConvertError(f"{self.role} {path}: damaged PyTorch checkpoint (member {bad} fails its CRC)")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a bad pickle; all mean "not readable"
            raise ConvertError(f"{self.role} {path}: not a readable checkpoint (truncated or not PyTorch/safetensors: {type(e).__name__}: {str(e)[:200]})") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
            raise ConvertError(f"{self.role} {path}: holds no state dict of named tensors")
        return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}

    def keys(self) -> list[str]:
        return self._st.keys() if self._st else list(self._dict or {})

    def shape(self, key: str) -> tuple[int, ...]:
        return self._st.shape(key) if self._st else tuple((self._dict or {})[key].shape)

    def tensor(self, key: str) -> torch.Tensor:
        return self._st.tensor(key) if self._st else (self._dict or {})[key]

    def sha256(self, progress: Callable[[int, int], None] | None = None) -> str:
        h = hashlib.sha256()
        done = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(16 << 20):
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, self.bytes)
        return h.hexdigest()


@dataclass(frozen=True)
class Component:
    """One part of the model: its graph name(s), its prefix in the checkpoint, keys it may lack."""

    name: str
    prefix: str
    optional_key: Callable[[str], bool] = lambda _k: False
    # What the note says about optional keys the file lacks (they are loaded as zeros).
    absent: str = "LoRA tensors absent — exported as zeros (the LoRA gates then have no effect)"


COMPONENTS = {
    "unet": Component("unet", "model.diffusion_model.", lambda k: ".lora_" in k),
    "bg_encoder": Component("bg_encoder", "bg_encoder."),
    "style_encoder": Component("style_encoder", "style_encoder."),
    "control_encoder": Component("control_encoder", "control_encoder."),
    "vae": Component("vae", "first_stage_model."),
}

# Top-level keys of the checkpoint that are not weights of any graph: the diffusion schedule
# (checked separately), the parameter-free ratio embedder, and the text/image encoder that the
# OpenCLIP file supplies.
IGNORED_PREFIXES = ("cond_stage_model.", "model_ema.", "ratio_embedder.", "rembedder.", "proj.")
SCHEDULE_KEYS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "lvlb_weights", "logvar",
)


def _first(items: Iterable[str], n: int = 5) -> str:
    items = sorted(items)
    more = f" … and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def describe_keys(keys: list[str]) -> str:
    """What a file seems to hold, from its top-level prefixes (for 'wrong file' errors)."""
    tops: dict[str, int] = {}
    for k in keys:
        tops[k.split(".")[0]] = tops.get(k.split(".")[0], 0) + 1
    listed = ", ".join(f"{t}.* ({n})" for t, n in sorted(tops.items(), key=lambda kv: -kv[1])[:6])
    hint = ""
    if {"encoder", "decoder", "quant_conv"} <= set(tops):
        hint = " — this looks like a VAE on its own"
    elif "visual" in tops or "text_projection" in tops:
        hint = " — this looks like an OpenCLIP model (pass it as --clip)"
    elif "input_blocks" in tops:
        hint = " — this looks like a bare UNet without the component prefixes"
    return f"its keys start with {listed}{hint}"


def check_schedule(source: TensorSource, linear_start: float, linear_end: float, timesteps: int) -> None:
    """If the checkpoint carries `alphas_cumprod`, it must be the schedule the runtime samples with."""
    if "alphas_cumprod" not in source.keys():
        return
    betas = (np.linspace(linear_start ** 0.5, linear_end ** 0.5, int(timesteps), dtype=np.float64)) ** 2
    expected = np.cumprod(1.0 - betas)
    got = source.tensor("alphas_cumprod").double().numpy()
    if got.shape != expected.shape or float(np.max(np.abs(got - expected))) > 1e-5:
        raise ConvertError(
            f"checkpoint {source.path}: its alphas_cumprod is not the scaled-linear schedule "
            f"({linear_start}, {linear_end}, {timesteps}) the runtime samples with"
        )


def check_unclaimed(source: TensorSource) -> None:
    """Every key of the checkpoint belongs to a component or to the known non-graph entries."""
    keys = source.keys()
    if not any(k.startswith(COMPONENTS["unet"].prefix) for k in keys):
        raise ConvertError(
            f"checkpoint {source.path}: no colorizer UNet (no key starts with `model.diffusion_model.`); {describe_keys(keys)}"
        )
    claimed = tuple(c.prefix for c in COMPONENTS.values()) + IGNORED_PREFIXES
    unknown = [k for k in keys if not k.startswith(claimed) and k not in SCHEDULE_KEYS]
    if unknown:
        raise ConvertError(f"checkpoint {source.path}: {len(unknown)} unexpected keys outside the v2 components: {_first(unknown)}")


def component_state(source: TensorSource, comp: Component, module: nn.Module, *, prefix: str | None = None, keys: dict[str, str] | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensors of `comp` for `module` (prefix stripped, float32), after checking every key
    and shape; returns (state, notes). `keys` maps module key → source key when the layout
    needs more than a prefix (the image encoder)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    prefix = comp.prefix if prefix is None else prefix
    if keys is None:
        keys = {k[len(prefix):]: k for k in source.keys() if k.startswith(prefix)}
    if not keys:
        raise ConvertError(
            f"{source.role} {source.path}: no {comp.name} weights (no key starts with `{prefix}`); {describe_keys(source.keys())}"
        )
    missing = [k for k in expected if k not in keys]
    optional_missing = [k for k in missing if comp.optional_key(k)]
    missing = [k for k in missing if not comp.optional_key(k)]
    unexpected = [keys[k] for k in keys if k not in expected]
    wrong = [
        f"{keys[k]} {list(source.shape(keys[k]))} (expected {list(expected[k])})"
        for k in keys
        if k in expected and tuple(source.shape(keys[k])) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_first(prefix + k for k in missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_first(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} tensors of the wrong shape: {_first(wrong, 3)}")
    if problems:
        raise ConvertError(f"{source.role} {source.path}, component {comp.name}: " + "; ".join(problems))
    notes = []
    state: dict[str, torch.Tensor] = {}
    for k in expected:
        if k in keys:
            state[k] = source.tensor(keys[k]).float()
    if optional_missing:
        # The published loader tolerates checkpoints without LoRA weights; the side paths are then
        # zero and the LoRA gates change nothing. (Auxiliary files: BatchNorm counters.)
        for k in optional_missing:
            state[k] = torch.zeros(expected[k])
        notes.append(f"{comp.name}: {len(optional_missing)} {comp.absent}")
    return state, notes
