"""Reading and writing the safetensors format without the `safetensors` package.

A file is an 8-byte little-endian header length, a JSON header naming every tensor's dtype,
shape and byte range, then the raw little-endian data. Only the header is read on open, so opening
a multi-GB checkpoint costs nothing until a tensor is used.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Iterable, Mapping

import numpy as np
import torch

from .errors import ConvertError

_NUMPY = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
    "BF16": np.uint16,  # widened to float32 on read
}
_CODE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}


class SafetensorsFile:
    """Lazy view of one safetensors file; `keys()`, `shape(k)`, `tensor(k)` (a CPU tensor)."""

    def __init__(self, path: str) -> None:
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConvertError(f"{path}: too short to be a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or 8 + n > size or n > 100_000_000:
                raise ConvertError(f"{path}: not a safetensors file (header length {n} does not fit a {size}-byte file)")
            try:
                header = json.loads(f.read(n))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConvertError(f"{path}: safetensors header is not JSON ({e})") from None
        if not isinstance(header, dict):
            raise ConvertError(f"{path}: safetensors header is not an object")
        self.metadata = header.pop("__metadata__", {}) or {}
        self._entries: dict[str, dict] = header
        self._base = 8 + n
        data_len = size - self._base
        for key, entry in header.items():
            try:
                begin, end = entry["data_offsets"]
                dtype = entry["dtype"]
                shape = [int(d) for d in entry["shape"]]
            except (KeyError, TypeError, ValueError):
                raise ConvertError(f"{path}: tensor {key} has a malformed header entry") from None
            if dtype not in _NUMPY:
                raise ConvertError(f"{path}: tensor {key} has unsupported dtype {dtype}")
            if end > data_len:
                raise ConvertError(
                    f"{path}: truncated — tensor {key} ends at byte {self._base + end}, the file has {size} bytes"
                )
            if end - begin != int(np.prod(shape, dtype=np.int64)) * np.dtype(_NUMPY[dtype]).itemsize:
                raise ConvertError(f"{path}: tensor {key} byte range does not match its shape {shape} and dtype {dtype}")

    def keys(self) -> list[str]:
        return list(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self._entries[key]["shape"])

    def tensor(self, key: str) -> torch.Tensor:
        entry = self._entries[key]
        begin, end = entry["data_offsets"]
        # Plain reads, not a memory map: mapped pages of a 7 GB file would stay in the process.
        raw = bytearray(end - begin)
        with open(self.path, "rb") as f:
            f.seek(self._base + begin)
            if f.readinto(raw) != len(raw):
                raise ConvertError(f"{self.path}: truncated while reading tensor {key}")
        dtype = entry["dtype"]
        arr = np.frombuffer(raw, dtype=np.dtype(_NUMPY[dtype]).newbyteorder("<")).reshape(self.shape(key))
        if dtype == "BF16":
            return torch.from_numpy((arr.astype(np.uint32) << 16).view(np.float32))
        return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=False))


def write_safetensors(path: str, tensors: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]], metadata: Mapping[str, str] | None = None) -> None:
    """Writes tensors (little-endian, 8-byte aligned header), one tensor at a time: a multi-GB
    file never needs a second copy in memory."""
    items = list(tensors.items()) if isinstance(tensors, Mapping) else list(tensors)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for key, t in items:
        code = _CODE.get(t.dtype, "F32")
        size = t.numel() * np.dtype(_NUMPY[code]).itemsize
        header[key] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for _key, t in items:
            t = t.detach().cpu().contiguous()
            if t.dtype not in _CODE:
                t = t.float()
            arr = t.numpy()
            f.write(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
