"""The tensorrt backend: options.py (what it reads from flags and configs), plan.py (every decision, in plain code),
contract.py (the graph TensorRT's parser may be given), libs.py (TensorRT and cuda-python, imported lazily), build.py
(engine building), runner.py (one GPU's runner), backend.py (BACKEND: build, load).

BACKEND is imported on first use, so reading the options never loads the backend's libraries."""
from harness.backends.tensorrt.options import INFO, OPTIONS, Options  # noqa: F401


def __getattr__(name):
    if name == "BACKEND":
        from harness.backends.tensorrt.backend import BACKEND
        return BACKEND
    raise AttributeError(name)
