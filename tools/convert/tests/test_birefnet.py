"""RMBG-2.0 (BiRefNet, Swin-L) as the reference-mask graph: the published layout, our deformable
convolution against torchvision's formula, what the network computes at its ends, and the
converter's handling of the file (detection among the networks --reference-mask takes, strict
key and shape checks, the manifest it writes).

    /usr/bin/python3 -m unittest tests.test_birefnet      (from tools/convert)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celfarm_convert.auxiliary import BIREFNET_TINY, FAMILIES, load_aux, open_aux, random_state, reference_mask_graphs, what_file  # noqa: E402
from celfarm_convert.convert import aux_wrap, convert  # noqa: E402
from celfarm_convert.errors import ConvertError  # noqa: E402
from celfarm_convert.nets.birefnet import PUBLISHED, BiRefNet, BiRefNetConfig, DeformConv, deform_conv2d, image_patches, shift_mask  # noqa: E402
from tests.tiny import ConvertCase  # noqa: E402


def layout_digest(state: dict[str, torch.Tensor]) -> str:
    lines = sorted(f"{k} {list(v.shape)}" for k, v in state.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def tiny_net(seed: int = 0, cfg: BiRefNetConfig = BIREFNET_TINY) -> BiRefNet:
    net = BiRefNet(cfg)
    net.load_state_dict(random_state(net, torch.Generator().manual_seed(seed)), strict=True)
    return net.eval()


def reference_deform_conv(x: np.ndarray, offset: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int,
                          dilation: int, mask: np.ndarray | None) -> np.ndarray:
    """torchvision.ops.deform_conv2d written out loop by loop (float64): tap (i, j) of output
    (ho, wo) reads x at y = ho·s − p + i·d + Δy, x = wo·s − p + j·d + Δx, (Δy, Δx) = offset
    channels (2t, 2t+1), t = i·kw + j; bilinear, 0 when y ≤ −1, y ≥ H, x ≤ −1 or x ≥ W, and each
    of the four neighbours outside the image counts 0; times mask channel t; summed against the
    weights."""
    b_n, c_n, h, w = x.shape
    o_n, _, kh, kw = weight.shape
    ho_n, wo_n = offset.shape[2:]

    def bilinear(img: np.ndarray, y: float, xx: float) -> float:
        if y <= -1 or y >= h or xx <= -1 or xx >= w:
            return 0.0
        y0, x0 = int(np.floor(y)), int(np.floor(xx))
        ly, lx = y - y0, xx - x0
        total = 0.0
        for yy, xq, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx), (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
            if 0 <= yy < h and 0 <= xq < w:
                total += wt * img[yy, xq]
        return total

    out = np.zeros((b_n, o_n, ho_n, wo_n))
    for b in range(b_n):
        for ho in range(ho_n):
            for wo in range(wo_n):
                cols = np.zeros((c_n, kh, kw))
                for i in range(kh):
                    for j in range(kw):
                        t = i * kw + j
                        y = ho * stride - padding + i * dilation + offset[b, 2 * t, ho, wo]
                        xx = wo * stride - padding + j * dilation + offset[b, 2 * t + 1, ho, wo]
                        m = 1.0 if mask is None else mask[b, t, ho, wo]
                        for c in range(c_n):
                            cols[c, i, j] = m * bilinear(x[b, c], y, xx)
                out[b, :, ho, wo] = np.tensordot(weight, cols, axes=([1, 2, 3], [0, 1, 2]))
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


class PublishedLayout(unittest.TestCase):
    """The full-size module against the official classes (ZhengPeng7/BiRefNet e65bfa0, the code of
    RMBG-2.0's time, and 25cb930, the current one — the same layout: `BiRefNet(bb_pretrained=False)`
    with the default config: swin_v1_l, mul_scl_ipt "cat", cxt_num 3, squeeze_block
    BasicDecBlk_x1, dec_att ASPPDeformable, dec_ipt with split, ms_supervision and out_ref,
    batch_size > 1 so BatchNorm everywhere): parameter count, number of state-dict entries
    (buffers included) and the digest of the sorted `key [shape]` lines."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.net = BiRefNet()
        cls.state = cls.net.state_dict()

    def test_count_and_layout(self) -> None:
        self.assertEqual(sum(p.numel() for p in self.net.parameters()), 220_176_498)
        self.assertEqual(len(self.state), 754)
        self.assertEqual(layout_digest(self.state), "10a666c4ccbccaed")
        tops = {k.split(".")[0] for k in self.state}
        self.assertEqual(tops, {"bb", "squeeze_module", "decoder"})
        self.assertEqual(sum(1 for k in self.state if k.startswith("bb.")), 357)
        self.assertEqual(sum(1 for k in self.state if k.startswith("squeeze_module.")), 66)
        self.assertEqual(sum(1 for k in self.state if k.startswith("decoder.")), 331)

    def test_spot_keys(self) -> None:
        shapes = {k: tuple(v.shape) for k, v in self.state.items()}
        self.assertEqual(shapes["bb.patch_embed.proj.weight"], (192, 3, 4, 4))
        self.assertEqual(shapes["bb.layers.0.blocks.0.attn.relative_position_bias_table"], (529, 6))
        self.assertEqual(shapes["bb.layers.2.blocks.17.attn.relative_position_bias_table"], (529, 24))
        self.assertEqual(shapes["bb.layers.0.blocks.1.attn.relative_position_index"], (144, 144))
        self.assertEqual(shapes["bb.layers.2.downsample.reduction.weight"], (1536, 3072))
        self.assertNotIn("bb.layers.3.downsample.reduction.weight", shapes)
        self.assertEqual(shapes["bb.norm3.weight"], (1536,))
        self.assertEqual(shapes["squeeze_module.0.conv_in.weight"], (64, 5760, 3, 3))
        self.assertEqual(shapes["squeeze_module.0.conv_out.weight"], (3072, 64, 3, 3))
        self.assertEqual(shapes["decoder.ipt_blk5.conv1.weight"], (64, 3072, 3, 3))
        self.assertEqual(shapes["decoder.ipt_blk1.conv_out.weight"], (48, 64, 3, 3))
        self.assertEqual(shapes["decoder.decoder_block4.conv_in.weight"], (64, 3456, 3, 3))
        self.assertEqual(shapes["decoder.decoder_block1.conv_in.weight"], (64, 480, 3, 3))
        self.assertEqual(shapes["decoder.decoder_block1.dec_att.aspp_deforms.2.atrous_conv.offset_conv.weight"], (98, 64, 7, 7))
        self.assertEqual(shapes["decoder.decoder_block1.dec_att.aspp_deforms.2.atrous_conv.modulator_conv.weight"], (49, 64, 7, 7))
        self.assertEqual(shapes["decoder.decoder_block1.dec_att.aspp1.atrous_conv.regular_conv.weight"], (256, 64, 1, 1))
        self.assertNotIn("decoder.decoder_block1.dec_att.aspp1.atrous_conv.regular_conv.bias", shapes)
        self.assertEqual(shapes["decoder.decoder_block1.dec_att.conv1.weight"], (64, 1280, 1, 1))
        self.assertEqual(shapes["decoder.decoder_block2.dec_att.global_avg_pool.1.weight"], (256, 64, 1, 1))
        self.assertEqual(shapes["decoder.lateral_block4.conv.weight"], (1536, 1536, 1, 1))
        self.assertEqual(shapes["decoder.conv_out1.0.weight"], (1, 240, 1, 1))
        self.assertEqual(shapes["decoder.gdt_convs_4.1.running_var"], (16,))
        self.assertEqual(shapes["decoder.conv_ms_spvn_2.weight"], (1, 384, 1, 1))

    def test_configuration_is_read_from_the_shapes(self) -> None:
        shapes = {k: tuple(v.shape) for k, v in self.state.items()}
        self.assertEqual(BiRefNetConfig.from_shapes(shapes), PUBLISHED)
        tiny = {k: tuple(v.shape) for k, v in BiRefNet(BIREFNET_TINY).state_dict().items()}
        self.assertEqual(BiRefNetConfig.from_shapes(tiny), BIREFNET_TINY)
        del tiny["decoder.ipt_blk5.conv1.weight"]
        self.assertIsNone(BiRefNetConfig.from_shapes(tiny))

    def test_tiny_keeps_the_key_names(self) -> None:
        tiny = set(BiRefNet(BIREFNET_TINY).state_dict())
        self.assertLessEqual(tiny, set(self.state))  # fewer blocks, the same names
        self.assertEqual({k for k in self.state if ".blocks." not in k}, {k for k in tiny if ".blocks." not in k})


class DeformableConvolution(unittest.TestCase):
    """Ours (grid_sample, one call per kernel row) against the formula written out loop by loop."""

    def check(self, kernel: tuple[int, int], stride: int, padding: int, dilation: int, modulated: bool, bias: bool, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
        kh, kw = kernel
        ho = (5 + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
        wo = (6 + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
        offset = 2.0 * torch.randn(2, 2 * kh * kw, ho, wo, generator=g, dtype=torch.float64)
        offset[0, 0, 0, 0] = -7.5  # far outside
        offset[0, 1, 0, 0] = 0.0
        offset[1, :2, -1, -1] = torch.tensor([1.0, -1.0], dtype=torch.float64)  # integer positions
        offset[1, -2:, 0, -1] = torch.tensor([-0.5, 0.75], dtype=torch.float64)  # between the border and −1
        mask = 2.0 * torch.rand(2, kh * kw, ho, wo, generator=g, dtype=torch.float64) if modulated else None
        weight = torch.randn(4, 3, kh, kw, generator=g, dtype=torch.float64)
        b = torch.randn(4, generator=g, dtype=torch.float64) if bias else None
        ours = deform_conv2d(x, offset, weight, b, stride, padding, dilation, mask)
        want = reference_deform_conv(x.numpy(), offset.numpy(), weight.numpy(), None if b is None else b.numpy(), stride, padding, dilation,
                                     None if mask is None else mask.numpy())
        self.assertEqual(tuple(ours.shape), want.shape)
        self.assertLess(float(np.abs(ours.numpy() - want).max()), 1e-9)
        # In float32, as the graph runs.
        ours32 = deform_conv2d(x.float(), offset.float(), weight.float(), None if b is None else b.float(), stride, padding, dilation,
                               None if mask is None else mask.float())
        self.assertLess(float(np.abs(ours32.double().numpy() - want).max()), 1e-5)

    def test_against_the_formula(self) -> None:
        cases = [
            ((3, 3), 1, 1, 1, True, False),  # BiRefNet's 3×3
            ((1, 1), 1, 0, 1, True, False),  # BiRefNet's 1×1: still deformable
            ((7, 7), 1, 3, 1, True, False),  # BiRefNet's 7×7 on a map smaller than the kernel
            ((2, 3), 2, 1, 2, False, True),  # the general case: stride, dilation, no mask, bias
            ((3, 1), 1, 2, 1, True, True),
        ]
        for seed, case in enumerate(cases):
            with self.subTest(case):
                self.check(*case, seed=seed)

    def test_zero_offsets_and_unit_mask_are_a_plain_convolution(self) -> None:
        g = torch.Generator().manual_seed(5)
        x = torch.randn(1, 4, 9, 7, generator=g)
        w = torch.randn(6, 4, 3, 3, generator=g)
        y = deform_conv2d(x, torch.zeros(1, 18, 9, 7), w, None, 1, 1, 1, torch.ones(1, 9, 9, 7))
        self.assertLess(float((y - torch.nn.functional.conv2d(x, w, padding=1)).abs().max()), 1e-5)

    def test_the_module_exports_to_plain_onnx(self) -> None:
        conv = DeformConv(4, 5, 3, 1).eval()
        with torch.no_grad():
            for p in conv.parameters():
                p.normal_()
        folder = tempfile.mkdtemp()
        try:
            path = os.path.join(folder, "deform.onnx")
            with torch.no_grad():
                torch.onnx.export(conv, (torch.randn(1, 4, 8, 8),), path, input_names=["x"], output_names=["y"], opset_version=17,
                                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
            model = onnx.load(path)
            onnx.checker.check_model(model)
            ops = {n.op_type for n in model.graph.node}
            self.assertIn("GridSample", ops)
            self.assertEqual({n.domain for n in model.graph.node} - {""}, set(), "standard ONNX operators only")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class Behaviour(unittest.TestCase):
    def test_image_patches_in_rmbg_order(self) -> None:
        """RMBG-2.0 stacks the patches as its code cuts them: the image split into columns of the
        map's width, each column into pieces of its height, the pieces concatenated along
        channels (all channels of a piece together)."""
        g = torch.Generator().manual_seed(4)
        x = torch.randn(2, 3, 12, 8, generator=g)
        like = torch.zeros(2, 5, 3, 2)  # a 4 × 4 grid of 3 × 2 patches
        want = torch.cat([torch.cat([piece for column in torch.split(x[b], 2, dim=-1) for piece in torch.split(column, 3, dim=-2)], dim=0)[None]
                          for b in range(2)])
        got = image_patches(x, like)
        self.assertEqual(tuple(got.shape), (2, 48, 3, 2))
        self.assertTrue(torch.equal(got, want))
        self.assertTrue(torch.equal(got[:, 3 * (1 * 4 + 2):3 * (1 * 4 + 2) + 3], x[:, :, 6:9, 2:4]))  # row 2, column 1
        self.assertTrue(torch.equal(image_patches(x, x), x))

    def test_shifted_window_mask(self) -> None:
        mask = shift_mask(8, 8, 4, 2)
        self.assertEqual(tuple(mask.shape), (4, 16, 16))
        self.assertEqual(set(mask.unique().tolist()), {0.0, -100.0})
        self.assertTrue(bool((mask[0] == 0).all()))  # the first window holds one region
        self.assertTrue(torch.equal(mask, mask.transpose(1, 2)))
        self.assertEqual(int((mask[3] == 0).sum()), 4 * 4 * 4)  # the last window: four regions of four tokens

    def test_shapes_ranges_and_batch_independence(self) -> None:
        net = tiny_net()
        g = torch.Generator().manual_seed(1)
        for side in (64, 96):  # 96: the Swin maps need padding to whole windows
            with self.subTest(side=side):
                x = torch.randn(2, 3, side, side, generator=g)
                with torch.no_grad():
                    logits = net(x)
                    mask = net.mask(x)
                    one = net(x[1:])
                self.assertEqual(tuple(logits.shape), (2, 1, side, side))
                self.assertTrue(torch.equal(mask, torch.sigmoid(logits)))
                self.assertTrue(bool((mask > 0).all() and (mask < 1).all()))
                self.assertGreater(float(logits.std()), 1e-3)
                self.assertLess(float((one - logits[1:]).abs().max()), 1e-5)

    def test_graph_is_the_sigmoid_of_the_logits(self) -> None:
        net = tiny_net()
        graph = aux_wrap("ref_mask", net, "rmbg").eval()
        self.assertEqual((graph.inputs, graph.outputs), (["image"], ["mask"]))
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            self.assertTrue(torch.equal(graph(x), torch.sigmoid(net(x))))

    def test_training_only_heads_take_no_part(self) -> None:
        net = tiny_net()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            before = net(x)
            for level in (4, 3, 2):
                getattr(net.decoder, f"conv_ms_spvn_{level}").weight.normal_()
                getattr(net.decoder, f"gdt_convs_pred_{level}")[0].weight.normal_()
            self.assertTrue(torch.equal(before, net(x)))
            net.decoder.gdt_convs_attn_4[0].bias.add_(1.0)  # the gradient gate is part of inference
            self.assertFalse(torch.equal(before, net(x)))

    def test_the_half_size_pass_and_every_stage_count(self) -> None:
        net = tiny_net()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            before = net(x)
            net.bb.norm3.bias.add_(0.5)  # the coarsest stage, of both passes
            self.assertFalse(torch.equal(before, net(x)))


class Files(ConvertCase):
    """The converter with RMBG-2.0 stand-ins (make-tiny's "rmbg": the published key layout at the
    tiny configuration, all buffers, safetensors)."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        src = open_aux("ref_mask", cls.files["rmbg"])
        cls.state = {k: src.tensor(k) for k in src.keys()}

    def test_stand_in_round_trip_is_strict_and_exact(self) -> None:
        net, notes, info = load_aux("ref_mask", open_aux("ref_mask", self.files["rmbg"]))
        self.assertEqual(info["family"], "rmbg")
        self.assertEqual(info["width"], BIREFNET_TINY.embed_dim)
        self.assertIsInstance(net, BiRefNet)
        self.assertEqual(net.cfg, BIREFNET_TINY)
        self.assertTrue(any("reduced stand-in" in n for n in notes))
        loaded = net.state_dict()
        self.assertEqual(set(loaded), set(self.state))
        for k, v in self.state.items():
            self.assertTrue(torch.equal(loaded[k], v.to(loaded[k].dtype)), k)
        fresh = BiRefNet(BIREFNET_TINY)
        fresh.load_state_dict(self.state, strict=True)
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            self.assertTrue(torch.equal(net(x), fresh.eval()(x)))

    def test_module_prefixes_fp16_and_missing_buffers(self) -> None:
        """DataParallel `module.` levels go (BiRefNet's own `squeeze_module.` stays); half-precision
        tensors widen; without the Swin index tables and BatchNorm counters the module's own are used."""
        half = {f"module.{k}": (v.half() if v.is_floating_point() else v) for k, v in self.state.items()}
        net, _, info = load_aux("ref_mask", open_aux("ref_mask", self.variant("rmbg-fp16.pth", half)))
        self.assertEqual(info["family"], "rmbg")
        self.assertTrue(torch.equal(net.state_dict()["squeeze_module.0.conv_in.weight"], self.state["squeeze_module.0.conv_in.weight"].half().float()))
        bare = {k: v for k, v in self.state.items() if not k.endswith(("relative_position_index", "num_batches_tracked"))}
        net2, notes, _ = load_aux("ref_mask", open_aux("ref_mask", self.variant("rmbg-bare.safetensors", bare)))
        self.assertTrue(any("relative_position_index" in n for n in notes))
        for k, v in self.state.items():
            if k.endswith("relative_position_index"):
                self.assertTrue(torch.equal(net2.state_dict()[k], v), k)
        full, _, _ = load_aux("ref_mask", open_aux("ref_mask", self.files["rmbg"]))
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            self.assertTrue(torch.equal(net2(x), full(x)))

    def test_missing_key(self) -> None:
        state = dict(self.state)
        del state["decoder.conv_out1.0.bias"]
        path = self.variant("rmbg-missing.safetensors", state)
        self.refused("--reference-mask", "rmbg-missing.safetensors", "component ref_mask", "1 missing keys: decoder.conv_out1.0.bias",
                     "expected BiRefNet (BRIA RMBG-2.0, Swin-L), model.safetensors (briaai/RMBG-2.0)", reference_mask=path)

    def test_unexpected_key(self) -> None:
        path = self.variant("rmbg-extra.safetensors", {**self.state, "decoder.refiner.weight": torch.zeros(2)})
        self.refused("rmbg-extra.safetensors", "1 unexpected keys: decoder.refiner.weight", reference_mask=path)

    def test_wrong_shape(self) -> None:
        state = dict(self.state)
        state["decoder.lateral_block2.conv.weight"] = torch.zeros(5, 32, 1, 1)
        path = self.variant("rmbg-shape.safetensors", state)
        message = self.refused("rmbg-shape.safetensors", "1 tensors of the wrong shape: decoder.lateral_block2.conv.weight [5, 32, 1, 1] (expected [32, 32, 1, 1])",
                               reference_mask=path)
        self.assertNotIn("looks like", message)  # the right kind of file, damaged

    def test_a_file_of_neither_network(self) -> None:
        path = self.variant("something.safetensors", {"encoder.conv.weight": torch.zeros(2, 2), "head.bias": torch.zeros(2)})
        message = self.refused("--reference-mask", "something.safetensors", "component ref_mask", "none of the networks --reference-mask takes",
                               "BiRefNet (BRIA RMBG-2.0, Swin-L), model.safetensors (briaai/RMBG-2.0)", "ISNet-DIS",
                               "this file's keys: encoder.conv.weight, head.bias (2 in all)", reference_mask=path)
        self.assertNotIn("looks like", message)
        self.refused("--reference-mask", "tiny-sk_model.pth", "none of the networks", "looks like the lineart_sk extractor",
                     reference_mask=self.files["lineart_sk"])

    def test_rmbg_given_as_sketch_mask_or_extractor(self) -> None:
        self.assertIn("pass it as --reference-mask", what_file(list(self.state)) or "")
        self.refused("--sketch-mask", "tiny-rmbg-model.safetensors", "component sketch_mask", "expected ISNet-DIS",
                     "looks like BiRefNet, BRIA's RMBG-2.0 background remover (model.safetensors): pass it as --reference-mask",
                     sketch_mask=self.files["rmbg"])
        self.refused("--line-extractor lineart", "looks like BiRefNet", line_extractors={"lineart": self.files["rmbg"]})

    def test_both_networks_in_one_pack(self) -> None:
        """Two --reference-mask files, one of each network: the first is ref_mask, the second
        ref_mask_<its network> (the request's referenceMaskExtractor picks one); two of one network,
        or three files, are refused."""
        manifest = convert(self.options(graphs=["control_encoder"], reference_mask=self.files["rmbg"], other_reference_mask=self.files["ref_mask"]))
        self.assertEqual(manifest["inputs"]["refMaskNetwork"], "rmbg")
        self.assertEqual([g for g in manifest["graphs"] if g.startswith("ref_mask")], ["ref_mask", "ref_mask_isnet"])
        self.assertFalse(manifest["graphs"]["ref_mask_isnet"]["required"])
        self.assertEqual(manifest["provenance"]["config"]["auxGraphs"]["ref_mask_isnet"]["network"], FAMILIES["isnet"].network)
        model = onnx.load(os.path.join(self.out, manifest["graphs"]["ref_mask_isnet"]["file"]))
        self.assertEqual(([i.name for i in model.graph.input], [o.name for o in model.graph.output]), (["image"], ["mask"]))
        self.assertEqual(reference_mask_graphs([self.files["ref_mask"], self.files["rmbg"]]),
                         {"ref_mask": self.files["ref_mask"], "ref_mask_rmbg": self.files["rmbg"]})
        with self.assertRaisesRegex(ConvertError, "both hold rmbg"):
            reference_mask_graphs([self.files["rmbg"], self.files["rmbg"]])
        with self.assertRaisesRegex(ConvertError, "given 3 times"):
            reference_mask_graphs([self.files["rmbg"], self.files["ref_mask"], self.files["rmbg"]])

    def test_pack_records_the_network_size_and_licence(self) -> None:
        manifest = convert(self.options(graphs=["control_encoder"], reference_mask=self.files["rmbg"]))
        self.assertEqual(manifest["inputs"]["refMask"], 1024)
        self.assertEqual(manifest["inputs"]["refMaskNetwork"], "rmbg")
        self.assertFalse(manifest["graphs"]["ref_mask"]["required"])
        self.assertFalse(manifest["licence"]["commercialUse"])
        self.assertIn("ref_mask from tiny-rmbg-model.safetensors (BiRefNet (BRIA RMBG-2.0, Swin-L); BRIA AI's RMBG-2.0 (briaai/RMBG-2.0), "
                      "licensed CC BY-NC 4.0", manifest["licence"]["text"])
        self.assertIn("briaai/RMBG-2.0", manifest["licence"]["source"])
        aux = manifest["provenance"]["config"]["auxGraphs"]["ref_mask"]
        self.assertEqual(aux["licence"], "CC-BY-NC-4.0")
        self.assertEqual(aux["width"], 16)
        self.assertEqual(aux["config"], BIREFNET_TINY.describe())
        roles = {s["role"]: s for s in manifest["provenance"]["sources"]}
        self.assertEqual(roles["ref_mask"]["file"], "tiny-rmbg-model.safetensors")
        with open(os.path.join(self.out, "pack.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["inputs"]["refMaskNetwork"], "rmbg")
        model = onnx.load(os.path.join(self.out, "ref_mask.onnx"))
        onnx.checker.check_model(model)
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        self.assertEqual(([i.name for i in model.graph.input], dims), (["image"], ["batch", 3, 1024, 1024]))
        self.assertEqual([o.name for o in model.graph.output], ["mask"])
        self.assertEqual({n.domain for n in model.graph.node} - {""}, set())
        self.assertEqual(sum(1 for n in model.graph.node if n.op_type == "GridSample"), 5 * (1 + 1 + 3 + 7))
        self.assertEqual(FAMILIES["rmbg"].side, 1024)


if __name__ == "__main__":
    unittest.main()
