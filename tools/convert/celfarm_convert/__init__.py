"""celfarm_convert: turns published ColorizeDiffusion v2 checkpoints into celfarm model packs."""

__version__ = "1.0.0"
