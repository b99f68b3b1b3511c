"""The TensorRT runner against a fake CUDA runtime: a recording stand-in for `cuda.bindings.runtime` (and the
`driver` and `nvrtc` calls of the gather kernel) over real host memory, with a fake TensorRT engine that computes
each sample's top-1 from the bytes the runner put in its input buffer.

What it checks (issue 12):
- device discipline on 1, 2 and 8 fake GPUs: every allocation, copy, launch and free is made with the runner's GPU
  current on the calling thread, whichever thread calls (the main thread creates all runners and loads samples for
  all of them; worker threads infer), and every buffer a runner uses lives on its own GPU;
- start_from_device gathers a batch with one row-index copy and one kernel launch (the kernel's source, options and
  launch arguments as the fake NVRTC/driver record them; its semantics run in numpy);
- an enqueue failure during CUDA graph capture is the error raised, not the capture's own;
- build-side decisions: calibration cache headers for several TensorRT versions, the timing cache result, the
  engine's TensorRT version.
"""
import ctypes
import threading

import numpy as np
import pytest

from harness.backends import base as backend_base
from harness.artifacts import engines
from harness.backends.tensorrt import backend as trt_backend
from harness.backends.tensorrt import build as trt_build
from harness.backends.tensorrt import libs as trt_libs
from harness.backends.tensorrt import runner as trt_runner
from harness.backends.tensorrt.options import Options
from harness.backends.tensorrt import plan as tp
from harness.core.errors import HarnessError
from harness.loadgen.sut import QSL

CHW = (3, 4, 4)
SAMPLE_BYTES = 3 * 4 * 4          # int8 linear


# ---------------------------------------------------------------------------------------------------------------
# The fake CUDA runtime, driver and NVRTC
class FakeCuda:
    class cudaError_t:
        cudaSuccess = 0
        cudaErrorInvalidValue = 1
        cudaErrorInvalidDevice = 101
        cudaErrorStreamCaptureInvalidated = 901

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2
        cudaMemcpyDeviceToDevice = 3

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeThreadLocal = 1

    class cudaDeviceAttr:
        cudaDevAttrComputeCapabilityMajor = 75
        cudaDevAttrComputeCapabilityMinor = 76

    class CUresult:
        CUDA_SUCCESS = 0

    class nvrtcResult:
        NVRTC_SUCCESS = 0

    cudaStreamNonBlocking = 1
    cudaEventDisableTiming = 2

    def __init__(self, gpus: int, capture_fails: bool = False):
        self.gpus = gpus
        self.local = threading.local()
        self.lock = threading.Lock()
        self.calls = []               # (name, thread, current device, devices of the resources touched)
        self.memory = {}              # address -> (ctypes buffer, size, owner: device id or "host")
        self.handles = {}             # stream/event/graph/module/function handle -> owner device
        self.next_handle = 1000
        self.capturing = {}           # stream -> list of captured callables
        self.launches = []            # (kernel, grid, block, args) of cuLaunchKernel
        self.nvrtc_source, self.nvrtc_options = None, None
        self.capture_fails = capture_fails

    # -- bookkeeping
    def current(self):
        return getattr(self.local, "device", None)

    def _record(self, name, *resources):
        owners = []
        for r in resources:
            if r is None or r == 0:
                continue
            owner = self.owner(r)
            if owner != "host":
                owners.append(owner)
        with self.lock:
            self.calls.append((name, threading.current_thread().name, self.current(), owners))
        return owners

    def owner(self, thing):
        key = int(thing)
        if key in self.handles:
            return self.handles[key]
        for address, (_, size, owner) in self.memory.items():
            if address <= key < address + max(size, 1):
                return owner
        if key < 1 << 20:
            raise AssertionError(f"unknown CUDA handle {key}")
        return "host"                 # pageable host memory (a numpy array)

    def _handle(self):
        with self.lock:
            self.next_handle += 1
            self.handles[self.next_handle] = self.current()
            return self.next_handle

    def _alloc(self, size, owner):
        buf = ctypes.create_string_buffer(max(int(size), 1))
        address = ctypes.addressof(buf)
        with self.lock:
            self.memory[address] = (buf, int(size), owner)
        return address

    def view(self, address, size):
        return np.frombuffer((ctypes.c_uint8 * size).from_address(address), np.uint8)

    # -- runtime
    def cudaGetErrorName(self, err):
        return 0, str(err).encode()

    def cudaGetDeviceCount(self):
        return 0, self.gpus

    def cudaSetDevice(self, device):
        if not 0 <= device < self.gpus:
            return (self.cudaError_t.cudaErrorInvalidDevice,)
        self.local.device = device
        self._record("cudaSetDevice")
        return (0,)

    def cudaDeviceGetAttribute(self, attr, device):
        self._record("cudaDeviceGetAttribute")
        return 0, (9 if attr == self.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor else 0)

    def cudaMalloc(self, size):
        assert self.current() is not None, "cudaMalloc with no device set on this thread"
        address = self._alloc(size, self.current())
        self._record("cudaMalloc", address)
        return 0, address

    def cudaMallocHost(self, size):
        self._record("cudaMallocHost")
        return 0, self._alloc(size, "host")

    def cudaFree(self, address):
        self._record("cudaFree", address)
        return (0,)

    def cudaFreeHost(self, address):
        self._record("cudaFreeHost")
        return (0,)

    def cudaStreamCreateWithFlags(self, flags):
        handle = self._handle()
        self._record("cudaStreamCreate", handle)
        return 0, handle

    def cudaEventCreateWithFlags(self, flags):
        handle = self._handle()
        self._record("cudaEventCreate", handle)
        return 0, handle

    def cudaStreamDestroy(self, stream):
        self._record("cudaStreamDestroy", stream)
        return (0,)

    def cudaEventDestroy(self, event):
        self._record("cudaEventDestroy", event)
        return (0,)

    def cudaEventRecord(self, event, stream):
        self._record("cudaEventRecord", event, stream)
        return (0,)

    def cudaStreamWaitEvent(self, stream, event, flags):
        self._record("cudaStreamWaitEvent", stream, event)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        self._record("cudaStreamSynchronize", stream)
        return (0,)

    def _copy(self, dst, src, size):
        ctypes.memmove(dst, src, size)

    def cudaMemcpy(self, dst, src, size, kind):
        self._record("cudaMemcpy", dst, src)
        self._copy(dst, src, size)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, size, kind, stream):
        self._record("cudaMemcpyAsync", dst, src, stream)
        self._copy(dst, src, size)
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        self._record("cudaStreamBeginCapture", stream)
        self.capturing[int(stream)] = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        self._record("cudaStreamEndCapture", stream)
        ops = self.capturing.pop(int(stream))
        if self.capture_fails:
            return self.cudaError_t.cudaErrorStreamCaptureInvalidated, None
        graph = self._handle()
        self.handles[graph] = self.current()
        self.graph_ops = getattr(self, "graph_ops", {})
        self.graph_ops[graph] = ops
        return 0, graph

    def cudaGraphInstantiate(self, graph, flags):
        self._record("cudaGraphInstantiate", graph)
        exe = self._handle()
        self.graph_ops[exe] = self.graph_ops[graph]
        return 0, exe

    def cudaGraphDestroy(self, graph):
        self._record("cudaGraphDestroy", graph)
        return (0,)

    def cudaGraphExecDestroy(self, exe):
        self._record("cudaGraphExecDestroy", exe)
        return (0,)

    def cudaGraphLaunch(self, exe, stream):
        owners = self._record("cudaGraphLaunch", exe, stream)
        assert len(set(owners)) == 1
        for op in self.graph_ops[int(exe)]:
            op()
        return (0,)

    # -- driver (the gather kernel)
    def CUstream(self, value):
        return int(value)

    def cuModuleLoadData(self, image):
        handle = self._handle()
        self._record("cuModuleLoadData", handle)
        return 0, handle

    def cuModuleGetFunction(self, module, name):
        self._record("cuModuleGetFunction", module)
        handle = self._handle()
        self.kernel_names = getattr(self, "kernel_names", {})
        self.kernel_names[handle] = name.decode()
        return 0, handle

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        pointers = np.frombuffer((ctypes.c_uint64 * 5).from_address(params), np.uint64)
        src, dst, rows, words, count = (int(np.frombuffer((ctypes.c_uint64 * 1).from_address(int(p)), np.uint64)[0])
                                        for p in pointers)
        self._record("cuLaunchKernel", function, stream, src, dst, rows)
        name = self.kernel_names[int(function)]
        word = int(name.rsplit("_", 1)[1])
        self.launches.append((name, (gx, gy, gz), (bx, by, bz), words, count))
        launch = tp.GatherLaunch(name, word, words, gx, bx)
        src_size = self.memory[src][1]
        row_ids = np.frombuffer((ctypes.c_int64 * count).from_address(rows), np.int64).copy() if count else \
            np.zeros(0, np.int64)
        out = tp.gather_reference(self.view(src, src_size), row_ids, launch)
        self.view(dst, len(out))[:] = out
        return (0,)

    # -- nvrtc
    def nvrtcCreateProgram(self, source, name, n, headers, names):
        self.nvrtc_source = source.decode()
        return 0, "program"

    def nvrtcCompileProgram(self, program, n, options):
        self.nvrtc_options = [o.decode() for o in options]
        assert len(options) == n
        return (0,)

    PTX = b"// fake ptx\n"

    def nvrtcGetPTXSize(self, program):
        return 0, len(self.PTX)

    def nvrtcGetPTX(self, program, buffer):
        ctypes.memmove(ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value, self.PTX, len(self.PTX))
        return (0,)

    def nvrtcDestroyProgram(self, program):
        return (0,)


# ---------------------------------------------------------------------------------------------------------------
# The fake TensorRT: an engine whose "inference" reads the input bytes and answers sample value (its first byte)
class FakeContext:
    def __init__(self, cuda: FakeCuda):
        self.cuda, self.addresses, self.n, self.profile = cuda, {}, None, None

    def set_optimization_profile_async(self, index, stream):
        self.cuda._record("set_optimization_profile_async", stream)
        self.profile = index

    def set_tensor_address(self, name, address):
        self.addresses[name] = int(address)

    def set_input_shape(self, name, shape):
        self.n = shape[0]
        return True

    def execute_async_v3(self, stream):
        owners = self.cuda._record("execute_async_v3", stream, *self.addresses.values())
        assert len(set(owners)) == 1, owners
        if int(stream) in self.cuda.capturing:
            if self.cuda.capture_fails:
                return False
            n = self.n
            self.cuda.capturing[int(stream)].append(lambda: self._compute(n))
            return True
        self._compute(self.n)
        return True

    def _compute(self, n):
        inp = self.cuda.view(self.addresses["input"], n * SAMPLE_BYTES).view(np.int8).reshape(n, SAMPLE_BYTES)
        out = np.frombuffer((ctypes.c_int32 * n).from_address(self.addresses["top1"]), np.int32)
        out[:] = inp[:, 0]


class FakeEngine:
    def __init__(self, cuda, profiles):
        self.cuda, self.num_optimization_profiles = cuda, profiles

    def create_execution_context(self):
        return FakeContext(self.cuda)


class FakeTrt:
    __version__ = "10.8.0.43"

    class Logger:
        WARNING, VERBOSE = 1, 0

        def __init__(self, severity):
            pass

    def __init__(self, cuda, profiles):
        self.cuda, self.profiles = cuda, profiles
        outer = self

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, blob):
                outer.cuda._record("deserialize_cuda_engine")
                return FakeEngine(outer.cuda, outer.profiles)
        self.Runtime = Runtime

    @staticmethod
    def init_libnvinfer_plugins(logger, namespace):
        return True


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Install a fake CUDA with `gpus` GPUs and a fake TensorRT; returns a factory of (cuda, engine path)."""
    def make(gpus, profiles=2, capture_fails=False, version="10.8.0.43"):
        cuda = FakeCuda(gpus, capture_fails)
        trt = FakeTrt(cuda, profiles)
        monkeypatch.setattr(trt_libs, "load_cudart", lambda: cuda)
        monkeypatch.setattr(trt_libs, "load_driver", lambda: cuda)
        monkeypatch.setattr(trt_libs, "load_nvrtc", lambda: cuda)
        monkeypatch.setattr(trt_libs, "load_tensorrt", lambda: trt)
        for cache in (trt_runner.GatherKernel._ptx, trt_runner.GatherKernel._functions,
                      trt_runner.GatherKernel._modules):
            cache.clear()
        trt_runner.TensorRTRunner._converted = (None, None, None)
        engine = tmp_path / "e.plan"
        engine.write_bytes(b"plan")
        backend_base.write_meta(str(engine), {
            "input_name": "input", "output_name": "top1", "output_dtype": "int32", "input_dtype": "int8",
            "input_format": "linear", "input_shape": list(CHW), "input_scale": 1.0, "batch_size": 8,
            "num_profiles": profiles, "quantization": "explicit", "precision": "int8", "plugins": [],
            "tensorrt_version": version})
        return cuda, str(engine)
    return make


def samples(n=40):
    """Sample k holds the value k everywhere (int8 after quantisation with scale 1), so the fake engine answers k."""
    return np.repeat(np.arange(n, dtype=np.float32), SAMPLE_BYTES).reshape(n, *CHW)


def check_discipline(cuda: FakeCuda, runners, closed=False):
    """Every call that touched a device resource was made with that resource's GPU current, and every resource of
    runner i lives on runner i's GPU."""
    bad = [c for c in cuda.calls if c[3] and any(owner != c[2] for owner in c[3])]
    assert not bad, f"{len(bad)} CUDA calls touched another GPU's resources, e.g. {bad[:3]}"
    for runner in [] if closed else runners:
        resources = [s.dev_in for s in runner.slots] + [s.dev_out for s in runner.slots] + \
            [s.copy_stream for s in runner.slots] + list(runner.infer_streams)
        if runner.samples_dev:
            resources.append(runner.samples_dev)
        resources += [s.dev_rows for s in runner.slots if s.dev_rows]
        assert {cuda.owner(r) for r in resources} == {runner.device}, runner.device


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gpus", [1, 2, 8])
@pytest.mark.parametrize("start_from_device", [False, True])
def test_device_discipline_on_several_gpus(fake, gpus, start_from_device):
    cuda, engine = fake(gpus)
    options = Options(start_from_device=start_from_device, gpu_inference_streams=1)
    backend = trt_backend.BACKEND
    # As actions.run_scenario does: every runner is created on the main thread, then the QSL loads samples into
    # all of them from the main thread (LoadSamplesToRam), then worker threads infer.
    runners = [backend.load(engine, str(d), options) for d in range(gpus)]
    qsl = QSL(samples(), 40, runners)
    qsl.load(range(40))
    results, errors = {}, []

    def work(runner, slot_index):
        try:
            rows = np.array([(7 * slot_index + 3 * i + runner.device) % 40 for i in range(13)], np.int64)
            results[(runner.device, slot_index)] = (rows, runner.infer(rows))
        except Exception as e:       # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(r, s), name=f"worker-{r.device}-{s}")
               for r in runners for s in range(r.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == gpus * 2
    for rows, got in results.values():
        assert got.tolist() == rows.tolist()          # the right samples reached the engine and came back
    check_discipline(cuda, runners)
    mallocs = [c for c in cuda.calls if c[0] == "cudaMalloc"]
    assert {c[2] for c in mallocs} == set(range(gpus))
    if start_from_device:
        # One row copy and one kernel launch per batch of at most 8; never a copy per sample.
        launches = [c for c in cuda.calls if c[0] == "cuLaunchKernel"]
        assert len(launches) == gpus * 2 * 2                       # 13 rows = batches of 8 and 5
        copies = [c for c in cuda.calls if c[0] == "cudaMemcpyAsync"]
        assert len(copies) == gpus * 2 * 2 * 2                     # per batch: the row indices up, the top-1 down
        assert {c[2] for c in cuda.calls if c[0] == "cuModuleLoadData"} == set(range(gpus))   # a module per GPU
    for runner in runners:
        runner.close()
    check_discipline(cuda, runners, closed=True)
    frees = [c for c in cuda.calls if c[0] in ("cudaFree", "cudaStreamDestroy", "cudaEventDestroy")]
    assert frees and all(c[3] == [c[2]] for c in frees)


def test_graphs_and_shared_inference_streams(fake):
    cuda, engine = fake(2, profiles=3)
    runners = [trt_backend.BACKEND.load(engine, str(d), Options(use_graphs=True, gpu_inference_streams=2,
                                                                 start_from_device=True)) for d in range(2)]
    qsl = QSL(samples(), 40, runners)
    qsl.load(range(40))
    for runner in runners:
        assert runner.graph_sizes == list(range(1, 9)) and len(runner.infer_streams) == 2
        for n in (1, 5, 8, 11):
            rows = np.arange(n, dtype=np.int64)[::-1] + runner.device
            assert runner.infer(rows).tolist() == rows.tolist()
    assert [c for c in cuda.calls if c[0] == "cudaGraphLaunch"]
    check_discipline(cuda, runners)


def test_loaded_samples_are_on_each_gpu_and_unload_frees_them(fake):
    cuda, engine = fake(8)
    runners = [trt_backend.BACKEND.load(engine, str(d), Options(start_from_device=True)) for d in range(8)]
    qsl = QSL(samples(), 40, runners)
    qsl.load(range(40))
    assert [cuda.owner(r.samples_dev) for r in runners] == list(range(8))
    qsl.unload(range(40))
    frees = [c for c in cuda.calls if c[0] == "cudaFree"]
    assert len(frees) == 8 and all(c[3] == [c[2]] for c in frees)
    with pytest.raises(HarnessError, match="No samples loaded"):
        runners[3].infer(np.array([1]))


def test_an_enqueue_error_during_capture_is_the_error_raised(fake):
    cuda, engine = fake(1, capture_fails=True)
    with pytest.raises(HarnessError) as info:
        trt_backend.BACKEND.load(engine, "0", Options(use_graphs=True))
    assert "execute_async_v3 failed" in str(info.value) and "capturing the CUDA graph for batch 1" in str(info.value)
    assert "cudaStreamEndCapture" not in str(info.value)
    assert [c for c in cuda.calls if c[0] == "cudaStreamEndCapture"]      # the capture was still ended


def test_engine_of_another_tensorrt_version_is_refused(fake):
    _, engine = fake(1, version="10.7.0.23")
    with pytest.raises(HarnessError, match="built with TensorRT 10.7.0.23, but TensorRT 10.8.0.43"):
        trt_backend.BACKEND.load(engine, "0", Options())


# ---------------------------------------------------------------------------------------------------------------
# The gather kernel: source, compile options, launch arguments, semantics
def test_gather_kernel_source_compile_and_launch(fake):
    cuda, engine = fake(2)
    runners = [trt_backend.BACKEND.load(engine, str(d), Options(start_from_device=True)) for d in range(2)]
    assert cuda.nvrtc_source == tp.GATHER_SOURCE
    assert cuda.nvrtc_options == ["--std=c++17", "--gpu-architecture=compute_90"]
    for size in (16, 4, 1):
        assert f'extern "C" __global__ void harness_gather_{size}(' in tp.GATHER_SOURCE
    qsl = QSL(samples(), 40, runners)
    qsl.load(range(40))
    runners[1].infer(np.array([5, 9, 2], np.int64))
    name, grid, block, words, count = cuda.launches[-1]
    launch = tp.gather_launch(SAMPLE_BYTES, 3)
    assert (name, grid, block, words, count) == (launch.kernel, (launch.grid, 1, 1), (launch.block, 1, 1),
                                                 launch.words, 3)
    assert name == "harness_gather_16" and words == SAMPLE_BYTES // 16


@pytest.mark.parametrize("sample_bytes", [150528, 200704, 602112, 12, 7])
def test_gather_launch_shape(sample_bytes):
    launch = tp.gather_launch(sample_bytes, 2048)
    assert sample_bytes % launch.word_bytes == 0 and launch.words * launch.word_bytes == sample_bytes
    assert launch.word_bytes == (16 if sample_bytes % 16 == 0 else 4 if sample_bytes % 4 == 0 else 1)
    assert 1 <= launch.grid <= tp.GATHER_MAX_BLOCKS and launch.block == tp.GATHER_THREADS
    assert tp.gather_launch(sample_bytes, 0).grid == 1


@pytest.mark.parametrize("sample_bytes,stride", [(48, 7), (48, 256), (12, 5), (7, 3), (150528 // 64, 1000)])
def test_gather_semantics_match_numpy_take(sample_bytes, stride):
    rng = np.random.default_rng(sample_bytes)
    src = rng.integers(0, 256, (50, sample_bytes), dtype=np.uint8)
    rows = rng.integers(0, 50, 33).astype(np.int64)
    rows[:5] = [49, 0, 0, 17, 49]                          # repeats and both ends
    launch = tp.gather_launch(sample_bytes, len(rows))
    out = tp.gather_reference(src.reshape(-1), rows, launch, stride=stride)
    np.testing.assert_array_equal(out.reshape(len(rows), sample_bytes), np.take(src, rows, axis=0))


# ---------------------------------------------------------------------------------------------------------------
# Build-side decisions
@pytest.mark.parametrize("version,number", [("10.8.0.43", 100800), ("10.13.3.9", 101303), ("10.0.1.6", 100001),
                                            ("8.6.1.6", 8601), ("9.3.0", 9300), ("10.8", 100800)])
def test_calibration_cache_header_per_tensorrt_version(version, number):
    assert tp.calibration_cache_version(version) == number
    assert tp.calibration_cache_header(version) == f"TRT-{number}-EntropyCalibration2"


def test_calibration_cache_rewritten_or_refused_for_the_installed_tensorrt(tmp_path):
    scales = {"input_tensor:0": 1 / 128, "conv1": 0.5}
    old = tp.format_calibration_cache("TRT-8601-EntropyCalibration2", scales)
    text, note = tp.cache_for_tensorrt(old, "10.8.0.43", "c.cache")
    assert text.splitlines()[0] == "TRT-100800-EntropyCalibration2" and "rewritten" in note
    assert tp.parse_calibration_cache(text)[1] == tp.parse_calibration_cache(old)[1]
    assert tp.cache_for_tensorrt(text, "10.8.0.43") == (text, None)                 # already right: unchanged
    newer, _ = tp.cache_for_tensorrt(text, "10.13.3.9")
    assert newer.startswith("TRT-101303-EntropyCalibration2\n")
    with pytest.raises(HarnessError, match="MinMaxCalibration.*refuses"):
        tp.cache_for_tensorrt(tp.format_calibration_cache("TRT-100800-MinMaxCalibration", scales), "10.8.0")
    with pytest.raises(HarnessError, match="not a TensorRT calibration cache"):
        tp.cache_for_tensorrt("hello\n", "10.8.0")
    # The builder's calibrator gets the rewritten bytes; the source file (a build input) is left as it was.
    path = tmp_path / "entropy.cache"
    path.write_text(old)
    assert trt_build.calibration_cache_bytes(str(path), "10.8.0.43").startswith(b"TRT-100800-")
    assert path.read_text() == old
    # make calibrate without TensorRT writes the container's TensorRT 10 header, not 8601.
    from harness.artifacts import calibration
    assert calibration.DEFAULT_TRT_VERSION == str(tp.calibration_cache_version(tp.TARGET_TENSORRT)) == "100800"


def test_engine_versions():
    tp.check_engine_version("10.8.0.43", "10.8.0.43", "e.plan")
    for built, installed in (("10.8.0.43", "10.9.0.34"), ("8.6.1.6", "10.8.0.43")):
        with pytest.raises(HarnessError, match="Rebuild it"):
            tp.check_engine_version(built, installed, "e.plan")
    with pytest.raises(HarnessError, match="does not say which TensorRT"):
        tp.check_engine_version(None, "10.8.0.43", "e.plan")


class FakeTimingCache:
    def __init__(self, blob):
        self.blob = blob

    def serialize(self):
        return self.blob or b"fresh-timings"


class FakeConfig:
    """IBuilderConfig's timing-cache calls: set_timing_cache returns False for another TensorRT's/GPU's cache."""

    def __init__(self, damaged=False):
        self.set, self.damaged = [], damaged

    def create_timing_cache(self, blob):
        return None if self.damaged and blob else FakeTimingCache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False
        self.set.append(cache.blob)
        return cache.blob in (b"", b"ours")

    def get_timing_cache(self):
        return FakeTimingCache(self.set[-1]) if self.set else None


def test_timing_cache_result_is_checked(tmp_path):
    path = tmp_path / "timing.cache"
    config = FakeConfig()
    assert trt_build.apply_timing_cache(config, str(path)) is None and config.set == [b""]
    assert trt_build.save_timing_cache(config, str(path)) is None and path.read_bytes() == b"fresh-timings"
    path.write_bytes(b"ours")
    config = FakeConfig()
    assert trt_build.apply_timing_cache(config, str(path)) is None and config.set == [b"ours"]
    path.write_bytes(b"another GPU's")
    config = FakeConfig()
    note = trt_build.apply_timing_cache(config, str(path))
    assert "not usable" in note and config.set == [b"another GPU's", b""]
    config = FakeConfig(damaged=True)
    assert "not usable" in trt_build.apply_timing_cache(config, str(path)) and config.set == [b""]
    assert "no timing cache" in trt_build.save_timing_cache(FakeConfig(), str(tmp_path / "other.cache"))
    assert not (tmp_path / "other.cache").exists()
