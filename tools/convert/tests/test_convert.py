"""The converter's checks and the UNet's knobs, on the tiny stand-in of the published files.

Refusals happen before any export, so each of these runs in about a second: a wrong file must
fail fast, name the file and the first offending keys, and leave nothing behind.

    /usr/bin/python3 -m unittest discover -s tools/convert/tests -t tools/convert
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celfarm_convert.checkpoint import COMPONENTS, TensorSource, component_state  # noqa: E402
from celfarm_convert.config import V2_YAML, default_config, parse_config  # noqa: E402
from celfarm_convert.convert import Options, build_net, convert, wrap  # noqa: E402
from celfarm_convert.errors import ConvertError  # noqa: E402
from celfarm_convert.fixtures import TINY_YAML, _perturbed  # noqa: E402
from celfarm_convert.graphs import UNET_INPUTS, example_inputs  # noqa: E402
from celfarm_convert.safetensors_io import SafetensorsFile, write_safetensors  # noqa: E402
from tests.tiny import tiny_files  # noqa: E402


def params(net: torch.nn.Module, needle: str = "") -> float:
    return round(sum(p.numel() for k, p in net.named_parameters() if needle in k) / 1e5) / 10


class FullSizeArchitecture(unittest.TestCase):
    """The published v2 config builds modules of the measured official sizes (millions)."""

    def test_parameter_counts(self) -> None:
        cfg = default_config()
        unet = build_net("unet", cfg)
        self.assertEqual(params(unet), 1056.9)
        self.assertEqual(params(unet.warp_modules), 118.1)
        self.assertEqual(params(unet.style_modules), 72.6)
        self.assertEqual(round(sum(p.numel() for k, p in unet.named_parameters() if ".lora_" in k) / 1e4) / 100, 0.36)
        self.assertEqual(unet.cross_attention_layers, 16)
        del unet
        self.assertEqual(params(build_net("bg_encoder", cfg)), 266.1)
        self.assertEqual(params(build_net("style_encoder", cfg)), 277.0)
        self.assertEqual(params(build_net("control_encoder", cfg)), 64.0)
        self.assertEqual(params(build_net("vae_encoder", cfg)), 83.7)
        self.assertEqual(params(build_net("clip_image", cfg)), 632.1)


class Refusals(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="celfarm-convert-test-")
        cls.files = tiny_files()
        cls.cfg = parse_config(TINY_YAML, "tiny")
        st = SafetensorsFile(cls.files["checkpoint"])
        cls.state = {k: st.tensor(k) for k in st.keys()}

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.parent = tempfile.mkdtemp(dir=self.tmp)
        self.out = os.path.join(self.parent, "pack")

    def variant(self, name: str, state: dict[str, torch.Tensor]) -> str:
        path = os.path.join(self.tmp, name)
        write_safetensors(path, state)
        return path

    def refused(self, checkpoint: str, *needles: str, clip: str | None = None, **kw: object) -> str:
        opts = Options(checkpoint=checkpoint, clip=clip or self.files["clip"], out=self.out, config=self.cfg, log=lambda _m: None, **kw)  # type: ignore[arg-type]
        with self.assertRaises(ConvertError) as ctx:
            convert(opts)
        message = str(ctx.exception)
        for needle in needles:
            self.assertIn(needle, message)
        self.assertFalse(os.path.exists(self.out), "no pack may be written")
        self.assertEqual(os.listdir(self.parent), [], "no temporary folder may be left behind")
        return message

    def test_missing_key(self) -> None:
        state = dict(self.state)
        del state["model.diffusion_model.out.2.weight"]
        self.refused(self.variant("missing.safetensors", state), "missing.safetensors", "component unet", "1 missing keys", "model.diffusion_model.out.2.weight")

    def test_unexpected_key_in_a_component(self) -> None:
        state = {**self.state, "bg_encoder.middle_block.0.weight": torch.zeros(3)}
        self.refused(self.variant("extra.safetensors", state), "extra.safetensors", "component bg_encoder", "unexpected keys: bg_encoder.middle_block.0.weight")

    def test_unexpected_top_level_key(self) -> None:
        state = {**self.state, "ip_adapter.proj.weight": torch.zeros(3)}
        self.refused(self.variant("stray.safetensors", state), "stray.safetensors", "unexpected keys outside the v2 components: ip_adapter.proj.weight")

    def test_wrong_shape(self) -> None:
        state = {**self.state, "control_encoder.model.0.weight": torch.zeros(16, 1, 3, 3)}
        self.refused(self.variant("shape.safetensors", state), "component control_encoder", "wrong shape", "control_encoder.model.0.weight [16, 1, 3, 3] (expected [16, 3, 3, 3])")

    def test_truncated_file(self) -> None:
        path = os.path.join(self.tmp, "truncated.safetensors")
        with open(self.files["checkpoint"], "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        self.refused(path, "truncated.safetensors", "truncated")

    def test_truncated_pickle(self) -> None:
        path = os.path.join(self.tmp, "truncated.ckpt")
        torch.save({"state_dict": {k: v for k, v in list(self.state.items())[:20]}}, path)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) - 400])
        self.refused(path, "truncated.ckpt", "checkpoint")

    def test_a_vae_where_the_colorizer_should_be(self) -> None:
        vae = {k[len("first_stage_model."):]: v for k, v in self.state.items() if k.startswith("first_stage_model.")}
        self.refused(self.variant("vae.safetensors", vae), "vae.safetensors", "looks like a VAE")

    def test_the_checkpoint_given_as_clip(self) -> None:
        self.refused(self.files["checkpoint"], "--clip", "no CLIP image encoder", clip=self.files["checkpoint"])

    def test_another_noise_schedule(self) -> None:
        state = {**self.state, "alphas_cumprod": torch.linspace(0.99, 0.01, 1000)}
        self.refused(self.variant("sched.safetensors", state), "alphas_cumprod", "scaled-linear")

    def test_existing_output_needs_force(self) -> None:
        os.makedirs(self.out)
        opts = Options(checkpoint=self.files["checkpoint"], clip=self.files["clip"], out=self.out, config=self.cfg, log=lambda _m: None)
        with self.assertRaisesRegex(ConvertError, "already exists"):
            convert(opts)
        self.assertEqual(os.listdir(self.out), [])

    def test_pickled_checkpoint_reads_like_safetensors(self) -> None:
        path = os.path.join(self.tmp, "tiny.ckpt")
        torch.save({"state_dict": self.state, "global_step": 5}, path)
        src = TensorSource(path, "checkpoint")
        self.assertEqual(sorted(src.keys()), sorted(self.state))
        net = build_net("control_encoder", self.cfg)
        state, _ = component_state(src, COMPONENTS["control_encoder"], net)
        net.load_state_dict(state, strict=True)

    def test_checkpoint_without_lora_loads_with_zero_side_paths(self) -> None:
        path = self.variant("nolora.safetensors", {k: v for k, v in self.state.items() if ".lora_" not in k})
        net = build_net("unet", self.cfg)
        state, notes = component_state(TensorSource(path, "checkpoint"), COMPONENTS["unet"], net)
        self.assertIn("LoRA", notes[0])
        self.assertEqual(float(state["output_blocks.5.1.transformer_blocks.0.attn2.to_q.lora_up_fg.weight"].abs().sum()), 0.0)

    def test_config_errors_name_the_key(self) -> None:
        with self.assertRaisesRegex(ConvertError, "unet_config.target is refnet.modules.unet.UNetModel"):
            parse_config(V2_YAML.replace("refnet.modules.unet.DualCondUNet", "refnet.modules.unet.UNetModel"), "v1.yaml")
        with self.assertRaisesRegex(ConvertError, "arch 'ViT-Q-99' is unknown"):
            parse_config(V2_YAML.replace("ViT-H-14", "ViT-Q-99"), "odd.yaml")
        with self.assertRaisesRegex(ConvertError, "not valid YAML"):
            parse_config("model: [", "broken.yaml")


class UNetKnobs(unittest.TestCase):
    """Every per-request knob is a graph input that changes the result (tracing must not bake it)."""

    @classmethod
    def setUpClass(cls) -> None:
        torch.manual_seed(3)
        cls.cfg = parse_config(TINY_YAML, "tiny")
        net = build_net("unet", cls.cfg)
        # The published init zeroes many layers; perturb all, as the tiny checkpoint does.
        net.load_state_dict(_perturbed(net, torch.Generator().manual_seed(3)), strict=True)
        cls.graph = wrap("unet", net).eval()
        cls.inputs = example_inputs("unet", cls.cfg, torch.Generator().manual_seed(5), size=64, batch=1, case={"mode": "full"})

    def run_with(self, **changes: float | torch.Tensor) -> torch.Tensor:
        args = dict(zip(UNET_INPUTS, self.inputs))
        for k, v in changes.items():
            args[k] = v if isinstance(v, torch.Tensor) else torch.tensor(float(v))
        with torch.no_grad():
            return self.graph(*[args[k] for k in UNET_INPUTS])

    def assertChanges(self, **changes: float | torch.Tensor) -> None:
        self.assertGreater(float((self.run_with(**changes) - self.run_with()).abs().max()), 1e-4, str(list(changes)))

    def test_each_knob_changes_the_output(self) -> None:
        self.assertChanges(style_gate=0)
        self.assertChanges(bg_inject_gate=0)
        self.assertChanges(lora_fg_gate=0)
        self.assertChanges(lora_bg_gate=0)
        self.assertChanges(fg_scale=0.2)
        self.assertChanges(bg_scale=0.1)
        self.assertChanges(merge_scale=0.9)
        self.assertChanges(mask_threshold=0.9)
        self.assertChanges(ref_scales=torch.zeros(16))

    def test_scale_zero_leaves_only_the_output_bias(self) -> None:
        """With every reference scale 0 the contexts cannot matter (contract G7 step 4)."""
        args = dict(zip(UNET_INPUTS, self.inputs))
        zero = self.run_with(ref_scales=torch.zeros(16))
        other = self.run_with(ref_scales=torch.zeros(16), context_fg=torch.randn_like(args["context_fg"]), context_bg=torch.randn_like(args["context_bg"]))
        self.assertLess(float((zero - other).abs().max()), 1e-6)


if __name__ == "__main__":
    unittest.main()
