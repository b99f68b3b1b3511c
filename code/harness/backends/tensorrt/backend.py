"""TensorRT on NVIDIA GPUs (TensorRT 10 Python API, cuda-python for memory, streams and CUDA graphs).

Every decision is made in plain code (backends/tensorrt/plan.py, harness/graph/onnx_graph.py) that the CPU tests
cover; the backend only carries them out, in three modules besides this one:
- libs.py: TensorRT and cuda-python, imported lazily (when an engine is built or loaded, so CPU users never need
  them), with errors that say which is missing (or a driver, or a GPU) and what to do;
- build.py: the ONNX after the harness's graph surgery (`<engine>.surgery.onnx`, kept beside the engine, so ONNX
  Runtime can run exactly what TensorRT was given) is parsed, the input's format (and, for implicit INT8, type and
  dynamic range) is set, one optimisation profile per copy stream is added, and the serialised engine is written;
- runner.py: one GPU's runner (see the Run part of plan.py's docstring).
This module keeps the Backend (BACKEND): the rebuild inputs, the devices, `--onnx_only` export, build (then
`<engine>.meta.json`: input name, dtype, layout and scale; profiles; plugins) and load.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import onnx

from harness.graph import onnx_graph
from harness.backends.tensorrt import build
from harness.backends.tensorrt import libs
from harness.backends.tensorrt import plan as tp
from harness.backends.base import write_meta
from harness.core.errors import HarnessError
from harness.backends.tensorrt.options import INFO, Options
from harness.backends.base import Backend, BuildRequest, Runner
from harness.backends.tensorrt.runner import TensorRTRunner


class TensorRTBackend(Backend):
    info = INFO
    options_type = Options

    def require(self) -> None:
        libs.load_tensorrt()
        if libs.visible_gpu_count() < 1:
            raise HarnessError(f"No CUDA GPU is visible: the tensorrt backend needs an NVIDIA GPU (check nvidia-smi and "
                               f"CUDA_VISIBLE_DEVICES). {libs.CONTAINER_HINT}")

    def versions(self) -> dict[str, str]:
        return {"tensorrt": str(libs.load_tensorrt().__version__)}

    def build_inputs(self, options: Options, fp32_path: str, quantized_path: str) -> dict[str, str]:
        return tp.build_inputs(options, fp32_path, quantized_path)

    def device_ids(self, options: Options) -> list[str]:
        return [str(d) for d in tp.parse_devices(options.devices, libs.visible_gpu_count())]

    @staticmethod
    def onnx_path(engine_path: str) -> str:
        """Where the exact ONNX handed to TensorRT's parser is kept: beside the engine."""
        return engine_path + ".surgery.onnx"

    def export_onnx(self, request: BuildRequest) -> tuple[str, tp.EnginePlan, dict[str, Any]]:
        """Write the ONNX TensorRT's parser would be given (graph surgery done, contract checked) beside where the
        engine goes; needs neither TensorRT nor a GPU (`make generate_engines ... --onnx_only`)."""
        plan = tp.make_plan(request.options, request.input_shape, request.onnx_path)
        tp.check_plugins(plan.plugins)
        model = onnx_graph.load(request.onnx_path)
        onnx_graph.check_input(model, request.onnx_path, request.input_shape)
        graph, meta = build.prepare_graph(model, plan, request.input_scale)
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        path = self.onnx_path(request.engine_path)
        onnx.save(graph, path + ".partial")
        os.replace(path + ".partial", path)
        return path, plan, meta

    def build(self, request: BuildRequest) -> str:
        surgery, plan, meta = self.export_onnx(request)
        trt = libs.load_tensorrt()
        device = self.device_ids(request.options)[0]
        libs.check(libs.load_cudart().cudaSetDevice(int(device)), f"cudaSetDevice({device})")
        build.build_engine(trt, plan, surgery, meta, request.engine_path, bool(request.options.verbose))
        meta["tensorrt_version"] = str(trt.__version__)
        meta["plan"] = plan.to_dict()
        write_meta(request.engine_path, meta)
        return request.engine_path

    def load(self, engine_path: str, device: Optional[str], options: Options) -> Runner:
        if not os.path.exists(engine_path):
            raise HarnessError(f"Engine {engine_path} does not exist; run `make generate_engines` with the same "
                               "RUN_ARGS first (or `make run`, which builds then runs).")
        return TensorRTRunner(engine_path, int(device or 0), options)


BACKEND = TensorRTBackend()
