"""The model configuration: the official inference yaml format, parsed into typed settings.

Without `--config` the published v2 configuration is used (built in below, same values as the
authors' `configs/inference/v2.yaml`). A smaller yaml of the same structure builds a smaller
model; that is how the tests run. The image encoder is named by `arch` only in the official file;
ViT-H-14 is known here, and explicit dimensions (`image_size`, `patch_size`, `width`, `layers`,
`heads`, `output_dim`) may stand in for any other size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from .errors import ConvertError
from .nets.unet import UNetConfig

V2_YAML = """
model:
  target: refnet.models.v2-colorizer.InferenceWrapper
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    timesteps: 1000
    image_size: 96
    channels: 4
    scale_factor: 0.18215
    bg_encoder_config:
      target: refnet.modules.unet.UNetEncoder
      params: {in_channels: 4, model_channels: 320, attention_resolutions: [4, 2, 1], num_res_blocks: 2,
               channel_mult: [1, 2, 4, 4], num_head_channels: 64, use_spatial_transformer: true,
               transformer_depth: 1, context_dim: 1024, use_checkpoint: false, adm_in_channels: 512,
               num_classes: sequential}
    style_encoder_config:
      target: refnet.modules.unet.UNetEncoder
      params: {in_channels: 4, model_channels: 320, attention_resolutions: [4, 2, 1], num_res_blocks: 2,
               channel_mult: [1, 2, 4, 4], num_head_channels: 64, use_spatial_transformer: true,
               transformer_depth: 1, context_dim: 1024, use_checkpoint: false, adm_in_channels: 512,
               num_classes: sequential, style_modulation: true}
    unet_config:
      target: refnet.modules.unet.DualCondUNet
      params: {in_channels: 4, out_channels: 4, model_channels: 320, attention_resolutions: [4, 2, 1],
               num_res_blocks: 2, channel_mult: [1, 2, 4, 4], num_head_channels: 64,
               use_spatial_transformer: true, transformer_depth: 1, context_dim: 1024,
               use_checkpoint: true, warp_module: true, style_modulation: true}
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        ddconfig: {double_z: true, z_channels: 4, resolution: 512, in_channels: 3, out_ch: 3, ch: 128,
                   ch_mult: [1, 2, 4, 4], num_res_blocks: 2, attn_resolutions: [], dropout: 0.0}
    cond_stage_config:
      target: refnet.modules.embedder.OpenCLIP
      params: {arch: ViT-H-14}
    control_encoder_config:
      target: refnet.modules.encoder.MultiEncoder
      params: {in_ch: 3, model_channels: 320, ch_mults: [1, 2, 4, 4]}
    ratio_embedder_config:
      target: refnet.modules.embedder.TimestepEmbedding
      params: {embed_dim: 256}
    proj_config:
      target: torch.nn.Identity
    lora_config: {fr: 4, br: 4}
"""

KNOWN_CLIP = {
    "ViT-H-14": dict(image_size=224, patch_size=14, width=1280, layers=32, heads=16, output_dim=1024),
}
CLIP_DIMS = ("image_size", "patch_size", "width", "layers", "heads", "output_dim")

EXPECTED_TARGETS = {
    "unet_config": "refnet.modules.unet.DualCondUNet",
    "bg_encoder_config": "refnet.modules.unet.UNetEncoder",
    "style_encoder_config": "refnet.modules.unet.UNetEncoder",
    "first_stage_config": "ldm.models.autoencoder.AutoencoderKL",
    "control_encoder_config": "refnet.modules.encoder.MultiEncoder",
}


@dataclass
class ModelConfig:
    unet: UNetConfig
    bg_encoder: UNetConfig
    style_encoder: UNetConfig
    vae: dict[str, Any]
    control: dict[str, Any]
    clip: dict[str, int]
    scale_factor: float
    schedule: dict[str, float]
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for pack.json's provenance."""
        return {
            "unet": asdict(self.unet),
            "bg_encoder": asdict(self.bg_encoder),
            "style_encoder": asdict(self.style_encoder),
            "vae": self.vae,
            "control": self.control,
            "clip": self.clip,
            "scale_factor": self.scale_factor,
            "schedule": self.schedule,
        }


def _get(d: dict, path: str, where: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise ConvertError(f"{where}: missing `{path}`")
        cur = cur[part]
    return cur


def _unet_config(block: dict, name: str, where: str, lora: tuple[int, int]) -> UNetConfig:
    p = _get(block, "params", f"{where} {name}")
    if p.get("transformer_depth", 1) != 1:
        raise ConvertError(f"{where}: {name}.params.transformer_depth must be 1 (the v2 architecture)")
    if p.get("use_linear_in_transformer", False):
        raise ConvertError(f"{where}: {name}.params.use_linear_in_transformer is not supported by the v2 architecture")
    if p.get("num_head_channels", -1) in (-1, None):
        raise ConvertError(f"{where}: {name}.params.num_head_channels must be set (v2 sizes heads by channels)")
    mult = tuple(int(m) for m in p.get("channel_mult", (1, 2, 4, 8)))
    if len(mult) != 4 or int(p.get("num_res_blocks", 2)) != 2:
        raise ConvertError(
            f"{where}: {name}.params needs 4 levels (channel_mult) and num_res_blocks 2: the contract's 12 blocks and 5 sketch hints depend on it"
        )
    mc = int(p["model_channels"])
    hc = int(p["num_head_channels"])
    for m in mult:
        if (mc * m) % 32 or (mc * m) % hc:
            raise ConvertError(f"{where}: {name}: width {mc * m} must be a multiple of 32 (GroupNorm) and of num_head_channels {hc}")
    if name == "unet_config" and (mc % 64):
        raise ConvertError(f"{where}: unet_config.params.model_channels must be a multiple of 64 (warp blocks have 64-wide heads)")
    return UNetConfig(
        in_channels=int(p.get("in_channels", 4)),
        out_channels=int(p.get("out_channels", 4)),
        model_channels=mc,
        channel_mult=mult,
        num_res_blocks=2,
        attention_resolutions=tuple(int(a) for a in p["attention_resolutions"]),
        num_head_channels=hc,
        context_dim=int(p["context_dim"]),
        adm_in_channels=int(p.get("adm_in_channels") or 512),
        lora_ranks=lora,
    )


def parse_config(text: str, where: str) -> ModelConfig:
    """Parses an inference yaml (the official layout); errors name the file and the key."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConvertError(f"{where}: not valid YAML ({e})") from None
    if not isinstance(doc, dict):
        raise ConvertError(f"{where}: not an inference config (expected a `model:` mapping)")
    params = _get(doc, "model.params", where)
    for key, target in EXPECTED_TARGETS.items():
        got = _get(params, f"{key}.target", where)
        if got != target:
            raise ConvertError(f"{where}: {key}.target is {got}; the v2 converter needs {target}")
    for key in ("warp_module", "style_modulation"):
        if not _get(params, f"unet_config.params", where).get(key, False):
            raise ConvertError(f"{where}: unet_config.params.{key} must be true (a v2 colorizer config)")
    lora_cfg = params.get("lora_config") or {}
    lora = (int(lora_cfg.get("fr", 4)), int(lora_cfg.get("br", 4)))
    clip_params = _get(params, "cond_stage_config", where).get("params") or {}
    arch = clip_params.get("arch")
    explicit = {k: clip_params[k] for k in CLIP_DIMS if k in clip_params}
    if explicit:
        missing = [k for k in CLIP_DIMS if k not in explicit]
        if missing:
            raise ConvertError(f"{where}: cond_stage_config.params gives some image-encoder dimensions but not {', '.join(missing)}")
        clip = {k: int(v) for k, v in explicit.items()}
    elif arch in KNOWN_CLIP:
        clip = dict(KNOWN_CLIP[arch])
    else:
        raise ConvertError(
            f"{where}: cond_stage_config.params.arch {arch!r} is unknown; known: {', '.join(KNOWN_CLIP)}, "
            f"or give {', '.join(CLIP_DIMS)} explicitly"
        )
    unet = _unet_config(params["unet_config"], "unet_config", where, lora)
    bg = _unet_config(params["bg_encoder_config"], "bg_encoder_config", where, lora)
    style = _unet_config(params["style_encoder_config"], "style_encoder_config", where, lora)
    for enc, name in ((bg, "bg_encoder_config"), (style, "style_encoder_config")):
        if (enc.model_channels, enc.channel_mult, enc.context_dim) != (unet.model_channels, unet.channel_mult, unet.context_dim):
            raise ConvertError(f"{where}: {name} must have the UNet's model_channels, channel_mult and context_dim")
    if clip["output_dim"] != unet.context_dim:
        raise ConvertError(f"{where}: image encoder output_dim {clip['output_dim']} differs from the UNet's context_dim {unet.context_dim}")
    vae = dict(_get(params, "first_stage_config.params", where))
    control = dict(_get(params, "control_encoder_config.params", where))
    if [int(m) * int(control["model_channels"]) for m in control["ch_mults"]] != [m * unet.model_channels for m in unet.channel_mult]:
        raise ConvertError(f"{where}: control_encoder_config widths must equal the UNet's level widths")
    return ModelConfig(
        unet=unet,
        bg_encoder=bg,
        style_encoder=style,
        vae=vae,
        control=control,
        clip=clip,
        scale_factor=float(params.get("scale_factor", 0.18215)),
        schedule={k: float(params.get(k, d)) for k, d in (("linear_start", 0.00085), ("linear_end", 0.012), ("timesteps", 1000))},
        source={"path": where},
    )


def default_config() -> ModelConfig:
    cfg = parse_config(V2_YAML, "built-in v2 config")
    cfg.source = {"path": "built-in (configs/inference/v2.yaml of the published v2 release)"}
    return cfg


def load_config(path: str | None) -> ModelConfig:
    if path is None:
        return default_config()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConvertError(f"--config {path}: cannot read ({e.strerror})") from None
    return parse_config(text, path)
