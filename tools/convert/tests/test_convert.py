"""The converter's checks and the UNet's knobs, on the tiny stand-in of the published files.

Refusals happen before any export, so each of these runs in about a second: a wrong file must
fail fast, name the file and the first offending keys, and leave nothing behind.

    /usr/bin/python3 -m unittest discover -s tools/convert/tests -t tools/convert
"""
from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celfarm_convert.checkpoint import COMPONENTS, TensorSource, component_state  # noqa: E402
from celfarm_convert.config import V2_YAML, default_config, parse_config  # noqa: E402
from celfarm_convert.convert import build_net, convert, wrap  # noqa: E402
from celfarm_convert.errors import ConvertError  # noqa: E402
from celfarm_convert.fixtures import TINY_YAML, _perturbed, hooked_unet, inject_cases, write_pass_inputs  # noqa: E402
from celfarm_convert.graphs import BANK_IN, BANKS, UNET_INJECT_INPUTS, UNET_INPUTS, bank_shapes, example_inputs  # noqa: E402
from celfarm_convert.nets.unet import BasicTransformerBlock  # noqa: E402
from celfarm_convert.safetensors_io import SafetensorsFile  # noqa: E402
from tests.tiny import ConvertCase  # noqa: E402


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


class Refusals(ConvertCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        st = SafetensorsFile(cls.files["checkpoint"])
        cls.state = {k: st.tensor(k) for k in st.keys()}

    def refused(self, checkpoint: str, *needles: str, clip: str | None = None, **kw: object) -> str:  # type: ignore[override]
        return super().refused(*needles, one_line=False, checkpoint=checkpoint, clip=clip or self.files["clip"], **kw)

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
        opts = self.options()
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


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


class AttentionInjection(unittest.TestCase):
    """`unet_inject` (docs/attention-injection.md) against the plain UNet and the official hook's
    semantics (fixtures.hooked_unet: the plain graph with each block's self-attention replaced)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.cfg = parse_config(TINY_YAML, "tiny")
        net = build_net("unet", cls.cfg)
        net.load_state_dict(_perturbed(net, torch.Generator().manual_seed(4)), strict=True)
        cls.plain = wrap("unet", net).eval()
        cls.inject = wrap("unet_inject", net).eval()
        gen = torch.Generator().manual_seed(6)
        cls.size, cls.n = 64, 3
        cls.call = example_inputs("unet", cls.cfg, gen, size=cls.size, batch=cls.n, case={"mode": "full"})
        cls.write = write_pass_inputs(cls.call, gen)
        _, cls.banks = hooked_unet(cls.plain, cls.write)

    def run_inject(self, call: list[torch.Tensor], banks: list[torch.Tensor], blend: list[float]) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return self.inject(*call, *banks, torch.tensor(blend))

    def test_no_new_weights_and_the_plain_graph_unchanged(self) -> None:
        self.assertEqual(list(self.inject.state_dict()), list(self.plain.state_dict()))
        self.assertEqual(self.inject.inputs, [*UNET_INPUTS, *[f"bank_in_{i}" for i in range(16)], "injection_blend"])
        self.assertEqual(self.inject.outputs, ["model_output", *[f"bank_{i}" for i in range(16)]])
        self.assertEqual(UNET_INJECT_INPUTS, self.inject.inputs)
        self.assertEqual(len(BANK_IN), 16)
        self.assertEqual(len(BANKS), 16)
        blocks = [m for m in self.plain.net.modules() if isinstance(m, BasicTransformerBlock)]
        self.assertEqual(len(blocks), 16)
        self.assertFalse([b for b in blocks if "forward" in b.attn1.__dict__], "the hook reference restores the modules")

    def test_bank_shapes_are_each_blocks_tokens_and_width(self) -> None:
        n, h = self.n, self.size // 8
        want = [(n, 64, 64)] * 2 + [(n, 16, 128)] * 2 + [(n, 4, 256)] * 2 + [(n, 1, 256)] + [(n, 4, 256)] * 3 + [(n, 16, 128)] * 3 + [(n, 64, 64)] * 3
        self.assertEqual(bank_shapes(self.cfg, n, h, h), want)
        self.assertEqual([tuple(b.shape) for b in self.banks], want)
        zero = [torch.zeros(n, 1, c) for _, _, c in want]
        out = self.run_inject(self.write, zero, [1.0] * n)
        self.assertEqual([tuple(b.shape) for b in out[1:]], want)
        # The published model at 512²: 64×64 latent, widths 320/640/1280.
        full = bank_shapes(default_config(), 1, 64, 64)
        self.assertEqual(full[:7], [(1, 4096, 320)] * 2 + [(1, 1024, 640)] * 2 + [(1, 256, 1280)] * 2 + [(1, 64, 1280)])
        self.assertEqual(full[7:], [(1, 256, 1280)] * 3 + [(1, 1024, 640)] * 3 + [(1, 4096, 320)] * 3)

    def test_blend_one_is_the_plain_unet_and_records_the_hooks_banks(self) -> None:
        """(a) A write pass: one zero bank token per block, blend 1 → `unet`'s output."""
        zero = [torch.zeros(self.n, 1, b.shape[2]) for b in self.banks]
        out = self.run_inject(self.write, zero, [1.0] * self.n)
        with torch.no_grad():
            want = self.plain(*self.write)
        self.assertLessEqual(max_diff(out[0], want), 1e-6)
        for got, bank in zip(out[1:], self.banks):
            self.assertLessEqual(max_diff(got, bank), 1e-6)
        # Blend 1 ignores whatever bank it is given: a read pass without injection.
        out = self.run_inject(self.call, self.banks, [1.0] * self.n)
        with torch.no_grad():
            self.assertLessEqual(max_diff(out[0], self.plain(*self.call)), 1e-6)

    def test_read_pass_is_the_hooks(self) -> None:
        """(b) Banks of a write pass, mixed per-entry blends → the hook's output and records."""
        with torch.no_grad():
            plain = self.plain(*self.call)
        for blend in ([0.3, 0.75, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]):
            out = self.run_inject(self.call, self.banks, blend)
            want, recorded = hooked_unet(self.plain, self.call, self.banks, torch.tensor(blend))
            self.assertLessEqual(max_diff(out[0], want), 1e-5, blend)
            for got, rec in zip(out[1:], recorded):
                self.assertLessEqual(max_diff(got, rec), 1e-5, blend)
            self.assertGreater(max_diff(out[0], plain), 1e-3, f"the banks change the output ({blend})")
        # Entries are independent: an entry's output depends on its own blend only.
        a = self.run_inject(self.call, self.banks, [0.3, 0.75, 0.0])[0]
        b = self.run_inject(self.call, self.banks, [0.3, 0.2, 0.0])[0]
        self.assertLessEqual(max_diff(a[0], b[0]), 1e-6)
        self.assertGreater(max_diff(a[1], b[1]), 1e-4)

    def test_each_bank_token_count_is_free(self) -> None:
        gen = torch.Generator().manual_seed(8)
        banks = [torch.randn(self.n, 1 + 5 * i, b.shape[2], generator=gen) for i, b in enumerate(self.banks)]
        out = self.run_inject(self.call, banks, [0.2, 0.6, 0.9])
        want, _ = hooked_unet(self.plain, self.call, banks, torch.tensor([0.2, 0.6, 0.9]))
        self.assertLessEqual(max_diff(out[0], want), 1e-5)
        self.assertEqual([tuple(b.shape) for b in out[1:]], [tuple(b.shape) for b in self.banks])

    def test_the_apps_blend_rule(self) -> None:
        """The hook's read step, line for line (banked for all, plain for the reference-
        unconditional indices, then cfg·that + (1 − cfg)·banked), is blend = cfg on those entries, 0
        elsewhere."""
        gen = torch.Generator().manual_seed(9)
        attn = next(m for m in self.plain.net.modules() if isinstance(m, BasicTransformerBlock)).attn1
        x, bank = torch.randn(4, 16, 64, generator=gen), torch.randn(4, 16, 64, generator=gen)
        uc, cfg = [1, 3], 0.35
        with torch.no_grad():
            banked = attn(x, torch.cat([x, bank], dim=1))
            c = banked.clone()
            c[uc] = attn(x[uc], x[uc])
            app = cfg * c + (1.0 - cfg) * banked
            ours = attn.injected(x, bank, torch.tensor([0.0, cfg, 0.0, cfg]))
        self.assertLessEqual(max_diff(ours, app), 1e-6)

    def test_parity_cases_chain_write_and_read(self) -> None:
        cases = inject_cases(self.cfg, self.plain.net, torch.Generator().manual_seed(10), 64)
        self.assertEqual(sorted(cases), ["full-read", "full-write", "vanilla-read", "vanilla-write"])
        for name, (inputs, outputs) in cases.items():
            self.assertEqual(len(inputs), len(UNET_INJECT_INPUTS))
            self.assertEqual(len(outputs), 17)
            with torch.no_grad():
                got = self.inject(*inputs)
            for o, w in zip(got, outputs):
                self.assertLessEqual(max_diff(o, w), 1e-5, name)
        write_in, write_out = cases["full-write"]
        read_in, _ = cases["full-read"]
        self.assertEqual([b.shape[1] for b in write_in[len(UNET_INPUTS):-1]], [1] * 16)
        self.assertEqual(float(write_in[-1].min()), 1.0)
        for bank_in, bank in zip(read_in[len(UNET_INPUTS):-1], write_out[1:]):
            self.assertTrue(torch.equal(bank_in, bank), "the read pass takes the write pass's banks")
        self.assertTrue(0.0 < float(read_in[-1].min()) < 1.0)


if __name__ == "__main__":
    unittest.main()
