"""The auxiliary graphs: ISNet masks and the four line extractors.

Full-size modules are built and counted against the official classes (parameter totals of
contract §1 and a digest of the official state-dict layout, key names with shapes); the files
are checked like the colorizer's (refusals name the file and the keys, before any export);
tiny stand-ins convert into a pack with the right manifest.

    /usr/bin/python3 -m unittest discover -s tools/convert/tests -t tools/convert
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celfarm_convert.__main__ import main  # noqa: E402
from celfarm_convert.auxiliary import AUX, BIREFNET_TINY, FAMILIES, LINE_EXTRACTORS, load_aux, open_aux, parse_line_extractors  # noqa: E402
from celfarm_convert.convert import Options, _copy_aux, aux_wrap, convert  # noqa: E402
from celfarm_convert.errors import ConvertError  # noqa: E402
from celfarm_convert.fixtures import TINY_AUX  # noqa: E402
from celfarm_convert.nets.isnet import ISNetDIS  # noqa: E402
from celfarm_convert.nets.line_extractors import Anime2Sketch, InformativeDrawings, MangaLineNet, SketchKeras  # noqa: E402
from tests.tiny import ConvertCase  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def layout_digest(net: torch.nn.Module) -> str:
    lines = sorted(f"{k} {list(v.shape)}" for k, v in net.state_dict().items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def millions(net: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in net.parameters()) / 1e5) / 10


class FullSizeLayouts(unittest.TestCase):
    """Published architectures: parameter counts (contract §1) and the state-dict layout of the
    official classes (digest of the sorted `key [shape]` lines, BatchNorm buffers included,
    measured on the official modules of tellurion-kanata/colorizeDiffusion c9bd9fb)."""

    CASES = {
        # name: (module, millions, number of state-dict entries, layout digest)
        "isnet": (ISNetDIS, 44.0, 798, "8773b40fd3f99ed9"),
        "lineart_keras": (SketchKeras, 18.6, 121, "23b650ea467a7baa"),
        "lineart": (Anime2Sketch, 54.4, 32, "eb501f6e9629f106"),
        "lineart_denoise": (MangaLineNet, 43.1, 707, "196c98e5a79d378b"),
        "lineart_sk": (InformativeDrawings, 4.3, 24, "be92e71c20e52605"),
    }

    def test_counts_and_layouts(self) -> None:
        for name, (cls, m, entries, digest) in self.CASES.items():
            with self.subTest(name):
                net = cls()
                self.assertEqual(millions(net), m)
                self.assertEqual(len(net.state_dict()), entries)
                self.assertEqual(layout_digest(net), digest)

    def test_spot_keys(self) -> None:
        isnet = ISNetDIS().state_dict()
        self.assertEqual(tuple(isnet["conv_in.weight"].shape), (64, 3, 3, 3))
        self.assertEqual(tuple(isnet["stage1.rebnconv7.conv_s1.weight"].shape), (32, 32, 3, 3))
        self.assertEqual(tuple(isnet["stage5d.rebnconvin.conv_s1.weight"].shape), (512, 1024, 3, 3))
        self.assertEqual(tuple(isnet["stage1d.rebnconv1d.conv_s1.weight"].shape), (64, 32, 3, 3))
        self.assertEqual(tuple(isnet["side6.weight"].shape), (1, 512, 3, 3))
        self.assertIn("stage6.rebnconv4.bn_s1.num_batches_tracked", isnet)
        keras = SketchKeras().state_dict()
        self.assertEqual(tuple(keras["upblock_1.2.weight"].shape), (512, 1024, 4, 4))
        self.assertEqual(tuple(keras["last_conv.weight"].shape), (1, 64, 3, 3))
        unet = Anime2Sketch().state_dict()
        self.assertEqual(tuple(unet["model.model.0.weight"].shape), (64, 3, 4, 4))
        self.assertEqual(tuple(unet["model.model.3.weight"].shape), (128, 1, 4, 4))
        deepest = "model.model.1" + ".model.3" * 6 + ".model.1.weight"
        self.assertEqual(tuple(unet[deepest].shape), (512, 512, 4, 4))
        erika = MangaLineNet().state_dict()
        self.assertEqual(tuple(erika["block4.model.11.conv1.model.2.weight"].shape), (384, 384, 3, 3))
        self.assertEqual(tuple(erika["block5.model.0.shortcut.model.0.weight"].shape), (192, 384, 1, 1))
        self.assertEqual(tuple(erika["conv15.model.2.weight"].shape), (1, 16, 1, 1))
        self.assertNotIn("res1.model.0.weight", erika)
        sk = InformativeDrawings().state_dict()
        self.assertEqual(tuple(sk["model3.0.weight"].shape), (256, 128, 3, 3))
        self.assertEqual(tuple(sk["model2.2.conv_block.5.weight"].shape), (256, 256, 3, 3))

    def test_scaled_widths_keep_the_key_names(self) -> None:
        for family in FAMILIES.values():
            if family.infer is not None:
                continue  # BiRefNet: configurations, not one width (tests/test_birefnet.py)
            self.assertEqual(set(family.build(family.published_width).state_dict()), set(family.build(family.min_width * 2).state_dict()))


class Behaviour(unittest.TestCase):
    """What each network computes at its ends (the graph is exactly this)."""

    def test_output_ranges(self) -> None:
        torch.manual_seed(0)
        with torch.no_grad():
            mask = ISNetDIS(width=8).eval()(torch.rand(1, 3, 64, 64) * 2 - 1)
            self.assertEqual(tuple(mask.shape), (1, 1, 64, 64))
            self.assertTrue(bool((mask > 0).all() and (mask < 1).all()))
            lines = Anime2Sketch(ngf=4).eval()(torch.rand(1, 3, 256, 256) * 2 - 1)
            self.assertEqual(tuple(lines.shape), (1, 1, 256, 256))
            self.assertLessEqual(float(lines.abs().max()), 1.0)
            erika = MangaLineNet(width=3).eval()
            y = erika(torch.rand(1, 1, 64, 64) * 255)
            self.assertEqual(tuple(y.shape), (1, 1, 64, 64))
            self.assertLessEqual(float(y.abs().max()), 1.0)  # clamp(0, 255) / 127.5 − 1 is in the network
            sk = InformativeDrawings(ngf=4).eval()(torch.rand(1, 3, 64, 64) * 255)
            self.assertTrue(bool((sk >= 0).all() and (sk <= 1).all()))
            keras = SketchKeras(width=2).eval()(torch.randn(3, 1, 64, 64))
            self.assertEqual(tuple(keras.shape), (3, 1, 64, 64))

    def test_lineart_denoise_graph_stops_before_the_final_rescale(self) -> None:
        net = MangaLineNet(width=3).eval()
        net.conv15.model[2].bias.data.fill_(120.0)  # outputs around the 0–255 scale's middle
        x = torch.rand(1, 1, 32, 32) * 255
        with torch.no_grad():
            raw = aux_wrap("lineart_denoise", net)(x)
            self.assertTrue(torch.equal(raw, net.raw(x)))
            self.assertGreater(float(raw.max()), 1.0)
            self.assertTrue(torch.allclose(net(x), raw.clamp(0, 255) / 127.5 - 1))
            for graph in ("lineart_keras", "lineart", "lineart_sk"):
                family = FAMILIES[AUX[graph].family]
                self.assertEqual(aux_wrap(graph, family.build(family.min_width)).method, "forward")

    def test_isnet_uses_only_the_finest_side_output(self) -> None:
        net = ISNetDIS(width=8).eval()
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            before = net(x)
            for i in range(2, 7):
                getattr(net, f"side{i}").weight.normal_()
            self.assertTrue(torch.equal(before, net(x)))
            net.side1.bias.add_(1.0)
            self.assertFalse(torch.equal(before, net(x)))


class AuxFiles(ConvertCase):
    def state(self, graph: str) -> dict[str, torch.Tensor]:
        src = open_aux(graph, self.files[graph])
        return {k: src.tensor(k) for k in src.keys()}

    def test_every_stand_in_loads_strictly(self) -> None:
        for graph, (_file, width, _how) in TINY_AUX.items():
            with self.subTest(graph):
                net, notes, info = load_aux(graph, open_aux(graph, self.files[graph]))
                self.assertEqual(info["width"], width)
                self.assertTrue(any("reduced stand-in" in n for n in notes))

    def test_module_prefix_and_state_dict_wrapper_are_unwrapped(self) -> None:
        raw = torch.load(self.files["lineart"], map_location="cpu")
        self.assertTrue(all(k.startswith("module.") for k in raw))  # DataParallel layout, as saved
        net, _, _ = load_aux("lineart", open_aux("lineart", self.files["lineart"]))
        self.assertTrue(torch.equal(net.state_dict()["model.model.0.weight"], raw["module.model.model.0.weight"]))
        wrapped = torch.load(self.files["lineart_denoise"], map_location="cpu")
        self.assertIn("state_dict", wrapped)
        load_aux("lineart_denoise", open_aux("lineart_denoise", self.files["lineart_denoise"]))

    def test_missing_batchnorm_counters_are_tolerated(self) -> None:
        _, notes, _ = load_aux("ref_mask", open_aux("ref_mask", self.files["ref_mask"]))
        self.assertTrue(any("num_batches_tracked counters absent" in n for n in notes))

    def test_a_line_extractor_given_as_sketch_mask(self) -> None:
        self.refused("--sketch-mask", "tiny-model.pth", "component sketch_mask", "missing keys", "121 unexpected keys: downblock_1.1.bias, downblock_1.1.weight",
                     "looks like the lineart_keras extractor", sketch_mask=self.files["lineart_keras"])

    def test_the_colorizer_given_as_reference_mask(self) -> None:
        self.refused("--reference-mask", "tiny-v2.safetensors", "component ref_mask", "looks like the colorizer checkpoint", reference_mask=self.files["checkpoint"])

    def test_an_isnet_given_as_a_line_extractor(self) -> None:
        self.refused("--line-extractor lineart_keras", "tiny-isnetis.safetensors", "looks like an ISNet segmentation network",
                     line_extractors={"lineart_keras": self.files["ref_mask"]})

    def test_extractors_swapped(self) -> None:
        self.refused("--line-extractor lineart_sk", "tiny-netG.pth", "expected informative-drawings generator, sk_model.pth",
                     "looks like the lineart extractor", line_extractors={"lineart_sk": self.files["lineart"]})

    def test_missing_key(self) -> None:
        state = self.state("lineart")
        del state["module.model.model.3.bias"]
        path = self.variant("netG-missing.pth", state)
        self.refused("netG-missing.pth", "component lineart", "1 missing keys: model.model.3.bias", line_extractors={"lineart": path})

    def test_unexpected_key(self) -> None:
        state = {**self.state("lineart_denoise"), "block9.model.1.extra.weight": torch.zeros(3)}
        path = self.variant("erika-extra.pth", state)
        self.refused("erika-extra.pth", "component lineart_denoise", "1 unexpected keys: block9.model.1.extra.weight", line_extractors={"lineart_denoise": path})

    def test_wrong_shape(self) -> None:
        state = self.state("sketch_mask")
        state["side1.weight"] = torch.zeros(2, 8, 3, 3)
        path = self.variant("segment-shape.safetensors", state)
        self.refused("segment-shape.safetensors", "component sketch_mask", "wrong shape", "side1.weight [2, 8, 3, 3] (expected [1, 8, 3, 3])", sketch_mask=path)

    def test_a_damaged_scaled_file_is_checked_at_its_own_width(self) -> None:
        state = self.state("lineart_sk")
        del state["model4.1.bias"]
        state["model1.0.weight"] = torch.zeros(3, 8, 3, 3)
        path = self.variant("sk-broken.pth", state)
        self.refused("sk-broken.pth", "component lineart_sk", "1 missing keys: model4.1.bias", "model1.0.weight [3, 8, 3, 3] (expected [16, 8, 3, 3])",
                     line_extractors={"lineart_sk": path})

    def test_a_damaged_first_convolution_is_checked_against_the_published_network(self) -> None:
        state = InformativeDrawings().state_dict()
        state["model0.1.weight"] = torch.zeros(32, 3, 7, 7)  # the width key: alone it would say "width 32"
        path = self.variant("sk-first.pth", dict(state))
        self.refused("sk-first.pth", "1 tensors of the wrong shape: model0.1.weight [32, 3, 7, 7] (expected [64, 3, 7, 7])",
                     line_extractors={"lineart_sk": path})

    def test_truncated_pickle(self) -> None:
        path = os.path.join(self.tmp, "truncated.pth")
        with open(self.files["lineart_keras"], "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        self.refused("--line-extractor lineart_keras", "truncated.pth", line_extractors={"lineart_keras": path})

    def test_no_such_file(self) -> None:
        self.refused("--reference-mask", "nope.safetensors", "no such file", reference_mask=os.path.join(self.tmp, "nope.safetensors"))

    def test_line_extractor_arguments(self) -> None:
        self.assertEqual(parse_line_extractors(["lineart=a.pth", "lineart_sk=b=c.pth"]), {"lineart": "a.pth", "lineart_sk": "b=c.pth"})
        with self.assertRaisesRegex(ConvertError, "unknown extractor 'lineart_x'; choose lineart_keras, lineart, lineart_denoise, lineart_sk"):
            parse_line_extractors(["lineart_x=a.pth"])
        with self.assertRaisesRegex(ConvertError, "expected NAME=FILE"):
            parse_line_extractors(["a.pth"])
        with self.assertRaisesRegex(ConvertError, "lineart given twice"):
            parse_line_extractors(["lineart=a.pth", "lineart=b.pth"])
        self.refused("unknown extractor", line_extractors={"lineart_y": self.files["lineart"]})

    def test_cli_refusal_is_one_line(self) -> None:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["--checkpoint", self.files["checkpoint"], "--clip", self.files["clip"], "--out", self.out,
                         "--line-extractor", "lineart_keras=" + self.files["sketch_mask"]])
        self.assertEqual(code, 2)
        self.assertRegex(err.getvalue(), r"(?m)^error: --line-extractor lineart_keras .*tiny-sketch-segment\.safetensors, component lineart_keras: ")
        self.assertNotIn("Traceback", err.getvalue())

    def test_aux_pack_and_files_combine(self) -> None:
        """Files win over --aux-pack; the pack keeps one line-extractor size; provenance names
        every source file by graph."""
        logs: list[str] = []
        analytic = ROOT / "packs" / "analytic"
        manifest = convert(Options(
            checkpoint=self.files["checkpoint"], clip=self.files["clip"], out=self.out, config=self.cfg, log=logs.append,
            graphs=["control_encoder"], aux_pack=str(analytic), line_extractors={"lineart_sk": self.files["lineart_sk"]},
        ))
        with open(analytic / "pack.json", encoding="utf-8") as f:
            aux = json.load(f)
        self.assertEqual(sorted(manifest["graphs"]), ["control_encoder", "lineart_sk", "ref_mask", "ref_mask_isnet", "sketch_mask"])
        self.assertEqual(manifest["graphs"]["sketch_mask"]["sha256"], aux["graphs"]["sketch_mask"]["sha256"])
        self.assertFalse(manifest["graphs"]["lineart_sk"]["required"])
        self.assertEqual(manifest["inputs"], {"clip": 224, "sketchMask": 256, "refMask": 256, "lineExtractor": 512, "refMaskNetwork": "rmbg"})
        self.assertEqual(manifest["defaults"], {"lineExtractor": "lineart_sk"})
        self.assertTrue(any("lineart: not copied from --aux-pack (it runs at 256 px" in m for m in logs))
        roles = {s["role"]: s for s in manifest["provenance"]["sources"]}
        self.assertEqual(roles["lineart_sk"]["file"], "tiny-sk_model.pth")
        with open(self.files["lineart_sk"], "rb") as f:
            self.assertEqual(roles["lineart_sk"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        config = manifest["provenance"]["config"]
        self.assertEqual(config["auxGraphs"]["lineart_sk"]["file"], "tiny-sk_model.pth")
        self.assertEqual(config["auxPack"]["graphs"], ["ref_mask", "ref_mask_isnet", "sketch_mask"])
        self.assertIn("lineart_sk from tiny-sk_model.pth", manifest["licence"]["text"])
        self.assertEqual(sorted(os.listdir(self.out)), ["control_encoder.onnx", "lineart_sk.onnx", "pack.json", "ref_mask.onnx", "ref_mask_isnet.onnx", "sketch_mask.onnx"])

    def test_a_converted_mask_replaces_the_aux_pack_one(self) -> None:
        with open(ROOT / "packs" / "analytic" / "pack.json", encoding="utf-8") as f:
            aux = json.load(f)
        work = tempfile.mkdtemp(dir=self.tmp)
        logs: list[str] = []
        graphs, inputs, info = _copy_aux(str(ROOT / "packs" / "analytic"), work, logs.append, {"sketch_mask": 1024})
        self.assertEqual(sorted(graphs), ["lineart", "ref_mask", "ref_mask_isnet"])
        self.assertEqual(inputs, {"refMask": aux["inputs"]["refMask"], "lineExtractor": aux["inputs"]["lineExtractor"], "refMaskNetwork": "rmbg"})
        self.assertTrue(any("sketch_mask: converted from its own file" in m for m in logs))
        self.assertEqual(info["graphs"], ["lineart", "ref_mask", "ref_mask_isnet"])

    def test_graph_wrappers_use_the_contract_names(self) -> None:
        for graph in AUX:
            family = FAMILIES[AUX[graph].family]
            # BiRefNet is sized by a configuration, not one width.
            wrapped = aux_wrap(graph, family.build(BIREFNET_TINY if family.infer is not None else family.min_width))
            self.assertEqual(wrapped.inputs, ["image"])
            self.assertEqual(wrapped.outputs, ["lines"] if graph in LINE_EXTRACTORS else ["mask"])


if __name__ == "__main__":
    unittest.main()
