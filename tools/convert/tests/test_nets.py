"""Layout and export tests for the checkpoint-compatible networks.

Full-size modules are only built and counted (their key names, shapes and parameter
totals are what decide whether published weights load); forward passes and ONNX export
run on small configurations so the suite stays fast on a laptop CPU.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tools/convert/tests -t tools/convert
"""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx  # noqa: E402

from celfarm_convert.nets.clip import VIT_H_14, VisionTransformer, visual_state_from  # noqa: E402
from celfarm_convert.nets.control import MultiEncoder  # noqa: E402
from celfarm_convert.nets.vae import AutoencoderKL  # noqa: E402

# configs/inference/v2.yaml values.
V2_DDCONFIG = dict(
    double_z=True, z_channels=4, resolution=512, in_channels=3, out_ch=3, ch=128,
    ch_mult=[1, 2, 4, 4], num_res_blocks=2, attn_resolutions=[], dropout=0.0,
)
V2_CONTROL = dict(in_ch=3, model_channels=320, ch_mults=[1, 2, 4, 4])
SMALL_DDCONFIG = dict(V2_DDCONFIG, resolution=64, ch=32, num_res_blocks=1)
TINY_CLIP = dict(image_size=224, patch_size=14, width=64, layers=2, heads=2, output_dim=32)
SMALL_CONTROL = dict(in_ch=3, model_channels=64, ch_mults=[1, 2, 4, 4])

OPSET = 17


def millions(module: nn.Module) -> float:
    """Parameter count in millions, rounded to 0.1 M as the published model cards quote it."""
    return round(sum(p.numel() for p in module.state_dict().values()) / 1e5) / 10


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def export(module: nn.Module, args: tuple[Tensor, ...], inputs: Sequence[str],
           outputs: Sequence[str], dynamic: dict[str, dict[int, str]]) -> onnx.ModelProto:
    """Export to a temporary file and return the checked graph."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.onnx"
        torch.onnx.export(module.eval(), args, str(path), opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic)
        graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    return graph


def symbolic_dims(graph: onnx.ModelProto, name: str) -> list[str]:
    value = next(v for v in graph.graph.input if v.name == name)
    return [d.dim_param for d in value.type.tensor_type.shape.dim]


class _Encode(nn.Module):
    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.vae.encode_moments(image)


class _Decode(nn.Module):
    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent: Tensor) -> Tensor:
        return self.vae.decode(latent)


class VaeTest(unittest.TestCase):
    def test_full_size_layout(self) -> None:
        vae = AutoencoderKL(embed_dim=4, ddconfig=V2_DDCONFIG)
        got = shapes(vae)
        self.assertEqual(millions(vae), 83.7)
        self.assertEqual(len(got), 248)
        expected = {
            "encoder.conv_in.weight": (128, 3, 3, 3),
            "encoder.down.0.block.1.norm2.weight": (128,),
            "encoder.down.0.downsample.conv.weight": (128, 128, 3, 3),
            "encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
            "encoder.down.3.block.1.conv2.bias": (512,),
            "encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
            "encoder.mid.attn_1.proj_out.bias": (512,),
            "encoder.norm_out.weight": (512,),
            "encoder.conv_out.weight": (8, 512, 3, 3),
            "decoder.conv_in.weight": (512, 4, 3, 3),
            "decoder.mid.block_2.conv1.weight": (512, 512, 3, 3),
            "decoder.mid.attn_1.v.weight": (512, 512, 1, 1),
            "decoder.up.3.block.2.conv1.weight": (512, 512, 3, 3),
            "decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
            "decoder.up.1.block.0.nin_shortcut.weight": (256, 512, 1, 1),
            "decoder.up.0.block.0.nin_shortcut.weight": (128, 256, 1, 1),
            "decoder.up.0.block.2.conv2.weight": (128, 128, 3, 3),
            "decoder.conv_out.weight": (3, 128, 3, 3),
            "quant_conv.weight": (8, 8, 1, 1),
            "post_quant_conv.weight": (4, 4, 1, 1),
        }
        for key, shape in expected.items():
            self.assertEqual(got.get(key), shape, key)
        for absent in ("encoder.down.3.downsample.conv.weight", "decoder.up.0.upsample.conv.weight",
                       "encoder.down.0.block.0.nin_shortcut.weight"):
            self.assertNotIn(absent, got)
        self.assertFalse([k for k in got if "temb" in k or ".attn.0." in k])

    def test_attention_levels_follow_attn_resolutions(self) -> None:
        vae = AutoencoderKL(embed_dim=4, ddconfig=dict(SMALL_DDCONFIG, attn_resolutions=[16]))
        keys = set(vae.state_dict())
        self.assertIn("encoder.down.2.attn.0.k.weight", keys)
        self.assertIn("decoder.up.2.attn.1.k.weight", keys)
        self.assertNotIn("encoder.down.1.attn.0.k.weight", keys)
        with torch.no_grad():
            mean, _ = vae.encode_moments(torch.randn(1, 3, 64, 64))
        self.assertEqual(tuple(mean.shape), (1, 4, 8, 8))

    def test_round_trip_shapes_and_logvar_clamp(self) -> None:
        torch.manual_seed(0)
        vae = AutoencoderKL(embed_dim=4, ddconfig=SMALL_DDCONFIG).eval()
        with torch.no_grad():
            mean, logvar = vae.encode_moments(torch.randn(1, 3, 64, 64))
            self.assertEqual(tuple(mean.shape), (1, 4, 8, 8))
            self.assertEqual(tuple(logvar.shape), (1, 4, 8, 8))
            self.assertEqual(tuple(vae.decode(mean).shape), (1, 3, 64, 64))
            vae.quant_conv.bias[4:] = 100.0
            _, high = vae.encode_moments(torch.randn(1, 3, 64, 64))
        self.assertLessEqual(high.max().item(), 20.0)

    def test_rejects_single_z(self) -> None:
        with self.assertRaises(ValueError):
            AutoencoderKL(embed_dim=4, ddconfig=dict(SMALL_DDCONFIG, double_z=False))

    def test_onnx_export(self) -> None:
        vae = AutoencoderKL(embed_dim=4, ddconfig=SMALL_DDCONFIG)
        spatial = {0: "batch", 2: "height", 3: "width"}
        enc = export(_Encode(vae), (torch.randn(1, 3, 64, 64),), ["image"], ["mean", "logvar"],
                     {"image": spatial, "mean": spatial, "logvar": spatial})
        self.assertEqual(symbolic_dims(enc, "image"), ["batch", "", "height", "width"])
        dec = export(_Decode(vae), (torch.randn(1, 4, 8, 8),), ["latent"], ["image"],
                     {"latent": spatial, "image": spatial})
        self.assertEqual(symbolic_dims(dec, "latent"), ["batch", "", "height", "width"])


class ClipTest(unittest.TestCase):
    def test_full_size_layout(self) -> None:
        vit = VisionTransformer(**VIT_H_14)
        got = shapes(vit)
        self.assertEqual(millions(vit), 632.1)
        self.assertEqual(len(got), 8 + 12 * 32)
        expected = {
            "conv1.weight": (1280, 3, 14, 14),
            "class_embedding": (1280,),
            "positional_embedding": (257, 1280),
            "ln_pre.weight": (1280,),
            "transformer.resblocks.0.ln_1.bias": (1280,),
            "transformer.resblocks.0.attn.in_proj_weight": (3840, 1280),
            "transformer.resblocks.0.attn.in_proj_bias": (3840,),
            "transformer.resblocks.31.attn.out_proj.weight": (1280, 1280),
            "transformer.resblocks.31.attn.out_proj.bias": (1280,),
            "transformer.resblocks.31.ln_2.weight": (1280,),
            "transformer.resblocks.31.mlp.c_fc.weight": (5120, 1280),
            "transformer.resblocks.31.mlp.c_proj.weight": (1280, 5120),
            "ln_post.bias": (1280,),
            "proj": (1280, 1024),
        }
        for key, shape in expected.items():
            self.assertEqual(got.get(key), shape, key)
        self.assertNotIn("conv1.bias", got)
        self.assertNotIn("transformer.resblocks.32.ln_1.weight", got)

    def test_tokens_shape(self) -> None:
        vit = VisionTransformer(**TINY_CLIP).eval()
        with torch.no_grad():
            out = vit(torch.randn(1, 3, 224, 224))
        self.assertEqual(tuple(out.shape), (1, 257, 32))
        self.assertEqual(vit.num_tokens, 257)

    def test_attention_matches_torch_multihead(self) -> None:
        """Our hand-written attention must equal nn.MultiheadAttention on the same tensors."""
        torch.manual_seed(0)
        block_attn = VisionTransformer(**TINY_CLIP).transformer.resblocks[0].attn.eval()
        reference = nn.MultiheadAttention(64, 2).eval()
        reference.load_state_dict(block_attn.state_dict(), strict=True)
        x = torch.randn(3, 11, 64)
        with torch.no_grad():
            want = reference(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1),
                             need_weights=False)[0].transpose(0, 1)
            got = block_attn(x)
        self.assertLess((want - got).abs().max().item(), 1e-5)

    def test_visual_state_from_sources(self) -> None:
        vit = VisionTransformer(**TINY_CLIP)
        tower = vit.state_dict()
        text = {"transformer.resblocks.0.ln_1.weight": torch.zeros(3), "text_projection": torch.zeros(2),
                "logit_scale": torch.zeros(()), "token_embedding.weight": torch.zeros(2, 2)}
        openclip = {**{f"visual.{k}": v for k, v in tower.items()}, **text}
        colorize = {f"cond_stage_model.visual.model.{k}": v for k, v in tower.items()}
        colorize.update({f"cond_stage_model.transformer.model.{k}": v for k, v in text.items()})
        colorize["model.diffusion_model.out.0.weight"] = torch.zeros(1)
        training = {f"cond_stage_model.model.{k}": v for k, v in tower.items()}
        for source in (openclip, colorize, {"state_dict": colorize}, training):
            picked = visual_state_from(source)
            self.assertEqual(set(picked), set(tower))
            vit.load_state_dict(picked, strict=True)
        with self.assertRaises(ValueError):
            visual_state_from({"model.diffusion_model.out.0.weight": torch.zeros(1)})

    def test_onnx_export(self) -> None:
        vit = VisionTransformer(**TINY_CLIP)
        graph = export(vit, (torch.randn(1, 3, 224, 224),), ["pixels"], ["tokens"],
                       {"pixels": {0: "batch"}, "tokens": {0: "batch"}})
        self.assertEqual(symbolic_dims(graph, "pixels")[0], "batch")


class ControlTest(unittest.TestCase):
    def test_full_size_layout(self) -> None:
        enc = MultiEncoder(**V2_CONTROL)
        got = shapes(enc)
        self.assertEqual(millions(enc), 64.0)
        stem = [f"model.{i}.{p}" for i in range(0, 15, 2) for p in ("weight", "bias")]
        blocks = [f"output_blocks.{b}.{i}.{p}" for b in range(4) for i in (1, 3) for p in ("weight", "bias")]
        zeros = ["zero_layer.0.weight", "zero_layer.0.bias"]
        zeros += [f"zero_blocks.{b}.0.{p}" for b in range(4) for p in ("weight", "bias")]
        self.assertEqual(set(got), set(stem + blocks + zeros))
        self.assertEqual(len(got), 42)
        expected = {
            "model.0.weight": (16, 3, 3, 3),
            "model.12.weight": (256, 96, 3, 3),
            "model.14.weight": (320, 256, 3, 3),
            "zero_layer.0.weight": (320, 320, 1, 1),
            "output_blocks.0.1.weight": (320, 320, 3, 3),
            "output_blocks.1.1.weight": (640, 320, 3, 3),
            "output_blocks.2.3.weight": (1280, 1280, 3, 3),
            "output_blocks.3.1.weight": (1280, 1280, 3, 3),
            "zero_blocks.1.0.weight": (640, 640, 1, 1),
            "zero_blocks.3.0.bias": (1280,),
        }
        for key, shape in expected.items():
            self.assertEqual(got.get(key), shape, key)

    def test_hint_shapes(self) -> None:
        enc = MultiEncoder(**SMALL_CONTROL).eval()
        with torch.no_grad():
            hints = enc(torch.randn(1, 3, 128, 128))
        self.assertEqual([tuple(h.shape) for h in hints],
                         [(1, 64, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2), (1, 256, 2, 2)])
        # Fresh zero convolutions give zero hints, as at the start of training.
        self.assertTrue(all(h.abs().max().item() == 0.0 for h in hints))

    def test_onnx_export(self) -> None:
        enc = MultiEncoder(**SMALL_CONTROL)
        spatial = {0: "batch", 2: "height", 3: "width"}
        names = [f"hint{i}" for i in range(5)]
        dynamic = {"sketch": spatial}
        dynamic.update({n: {0: "batch", 2: f"{n}_h", 3: f"{n}_w"} for n in names})
        graph = export(enc, (torch.randn(1, 3, 128, 128),), ["sketch"], names, dynamic)
        self.assertEqual([o.name for o in graph.graph.output], names)
        self.assertEqual(symbolic_dims(graph, "sketch"), ["batch", "", "height", "width"])


if __name__ == "__main__":
    unittest.main()
