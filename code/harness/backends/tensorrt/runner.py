"""The TensorRT runner of one GPU: execution contexts, CUDA streams, pinned buffers, CUDA graphs, the gather kernel.

What it does is decided in plan.py (its docstring's Run part); this module carries it out with TensorRT's runtime
and cuda-python (through libs.py). The engine's inputs and outputs come from its `<engine>.meta.json`; the run's
options (use_graphs, start_from_device, streams, warm-up, verbose) from the backend's typed options.
"""
from __future__ import annotations

import ctypes
import queue
import threading
import time
from typing import Any, Optional

import numpy as np

from harness.backends.tensorrt import libs
from harness.backends.tensorrt import plan as tp
from harness.backends.base import Runner, read_meta
from harness.core.errors import HarnessError
from harness.core.options import parse_bool
from harness.backends.tensorrt.options import Options


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



class GatherKernel:
    """The batch gather kernel (plan.GATHER_SOURCE): compiled once per process and GPU architecture with NVRTC,
    loaded once per GPU (with that GPU current), launched once per batch."""

    _lock = threading.Lock()
    _ptx: dict[str, bytes] = {}             # arch -> PTX
    _functions: dict[tuple[int, str], Any] = {}   # (device, kernel name) -> CUfunction
    _modules: dict[int, Any] = {}

    @classmethod
    def compile(cls, arch: str) -> bytes:
        nvrtc = libs.load_nvrtc()
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
                driver = libs.load_driver()
                if device not in cls._modules:
                    major = libs.check(cudart.cudaDeviceGetAttribute(
                        cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute")
                    minor = libs.check(cudart.cudaDeviceGetAttribute(
                        cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute")
                    arch = f"compute_{major}{minor}"
                    if arch not in cls._ptx:
                        cls._ptx[arch] = cls.compile(arch)
                    image = np.frombuffer(cls._ptx[arch], dtype=np.uint8)
                    cls._modules[device] = (libs.check_driver(driver, driver.cuModuleLoadData(image.ctypes.data),
                                                          "cuModuleLoadData"), image)
                module = cls._modules[device][0]
                cls._functions[key] = libs.check_driver(driver, driver.cuModuleGetFunction(module, kernel.encode()),
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

    def __init__(self, engine_path: str, device: int, options: Options):
        self.cudart = libs.load_cudart()
        trt = libs.load_tensorrt()
        self.meta = meta = read_meta(engine_path)
        tp.check_engine_version(meta.get("tensorrt_version"), str(trt.__version__), engine_path)
        self.device = int(device)
        self.slots: list[_Slot] = []
        self.infer_streams: list = []
        self.samples_host: Optional[np.ndarray] = None
        self.samples_dev = 0
        self.gather = None
        self._use_device()
        logger = libs.make_logger(trt, bool(options.verbose))
        self._plugins = libs.load_plugins(trt, logger, list(meta.get("plugins") or []))
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
        self.start_from_device = parse_bool(options.start_from_device, False)
        try:
            if self.start_from_device:
                self.gather = tp.gather_launch(self.sample_bytes, self.batch)
                self.gather_function = GatherKernel.function(self.cudart, self.device, self.gather.kernel)
            self._make_slots(options)
            self.graph_sizes = tp.graph_batch_sizes(self.batch) if parse_bool(options.use_graphs, False) else []
            for slot in self.slots:
                for size in self.graph_sizes:
                    self._capture(slot, size)
            self.pool: queue.Queue = queue.Queue()
            for slot in self.slots:
                self.pool.put(slot)
            self.concurrency = len(self.slots)
            self._warmup(float(options.warmup_duration or 0))
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------------------------------------
    def _use_device(self) -> None:
        """Make this runner's GPU the calling thread's current device. Called on entry to every method that makes
        CUDA calls (one cudaSetDevice per batch: a thread-local store in the runtime)."""
        libs.check(self.cudart.cudaSetDevice(self.device), f"cudaSetDevice({self.device})")

    def _stream(self):
        return libs.check(self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking), "cudaStreamCreate")

    def _pinned_view(self, nbytes: int, dtype, shape) -> tuple[int, np.ndarray]:
        ptr = libs.check(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})")
        buf = (ctypes.c_byte * nbytes).from_address(ptr)
        return ptr, np.frombuffer(buf, dtype=dtype).reshape(shape)

    def _make_slots(self, options: Options) -> None:
        cudart = self.cudart
        n = int(self.engine.num_optimization_profiles)
        layout = tp.stream_layout(n, tp.inference_streams(options),
                                  parse_bool(options.run_infer_on_copy_streams, False))
        shared = sorted({i for i in layout if i is not None})
        self.infer_streams = [self._stream() for _ in shared]
        in_dtype = tp.NUMPY_DTYPES[self.dtype]
        for i in range(n):
            slot = _Slot()
            self.slots.append(slot)
            slot.copy_stream = self._stream()
            slot.infer_stream = slot.copy_stream if layout[i] is None else self.infer_streams[layout[i]]
            flags = cudart.cudaEventDisableTiming
            slot.event_in = libs.check(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreate")
            slot.event_out = libs.check(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreate")
            if not self.start_from_device:     # batches are gathered on the host only then
                slot.host_in, slot.host_in_view = self._pinned_view(self.batch * self.sample_bytes, in_dtype,
                                                                    (self.batch, *self.sample_shape))
            slot.host_out, slot.host_out_view = self._pinned_view(self.batch * 4, np.int32, (self.batch,))
            slot.dev_in = libs.check(cudart.cudaMalloc(self.batch * self.sample_bytes), "cudaMalloc")
            slot.dev_out = libs.check(cudart.cudaMalloc(self.batch * 4), "cudaMalloc")
            if self.start_from_device:
                slot.host_rows, slot.host_rows_view = self._pinned_view(self.batch * 8, np.int64, (self.batch,))
                slot.dev_rows = libs.check(cudart.cudaMalloc(self.batch * 8), "cudaMalloc (rows)")
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
            libs.check(cudart.cudaStreamSynchronize(slot.copy_stream), "cudaStreamSynchronize")

    def _enqueue(self, slot: _Slot, n: int) -> None:
        if not slot.context.set_input_shape(self.input_name, (n, *self.chw)):
            raise HarnessError(f"TensorRT rejected input shape {(n, *self.chw)} (engine batch {self.batch}).")
        if not slot.context.execute_async_v3(int(slot.infer_stream)):
            raise HarnessError("TensorRT execute_async_v3 failed (its log above says why).")

    def _capture(self, slot: _Slot, size: int) -> None:
        cudart = self.cudart
        self._enqueue(slot, size)              # a first run outside capture lets TensorRT finish shape set-up
        libs.check(cudart.cudaStreamSynchronize(slot.infer_stream), "cudaStreamSynchronize")
        libs.check(cudart.cudaStreamBeginCapture(slot.infer_stream,
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
        graph = libs.check(cudart.cudaStreamEndCapture(slot.infer_stream), "cudaStreamEndCapture")
        try:
            slot.graphs[size] = libs.check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            libs.check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")

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
                libs.check(self.cudart.cudaStreamSynchronize(slot.infer_stream), "cudaStreamSynchronize")

    # -- samples -------------------------------------------------------------------------------------------
    def load_samples(self, array: Optional[np.ndarray]) -> None:
        self._use_device()
        cudart = self.cudart
        if self.samples_dev:
            libs.check(cudart.cudaFree(self.samples_dev), "cudaFree")
            self.samples_dev = 0
        self.samples_host = None
        if array is None:
            return
        converted = self._convert(array)
        if self.start_from_device:
            self.samples_dev = libs.check(cudart.cudaMalloc(max(1, converted.nbytes)),
                                          f"cudaMalloc({converted.nbytes})")
            libs.check(cudart.cudaMemcpy(self.samples_dev, converted.ctypes.data, converted.nbytes,
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
            libs.check(self.cudart.cudaGraphLaunch(slot.graphs[size], slot.infer_stream), "cudaGraphLaunch")
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
        libs.check(cudart.cudaMemcpyAsync(slot.dev_rows, slot.host_rows, n * 8,
                                      cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, slot.copy_stream),
               "cudaMemcpyAsync (rows)")
        launch = tp.gather_launch(self.sample_bytes, n)
        slot.gather_args[4] = n
        driver = libs.load_driver()
        libs.check_driver(driver, driver.cuLaunchKernel(self.gather_function, launch.grid, 1, 1, launch.block, 1, 1, 0,
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
            libs.check(cudart.cudaMemcpyAsync(slot.dev_in, slot.host_in, n * sb, kind.cudaMemcpyHostToDevice,
                                          slot.copy_stream), "cudaMemcpyAsync H2D")
        separate = slot.infer_stream is not slot.copy_stream
        if separate:
            libs.check(cudart.cudaEventRecord(slot.event_in, slot.copy_stream), "cudaEventRecord")
            libs.check(cudart.cudaStreamWaitEvent(slot.infer_stream, slot.event_in, 0), "cudaStreamWaitEvent")
        self._launch(slot, n)
        if separate:
            libs.check(cudart.cudaEventRecord(slot.event_out, slot.infer_stream), "cudaEventRecord")
            libs.check(cudart.cudaStreamWaitEvent(slot.copy_stream, slot.event_out, 0), "cudaStreamWaitEvent")
        # Only the n int32 top-1 indices come back.
        libs.check(cudart.cudaMemcpyAsync(slot.host_out, slot.dev_out, n * 4, kind.cudaMemcpyDeviceToHost,
                                      slot.copy_stream), "cudaMemcpyAsync D2H")
        libs.check(cudart.cudaStreamSynchronize(slot.copy_stream), "cudaStreamSynchronize")
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
