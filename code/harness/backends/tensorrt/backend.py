"""TensorRT on NVIDIA GPUs (TensorRT 10 Python API, cuda-python for memory, streams and CUDA graphs).

Every decision is made in plain code (harness/backends/tensorrt/plan.py, harness/onnx_graph.py) that the CPU tests cover; this
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

from ... import onnx_graph
from . import plan as tp
from ...engines import read_meta, write_meta
from ...errors import HarnessError
from ..base import Backend, BuildRequest, Runner

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
    severity = trt.Logger.VERBOSE if tp.as_bool(settings.get("verbose")) else trt.Logger.WARNING
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
    return graph, meta


def _cache_calibrator(trt, cache_path: str, batch_size: int):
    """An entropy calibrator that only replays a calibration cache (the ranges `make calibrate` computed)."""
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise HarnessError(f"TensorRT {trt.__version__} has no implicit INT8 calibrator API; build from the calibrated "
                           "Q/DQ model instead (drop --implicit_int8).")

    class CacheCalibrator(base):
        def __init__(self):
            base.__init__(self)
            with open(cache_path, "rb") as f:
                self.cache = f.read()

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
        config.int8_calibrator = _cache_calibrator(trt, plan.calibration_cache, plan.batch_size)
        config.set_calibration_profile(profiles[0])

    timing_blob = b""
    if plan.timing_cache and os.path.exists(plan.timing_cache):
        with open(plan.timing_cache, "rb") as f:
            timing_blob = f.read()
    if plan.timing_cache:
        cache = config.create_timing_cache(timing_blob)
        config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise HarnessError(f"TensorRT failed to build {engine_path} (its log above says why).")
    tmp = engine_path + ".partial"
    with open(tmp, "wb") as f:
        f.write(serialized)
    os.replace(tmp, engine_path)
    if plan.timing_cache:
        os.makedirs(os.path.dirname(plan.timing_cache), exist_ok=True)
        with open(plan.timing_cache + ".partial", "wb") as f:
            f.write(config.get_timing_cache().serialize())
        os.replace(plan.timing_cache + ".partial", plan.timing_cache)


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


class TensorRTRunner(Runner):
    takes_rows = True
    _convert_lock = threading.Lock()
    _converted: tuple = (None, None, None)   # (source, key, converted): shared by the GPUs' runners

    def __init__(self, engine_path: str, device: int, settings: dict[str, Any]):
        self.cudart = _cudart()
        trt = _trt()
        self.meta = meta = read_meta(engine_path)
        self.device = int(device)
        self._local = threading.local()
        self.slots: list[_Slot] = []
        self.infer_streams: list = []
        self.samples_host: Optional[np.ndarray] = None
        self.samples_dev = 0
        self._ensure_device()
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
        self.start_from_device = tp.as_bool(settings.get("start_from_device"))
        try:
            self._make_slots(settings)
            self.graph_sizes = tp.graph_batch_sizes(self.batch) if tp.as_bool(settings.get("use_graphs")) else []
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
    def _ensure_device(self) -> None:
        """The CUDA runtime's current device is per host thread: set it once on every thread that calls in."""
        if not getattr(self._local, "ready", False):
            _check(self.cudart.cudaSetDevice(self.device), f"cudaSetDevice({self.device})")
            self._local.ready = True

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
                                  tp.as_bool(settings.get("run_infer_on_copy_streams")))
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
            slot.host_in, slot.host_in_view = self._pinned_view(self.batch * self.sample_bytes, in_dtype,
                                                                (self.batch, *self.sample_shape))
            slot.host_out, slot.host_out_view = self._pinned_view(self.batch * 4, np.int32, (self.batch,))
            slot.dev_in = _check(cudart.cudaMalloc(self.batch * self.sample_bytes), "cudaMalloc")
            slot.dev_out = _check(cudart.cudaMalloc(self.batch * 4), "cudaMalloc")
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
        finally:
            graph = _check(cudart.cudaStreamEndCapture(slot.infer_stream), "cudaStreamEndCapture")
        slot.graphs[size] = _check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        _check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def _warmup(self, seconds: float) -> None:
        """Run full batches of whatever the buffers hold for `warmup_duration` seconds (clocks up, caches warm)."""
        if seconds <= 0:
            return
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for slot in self.slots:
                self._launch(slot, self.batch)
            for slot in self.slots:
                _check(self.cudart.cudaStreamSynchronize(slot.infer_stream), "cudaStreamSynchronize")

    # -- samples -------------------------------------------------------------------------------------------
    def load_samples(self, array: Optional[np.ndarray]) -> None:
        self._ensure_device()
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

    def _run(self, slot: _Slot, rows: np.ndarray) -> np.ndarray:
        cudart = self.cudart
        kind = cudart.cudaMemcpyKind
        n, sb = len(rows), self.sample_bytes
        if self.samples_dev:
            for src, dst, count in tp.contiguous_runs(rows):
                _check(cudart.cudaMemcpyAsync(slot.dev_in + dst * sb, self.samples_dev + src * sb, count * sb,
                                              kind.cudaMemcpyDeviceToDevice, slot.copy_stream), "cudaMemcpyAsync D2D")
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
        self._ensure_device()
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
            self._ensure_device()
        except HarnessError:
            return
        for slot in self.slots:
            for graph_exec in slot.graphs.values():
                cudart.cudaGraphExecDestroy(graph_exec)
            slot.graphs.clear()
            slot.context = None
            for ptr in (slot.host_in, slot.host_out):
                if ptr:
                    cudart.cudaFreeHost(ptr)
            for ptr in (slot.dev_in, slot.dev_out):
                if ptr:
                    cudart.cudaFree(ptr)
            slot.host_in = slot.host_out = slot.dev_in = slot.dev_out = 0
            slot.host_in_view = slot.host_out_view = None
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
    name = "tensorrt"
    device_kind = "gpu"
    engine_suffix = ".plan"

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

    def build(self, request: BuildRequest) -> str:
        from resnet50.models import get_model
        settings = request.settings
        spec = get_model(settings.get("model"))
        plan = tp.make_plan(settings, spec.key, request.input_shape, request.onnx_path)
        tp.check_plugins(plan.plugins)
        model = onnx_graph.load(request.onnx_path)
        onnx_graph.check_input(model, request.onnx_path, request.input_shape)
        graph, meta = prepare_graph(model, plan, spec.input_scale)
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        surgery = request.engine_path + ".surgery.onnx"
        onnx.save(graph, surgery)
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
