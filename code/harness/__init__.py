"""Shared harness code (the v1.0 harness's `code/common`).

`code/` is deliberately not a Python package: a package named `code` would shadow the standard library's `code`
module, which pdb and the interactive console import. `code/main.py` puts `code/` on sys.path, so the importable
packages are `harness` (shared code) and `resnet50` (benchmark-specific facts: model registry, ImageNet recipes).
"""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARK = "resnet50"


def file_digest(path: str, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in chunks (models, arrays and logs can be large)."""
    import hashlib
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
