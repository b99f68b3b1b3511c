"""The TensorRT path's decisions, without TensorRT: graph surgery (run by ONNX Runtime), engine plans from the real
configs, naming and rebuild records, calibration caches, input conversion, stream and CUDA-graph layout, and the
clear failure when TensorRT is absent. Nothing here imitates TensorRT."""
import importlib.util
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, run_main
from harness.core import paths
from harness.backends import base as backend_base
from harness.config import files as configs
from harness.artifacts import engines
from harness.graph import onnx_graph
from harness.backends.tensorrt import plan as tp
from harness.backends.tensorrt.build import prepare_graph
from harness.backends.tensorrt.options import Options
from harness.artifacts.calibration import quantized_model_path
from harness.artifacts.engines import engine_path
from harness.config.context import run_config
from harness.backends import get_backend
from harness.core.errors import HarnessError
from harness.actions import parse_args
from harness.config.flags import SCENARIOS
from resnet50.models import get_model

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


# ---------------------------------------------------------------------------------------------------------------
# Small real models (ONNX Runtime runs them; the quantised one comes from ONNX Runtime's own quantiser)
def tiny_model(opset=13, classes=11, hw=16, seed=0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w"),
             numpy_helper.from_array(np.zeros(8, np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((8, classes)).astype(np.float32), "fc"),
             numpy_helper.from_array(np.zeros(classes, np.float32), "fcb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["prob"], axis=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, hw, hw])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def images(n=16, seed=5, hw=16):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3, hw, hw)) + rng.standard_normal((n, 3, 1, 1)) * 2).astype(np.float32)


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def fc_logits(model, x):
    """The float output of the model's last Gemm/MatMul (its logits), found independently of onnx_graph: the
    reference top-1 of a Q/DQ model, whose own output is int8-quantised (ties) probabilities."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    (fc,) = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul")][-1:]
    model.graph.output.append(helper.make_tensor_value_info(fc.output[0], TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([fc.output[0]], {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    """Symmetric int8 Q/DQ with per-channel weights: the form `make calibrate` makes for TensorRT."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    folder = tmp_path_factory.mktemp("qdq")
    onnx.save(tiny_model(), str(folder / "fp32.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": images(1, seed=100 + i)} for i in range(16)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(folder / "fp32.onnx"), str(folder / "qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    return onnx.load(str(folder / "qdq.onnx"))


# ---------------------------------------------------------------------------------------------------------------
# Graph surgery
@pytest.mark.parametrize("opset", [8, 13])
def test_topk_int32_output_equals_argmax_of_the_scores(opset):
    model = tiny_model(opset=opset)
    x = images()
    want = run(model, x).argmax(1)
    assert len(set(want.tolist())) > 2, "the test model should not answer one class for everything"
    graph = onnx_graph.top1_graph(model, op="topk", index_dtype=TensorProto.INT32)
    ops = [n.op_type for n in graph.graph.node]
    assert "Softmax" not in ops and "TopK" in ops and "ArgMax" not in ops
    assert [o.name for o in graph.graph.output] == [onnx_graph.TOP1_OUTPUT]
    got = run(graph, x)
    assert got.dtype == np.int32 and got.shape == (len(x),) and got.tolist() == want.tolist()
    onnx.checker.check_model(graph)


def test_int8_input_graph_runs_the_qdq_model_on_int8_samples(qdq_model):
    x = images(32)
    want = fc_logits(qdq_model, x).argmax(1)
    graph, scale = onnx_graph.int8_input_graph(onnx_graph.top1_graph(qdq_model, op="topk",
                                                                     index_dtype=TensorProto.INT32))
    assert scale == pytest.approx(onnx_graph.input_quant_scale(qdq_model))
    (inp,) = onnx_graph.graph_inputs(graph)
    assert inp.type.tensor_type.elem_type == TensorProto.INT8
    assert onnx_graph.input_quantize_node(graph) is None
    # The harness quantises exactly as the removed QuantizeLinear did, so the answers are identical.
    assert run(graph, tp.quantize_int8(x, scale)).tolist() == want.tolist()


def test_int8_input_needs_a_symmetric_input_quantize():
    with pytest.raises(HarnessError, match="explicitly quantised"):
        onnx_graph.int8_input_graph(tiny_model())
    model = tiny_model()
    model.graph.initializer.extend([numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                                    numpy_helper.from_array(np.array(128, np.uint8), "z")])
    consumer = model.graph.node[0]
    consumer.input[0] = "xq_dq"
    model.graph.node.insert(0, helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xq_dq"]))
    model.graph.node.insert(0, helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]))
    with pytest.raises(HarnessError, match="zero point"):
        onnx_graph.int8_input_graph(model)


def test_fp16_input_graph():
    model = onnx_graph.top1_graph(tiny_model(), op="topk", index_dtype=TensorProto.INT32)
    x = images()
    assert run(onnx_graph.fp16_input_graph(model), x.astype(np.float16)).tolist() == run(model, x).tolist()


def _plan(settings, source="model.onnx", shape=(3, 16, 16)):
    base = {"system_id": "H200x1", "precision": "int8", "batch_size": 8, "gpu_copy_streams": 2}
    return tp.make_plan(Options.from_values(dict(base, model="resnet50", **settings)), shape, source)


def test_prepare_graph_explicit_records_the_input_scale(qdq_model):
    plan = _plan({"input_dtype": "int8", "input_format": "chw4"})
    graph, meta = prepare_graph(qdq_model, plan, registry_scale=None)
    assert meta["input_scale"] == pytest.approx(onnx_graph.input_quant_scale(qdq_model))
    assert (meta["input_dtype"], meta["input_format"], meta["num_profiles"], meta["output_dtype"]) == \
        ("int8", "chw4", 2, "int32")
    x = images(8)
    assert run(graph, tp.quantize_int8(x, meta["input_scale"])).tolist() == fc_logits(qdq_model, x).argmax(1).tolist()
    with pytest.raises(HarnessError, match="registry's fixed input scale"):
        prepare_graph(qdq_model, plan, registry_scale=0.0207913)
    with pytest.raises(HarnessError, match="not a calibrated Q/DQ model"):
        prepare_graph(tiny_model(), plan, registry_scale=None)


def test_prepare_graph_implicit_takes_the_scale_from_the_cache(tmp_path):
    cache = tmp_path / "entropy.cache"
    cache.write_text(tp.format_calibration_cache("TRT-100800-EntropyCalibration2", {"x": 0.03125, "c": 0.5}))
    plan = _plan({"implicit_int8": True, "input_dtype": "int8", "calib_cache": str(cache)})
    graph, meta = prepare_graph(tiny_model(), plan, registry_scale=None)
    assert meta["quantization"] == "implicit" and meta["input_scale"] == 0.03125
    assert onnx_graph.graph_inputs(graph)[0].type.tensor_type.elem_type == TensorProto.FLOAT  # TensorRT sets int8
    _, meta = prepare_graph(tiny_model(), plan, registry_scale=0.0207913)
    assert meta["input_scale"] == 0.0207913
    plan.calibration_cache = str(tmp_path / "missing.cache")
    with pytest.raises(HarnessError, match="make calibrate"):
        prepare_graph(tiny_model(), plan, registry_scale=None)


# ---------------------------------------------------------------------------------------------------------------
# Plans from the real configs
def _rc(scenario, system, **cli):
    return run_config(parse_args(["--action=generate_engines"] + [f"--{k}={v}" for k, v in cli.items()]), scenario,
                      system)


def _cfg(scenario, system, **cli):
    return _rc(scenario, system, **cli).settings()


def _opts(scenario, system, **cli):
    return _rc(scenario, system, **cli).options()


def gpu_blocks():
    for scenario in SCENARIOS:
        with open(configs.config_path(scenario)) as f:
            data = json.load(f)
        for system in data:
            if system != "default" and configs.resolve(scenario, system).get("backend") == "tensorrt":
                yield scenario, system


def test_every_tensorrt_block_gives_a_valid_plan():
    seen = set()
    for scenario, system in gpu_blocks():
        cfg = _opts(scenario, system)
        spec = get_model(cfg.model_key)
        plan = tp.make_plan(cfg, spec.input_shape, "x.onnx")
        assert plan.int8 and plan.fp16 and plan.quantization == "explicit", (scenario, system)
        assert plan.input_dtype == "int8" and plan.input_format in ("linear", "chw4")
        assert len(plan.profiles) == int(cfg.gpu_copy_streams or 1)
        seen.add(system)
    assert {"A100-SXM4-40GBx1", "A100-SXM4-40GBx8", "A10x1", "A10x2", "T4x1", "T4x8", "H100-SXM-80GBx1",
            "H100-SXM-80GBx8", "H200x1", "H200x8"} <= seen


def test_seed_and_nvidia_plans():
    a100 = _opts("Offline", "A100-SXM4-40GBx1")
    assert a100.model_key == "ofa-autosinian-is176"
    plan = tp.make_plan(a100, (3, 176, 176), "x.onnx")
    assert plan.input_format == "chw4" and plan.batch_size == 8640
    assert plan.profiles == [((1, 3, 176, 176), (8640, 3, 176, 176), (8640, 3, 176, 176))] * 4
    h200 = _opts("Offline", "H200x1")
    plan = tp.make_plan(h200, (3, 224, 224), "x.onnx")
    assert (plan.input_format, plan.batch_size, len(plan.profiles)) == ("linear", 2048, 2)
    assert plan.workspace_size == 1 << 30
    assert plan.timing_cache == os.path.join(ROOT, "build", "engines", "H200x1", "timing.cache")
    server = _opts("Server", "H200x8")
    assert tp.stream_layout(tp.copy_streams(server), tp.inference_streams(server), False) == [0, 1, 2, 3]
    t4 = _opts("Server", "T4x8")
    assert tp.stream_layout(tp.copy_streams(t4), tp.inference_streams(t4), False) == [0, 1, 0, 1]
    assert tp.stream_layout(4, 1, True) == [None] * 4
    # Flags win over the config.
    plan = tp.make_plan(_opts("Offline", "H200x1", workspace_size=4 << 30, timing_cache="none", gpu_copy_streams=3,
                              plugins=__file__), (3, 224, 224), "x.onnx")
    assert (plan.workspace_size, plan.timing_cache, len(plan.profiles), plan.plugins) == \
        (4 << 30, None, 3, [os.path.abspath(__file__)])


@pytest.mark.parametrize("settings,needle", [
    ({"precision": "fp16", "input_dtype": "int8"}, "needs precision int8"),
    ({"precision": "int8", "input_dtype": "fp32", "input_format": "chw4"}, "needs input_dtype int8"),
    ({"precision": "fp32", "input_dtype": "fp16"}, "lose the input precision"),
    ({"precision": "int8", "input_format": "nhwc"}, "input_format='nhwc'"),
    ({"precision": "bf16"}, "not bf16"),
    ({"precision": "int8", "gpu_copy_streams": -1, "batch_size": 2}, "at least 1"),
    ({"precision": "int8", "workspace_size": 100}, "too small"),
])
def test_bad_settings_are_clear_errors(settings, needle):
    base = {"system_id": "H200x1", "batch_size": 4}
    with pytest.raises(HarnessError, match=needle):
        tp.make_plan(Options.from_values(dict(base, model="resnet50", **settings)), (3, 224, 224), "x.onnx")


def test_build_inputs_and_calibration_cache_home(tmp_path):
    spec = get_model("resnet50")
    fp32, qdq = spec.default_path, quantized_model_path(spec.default_path, "tensorrt")
    assert qdq.endswith("resnet50_v1.int8-qdq.tensorrt.onnx")
    def opts(**values):
        return Options(model_key="resnet50", **values)
    assert tp.build_inputs(opts(precision="int8"), fp32, qdq) == {"model": qdq}
    assert tp.build_inputs(opts(precision="fp16"), fp32, qdq) == {"model": fp32}
    assert tp.build_inputs(opts(precision="int8", implicit_int8=True), fp32, qdq) == {
        "model": fp32, "calibration_cache": os.path.join(ROOT, "build", "models", "resnet50", "calibration",
                                                         "entropy.cache")}
    lib = tmp_path / "libplugin.so"
    lib.write_bytes(b"x")
    got = tp.build_inputs(opts(precision="int8", implicit_int8=True, calib_cache="c.cache", calib_method="minmax",
                               plugins=f"{lib},{lib}"), fp32, qdq)
    assert got == {"model": fp32, "calibration_cache": os.path.abspath("c.cache"), "plugin0": str(lib)}
    assert paths.calibration_cache_path("resnet50", "minmax").endswith("resnet50/calibration/minmax.cache")
    with pytest.raises(HarnessError, match="not found"):
        tp.check_plugins([str(tmp_path / "missing.so")])


def test_engine_name_and_rebuild_record(tmp_path):
    backend = get_backend("tensorrt")     # importable without TensorRT
    cfg = _cfg("Offline", "H200x1")
    path = engine_path(_rc("Offline", "H200x1"), get_model("resnet50"), backend)
    assert path == os.path.join(ROOT, "build", "engines", "H200x1", "resnet50", "Offline",
                                "resnet50-Offline-gpu-b2048-int8.default.plan")
    model, cache = tmp_path / "m.onnx", tmp_path / "c.cache"
    model.write_bytes(b"model")
    cache.write_text("TRT-100800-EntropyCalibration2\nx: 3c010a14\n")
    engine = tmp_path / "e.plan"
    engine.write_bytes(b"plan")
    inputs = {"model": str(model), "calibration_cache": str(cache)}
    record = engines.build_record(inputs, dict(cfg, implicit_int8=True), {"tensorrt": "10.8.0.43"})
    assert record["config"]["implicit_int8"] is True and record["config"]["input_format"] == "linear"
    engines.write_record(str(engine), record)
    assert engines.is_up_to_date(str(engine), record)
    assert not engines.is_up_to_date(str(engine), engines.build_record(inputs, cfg, {"tensorrt": "10.9.0.34"}))
    cache.write_text("TRT-100800-EntropyCalibration2\nx: 3c010a15\n")
    assert not engines.is_up_to_date(str(engine), engines.build_record(inputs, dict(cfg, implicit_int8=True),
                                                                       {"tensorrt": "10.8.0.43"}))
    backend_base.write_meta(str(engine), {"input_scale": 0.5})
    assert backend_base.read_meta(str(engine)) == {"input_scale": 0.5}
    with pytest.raises(HarnessError, match="meta.json is missing"):
        backend_base.read_meta(str(tmp_path / "other.plan"))


# ---------------------------------------------------------------------------------------------------------------
# Calibration cache and input scale
def test_calibration_cache_round_trip_and_alibaba_scale():
    header, scales = tp.parse_calibration_cache("TRT-7203-EntropyCalibration2\ninput_tensor:0: 3caa5293\n"
                                                "conv1: 3f810204\n")
    assert header == "TRT-7203-EntropyCalibration2"
    assert scales["input_tensor:0"] == pytest.approx(0.020791327580809593)
    assert scales["input_tensor:0"] == get_model("ofa-autosinian-is176").input_scale
    assert scales["conv1"] == pytest.approx(128 / 127, rel=1e-6)
    again = tp.parse_calibration_cache(tp.format_calibration_cache(header, scales))
    assert again == (header, scales)
    with pytest.raises(HarnessError, match="not a TensorRT calibration cache"):
        tp.parse_calibration_cache("hello\n")
    with pytest.raises(HarnessError, match=":2: expected"):
        tp.parse_calibration_cache("TRT-1-EntropyCalibration2\nconv1 3f810204\n")


def test_input_scale_order():
    assert tp.choose_input_scale(0.02, 0.5, {"x": 0.7}, "x") == 0.02
    assert tp.choose_input_scale(None, 0.5, {"x": 0.7}, "x") == 0.5
    assert tp.choose_input_scale(None, None, {"x": 0.7}, "x") == 0.7
    with pytest.raises(HarnessError, match="No int8 scale"):
        tp.choose_input_scale(None, None, {"y": 0.7}, "x")


# ---------------------------------------------------------------------------------------------------------------
# Runtime decisions
def test_quantize_and_chw4_layout():
    q = tp.quantize_int8(np.array([0.0, 0.5, 1.5, 2.5, -2.5, 1000.0, -1000.0], np.float32), 1.0)
    assert q.dtype == np.int8 and q.tolist() == [0, 0, 2, 2, -2, 127, -128]   # round half to even, saturate
    x = np.arange(2 * 3 * 2 * 5, dtype=np.int8).reshape(2, 3, 2, 5)
    v = tp.to_chw4(x)
    assert v.shape == (2, 1, 2, 5, 4) and v.flags.c_contiguous
    for n, c, h, w in np.ndindex(*x.shape):
        assert v[n, c // 4, h, w, c % 4] == x[n, c, h, w]
    assert (v[..., 3] == 0).all()                       # the padded fourth channel
    assert (tp.from_chw4(v, 3) == x).all()
    y = np.random.default_rng(0).standard_normal((2, 6, 3, 3)).astype(np.float32)
    assert (tp.from_chw4(tp.convert_samples(y, "int8", "chw4", 0.1), 6) == tp.quantize_int8(y, 0.1)).all()
    assert tp.convert_samples(y, "fp16", "linear", None).dtype == np.float16
    already = tp.convert_samples(y, "int8", "linear", 0.1)
    assert tp.convert_samples(already, "int8", "linear", None) is not None
    with pytest.raises(HarnessError, match="input scale"):
        tp.convert_samples(y, "int8", "linear", None)
    assert tp.sample_nbytes((3, 224, 224), "int8", "chw4") == 4 * 224 * 224
    assert tp.sample_nbytes((3, 224, 224), "fp32", "linear") == 3 * 224 * 224 * 4


def test_graph_batch_sizes():
    assert tp.graph_batch_sizes(8) == list(range(1, 9))
    sizes = tp.graph_batch_sizes(256)
    assert sizes[:16] == list(range(1, 17)) and sizes[-1] == 256 and len(sizes) == 31
    assert tp.graph_batch_sizes(100)[-2:] == [96, 100]
    assert all(tp.graph_size_for(n, sizes) - n < tp.GRAPH_FINE_STEP for n in range(1, 257))
    with pytest.raises(HarnessError):
        tp.graph_size_for(300, sizes)


def test_devices():
    assert tp.parse_devices(None, 8) == list(range(8))
    assert tp.parse_devices("0,3", 8) == [0, 3]
    for bad, needle in (("8", "not a GPU id"), ("0,0", "twice"), ("x", "not a GPU id")):
        with pytest.raises(HarnessError, match=needle):
            tp.parse_devices(bad, 8)
    with pytest.raises(HarnessError, match="No CUDA GPU"):
        tp.parse_devices(None, 0)


# ---------------------------------------------------------------------------------------------------------------
# Configs, SUT concurrency, and TensorRT being absent


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here; this checks the message when it is absent")
def test_tensorrt_backend_says_what_is_missing():
    backend = get_backend("tensorrt")
    with pytest.raises(HarnessError, match=r"needs NVIDIA TensorRT's Python package.*make prebuild"):
        backend.require()
    for action in ("generate_engines", "run_harness"):
        # A short min_duration: the H200's full 600 s Offline schedule may not fit this host's memory (bounds.py)
        result = run_main(f"--action={action}", "--system_name=H200x1", "--scenarios=Offline", "--min_duration=10000",
                          timeout=120)
        assert result.returncode == 2, result.stderr
        assert "TensorRT" in result.stderr and "make prebuild" in result.stderr
        assert "Traceback" not in result.stderr
