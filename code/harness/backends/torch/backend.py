"""PyTorch on CUDA GPUs (`--backend=torch`): the GPU backend this workplace can measure, and what users without
TensorRT run.

- The engine artifact is the registry's ONNX after graph surgery (top-1 output, dynamic batch), checked at build time
  by importing it (code/harness/backends/torch/onnx_torch.py), plus a JSON of the build settings beside it.
- At load: weights in `precision` (fp16 / bf16 / fp32), channels-last, optionally `torch.compile` (default mode;
  config `torch_compile`), and with `use_graphs` one CUDA graph per batch size (partial batches are padded up).
- `start_from_device`: the QSL's loaded samples are uploaded once to the GPU in the run's dtype and batches are
  gathered there by row number; otherwise each batch goes host -> pinned buffer -> GPU. Only the top-1 indices
  come back.
- One runner per GPU with `gpu_inference_streams` slots, each its own CUDA stream, graphs and buffers, sharing one
  copy of the weights and of the samples on that GPU; the SUT runs one worker thread per slot.
"""
from __future__ import annotations

import json
import os
import queue
import threading
from typing import Any, Optional

import numpy as np

from harness.graph import onnx_graph
from harness.core.errors import HarnessError
from harness.core.options import parse_bool, parse_devices
from harness.core.storage import read_json
from harness.backends.torch.options import INFO, Options
from harness.backends.base import Backend, BuildRequest, Runner, damaged_engine
from harness.backends.torch.onnx_torch import OnnxModule

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _torch():
    try:
        import torch
    except ImportError:
        raise HarnessError("The torch backend needs PyTorch with CUDA (`pip install torch` with a CUDA build).") from None
    return torch


class DeviceUploads:
    """The QSL's loaded samples on each GPU, uploaded once and shared by that GPU's runners."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data: dict[tuple, tuple] = {}   # (device, dtype) -> (the host array it came from, device tensor)

    def get(self, array: np.ndarray, device, dtype, channels_last: bool):
        torch = _torch()
        key = (str(device), dtype)
        with self._lock:
            held = self._data.get(key)
            if held is None or held[0] is not array:   # identity, not id(): a new set may reuse a freed address
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                host = torch.from_numpy(np.array(array, copy=True))
                self._data[key] = (array, host.to(device).to(dtype).contiguous(memory_format=fmt))
                if torch.device(device).type == "cuda":
                    torch.cuda.synchronize(device)
            return self._data[key][1]


class StreamSlot:
    """One CUDA stream with its own static buffers and CUDA graphs; one SUT worker at a time uses it."""

    def __init__(self, module, device: str, options: Options, input_shape: tuple, uploads: DeviceUploads):
        torch = _torch()
        self.uploads = uploads
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = getattr(torch, _DTYPES[options.precision])
        self.channels_last = parse_bool(options.channels_last, True)
        self.use_graphs = parse_bool(options.use_graphs, False)
        self.takes_rows = parse_bool(options.start_from_device, False)
        self.batch_size = int(options.batch_size or 1)
        # Batch sizes prepared (and captured as CUDA graphs): the configured one and its halves down to 1/8, so a
        # partial Server batch runs at the next size up instead of a full batch.
        sizes = options.graph_batch_sizes or [max(1, self.batch_size >> k) for k in range(4)]
        self.sizes = sorted({int(x) for x in sizes if int(x) <= self.batch_size} | {self.batch_size})
        self.module = module
        self.cuda = self.device.type == "cuda"
        self.use_graphs = self.use_graphs and self.cuda
        self.stream = torch.cuda.Stream(device=self.device) if self.cuda else None
        self.graphs: dict[int, tuple] = {}
        self.device_data = None
        c, h, w = input_shape
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        with self._on_stream():
            self.static_in = torch.zeros((self.batch_size, c, h, w), dtype=self.dtype, device=self.device)
            self.static_in = self.static_in.contiguous(memory_format=fmt)
            self.rows = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
        pin = self.cuda  # page-locked host buffers make the copies asynchronous
        self.host_rows = torch.empty(self.batch_size, dtype=torch.int64, pin_memory=pin)
        self.host_out = torch.empty(self.batch_size, dtype=torch.int64, pin_memory=pin)
        if not self.takes_rows:  # host batches: a pinned buffer and its fp32 landing place on the device
            self.host_in = torch.empty((self.batch_size, c, h, w), dtype=torch.float32, pin_memory=pin)
            self.staging = torch.empty((self.batch_size, c, h, w), dtype=torch.float32, device=self.device)
        self._warm_up()

    def _on_stream(self):
        import contextlib
        return self.torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext()

    def _sync(self):
        if self.cuda:
            self.stream.synchronize()

    def _forward(self, size: int):
        return self.module(self.static_in[:size])

    def _size_for(self, n: int) -> int:
        """The smallest prepared batch size that holds n samples (a partial batch is padded up to it)."""
        return next(s for s in self.sizes if s >= n)

    def _warm_up(self):
        torch = self.torch
        eager = getattr(self.module, "_orig_mod", self.module)
        with torch.inference_mode(), self._on_stream():
            for size in self.sizes:
                eager(self.static_in[:size])  # fills the importer's host-shape cache outside torch.compile
                for _ in range(2):
                    self._forward(size)
                if self.use_graphs:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=self.stream):
                        out = self._forward(size)
                    self.graphs[size] = (graph, out)
        self._sync()

    def load_samples(self, array: Optional[np.ndarray]) -> None:
        if self.takes_rows:
            self.device_data = None if array is None else self.uploads.get(array, self.device, self.dtype,
                                                                           self.channels_last)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        n = len(batch)
        if n > self.batch_size:
            return np.concatenate([self.infer(batch[i:i + self.batch_size]) for i in range(0, n, self.batch_size)])
        with torch.inference_mode(), self._on_stream():
            if self.takes_rows:
                self.host_rows[:n].copy_(torch.from_numpy(np.asarray(batch, dtype=np.int64)))
                self.rows[:n].copy_(self.host_rows[:n], non_blocking=True)
                torch.index_select(self.device_data, 0, self.rows[:n], out=self.static_in[:n])
            else:
                self.host_in[:n].copy_(torch.from_numpy(batch))
                self.staging[:n].copy_(self.host_in[:n], non_blocking=True)
                self.static_in[:n].copy_(self.staging[:n])
            size = self._size_for(n)
            if self.use_graphs:
                graph, out = self.graphs[size]
                graph.replay()
            else:
                out = self._forward(size)
            self.host_out[:n].copy_(out[:n], non_blocking=True)
        self._sync()
        return self.host_out[:n].numpy().copy()


class TorchRunner(Runner):
    """The runner of one GPU: `gpu_inference_streams` slots, so that many SUT workers drive it at once."""

    def __init__(self, slots: list):
        self.slots = slots
        self.concurrency = len(slots)
        self.takes_rows = slots[0].takes_rows
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for slot in slots:
            self._free.put(slot)

    def load_samples(self, array: Optional[np.ndarray]) -> None:
        for slot in self.slots:
            slot.load_samples(array)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        slot = self._free.get()
        try:
            return slot.infer(batch)
        finally:
            self._free.put(slot)


class TorchBackend(Backend):
    info = INFO
    options_type = Options

    def __init__(self):
        self._modules: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self.uploads = DeviceUploads()

    def build(self, request: BuildRequest) -> str:
        if request.precision not in _DTYPES:
            raise HarnessError(f"The torch backend runs {', '.join(_DTYPES)}, not {request.precision}.")
        model = onnx_graph.load(request.onnx_path)
        onnx_graph.check_input(model, request.onnx_path, request.input_shape)
        top1 = onnx_graph.top1_graph(model)
        OnnxModule(top1)  # fails here, at build time, on an op the importer does not know
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        import onnx
        tmp = request.engine_path + ".partial"
        onnx.save(top1, tmp)
        os.replace(tmp, request.engine_path)
        with open(request.engine_path + ".settings.json", "w") as f:
            json.dump({"precision": request.precision, "batch_sizes": [request.batch_size],
                       "input_shape": list(request.input_shape)}, f)
        return request.engine_path

    def _module(self, engine_path: str, device: str, options: Options):
        torch = _torch()
        key = (engine_path, device, options.precision, parse_bool(options.torch_compile, False))
        with self._lock:
            if key not in self._modules:
                import onnx
                dtype = getattr(torch, _DTYPES[options.precision])
                try:
                    module = OnnxModule(onnx.load(engine_path), dtype=dtype)
                except MemoryError:
                    raise
                except Exception as e:      # protobuf's DecodeError, an unsupported or broken graph
                    raise damaged_engine(engine_path, "torch", "an ONNX model of the top-1 graph", e) from None
                module = module.eval().to(device)
                if parse_bool(options.channels_last, True):
                    module = module.to(memory_format=torch.channels_last)
                if parse_bool(options.torch_compile, False):
                    module = torch.compile(module)
                self._modules[key] = module
            return self._modules[key]

    def load(self, engine_path: str, device: Optional[str], options: Options) -> Runner:
        torch = _torch()
        cpu = str(device).startswith("cpu")   # --devices=cpu: the same code on the CPU, for tests without a GPU
        if not cpu and not torch.cuda.is_available():
            raise HarnessError("--backend=torch needs a CUDA GPU, and PyTorch sees none here "
                               f"(torch {torch.__version__}); use --backend=onnxruntime on a CPU "
                               "(or --devices=cpu to try the torch backend on the CPU).")
        if not os.path.exists(engine_path):
            raise HarnessError(f"Engine {engine_path} does not exist; run `make generate_engines` with the same "
                               "RUN_ARGS first (or `make run`).")
        built = read_json(engine_path + ".settings.json")
        input_shape = tuple(built["input_shape"])
        dev = "cpu" if cpu else f"cuda:{int(device or 0)}"
        module = self._module(engine_path, dev, options)
        streams = max(1, int(options.gpu_inference_streams or 1))
        return TorchRunner([StreamSlot(module, dev, options, input_shape, self.uploads) for _ in range(streams)])

    def device_ids(self, options: Options) -> list[str]:
        """`devices` (comma list, or `cpu`), default every visible GPU."""
        given = parse_devices(options.devices)
        if given:
            return given
        torch = _torch()
        return [str(i) for i in range(max(1, torch.cuda.device_count()))]

    def versions(self) -> dict[str, str]:
        return {"torch": _torch().__version__}


BACKEND = TorchBackend()
