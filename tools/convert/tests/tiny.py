"""One set of tiny stand-ins per test run, shared by the test modules (`make_tiny` writes about
290 MB: the tiny colorizer checkpoint, the OpenCLIP file and the six auxiliary files). Tests
write their variants elsewhere and never change these files."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from celfarm_convert.fixtures import make_tiny

_files: dict[str, str] | None = None


def tiny_files() -> dict[str, str]:
    global _files
    if _files is None:
        folder = tempfile.mkdtemp(prefix="celfarm-convert-tiny-")
        atexit.register(shutil.rmtree, folder, True)
        _files = make_tiny(os.path.join(folder, "src"))
    return _files
