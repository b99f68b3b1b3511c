"""TensorRT engine building: the ONNX graph TensorRT's parser is given, and the builder calls.

The graph surgery and the engine metadata (prepare_graph) run without TensorRT, so the CPU tests cover them; the
rest (build_engine: parse, input format and dynamic range, one optimisation profile per copy stream, the calibration
cache replayed by a calibrator for implicit INT8, the timing cache, plugin libraries) carries out the decisions of
plan.py with TensorRT's builder. The serialised engine is written then renamed; backend.py writes
`<engine>.meta.json` beside it.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import onnx

from harness.graph import onnx_graph
from harness.backends.tensorrt import contract
from harness.backends.tensorrt import libs
from harness.backends.tensorrt import plan as tp
from harness.core.errors import HarnessError

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


def build_engine(trt, plan: tp.EnginePlan, onnx_path: str, meta: dict[str, Any], engine_path: str,
                 verbose: bool) -> None:
    """Build and write the serialised engine of `plan` from `onnx_path` (the graph prepare_graph wrote)."""
    logger = libs.make_logger(trt, verbose)
    libs.load_plugins(trt, logger, plan.plugins)
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
