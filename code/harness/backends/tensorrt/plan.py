"""Every decision of the TensorRT path that can be made without TensorRT, in plain code the CPU tests cover.

The TensorRT backend (backends/tensorrt/backend.py, build.py, runner.py) only carries these decisions out with TensorRT
and CUDA calls. The functions here read the run's values from the backend's typed options (options.py Options).

Build (`make generate_engines`):
- Source model: for int8, the calibrated Q/DQ ONNX (`calibration.quantized_model_path(model, "tensorrt")`, explicit
  quantisation) by default, or with `implicit_int8` the FP32 ONNX plus the TensorRT calibration cache
  (`engines.calibration_cache_path`, or `calib_cache`). fp16/fp32 use the FP32 ONNX.
- Builder flags: int8 -> INT8 with FP16 fallback; fp16 -> FP16; fp32 -> none.
- Graph surgery on the ONNX (onnx_graph): softmax dropped, TopK(k=1) int32 index output; an int8 input for Q/DQ
  models (the input QuantizeLinear removed) or an fp16 input. Only what ONNX cannot say is set in TensorRT: the
  input's vectorised format (CHW4), and, for implicit INT8, the input's int8 type and dynamic range.
- The input scale: the model registry's fixed scale (Alibaba's network) when it has one, else the Q/DQ model's input
  QuantizeLinear scale, else the calibration cache's entry for the input.
- One optimisation profile per copy stream (`gpu_copy_streams`), each min batch 1, opt = max = `batch_size`.
- Workspace (`workspace_size`, default 1 GiB as the seed), a timing cache per system (`timing_cache`), plugin
  libraries (`plugins`) loaded before parsing and before deserialising.

Run (`--backend=tensorrt`):
- One runner per GPU in `devices` (default: all). Each has `gpu_copy_streams` slots (execution context on its own
  profile, copy stream, pinned host buffers, device buffers); the SUT runs one worker thread per slot. Inference runs
  on `gpu_inference_streams` streams shared round-robin by the slots, or on each slot's copy stream when
  `run_infer_on_copy_streams`.
- `use_graphs`: CUDA graphs captured per slot for a ladder of batch sizes; a batch of n runs the smallest graph >= n.
- `start_from_device`: the loaded samples are converted and copied to the GPU once per LoadSamplesToRam, and a batch
  is gathered on the device by one gather kernel launch (GATHER_SOURCE, compiled with NVRTC); otherwise it is
  gathered straight into pinned host memory and copied.
- Every runner entry point makes the runner's GPU current on the calling thread first (the current device is per
  thread; one thread creates and loads all runners).
- Versions: the calibration cache header names the installed TensorRT (rewritten if not); an engine runs only on the
  TensorRT that built it.
- Only the n int32 top-1 indices of a batch are copied back.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from harness.core.paths import REPO_ROOT, timing_cache_path as default_timing_cache_path
from harness.core.errors import HarnessError
from harness.graph.calibration_cache import (  # noqa: F401 (the backend and tests read them through this module)
    CACHE_CALIBRATOR, TARGET_TENSORRT, cache_for_tensorrt, calibration_cache_header, calibration_cache_version,
    format_calibration_cache, parse_calibration_cache, read_calibration_cache, version_tuple,
)
from harness.core.options import parse_bool, parse_devices as device_words
from harness.core.paths import calibration_cache_path
from harness.backends.tensorrt.options import Options
from harness.graph.formats import (  # noqa: F401 (the backend and tests read them through this module)
    DTYPE_BYTES, NUMPY_DTYPES, convert_samples, from_chw4, quantize_int8, sample_nbytes, to_chw4,
)

INPUT_DTYPES = ("int8", "fp16", "fp32")
INPUT_FORMATS = ("linear", "chw4")
DEFAULT_WORKSPACE_SIZE = 1 << 30
TIMING_CACHE_OFF = ("", "none", "off", "false", "0")
GRAPH_FINE_STEP = 16          # CUDA graphs for every batch size up to this, then for multiples of it


# ---------------------------------------------------------------------------------------------------------------
# Settings
def parse_plugins(value: Any) -> list[str]:
    """`plugins` from a flag (comma list) or a config (list or comma list) -> absolute paths, in order."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out = []
    for item in (str(i).strip() for i in items):
        if item:
            # Relative paths: from the working directory when the file is there, else from the repo root.
            path = item if os.path.isabs(item) or os.path.exists(item) else os.path.join(REPO_ROOT, item)
            out.append(os.path.abspath(path))
    return list(dict.fromkeys(out))


def check_plugins(paths: Sequence[str]) -> None:
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise HarnessError(f"Plugin librar{'y' if len(missing) == 1 else 'ies'} not found: {', '.join(missing)}. "
                           "--plugins takes a comma list of .so files (paths relative to the repo root or absolute).")


def quantization_mode(options: Options) -> str:
    """'explicit' (Q/DQ ONNX), 'implicit' (FP32 ONNX + calibration cache) or 'none' (no INT8)."""
    if options.precision != "int8":
        return "none"
    return "implicit" if parse_bool(options.implicit_int8, False) else "explicit"


def input_dtype_format(options: Options) -> tuple[str, str]:
    """The engine input's dtype and layout, checked against the precision."""
    precision = options.precision or "fp32"
    dtype = str(options.input_dtype or ("int8" if precision == "int8" else "fp32")).lower()
    fmt = str(options.input_format or "linear").lower()
    if dtype not in INPUT_DTYPES:
        raise HarnessError(f"input_dtype={dtype!r}: expected one of {', '.join(INPUT_DTYPES)}.")
    if fmt not in INPUT_FORMATS:
        raise HarnessError(f"input_format={fmt!r}: expected one of {', '.join(INPUT_FORMATS)}.")
    if dtype == "int8" and precision != "int8":
        raise HarnessError(f"input_dtype=int8 needs precision int8 (this config has {precision}); set "
                           "--input_dtype=fp32 or --precision=int8.")
    if fmt == "chw4" and dtype != "int8":
        raise HarnessError(f"input_format=chw4 is TensorRT's vectorised int8 layout; it needs input_dtype int8, not "
                           f"{dtype}.")
    if dtype == "fp16" and precision == "fp32":
        raise HarnessError("input_dtype=fp16 with precision fp32 would lose the input precision the engine keeps; "
                           "use input_dtype fp32, or precision fp16/int8.")
    return dtype, fmt


def builder_flags(precision: str) -> dict[str, bool]:
    if precision not in ("int8", "fp16", "fp32"):
        raise HarnessError(f"The tensorrt backend builds int8, fp16 and fp32 engines, not {precision}.")
    return {"int8": precision == "int8", "fp16": precision in ("int8", "fp16")}


def copy_streams(options: Options) -> int:
    n = int(options.gpu_copy_streams or 1)
    if n < 1:
        raise HarnessError(f"gpu_copy_streams={n}: needs at least 1.")
    return n


def inference_streams(options: Options) -> int:
    n = int(options.gpu_inference_streams or 1)
    if n < 1:
        raise HarnessError(f"gpu_inference_streams={n}: needs at least 1.")
    return n


def profile_shapes(batch_size: int, chw: Sequence[int], count: int) -> list[tuple[tuple[int, ...], ...]]:
    """One (min, opt, max) input shape per optimisation profile: batch 1..batch_size, tuned for batch_size."""
    if batch_size < 1:
        raise HarnessError(f"batch_size={batch_size}: needs at least 1.")
    c, h, w = (int(d) for d in chw)
    shape = (1, c, h, w), (batch_size, c, h, w), (batch_size, c, h, w)
    return [shape for _ in range(count)]


def workspace_size(options: Options) -> int:
    size = int(options.workspace_size or DEFAULT_WORKSPACE_SIZE)
    if size < (1 << 20):
        raise HarnessError(f"workspace_size={size} bytes is too small (at least 1 MiB; the default is 1 GiB).")
    return size


def timing_cache_path(options: Options) -> Optional[str]:
    """The timing cache: `timing_cache` (a path, or none/off), default build/engines/<system>/timing.cache.

    It holds layer timings only for one GPU model and TensorRT version, so it lives per system."""
    value = options.timing_cache
    if value is not None and str(value).strip().lower() in TIMING_CACHE_OFF:
        return None
    if value:
        return os.path.abspath(str(value))
    return default_timing_cache_path(options.system_id)


# ---------------------------------------------------------------------------------------------------------------
# Calibration cache (TensorRT format: a `TRT-<version>-<Calibrator>` header, then `<tensor>: <hex float32>` lines)


def choose_input_scale(registry_scale: Optional[float], qdq_scale: Optional[float],
                       cache_scales: Optional[dict[str, float]], input_name: str) -> float:
    """The int8 input scale, from the first that has one: the model registry (a fixed scale that preprocessing
    uses), the Q/DQ model's input QuantizeLinear, the calibration cache's entry for the input tensor."""
    for scale in (registry_scale, qdq_scale, (cache_scales or {}).get(input_name)):
        if scale is not None:
            if not scale > 0 or not np.isfinite(scale):
                raise HarnessError(f"Input scale {scale!r} for {input_name} is not a positive number.")
            return float(scale)
    raise HarnessError(f"No int8 scale for input {input_name!r}: the model registry fixes none, the model has no input "
                       "QuantizeLinear, and the calibration cache has no entry for it. Use --input_dtype=fp32, or "
                       "re-run `make calibrate`.")


# ---------------------------------------------------------------------------------------------------------------
# The build plan
@dataclass
class EnginePlan:
    source: str                      # the ONNX the engine is built from (before the harness's graph surgery)
    quantization: str                # explicit | implicit | none
    precision: str
    int8: bool                       # BuilderFlag.INT8
    fp16: bool                       # BuilderFlag.FP16 (FP16 fallback for int8)
    input_dtype: str
    input_format: str
    input_shape: tuple[int, int, int]
    batch_size: int
    profiles: list = field(default_factory=list)
    calibration_cache: Optional[str] = None
    plugins: list = field(default_factory=list)
    workspace_size: int = DEFAULT_WORKSPACE_SIZE
    timing_cache: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_cache_for(options: Options) -> str:
    explicit = options.calib_cache
    if explicit:
        return os.path.abspath(str(explicit))
    return calibration_cache_path(options.model_key, str(options.calib_method or "entropy"))


def build_inputs(options: Options, fp32_path: str, quantized_path: str) -> dict[str, str]:
    """The files an engine is built from (each one's md5 goes into the rebuild record): the source model first."""
    mode = quantization_mode(options)
    inputs = {"model": quantized_path if mode == "explicit" else fp32_path}
    if mode == "implicit":
        inputs["calibration_cache"] = calibration_cache_for(options)
    for i, lib in enumerate(parse_plugins(options.plugins)):
        inputs[f"plugin{i}"] = lib
    return inputs


def make_plan(options: Options, input_shape: Sequence[int], source: str) -> EnginePlan:
    """The engine's build plan from the run's typed options (model key, precision, batch size and the tensorrt
    options among them)."""
    precision = options.precision or "fp32"
    flags = builder_flags(precision)
    dtype, fmt = input_dtype_format(options)
    mode = quantization_mode(options)
    batch = int(options.batch_size or 1)
    plugins = parse_plugins(options.plugins)
    return EnginePlan(
        source=source, quantization=mode, precision=precision, int8=flags["int8"], fp16=flags["fp16"],
        input_dtype=dtype, input_format=fmt, input_shape=tuple(int(d) for d in input_shape), batch_size=batch,
        profiles=profile_shapes(batch, input_shape, copy_streams(options)),
        calibration_cache=calibration_cache_for(options) if mode == "implicit" else None,
        plugins=plugins, workspace_size=workspace_size(options), timing_cache=timing_cache_path(options))


# ---------------------------------------------------------------------------------------------------------------
# Runtime decisions
def parse_devices(value: Any, visible: int) -> list[int]:
    """`devices` (comma list of ids, default all visible GPUs) -> ids, checked against the visible count."""
    if visible < 1:
        raise HarnessError("No CUDA GPU is visible (cudaGetDeviceCount found 0): the tensorrt backend needs an "
                           "NVIDIA GPU. Check nvidia-smi and CUDA_VISIBLE_DEVICES.")
    words = device_words(value)
    if words is None:
        return list(range(visible))
    for word in words:
        if not word.isdigit() or int(word) >= visible:
            raise HarnessError(f"--devices={value}: {word!r} is not a GPU id here (visible: 0..{visible - 1}).")
    return [int(w) for w in words]


def stream_layout(copy: int, inference: int, run_infer_on_copy_streams: bool) -> list[Optional[int]]:
    """For each slot (one per copy stream), the inference stream it runs on: None for its own copy stream, else an
    index into the shared inference streams (round-robin; more inference streams than slots are not used)."""
    if run_infer_on_copy_streams:
        return [None] * copy
    return [i % min(inference, copy) for i in range(copy)]


def graph_batch_sizes(max_batch: int, step: int = GRAPH_FINE_STEP) -> list[int]:
    """Batch sizes to capture CUDA graphs for: 1..step, then every multiple of step, then max_batch itself.
    A batch runs on the smallest graph that holds it, so at most step-1 samples of padding are computed."""
    sizes = set(range(1, min(step, max_batch) + 1))
    sizes.update(range(step, max_batch + 1, step))
    sizes.add(max_batch)
    return sorted(sizes)


def graph_size_for(n: int, sizes: Sequence[int]) -> int:
    for size in sizes:
        if size >= n:
            return size
    raise HarnessError(f"A batch of {n} is larger than the largest CUDA graph ({sizes[-1] if sizes else 0}).")


# ---------------------------------------------------------------------------------------------------------------
# TensorRT versions: the calibration cache header and the engine's version
MIN_TENSORRT_MAJOR = 10


def check_engine_version(built_with: Optional[str], installed: str, engine_path: str) -> None:
    """An engine runs only on the TensorRT it was built with (TensorRT refuses others); say so before loading."""
    if not built_with:
        raise HarnessError(f"{engine_path}: its metadata does not say which TensorRT built it; rebuild it with "
                           "`make generate_engines ... --overwrite`.")
    if version_tuple(built_with) != version_tuple(installed):
        raise HarnessError(f"{engine_path} was built with TensorRT {built_with}, but TensorRT {installed} is "
                           "installed; engines do not move between TensorRT versions. Rebuild it with "
                           "`make generate_engines ... --overwrite`.")


# ---------------------------------------------------------------------------------------------------------------
# The batch gather kernel (start_from_device): dst[i] = src[rows[i]] for whole samples, one launch per batch.
# Compiled once per process with NVRTC, loaded once per GPU; the runner copies the batch's row indices to the GPU
# and launches it (two calls per batch instead of one copy per sample).
GATHER_THREADS = 256
GATHER_MAX_BLOCKS = 8192            # a grid-stride loop covers the rest
GATHER_WORDS = ((16, "harness_word16"), (4, "unsigned int"), (1, "unsigned char"))
GATHER_SOURCE = "struct alignas(16) harness_word16 { unsigned int v[4]; };   // one 128-bit load and store\n" + \
    "\n".join(f"""extern "C" __global__ void harness_gather_{size}(
    const {ctype}* __restrict__ src, {ctype}* __restrict__ dst, const long long* __restrict__ rows,
    unsigned long long words, unsigned long long count)
{{
    unsigned long long total = words * count;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (unsigned long long)gridDim.x * blockDim.x) {{
        unsigned long long r = i / words;
        dst[i] = src[(unsigned long long)rows[r] * words + (i - r * words)];
    }}
}}""" for size, ctype in GATHER_WORDS)
GATHER_OPTIONS = ("--std=c++17",)   # plus --gpu-arch=compute_<major><minor> of the GPU


@dataclass(frozen=True)
class GatherLaunch:
    kernel: str            # the kernel's name in GATHER_SOURCE
    word_bytes: int        # bytes each thread moves
    words: int             # words per sample
    grid: int
    block: int


def gather_launch(sample_bytes: int, count: int) -> GatherLaunch:
    """The kernel and launch shape for gathering `count` samples of `sample_bytes` (device buffers from cudaMalloc
    are 256-byte aligned, so the widest word that divides a sample is safe)."""
    if sample_bytes < 1 or count < 0:
        raise HarnessError(f"gather of {count} samples of {sample_bytes} bytes")
    word = next(size for size, _ in GATHER_WORDS if sample_bytes % size == 0)
    words = sample_bytes // word
    total = words * count
    grid = max(1, min(GATHER_MAX_BLOCKS, -(-total // GATHER_THREADS)))
    return GatherLaunch(f"harness_gather_{word}", word, words, grid, GATHER_THREADS)


def gather_reference(src: np.ndarray, rows: np.ndarray, launch: GatherLaunch, stride: Optional[int] = None
                     ) -> np.ndarray:
    """What the kernel computes on flat byte arrays, word by word, thread by thread: thread t handles words t,
    t + stride, ... (stride = grid * block). The tests compare it with numpy's take; the fake CUDA driver runs it
    for a launch."""
    words = src.view(np.uint8).reshape(-1, launch.word_bytes)
    total = launch.words * len(rows)
    stride = stride or launch.grid * launch.block
    out = np.zeros((total, launch.word_bytes), np.uint8)
    done = np.zeros(total, np.int64)
    for thread in range(min(stride, total)) if stride < 4096 else [None]:
        i = np.arange(total) if thread is None else np.arange(thread, total, stride)
        r = i // launch.words
        out[i] = words[rows[r].astype(np.int64) * launch.words + (i - r * launch.words)]
        done[i] += 1
    if not (done == 1).all():
        raise AssertionError("the grid-stride loop does not cover every word exactly once")
    return out.reshape(-1)
