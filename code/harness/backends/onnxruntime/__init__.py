"""The onnxruntime backend: options.py (what it reads from flags and configs), backend.py (build, load, run).

BACKEND is imported on first use, so reading the options never loads the backend's libraries."""
from harness.backends.onnxruntime.options import INFO, OPTIONS, Options  # noqa: F401


def __getattr__(name):
    if name == "BACKEND":
        from harness.backends.onnxruntime.backend import BACKEND
        return BACKEND
    raise AttributeError(name)
