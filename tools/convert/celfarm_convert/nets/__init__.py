"""Clean-room PyTorch modules whose state_dict layout matches the published checkpoints.

Each module only exists so that official weights load with ``strict=True`` and can be
traced to ONNX; none of them carries training-time features.
"""
