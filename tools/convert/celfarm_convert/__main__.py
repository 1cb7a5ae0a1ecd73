"""celfarm-convert: `python -m celfarm_convert [convert] --checkpoint … --clip … --out …`.

Subcommands: `convert` (the default), `make-tiny` (a tiny stand-in of the published files, for
tests and a quick self-check), `parity` (PyTorch reference outputs of every graph, which the Node
side compares with the exported pack through onnxruntime-node). Bad input prints one line
`error: …` and exits with status 2; nothing is left half-written.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import ConvertError


def _convert_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="the v2 colorizer checkpoint (.safetensors or .ckpt), e.g. v2-full.safetensors")
    p.add_argument("--clip", help="OpenCLIP ViT-H-14 laion2b_s32b_b79k weights (open_clip_pytorch_model.bin or .safetensors); "
                   "needed unless the checkpoint carries cond_stage_model.* image-encoder weights")
    p.add_argument("--out", required=True, help="pack folder to write (must not exist unless --force)")
    p.add_argument("--config", help="inference config yaml in the official layout (default: the published v2 config)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"], help="graph precision (default fp32; fp16 not implemented yet)")
    p.add_argument("--id", default="colorize-v2", help="pack id (default colorize-v2)")
    p.add_argument("--pack-version", help="pack version (default: the first 12 hex digits of the checkpoint's sha256)")
    p.add_argument("--prediction", choices=["v", "eps"], help="what the UNet predicts (default: eps if the checkpoint's file name contains 'eps', else v — the official app's rule)")
    p.add_argument("--min-size", type=int, default=512, help="smallest generation size in pixels (default 512)")
    p.add_argument("--max-size", type=int, default=1536, help="largest generation size (default 1536)")
    p.add_argument("--default-size", type=int, default=512, help="default generation size (default 512, the official app's)")
    p.add_argument("--aux-pack", help="take the auxiliary graphs (sketch_mask, ref_mask, line extractors) from this pack folder "
                   "(those given by the three options below are converted from their files instead)")
    _aux_options(p)
    _injection_option(p)
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--external-data-over", type=int, default=None, help=argparse.SUPPRESS)


def _aux_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sketch-mask", metavar="FILE", help="ISNet sketch segmentation (sketch-segment.safetensors) → graph sketch_mask")
    p.add_argument("--reference-mask", metavar="FILE", action="append", default=[],
                   help="BRIA RMBG-2.0 (model.safetensors of briaai/RMBG-2.0, CC BY-NC 4.0) or ISNet anime "
                   "segmentation (isnetis.safetensors), told apart by their keys → graph ref_mask; given twice (one of each), "
                   "the second → graph ref_mask_<network>, for the request's referenceMaskExtractor")
    p.add_argument("--line-extractor", metavar="NAME=FILE", action="append", default=[],
                   help="a line extractor for the 'extract' preprocessor; repeatable. NAME: lineart_keras (model.pth), "
                   "lineart (netG.pth), lineart_denoise (erika.pth), lineart_sk (sk_model.pth)")


def _injection_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attention-injection", action="store_true",
                   help="also the optional graph unet_inject (the app's attention injection, docs/attention-injection.md): "
                   "the UNet once more, with per-block banks in and out")


def main(argv: list[str]) -> int:
    if argv and argv[0] not in ("convert", "make-tiny", "parity", "-h", "--help"):
        argv = ["convert", *argv]
    parser = argparse.ArgumentParser(prog="celfarm-convert", description="Convert ColorizeDiffusion v2 checkpoints into a celfarm model pack.")
    sub = parser.add_subparsers(dest="command", required=True)
    _convert_parser(sub.add_parser("convert", help="checkpoint → pack (default)"))
    tiny = sub.add_parser("make-tiny", help="write a tiny random checkpoint, OpenCLIP file and config in the published layout")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--seed", type=int, default=7)
    tiny.add_argument("--full-size", action="store_true", help="the published sizes instead (about 10 GB with the auxiliary files; benches)")
    par = sub.add_parser("parity", help="PyTorch reference outputs of every graph for a parity check")
    par.add_argument("--checkpoint", required=True)
    par.add_argument("--clip")
    par.add_argument("--config")
    par.add_argument("--out", required=True)
    par.add_argument("--size", type=int, default=128)
    _aux_options(par)
    _injection_option(par)
    args = parser.parse_args(argv)

    try:
        import torch  # noqa: F401  (fail early with an install hint)
        import onnx  # noqa: F401
    except ImportError as e:
        print(f"error: {e.name} is not installed for {sys.executable}: apt-get install python3-torch python3-onnx python3-yaml python3-numpy", file=sys.stderr)
        return 2

    from .config import load_config

    try:
        if args.command == "make-tiny":
            from .fixtures import make_tiny

            print(json.dumps(make_tiny(args.out, args.seed, args.full_size)))
            return 0
        from .auxiliary import parse_line_extractors, reference_mask_graphs

        extractors = parse_line_extractors(args.line_extractor)
        ref_masks = reference_mask_graphs(args.reference_mask)
        if args.command == "parity":
            from .fixtures import parity_cases

            aux = {"sketch_mask": args.sketch_mask, **ref_masks, **extractors}
            cases = parity_cases(load_config(args.config), args.checkpoint, args.clip, args.out, args.size, aux={k: v for k, v in aux.items() if v},
                                 attention_injection=args.attention_injection)
            print(json.dumps({"out": args.out, "cases": cases}))
            return 0
        from .convert import EXTERNAL_DATA_OVER, Options, convert

        opts = Options(
            checkpoint=args.checkpoint, clip=args.clip, out=args.out, config=load_config(args.config), dtype=args.dtype,
            pack_id=args.id, version=args.pack_version, prediction=args.prediction, size_min=args.min_size,
            size_max=args.max_size, size_default=args.default_size, aux_pack=args.aux_pack, force=args.force,
            sketch_mask=args.sketch_mask, reference_mask=ref_masks.get("ref_mask"),
            other_reference_mask=next((f for g, f in ref_masks.items() if g != "ref_mask"), None), line_extractors=extractors,
            attention_injection=args.attention_injection,
            external_data_over=args.external_data_over if args.external_data_over is not None else EXTERNAL_DATA_OVER,
        )
        manifest = convert(opts)
        print(f"pack {manifest['id']}@{manifest['version']} written to {args.out} ({len(manifest['graphs'])} graphs)", file=sys.stderr)
        print(json.dumps({"out": args.out, "id": manifest["id"], "version": manifest["version"], "graphs": sorted(manifest["graphs"])}))
        return 0
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory (the full v2 model needs about 12 GB of RAM to convert in fp32)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
