"""The backend interface: build an engine artifact, load it on a device, run a batch, return top-1 indices.

    engine = backend.build(BuildRequest(...))         # writes request.engine_path, returns it
    runner = backend.load(engine_path, device, settings)
    top1 = runner.infer(batch)                        # (n,) raw argmax indices, before the model's output offset

A runner that keeps the loaded samples itself (on a GPU with start_from_device, or the null backend that needs
none) sets `takes_rows = True`: the SUT then hands it row numbers into the array given to `load_samples` instead of
gathering a host batch. A runner whose `infer` may be called from several threads at once (a GPU runner with several
CUDA streams) sets `concurrency` to that number: the SUT runs that many worker threads on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from harness.core.errors import HarnessError
from harness.core.storage import read_json, write_json_atomic
from harness.core.options import parse_devices


@dataclass(frozen=True)
class BackendInfo:
    """What the harness needs to know about a backend without loading it (backends/<name>/options.py: INFO)."""
    name: str
    device_kind: str                          # "cpu" or "gpu": part of the engine name; GPU ids for the system id
    engine_suffix: str                        # the engine file's ending
    precisions: tuple[str, ...]               # what it builds
    build_keys: tuple[str, ...] = ()          # its config keys that change the engine (besides precision, batch)
    framework: Optional[str] = None           # as the system description names it
    framework_package: Optional[str] = None   # the Python package whose version the description records
    calibration_form: Optional[str] = None    # calibration.FORMS key of the Q/DQ model its int8 engines read
    reads_model: bool = True                  # False: builds without a model and at run time (the null backend)


@dataclass
class BuildRequest:
    onnx_path: str           # the FP32 model (or, for int8, the calibrated Q/DQ model)
    engine_path: str         # where the artifact goes
    precision: str
    batch_sizes: list[int]
    input_shape: tuple[int, int, int]
    settings: dict[str, Any] = field(default_factory=dict)   # the merged config
    model_key: str = ""                 # the model registry key (resnet50/models.py)
    input_scale: Optional[float] = None  # the registry's fixed int8 input scale, when it has one


class Runner:
    takes_rows = False
    input_dtype = np.float32
    concurrency = 1

    def load_samples(self, array: np.ndarray) -> None:
        """Called with the QSL's contiguous loaded array whenever LoadGen loads samples."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Backend:
    """Subclasses set `info` (their options.py INFO); name, device_kind and engine_suffix come from it."""
    info: BackendInfo = BackendInfo("base", "cpu", ".onnx", ("fp32",))

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def device_kind(self) -> str:
        return self.info.device_kind

    @property
    def engine_suffix(self) -> str:
        return self.info.engine_suffix

    def build(self, request: BuildRequest) -> str:
        raise NotImplementedError

    def load(self, engine_path: str, device: Optional[str], settings: dict[str, Any]) -> Runner:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        """What an engine depends on besides its inputs (library versions): a change forces a rebuild."""
        return {}

    def require(self) -> None:
        """Raise HarnessError naming what is missing (library, driver, device) when this backend cannot run here."""

    def build_inputs(self, settings: dict[str, Any], model_key: str, fp32_path: str,
                     quantized_path: str) -> dict[str, str]:
        """The files an engine is built from, the source model under "model": their md5s go into the rebuild record."""
        return {"model": quantized_path if settings.get("precision") == "int8" else fp32_path}

    def device_ids(self, settings: dict[str, Any]) -> list[str]:
        """The devices a GPU backend runs one runner on (`devices`, default: its first device)."""
        return parse_devices(settings.get("devices")) or ["0"]

    def preprocessed_format(self, settings: dict[str, Any]) -> str:
        """The preprocessed format (resnet50/imagenet.py FORMATS) a run loads for this backend's runners: FP32 NCHW
        unless overridden. A backend with int8 engine inputs may return the matching int8 format (int8_linear,
        int8_nhwc, int8_chw4: quantised with the registry's input_scale) to skip converting samples at load time."""
        return "fp32_nchw"


# The engine's sidecar: what a runner needs to know about its inputs and outputs, written by the backend's build.
def meta_path(engine_path: str) -> str:
    """What a runner needs to know about an engine's inputs and outputs (dtype, layout, scale, profiles)."""
    return engine_path + ".meta.json"


def write_meta(engine_path: str, meta: dict) -> None:
    write_json_atomic(meta_path(engine_path), meta, indent=1)


def read_meta(engine_path: str) -> dict:
    meta = read_json(meta_path(engine_path), missing=None)
    if meta is None:
        raise HarnessError(f"{meta_path(engine_path)} is missing: the engine {engine_path} was not built by this "
                           "harness (or not completely). Rebuild it with `make generate_engines ... --overwrite`.")
    return meta
