"""Inference backends behind one narrow interface (see base.py), one folder each (backends/<name>/).

A backend folder holds `options.py` (INFO, OPTIONS and Options: what it is, the flags and config keys it reads, as
harness.core.options.Flag, and the frozen dataclass base.options_class makes of them, which Backend.load and
BuildRequest carry), `backend.py` (BACKEND: build, load, run) and `__init__.py`, which hands out BACKEND only
when asked for it: reading the options never loads a backend's libraries, so CPU users never need CUDA. Adding a
backend is one folder plus one line in `_BACKENDS` (its package, imported by name).
"""
from __future__ import annotations

from harness.core.errors import HarnessError
from harness.backends import null as _null
from harness.backends import onnxruntime as _onnxruntime
from harness.backends import tensorrt as _tensorrt
from harness.backends import torch as _torch
from harness.backends.base import Backend, BackendInfo, Runner, RunOptions  # noqa: F401

_BACKENDS = {
    "onnxruntime": _onnxruntime,
    "null": _null,
    "torch": _torch,
    "tensorrt": _tensorrt,
}


def registered() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def _package(name: str):
    if name not in _BACKENDS:
        raise HarnessError(f"--backend={name}: unknown backend; known: {', '.join(_BACKENDS)}.")
    return _BACKENDS[name]


def backend_options(name: str) -> tuple:
    """The options (harness.options.Flag) the backend `name` reads."""
    return tuple(_package(name).OPTIONS)


def options_type(name: str) -> type:
    """The typed options class (a RunOptions dataclass) of the backend `name`, without loading its libraries."""
    return _package(name).Options


def make_options(name: str, values) -> RunOptions:
    """The backend `name`'s typed options from flat settings (RunConfig.settings(); unknown keys are ignored)."""
    return options_type(name).from_values(values)


def backend_info(name: str) -> BackendInfo:
    """What the backend `name` is (device kind, precisions, build keys, framework, calibration form), without
    loading its libraries."""
    return _package(name).INFO


def all_options() -> tuple:
    """Every backend's options, each once (options several backends share, e.g. the GPU ones, are one object)."""
    out: dict = {}
    for name in _BACKENDS:
        for option in backend_options(name):
            if out.setdefault(option.name, option) != option:
                raise HarnessError(f"Backends declare option {option.name!r} twice with different types.")
    return tuple(out.values())


def get_backend(name: str) -> Backend:
    package = _package(name)
    try:
        return package.BACKEND
    except ModuleNotFoundError as e:
        raise HarnessError(f"Backend {name!r} is not available here: {e}.") from None
