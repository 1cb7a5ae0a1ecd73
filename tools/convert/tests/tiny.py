"""One set of tiny stand-ins per test run, shared by the test modules (`make_tiny` writes about
290 MB: the tiny colorizer checkpoint, the OpenCLIP file and the six auxiliary files). Tests
write their variants elsewhere and never change these files."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import unittest

import torch

from celfarm_convert.config import parse_config
from celfarm_convert.convert import Options, convert
from celfarm_convert.errors import ConvertError
from celfarm_convert.fixtures import TINY_YAML, make_tiny
from celfarm_convert.safetensors_io import write_safetensors

_files: dict[str, str] | None = None


def tiny_files() -> dict[str, str]:
    global _files
    if _files is None:
        folder = tempfile.mkdtemp(prefix="celfarm-convert-tiny-")
        atexit.register(shutil.rmtree, folder, True)
        _files = make_tiny(os.path.join(folder, "src"))
    return _files


class ConvertCase(unittest.TestCase):
    """Conversions of the tiny stand-ins into a fresh folder per test: `variant` writes a changed
    file (safetensors by name, else a pickle), `options` the converter's options, `refused` checks a
    one-line ConvertError that names `needles` and left nothing behind."""

    tmp: str
    files: dict[str, str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="celfarm-convert-test-")
        cls.files = tiny_files()
        cls.cfg = parse_config(TINY_YAML, "tiny")

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.parent = tempfile.mkdtemp(dir=self.tmp)
        self.out = os.path.join(self.parent, "pack")

    def variant(self, name: str, state: dict[str, torch.Tensor]) -> str:
        path = os.path.join(self.tmp, name)
        if name.endswith(".safetensors"):
            write_safetensors(path, state)
        else:
            torch.save(state, path)
        return path

    def options(self, **kw: object) -> Options:
        kw = {"checkpoint": self.files["checkpoint"], "clip": self.files["clip"], **kw}
        return Options(out=self.out, config=self.cfg, log=lambda _m: None, **kw)  # type: ignore[arg-type]

    def refused(self, *needles: str, one_line: bool = True, **kw: object) -> str:
        with self.assertRaises(ConvertError) as ctx:
            convert(self.options(**kw))
        message = str(ctx.exception)
        for needle in needles:
            self.assertIn(needle, message)
        if one_line:
            self.assertNotIn("\n", message)
        self.assertFalse(os.path.exists(self.out), "no pack may be written")
        self.assertEqual(os.listdir(self.parent), [], "no temporary folder may be left behind")
        return message
