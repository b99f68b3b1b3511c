"""Inference backends behind one narrow interface (see base.py). Imported lazily, so CPU users never need CUDA."""
from __future__ import annotations

import importlib

from ..errors import HarnessError
from .base import Backend, Runner

_BACKENDS = {
    "onnxruntime": "harness.backends.onnxruntime",
    "null": "harness.backends.null",
    "torch": "harness.backends.torch",
    "tensorrt": "harness.backends.tensorrt",
}


def backend_names() -> list[str]:
    return list(_BACKENDS)


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS:
        raise HarnessError(f"--backend={name}: unknown backend; known: {', '.join(_BACKENDS)}.")
    try:
        module = importlib.import_module(_BACKENDS[name])
    except ModuleNotFoundError as e:
        raise HarnessError(f"Backend {name!r} is not available here: {e}.") from None
    return module.BACKEND
