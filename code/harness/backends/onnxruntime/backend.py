"""ONNX Runtime on the CPU: the embedded default.

The engine artifact is the model after graph surgery (top-1 output, dynamic batch), with ONNX Runtime's offline
graph optimisations (up to ORT_ENABLE_EXTENDED, the level that can be saved) applied once at build time and saved,
so every run executes the same optimised graph. `threads` (intra-op) and the SUT's `workers` come from the config.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from harness.graph import onnx_graph
from harness.core.errors import HarnessError
from harness.backends.onnxruntime.options import INFO, Options
from harness.backends.base import Backend, BuildRequest, Runner, damaged_engine


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise HarnessError("The onnxruntime backend needs the `onnxruntime` package (`make venv`).") from None
    return onnxruntime


def session_options(threads: Optional[int], spin: Optional[bool] = None):
    ort = _ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0" if spin is False else "1")
    return options


class OrtRunner(Runner):
    def __init__(self, engine_path: str, threads: Optional[int], spin: Optional[bool] = None):
        # Extended optimisations were applied and saved at build time; the layout transforms of ORT_ENABLE_ALL
        # (NCHWc) cannot be saved and run at load (3.5x faster than without them on this machine).
        options = session_options(threads, spin)
        try:
            self.session = _ort().InferenceSession(engine_path, options, providers=["CPUExecutionProvider"])
        except MemoryError:
            raise
        except Exception as e:          # ORT's Fail / InvalidProtobuf / InvalidGraph (plain Exception subclasses)
            raise damaged_engine(engine_path, "onnxruntime", "an ONNX model ONNX Runtime can run", e) from None
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = np.float32 if "float" in self.session.get_inputs()[0].type else np.int8
        self.output_names = [onnx_graph.TOP1_OUTPUT]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names, {self.input_name: batch})[0]


class OnnxRuntimeBackend(Backend):
    info = INFO
    options_type = Options

    def build(self, request: BuildRequest) -> str:
        if request.precision not in ("fp32", "int8"):
            raise HarnessError(f"The onnxruntime backend builds fp32 and int8 engines, not {request.precision}.")
        ort = _ort()
        model = onnx_graph.load(request.onnx_path)
        onnx_graph.check_input(model, request.onnx_path, request.input_shape)
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        surgery = request.engine_path + ".surgery.onnx"
        import onnx
        onnx.save(onnx_graph.top1_graph(model), surgery)
        options = session_options(request.options.threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        tmp = request.engine_path + ".partial.onnx"
        options.optimized_model_filepath = tmp
        ort.InferenceSession(surgery, options, providers=["CPUExecutionProvider"])
        os.replace(tmp, request.engine_path)
        os.remove(surgery)
        return request.engine_path

    def load(self, engine_path: str, device: Optional[str], options: Options) -> Runner:
        if not os.path.exists(engine_path):
            raise HarnessError(f"Engine {engine_path} does not exist; run `make generate_engines` with the same "
                               "RUN_ARGS first (or `make run`, which builds then runs).")
        return OrtRunner(engine_path, options.threads, options.spin)

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": _ort().__version__}


BACKEND = OnnxRuntimeBackend()
