"""The backend interface: build an engine artifact, load it on a device, run a batch, return top-1 indices.

    options = rc.options()                            # the backend's typed options (options_class below)
    engine = backend.build(BuildRequest(onnx_path, engine_path, input_shape, options))   # writes engine_path
    runner = backend.load(engine_path, device, options)
    top1 = runner.infer(batch)                        # (n,) raw argmax indices, before the model's output offset

A backend's options are one frozen dataclass per backend, generated from the options it declares
(backends/<name>/options.py: `Options = options_class("...", OPTIONS)`): one field per Flag (typed from it, default
None), after the run values every backend may read (RunOptions: precision, batch_size, model_key, system_id,
calib_method, verbose). Backends read attributes (`options.threads`), never a settings dict; the batch size travels
only as `options.batch_size`.

A runner that keeps the loaded samples itself (on a GPU with start_from_device, or the null backend that needs
none) sets `takes_rows = True`: the SUT then hands it row numbers into the array given to `load_samples` instead of
gathering a host batch. A runner whose `infer` may be called from several threads at once (a GPU runner with several
CUDA streams) sets `concurrency` to that number: the SUT runs that many worker threads on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from harness.core.errors import HarnessError
from harness.core.storage import read_json, write_json_atomic
from harness.core.options import Flag, parse_bool, parse_devices, parse_int_list


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


@dataclass(frozen=True)
class RunOptions:
    """The run values every backend may read besides its own options: the base of every backend's options class.
    RunConfig.options() fills them (config/runconfig.py); a test or script may construct one directly."""
    precision: str = "fp32"
    batch_size: int = 1                   # after the scenario's batch rule; the only way the batch size travels
    model_key: str = ""                   # the model registry key (resnet50/models.py)
    system_id: str = ""
    calib_method: str = "entropy"
    verbose: bool = False

    # The flat settings' key of each common field where the names differ (RunConfig.settings() says "model").
    _SETTINGS_KEYS = {"model_key": "model"}

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "RunOptions":
        """This class's fields from a flat mapping (RunConfig.settings()): other keys are ignored, None (unset)
        keeps the field's default."""
        given = {}
        for f in fields(cls):
            value = values.get(f.name, values.get(cls._SETTINGS_KEYS.get(f.name, f.name)))
            if value is not None:
                given[f.name] = value
        return cls(**given)


_FIELD_TYPES = {str: str, int: int, float: float, parse_bool: bool, parse_int_list: tuple[int, ...]}


def options_class(name: str, options: Sequence[Flag]) -> type:
    """The frozen options dataclass of a backend: RunOptions' fields, then one field per declared option (named by
    its config key, typed from the Flag, default the Flag's default: None for every option today)."""
    out = []
    for flag in options:
        kind = bool if flag.switch else _FIELD_TYPES.get(flag.type, Any)
        out.append((flag.config_key or flag.name, Optional[kind], field(default=flag.default)))
    return make_dataclass(name, out, bases=(RunOptions,), frozen=True)


@dataclass(frozen=True)
class BuildRequest:
    onnx_path: str           # the FP32 model (or, for int8, the calibrated Q/DQ model)
    engine_path: str         # where the artifact goes
    input_shape: tuple[int, int, int]
    options: RunOptions = field(default_factory=RunOptions)   # the backend's typed options (precision, batch, ...)
    input_scale: Optional[float] = None  # the registry's fixed int8 input scale, when it has one

    @property
    def precision(self) -> str:
        return self.options.precision

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def model_key(self) -> str:
        return self.options.model_key


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
    """Subclasses set `info` and `options_type` (their options.py INFO and Options); name, device_kind and
    engine_suffix come from `info`."""
    info: BackendInfo = BackendInfo("base", "cpu", ".onnx", ("fp32",))
    options_type: type = RunOptions

    def options(self, values: Mapping[str, Any]) -> RunOptions:
        """This backend's typed options from flat settings (RunOptions.from_values)."""
        return self.options_type.from_values(values)

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

    def load(self, engine_path: str, device: Optional[str], options: RunOptions) -> Runner:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        """What an engine depends on besides its inputs (library versions): a change forces a rebuild."""
        return {}

    def require(self) -> None:
        """Raise HarnessError naming what is missing (library, driver, device) when this backend cannot run here."""

    def build_inputs(self, options: RunOptions, fp32_path: str, quantized_path: str) -> dict[str, str]:
        """The files an engine is built from, the source model under "model": their md5s go into the rebuild record."""
        return {"model": quantized_path if options.precision == "int8" else fp32_path}

    def device_ids(self, options: RunOptions) -> list[str]:
        """The devices a GPU backend runs one runner on (`devices`, default: its first device)."""
        return parse_devices(getattr(options, "devices", None)) or ["0"]

    def preprocessed_format(self, options: RunOptions) -> str:
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


def damaged_engine(engine_path: str, backend: str, what: str, cause: BaseException) -> HarnessError:
    """The one error for an engine file its backend cannot load (truncated, garbage, another file): names the file,
    what it should be and the command that rebuilds it."""
    detail = " ".join(str(cause).split())[:200] or type(cause).__name__
    return HarnessError(f"Engine {engine_path} cannot be loaded by the {backend} backend: it is not {what} "
                        f"(truncated, damaged or another file; {type(cause).__name__}: {detail}). Rebuild it with "
                        f"`make generate_engines RUN_ARGS=\"--backend={backend} ... --overwrite\"` with the same "
                        "flags.")
