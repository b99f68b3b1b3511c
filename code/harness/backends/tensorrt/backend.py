"""TensorRT on NVIDIA GPUs (TensorRT 10 Python API, cuda-python for memory, streams and CUDA graphs).

Every decision is made in plain code (harness/backends/tensorrt/plan.py, harness/graph/onnx_graph.py) that the CPU tests cover; this
module only carries them out. TensorRT and cuda-python are imported lazily, when an engine is built or loaded, so
CPU users never need them; when they (or a driver, or a GPU) are missing the error says which and what to do.

Build: the ONNX after the harness's graph surgery (`<engine>.surgery.onnx`, kept beside the engine, so ONNX Runtime
can run exactly what TensorRT was given) is parsed, the input's format (and, for implicit INT8, type and dynamic
range) is set, one optimisation profile per copy stream is added, and the serialised engine is written with
`<engine>.meta.json` (input name, dtype, layout and scale; profiles; plugins) beside it.

Run: see the module docstring of harness/backends/tensorrt/plan.py.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
import time
from typing import Any, Optional

import numpy as np
import onnx

from harness.core.options import parse_bool
from harness.graph import onnx_graph
from harness.backends.tensorrt import contract
from harness.backends.tensorrt import plan as tp
from harness.backends.base import read_meta, write_meta
from harness.core.errors import HarnessError
from harness.backends.tensorrt.options import INFO
from harness.backends.base import Backend, BuildRequest, Runner

CONTAINER_HINT = ("Run inside the NVIDIA container (`make prebuild`, FAQ.md 'The TensorRT backend'), which has "
                  "TensorRT 10 and cuda-python; CPU-only machines use --backend=onnxruntime.")


# ---------------------------------------------------------------------------------------------------------------
# Lazy imports with clear failures
def _trt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise HarnessError(f"The tensorrt backend needs NVIDIA TensorRT's Python package, and `import tensorrt` "
                           f"failed ({e}). {CONTAINER_HINT}") from None
    try:
        major = int(str(trt.__version__).split(".")[0])
    except ValueError:
        major = 0
    if major < 10:
        raise HarnessError(f"TensorRT {trt.__version__} is too old: the tensorrt backend uses the TensorRT 10 API. "
                           f"{CONTAINER_HINT}")
    return trt


def _cudart():
    try:
        from cuda.bindings import runtime as cudart          # cuda-python 12.6+ and 13.x
    except ImportError:
        try:
            from cuda import cudart                           # older cuda-python 12.x
        except ImportError as e:
            raise HarnessError(f"The tensorrt backend needs cuda-python (`import cuda.bindings.runtime` failed: {e}); "
                               f"install docker/requirements-gpu.txt. {CONTAINER_HINT}") from None
    return cudart


def _check(result, what: str):
    """cuda-python calls return (error, *values): raise on an error, else return the value(s)."""
    cudart = _cudart()
    err, values = result[0], tuple(result[1:])
    if err != cudart.cudaError_t.cudaSuccess:
        try:
            name = cudart.cudaGetErrorName(err)[1].decode()
        except Exception:
            name = str(err)
        raise HarnessError(f"CUDA call {what} failed: {name}.")
    return values[0] if len(values) == 1 else (values or None)


def visible_gpu_count() -> int:
    cudart = _cudart()
    try:
        err, count = cudart.cudaGetDeviceCount()
    except RuntimeError as e:           # cuda-python raises this when libcuda.so.1 (the driver) is absent
        raise HarnessError(f"No NVIDIA driver here ({e}): the tensorrt backend needs an NVIDIA GPU and its driver. "
                           f"{CONTAINER_HINT}") from None
    if err != cudart.cudaError_t.cudaSuccess:
        if err == cudart.cudaError_t.cudaErrorNoDevice:
            return 0
        raise HarnessError(f"cudaGetDeviceCount failed ({err}): the NVIDIA driver is not usable here (driver too old "
                           f"for this CUDA, or no GPU). Check nvidia-smi. {CONTAINER_HINT}")
    return int(count)


def _logger(trt, settings: dict[str, Any]):
    severity = trt.Logger.VERBOSE if parse_bool(settings.get("verbose"), False) else trt.Logger.WARNING
    return trt.Logger(severity)


def load_plugins(trt, logger, plugins: list[str]) -> list:
    """TensorRT's own plugins, then each --plugins library (its plugin creators register themselves on load)."""
    trt.init_libnvinfer_plugins(logger, "")
    handles = []
    for lib in plugins:
        try:
            handles.append(ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL))
        except OSError as e:
            raise HarnessError(f"Could not load plugin library {lib}: {e}.") from None
    return handles


# ---------------------------------------------------------------------------------------------------------------
# Build: the plain part (graph surgery and engine metadata), then the TensorRT calls
def prepare_graph(model: onnx.ModelProto, plan: tp.EnginePlan, registry_scale: Optional[float]
                  ) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The ONNX graph TensorRT is given, and the metadata the runner needs. Runs without TensorRT."""
    (inp,) = onnx_graph.graph_inputs(model)[:1]
    input_name = inp.name
    if plan.quantization == "explicit" and not any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        raise HarnessError(f"{plan.source} has no QuantizeLinear nodes: it is not a calibrated Q/DQ model. Run "
                           "`make calibrate`, or pass --implicit_int8 to build from the FP32 model and the "
                           "calibration cache.")
    if onnx_graph.opset_version(model) < contract.OPSET_RANGE[0]:
        # TensorRT 10's parser takes opsets 9..20; the MLPerf ResNet50-v1.5 reference ONNX is opset 8.
        from onnx import version_converter
        model = version_converter.convert_version(model, 13)
    graph = onnx_graph.top1_graph(model, op="topk", index_dtype=onnx.TensorProto.INT32)
    scale = None
    if plan.input_dtype == "int8":
        if plan.quantization == "explicit":
            graph, scale = onnx_graph.int8_input_graph(graph)
            if registry_scale is not None and abs(registry_scale - scale) > 1e-6 * max(registry_scale, scale):
                raise HarnessError(f"{plan.source}: the input QuantizeLinear scale {scale} differs from the model "
                                   f"registry's fixed input scale {registry_scale}; re-run `make calibrate` so the "
                                   "input keeps the registry's scale, or use --input_dtype=fp32.")
        else:
            _, cache = tp.read_calibration_cache(plan.calibration_cache)
            scale = tp.choose_input_scale(registry_scale, None, cache, input_name)
    elif plan.input_dtype == "fp16":
        graph = onnx_graph.fp16_input_graph(graph)
    meta = {
        "input_name": input_name, "output_name": onnx_graph.TOP1_OUTPUT, "output_dtype": "int32",
        "input_dtype": plan.input_dtype, "input_format": plan.input_format, "input_shape": list(plan.input_shape),
        "input_scale": scale, "batch_size": plan.batch_size, "num_profiles": len(plan.profiles),
        "quantization": plan.quantization, "precision": plan.precision, "plugins": list(plan.plugins),
    }
    # The graph TensorRT's parser gets must keep the contract (no INT32 bias DQ, top-1 on the logits, the input as
    # the metadata says, ops and types TensorRT 10 supports): a clear error here, not a parser failure on the GPU host.
    contract.check(graph, f"{plan.source} (after the harness's graph surgery)", plan.input_dtype, scale,
                   plan.quantization, plugin_ops=bool(plan.plugins))
    return graph, meta


def _cache_calibrator(trt, cache: bytes, batch_size: int):
    """An entropy calibrator that only replays a calibration cache (the ranges `make calibrate` computed), whose
    header already names the installed TensorRT (tp.cache_for_tensorrt)."""
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise HarnessError(f"TensorRT {trt.__version__} has no implicit INT8 calibrator API; build from the calibrated "
                           "Q/DQ model instead (drop --implicit_int8).")

    class CacheCalibrator(base):
        def __init__(self):
            base.__init__(self)
            self.cache = cache

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            return None            # no data: every range comes from the cache

        def read_calibration_cache(self):
            return self.cache

        def write_calibration_cache(self, cache):
            return None            # the cache is calibration's output; never rewritten here

    return CacheCalibrator()


def _build_engine(trt, plan: tp.EnginePlan, onnx_path: str, meta: dict[str, Any], engine_path: str,
                  settings: dict[str, Any]) -> None:
    logger = _logger(trt, settings)
    load_plugins(trt, logger, plan.plugins)
    builder = trt.Builder(logger)
    network = builder.create_network(0)          # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise HarnessError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_size)
    if plan.int8:
        config.set_flag(trt.BuilderFlag.INT8)
    if plan.fp16:
        config.set_flag(trt.BuilderFlag.FP16)

    inp = network.get_input(0)
    if plan.input_dtype == "int8" and plan.quantization == "implicit":
        inp.dtype = trt.int8
        bound = 127.0 * float(meta["input_scale"])
        inp.set_dynamic_range(-bound, bound)
    fmt = trt.TensorFormat.CHW4 if plan.input_format == "chw4" else trt.TensorFormat.LINEAR
    inp.allowed_formats = 1 << int(fmt)
    out = network.get_output(0)
    out.allowed_formats = 1 << int(trt.TensorFormat.LINEAR)

    profiles = []
    for shape_min, shape_opt, shape_max in plan.profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, shape_min, shape_opt, shape_max)
        config.add_optimization_profile(profile)
        profiles.append(profile)
    if plan.quantization == "implicit":
        config.int8_calibrator = _cache_calibrator(trt, calibration_cache_bytes(plan.calibration_cache,
                                                                                str(trt.__version__)),
                                                   plan.batch_size)
        config.set_calibration_profile(profiles[0])

    if plan.timing_cache:
        note = apply_timing_cache(config, plan.timing_cache)
        if note:
            print(f"[generate_engines] {note}", flush=True)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise HarnessError(f"TensorRT failed to build {engine_path} (its log above says why).")
    tmp = engine_path + ".partial"
    with open(tmp, "wb") as f:
        f.write(serialized)
    os.replace(tmp, engine_path)
    if plan.timing_cache:
        note = save_timing_cache(config, plan.timing_cache)
        if note:
            print(f"[generate_engines] {note}", flush=True)


def calibration_cache_bytes(path: str, installed: str) -> bytes:
    """The cache the calibrator replays: its header made the installed TensorRT's (or a clear refusal)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise HarnessError(f"No calibration cache at {path}: --implicit_int8 needs one. Run `make calibrate` or "
                           "pass --calib_cache=<file>.") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not a text TensorRT calibration cache.") from None
    text, note = tp.cache_for_tensorrt(text, installed, path)
    if note:
        print(f"[generate_engines] {note}", flush=True)
    return text.encode()


def apply_timing_cache(config, path: str) -> Optional[str]:
    """Give the builder the saved timing cache. `set_timing_cache(..., ignore_mismatch=False)` returns False when
    the cache was written by another TensorRT version or GPU (and `create_timing_cache` None for an unreadable
    blob): then a fresh cache is used and a note says so. Returns that note, or None."""
    blob = b""
    if os.path.exists(path):
        with open(path, "rb") as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return None
    if not blob:
        raise HarnessError("TensorRT could not create an empty timing cache (create_timing_cache / "
                           "set_timing_cache failed); pass --timing_cache=none to build without one.")
    fresh = config.create_timing_cache(b"")
    if fresh is None or not config.set_timing_cache(fresh, ignore_mismatch=False):
        raise HarnessError(f"TensorRT could not use a fresh timing cache in place of {path}; pass "
                           "--timing_cache=none to build without one.")
    return (f"the timing cache {path} was not usable (written by another TensorRT version or GPU, or damaged); "
            "this build starts a new one and replaces it.")


def save_timing_cache(config, path: str) -> Optional[str]:
    """Write the builder's timing cache (written then renamed); a note instead when the builder has none."""
    cache = config.get_timing_cache()
    if cache is None:
        return f"TensorRT returned no timing cache; {path} is left as it was."
    blob = bytes(cache.serialize())
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".partial", "wb") as f:
        f.write(blob)
    os.replace(path + ".partial", path)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Run
class _Slot:
    """One execution context on its own optimisation profile, its streams, events, buffers and CUDA graphs."""

    def __init__(self):
        self.context = None
        self.copy_stream = None
        self.infer_stream = None       # the copy stream itself, or a shared inference stream
        self.event_in = None
        self.event_out = None
        self.host_in = 0
        self.host_out = 0
        self.dev_in = 0
        self.dev_out = 0
        self.host_in_view: Optional[np.ndarray] = None
        self.host_out_view: Optional[np.ndarray] = None
        self.graphs: dict[int, Any] = {}
        # start_from_device: the batch's row indices (pinned host, device) and the gather kernel's arguments
        self.host_rows = 0
        self.host_rows_view: Optional[np.ndarray] = None
        self.dev_rows = 0
        self.gather_args: Optional[np.ndarray] = None       # uint64 values: src, dst, rows, words, count
        self.gather_params: Optional[np.ndarray] = None     # uint64 addresses of those values (kernelParams)


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver                       # older cuda-python 12.x
    return driver


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        from cuda import nvrtc                                # older cuda-python 12.x
    return nvrtc


def _check_driver(driver, result, what: str):
    err, values = result[0], tuple(result[1:])
    if err != driver.CUresult.CUDA_SUCCESS:
        raise HarnessError(f"CUDA driver call {what} failed: {err}.")
    return values[0] if len(values) == 1 else (values or None)


class GatherKernel:
    """The batch gather kernel (plan.GATHER_SOURCE): compiled once per process and GPU architecture with NVRTC,
    loaded once per GPU (with that GPU current), launched once per batch."""

    _lock = threading.Lock()
    _ptx: dict[str, bytes] = {}             # arch -> PTX
    _functions: dict[tuple[int, str], Any] = {}   # (device, kernel name) -> CUfunction
    _modules: dict[int, Any] = {}

    @classmethod
    def compile(cls, arch: str) -> bytes:
        nvrtc = _nvrtc()
        ok = nvrtc.nvrtcResult.NVRTC_SUCCESS

        def call(result, what):
            if result[0] != ok:
                raise HarnessError(f"NVRTC {what} failed ({result[0]}) compiling the batch gather kernel.")
            return result[1] if len(result) > 1 else None
        program = call(nvrtc.nvrtcCreateProgram(tp.GATHER_SOURCE.encode(), b"harness_gather.cu", 0, [], []),
                       "nvrtcCreateProgram")
        try:
            options = [o.encode() for o in tp.GATHER_OPTIONS] + [f"--gpu-architecture={arch}".encode()]
            result = nvrtc.nvrtcCompileProgram(program, len(options), options)
            if result[0] != ok:
                size = call(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
                log = b" " * size
                call(nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
                raise HarnessError(f"NVRTC could not compile the batch gather kernel for {arch}: "
                                   f"{log.decode(errors='replace').strip()}")
            size = call(nvrtc.nvrtcGetPTXSize(program), "nvrtcGetPTXSize")
            ptx = b" " * size
            call(nvrtc.nvrtcGetPTX(program, ptx), "nvrtcGetPTX")
        finally:
            nvrtc.nvrtcDestroyProgram(program)
        return ptx

    @classmethod
    def function(cls, cudart, device: int, kernel: str):
        """The kernel on `device`; the caller has made `device` current (the module loads into its context)."""
        with cls._lock:
            key = (device, kernel)
            if key not in cls._functions:
                driver = _driver()
                if device not in cls._modules:
                    major = _check(cudart.cudaDeviceGetAttribute(
                        cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute")
                    minor = _check(cudart.cudaDeviceGetAttribute(
                        cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute")
                    arch = f"compute_{major}{minor}"
                    if arch not in cls._ptx:
                        cls._ptx[arch] = cls.compile(arch)
                    image = np.frombuffer(cls._ptx[arch], dtype=np.uint8)
                    cls._modules[device] = (_check_driver(driver, driver.cuModuleLoadData(image.ctypes.data),
                                                          "cuModuleLoadData"), image)
                module = cls._modules[device][0]
                cls._functions[key] = _check_driver(driver, driver.cuModuleGetFunction(module, kernel.encode()),
                                                    "cuModuleGetFunction")
            return cls._functions[key]


class TensorRTRunner(Runner):
    """One GPU's engine. Device discipline: the CUDA runtime's current device belongs to the host thread, and every
    runner is called from several threads (the main thread creates runners and loads samples for all GPUs, SUT
    workers infer), so every entry point makes this runner's GPU current first (`_use_device`), and every
    allocation, copy, launch and free below happens under it."""

    takes_rows = True
    _convert_lock = threading.Lock()
    _converted: tuple = (None, None, None)   # (source, key, converted): shared by the GPUs' runners

    def __init__(self, engine_path: str, device: int, settings: dict[str, Any]):
        self.cudart = _cudart()
        trt = _trt()
        self.meta = meta = read_meta(engine_path)
        tp.check_engine_version(meta.get("tensorrt_version"), str(trt.__version__), engine_path)
        self.device = int(device)
        self.slots: list[_Slot] = []
        self.infer_streams: list = []
        self.samples_host: Optional[np.ndarray] = None
        self.samples_dev = 0
        self.gather = None
        self._use_device()
        logger = _logger(trt, settings)
        self._plugins = load_plugins(trt, logger, list(meta.get("plugins") or []))
        self.runtime = trt.Runtime(logger)
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise HarnessError(f"TensorRT could not load {engine_path} (built by another TensorRT version or for "
                               "another GPU?). Rebuild it: `make generate_engines ... --overwrite`.")
        self.input_name, self.output_name = meta["input_name"], meta["output_name"]
        self.chw = tuple(meta["input_shape"])
        self.dtype, self.fmt = meta["input_dtype"], meta["input_format"]
        self.scale = meta.get("input_scale")
        self.batch = int(meta["batch_size"])
        self.sample_bytes = tp.sample_nbytes(self.chw, self.dtype, self.fmt)
        c, h, w = self.chw
        self.sample_shape = (-(-c // 4), h, w, 4) if self.fmt == "chw4" else (c, h, w)
        self.start_from_device = parse_bool(settings.get("start_from_device"), False)
        try:
            if self.start_from_device:
                self.gather = tp.gather_launch(self.sample_bytes, self.batch)
                self.gather_function = GatherKernel.function(self.cudart, self.device, self.gather.kernel)
            self._make_slots(settings)
            self.graph_sizes = tp.graph_batch_sizes(self.batch) if parse_bool(settings.get("use_graphs"), False) else []
            for slot in self.slots:
                for size in self.graph_sizes:
                    self._capture(slot, size)
            self.pool: queue.Queue = queue.Queue()
            for slot in self.slots:
                self.pool.put(slot)
            self.concurrency = len(self.slots)
            self._warmup(float(settings.get("warmup_duration") or 0))
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------------------------------------
    def _use_device(self) -> None:
        """Make this runner's GPU the calling thread's current device. Called on entry to every method that makes
        CUDA calls (one cudaSetDevice per batch: a thread-local store in the runtime)."""
        _check(self.cudart.cudaSetDevice(self.device), f"cudaSetDevice({self.device})")

    def _stream(self):
        return _check(self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking), "cudaStreamCreate")

    def _pinned_view(self, nbytes: int, dtype, shape) -> tuple[int, np.ndarray]:
        ptr = _check(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})")
        buf = (ctypes.c_byte * nbytes).from_address(ptr)
        return ptr, np.frombuffer(buf, dtype=dtype).reshape(shape)

    def _make_slots(self, settings: dict[str, Any]) -> None:
        cudart = self.cudart
        n = int(self.engine.num_optimization_profiles)
        layout = tp.stream_layout(n, tp.inference_streams(settings),
                                  parse_bool(settings.get("run_infer_on_copy_streams"), False))
        shared = sorted({i for i in layout if i is not None})
        self.infer_streams = [self._stream() for _ in shared]
        in_dtype = tp.NUMPY_DTYPES[self.dtype]
        for i in range(n):
            slot = _Slot()
            self.slots.append(slot)
            slot.copy_stream = self._stream()
            slot.infer_stream = slot.copy_stream if layout[i] is None else self.infer_streams[layout[i]]
            flags = cudart.cudaEventDisableTiming
            slot.event_in = _check(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreate")
            slot.event_out = _check(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreate")
            if not self.start_from_device:     # batches are gathered on the host only then
                slot.host_in, slot.host_in_view = self._pinned_view(self.batch * self.sample_bytes, in_dtype,
                                                                    (self.batch, *self.sample_shape))
            slot.host_out, slot.host_out_view = self._pinned_view(self.batch * 4, np.int32, (self.batch,))
            slot.dev_in = _check(cudart.cudaMalloc(self.batch * self.sample_bytes), "cudaMalloc")
            slot.dev_out = _check(cudart.cudaMalloc(self.batch * 4), "cudaMalloc")
            if self.start_from_device:
                slot.host_rows, slot.host_rows_view = self._pinned_view(self.batch * 8, np.int64, (self.batch,))
                slot.dev_rows = _check(cudart.cudaMalloc(self.batch * 8), "cudaMalloc (rows)")
                slot.gather_args = np.array([0, int(slot.dev_in), int(slot.dev_rows), self.gather.words, 0],
                                            dtype=np.uint64)
                base = slot.gather_args.ctypes.data
                slot.gather_params = np.array([base + 8 * k for k in range(5)], dtype=np.uint64)
            slot.context = self.engine.create_execution_context()
            if slot.context is None:
                raise HarnessError(f"TensorRT could not create execution context {i} on GPU {self.device} (out of "
                                   "memory? lower gpu_copy_streams or batch_size).")
            slot.context.set_optimization_profile_async(i, int(slot.copy_stream))
            slot.context.set_tensor_address(self.input_name, slot.dev_in)
            slot.context.set_tensor_address(self.output_name, slot.dev_out)
            _check(cudart.cudaStreamSynchronize(slot.copy_stream), "cudaStreamSynchronize")

    def _enqueue(self, slot: _Slot, n: int) -> None:
        if not slot.context.set_input_shape(self.input_name, (n, *self.chw)):
            raise HarnessError(f"TensorRT rejected input shape {(n, *self.chw)} (engine batch {self.batch}).")
        if not slot.context.execute_async_v3(int(slot.infer_stream)):
            raise HarnessError("TensorRT execute_async_v3 failed (its log above says why).")

    def _capture(self, slot: _Slot, size: int) -> None:
        cudart = self.cudart
        self._enqueue(slot, size)              # a first run outside capture lets TensorRT finish shape set-up
        _check(cudart.cudaStreamSynchronize(slot.infer_stream), "cudaStreamSynchronize")
        _check(cudart.cudaStreamBeginCapture(slot.infer_stream,
                                             cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture")
        try:
            self._enqueue(slot, size)
        except BaseException as error:
            # End the capture (its own error, e.g. cudaErrorStreamCaptureInvalidated, is a consequence) and raise
            # what went wrong in the enqueue.
            ended = cudart.cudaStreamEndCapture(slot.infer_stream)
            if ended[0] == cudart.cudaError_t.cudaSuccess and len(ended) > 1 and ended[1] is not None:
                cudart.cudaGraphDestroy(ended[1])
            if isinstance(error, HarnessError):
                raise HarnessError(f"While capturing the CUDA graph for batch {size} on GPU {self.device}: "
                                   f"{error}") from error
            raise
        graph = _check(cudart.cudaStreamEndCapture(slot.infer_stream), "cudaStreamEndCapture")
        try:
            slot.graphs[size] = _check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            _check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def _warmup(self, seconds: float) -> None:
        """Run full batches of whatever the buffers hold for `warmup_duration` seconds (clocks up, caches warm)."""
        if seconds <= 0:
            return
        self._use_device()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for slot in self.slots:
                self._launch(slot, self.batch)
            for slot in self.slots:
                _check(self.cudart.cudaStreamSynchronize(slot.infer_stream), "cudaStreamSynchronize")

    # -- samples -------------------------------------------------------------------------------------------
    def load_samples(self, array: Optional[np.ndarray]) -> None:
        self._use_device()
        cudart = self.cudart
        if self.samples_dev:
            _check(cudart.cudaFree(self.samples_dev), "cudaFree")
            self.samples_dev = 0
        self.samples_host = None
        if array is None:
            return
        converted = self._convert(array)
        if self.start_from_device:
            self.samples_dev = _check(cudart.cudaMalloc(max(1, converted.nbytes)), f"cudaMalloc({converted.nbytes})")
            _check(cudart.cudaMemcpy(self.samples_dev, converted.ctypes.data, converted.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy (samples)")
            self.samples_count = len(converted)
            for slot in self.slots:
                slot.gather_args[0] = int(self.samples_dev)
        else:
            self.samples_host = converted

    def _convert(self, array: np.ndarray) -> np.ndarray:
        """Convert the loaded set once for all GPUs' runners (the cache holds the source, so identity is safe)."""
        key = (self.dtype, self.fmt, self.scale)
        with TensorRTRunner._convert_lock:
            source, cached_key, converted = TensorRTRunner._converted
            if source is not array or cached_key != key:
                converted = tp.convert_samples(array, self.dtype, self.fmt, self.scale)
                TensorRTRunner._converted = (array, key, converted)
            return converted

    # -- inference -----------------------------------------------------------------------------------------
    def _launch(self, slot: _Slot, n: int) -> None:
        if self.graph_sizes:
            size = tp.graph_size_for(n, self.graph_sizes)
            _check(self.cudart.cudaGraphLaunch(slot.graphs[size], slot.infer_stream), "cudaGraphLaunch")
        else:
            self._enqueue(slot, n)

    def _gather_on_device(self, slot: _Slot, rows: np.ndarray) -> None:
        """dev_in[i] = samples_dev[rows[i]] for the batch: the row indices go up in one copy, one kernel moves the
        samples (plan.GATHER_SOURCE), both on the slot's copy stream."""
        cudart, n = self.cudart, len(rows)
        if n and (int(rows.min()) < 0 or int(rows.max()) >= self.samples_count):
            raise HarnessError(f"Sample rows {int(rows.min())}..{int(rows.max())} outside the {self.samples_count} "
                               "loaded on the GPU.")
        slot.host_rows_view[:n] = rows
        _check(cudart.cudaMemcpyAsync(slot.dev_rows, slot.host_rows, n * 8,
                                      cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, slot.copy_stream),
               "cudaMemcpyAsync (rows)")
        launch = tp.gather_launch(self.sample_bytes, n)
        slot.gather_args[4] = n
        driver = _driver()
        _check_driver(driver, driver.cuLaunchKernel(self.gather_function, launch.grid, 1, 1, launch.block, 1, 1, 0,
                                                    driver.CUstream(int(slot.copy_stream)),
                                                    slot.gather_params.ctypes.data, 0), "cuLaunchKernel (gather)")

    def _run(self, slot: _Slot, rows: np.ndarray) -> np.ndarray:
        cudart = self.cudart
        kind = cudart.cudaMemcpyKind
        n, sb = len(rows), self.sample_bytes
        if self.start_from_device:
            if not self.samples_dev:
                raise HarnessError("No samples loaded on the GPU runner (LoadGen has not called LoadSamplesToRam).")
            self._gather_on_device(slot, rows)
        else:
            if self.samples_host is None:
                raise HarnessError("No samples loaded on the GPU runner (LoadGen has not called LoadSamplesToRam).")
            np.take(self.samples_host, rows, axis=0, out=slot.host_in_view[:n], mode="clip")
            _check(cudart.cudaMemcpyAsync(slot.dev_in, slot.host_in, n * sb, kind.cudaMemcpyHostToDevice,
                                          slot.copy_stream), "cudaMemcpyAsync H2D")
        separate = slot.infer_stream is not slot.copy_stream
        if separate:
            _check(cudart.cudaEventRecord(slot.event_in, slot.copy_stream), "cudaEventRecord")
            _check(cudart.cudaStreamWaitEvent(slot.infer_stream, slot.event_in, 0), "cudaStreamWaitEvent")
        self._launch(slot, n)
        if separate:
            _check(cudart.cudaEventRecord(slot.event_out, slot.infer_stream), "cudaEventRecord")
            _check(cudart.cudaStreamWaitEvent(slot.copy_stream, slot.event_out, 0), "cudaStreamWaitEvent")
        # Only the n int32 top-1 indices come back.
        _check(cudart.cudaMemcpyAsync(slot.host_out, slot.dev_out, n * 4, kind.cudaMemcpyDeviceToHost,
                                      slot.copy_stream), "cudaMemcpyAsync D2H")
        _check(cudart.cudaStreamSynchronize(slot.copy_stream), "cudaStreamSynchronize")
        return slot.host_out_view[:n].copy()

    def infer(self, rows: np.ndarray) -> np.ndarray:
        self._use_device()
        rows = np.asarray(rows, dtype=np.int64)
        slot = self.pool.get()
        try:
            if len(rows) <= self.batch:
                return self._run(slot, rows)
            return np.concatenate([self._run(slot, rows[i:i + self.batch]) for i in range(0, len(rows), self.batch)])
        finally:
            self.pool.put(slot)

    def close(self) -> None:
        cudart = getattr(self, "cudart", None)
        if cudart is None:
            return
        try:
            self._use_device()
        except HarnessError:
            return
        for slot in self.slots:
            for graph_exec in slot.graphs.values():
                cudart.cudaGraphExecDestroy(graph_exec)
            slot.graphs.clear()
            slot.context = None
            for ptr in (slot.host_in, slot.host_out, slot.host_rows):
                if ptr:
                    cudart.cudaFreeHost(ptr)
            for ptr in (slot.dev_in, slot.dev_out, slot.dev_rows):
                if ptr:
                    cudart.cudaFree(ptr)
            slot.host_in = slot.host_out = slot.host_rows = slot.dev_in = slot.dev_out = slot.dev_rows = 0
            slot.host_in_view = slot.host_out_view = slot.host_rows_view = None
            for event in (slot.event_in, slot.event_out):
                if event is not None:
                    cudart.cudaEventDestroy(event)
            if slot.copy_stream is not None:
                cudart.cudaStreamDestroy(slot.copy_stream)
        self.slots = []
        for stream in self.infer_streams:
            cudart.cudaStreamDestroy(stream)
        self.infer_streams = []
        if self.samples_dev:
            cudart.cudaFree(self.samples_dev)
            self.samples_dev = 0
        self.engine = None


# ---------------------------------------------------------------------------------------------------------------
class TensorRTBackend(Backend):
    info = INFO

    def require(self) -> None:
        _trt()
        if visible_gpu_count() < 1:
            raise HarnessError(f"No CUDA GPU is visible: the tensorrt backend needs an NVIDIA GPU (check nvidia-smi and "
                               f"CUDA_VISIBLE_DEVICES). {CONTAINER_HINT}")

    def versions(self) -> dict[str, str]:
        return {"tensorrt": str(_trt().__version__)}

    def build_inputs(self, settings: dict[str, Any], model_key: str, fp32_path: str,
                     quantized_path: str) -> dict[str, str]:
        return tp.build_inputs(settings, model_key, fp32_path, quantized_path)

    def device_ids(self, settings: dict[str, Any]) -> list[str]:
        return [str(d) for d in tp.parse_devices(settings.get("devices"), visible_gpu_count())]

    @staticmethod
    def onnx_path(engine_path: str) -> str:
        """Where the exact ONNX handed to TensorRT's parser is kept: beside the engine."""
        return engine_path + ".surgery.onnx"

    def export_onnx(self, request: BuildRequest) -> tuple[str, tp.EnginePlan, dict[str, Any]]:
        """Write the ONNX TensorRT's parser would be given (graph surgery done, contract checked) beside where the
        engine goes; needs neither TensorRT nor a GPU (`make generate_engines ... --onnx_only`)."""
        settings = request.settings
        plan = tp.make_plan(settings, request.model_key or settings.get("model"), request.input_shape,
                            request.onnx_path)
        tp.check_plugins(plan.plugins)
        model = onnx_graph.load(request.onnx_path)
        onnx_graph.check_input(model, request.onnx_path, request.input_shape)
        graph, meta = prepare_graph(model, plan, request.input_scale)
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        path = self.onnx_path(request.engine_path)
        onnx.save(graph, path + ".partial")
        os.replace(path + ".partial", path)
        return path, plan, meta

    def build(self, request: BuildRequest) -> str:
        settings = request.settings
        surgery, plan, meta = self.export_onnx(request)
        trt = _trt()
        device = self.device_ids(settings)[0]
        _check(_cudart().cudaSetDevice(int(device)), f"cudaSetDevice({device})")
        _build_engine(trt, plan, surgery, meta, request.engine_path, settings)
        meta["tensorrt_version"] = str(trt.__version__)
        meta["plan"] = plan.to_dict()
        write_meta(request.engine_path, meta)
        return request.engine_path

    def load(self, engine_path: str, device: Optional[str], settings: dict[str, Any]) -> Runner:
        if not os.path.exists(engine_path):
            raise HarnessError(f"Engine {engine_path} does not exist; run `make generate_engines` with the same "
                               "RUN_ARGS first (or `make run`, which builds then runs).")
        return TensorRTRunner(engine_path, int(device or 0), settings)


BACKEND = TensorRTBackend()
