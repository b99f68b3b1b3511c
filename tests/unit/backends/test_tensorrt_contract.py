"""The TensorRT ONNX contract (backends/tensorrt/contract.py) on every graph the harness hands TensorRT, made from the
real EfficientNet-Lite0 (real weights, calibrated here by the harness's own calibration code) and the ResNet50-v1.5
topology (resnet50-synthetic), and ONNX Runtime's top-1 on those graphs against the models' own on val-1300.

Issue 12 items 2 (INT32 bias DequantizeLinear) and 3 (TopK on int8-quantised probabilities) are each caught here."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SAMPLES_250, VAL_MAP_1300
from harness.artifacts import calibration
from harness.graph import formats, onnx_graph
from harness.backends.tensorrt import contract
from harness.backends.tensorrt import plan as tp
from harness.backends.tensorrt.build import prepare_graph
from harness.backends.tensorrt.options import Options
from harness.core.errors import HarnessError
from resnet50 import imagenet, preprocessing
from resnet50.models import get_model

CAL_IMAGES = 16            # enough for ranges that the contract and top-1 identity can be checked on; not accuracy


def _session(model):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # the same arithmetic in both
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def fc_logits(model, x, batch=100):
    """The model's float logits (output of its last Gemm/MatMul), found without onnx_graph."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    fc = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    model.graph.output.append(helper.make_tensor_value_info(fc.output[0], TensorProto.FLOAT, None))
    session = _session(model)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run([fc.output[0]], {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def model_output(model, x, batch=100):
    session = _session(model)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def calibrate_for_tensorrt(spec, model_path, folder):
    """`make calibrate`'s code path (calibration.calibrate) for the TensorRT form only, on CAL_IMAGES images of
    samples-250 (none of them in val-1300)."""
    names = sorted(os.listdir(SAMPLES_250))[:CAL_IMAGES]
    cal = os.path.join(folder, "cal.txt")
    with open(cal, "w") as f:
        f.write("".join(n + "\n" for n in names))
    image_map = imagenet.read_map(cal, need_labels=False)
    preprocessing.preprocess(spec, image_map, SAMPLES_250, folder, progress=False)
    data = preprocessing.load_preprocessed(spec, image_map, folder)
    calibration.calibrate(spec, calibration.CalibrationInputs(
        model_path, np.asarray(data.array), data.path, data.manifest["checksum"], image_map.path, image_map.md5,
        data.files), method="minmax", backends=["tensorrt"], progress=False)
    return calibration.quantized_model_path(model_path, "tensorrt")


def _plan(spec, **settings):
    base = {"system_id": "H200x1", "precision": "int8", "batch_size": 8, "gpu_copy_streams": 1}
    return tp.make_plan(Options.from_values(dict(base, model=spec.key, **settings)), spec.input_shape, "model.onnx")


@pytest.fixture(scope="module")
def effnet(tmp_path_factory, effnet_path):
    spec = get_model("efficientnet-lite0")
    folder = str(tmp_path_factory.mktemp("effnet_trt"))
    model_path = os.path.join(folder, os.path.basename(effnet_path))
    os.symlink(effnet_path, model_path)
    qdq_path = calibrate_for_tensorrt(spec, model_path, folder)
    return {"spec": spec, "fp32": onnx.load(effnet_path), "qdq": onnx.load(qdq_path), "folder": folder,
            "prepared": os.path.join(folder, "calibration", "prepared.onnx")}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    from resnet50.model_files import build_resnet50_synthetic
    spec = get_model("resnet50-synthetic")
    folder = str(tmp_path_factory.mktemp("resnet_trt"))
    model_path = os.path.join(folder, spec.file_name)
    build_resnet50_synthetic(model_path)
    qdq_path = calibrate_for_tensorrt(spec, model_path, folder)
    return {"spec": spec, "fp32": onnx.load(model_path), "qdq": onnx.load(qdq_path), "folder": folder}


def graphs_for(m):
    """Every graph the harness would hand TensorRT for this model: (name, graph, meta)."""
    spec, out = m["spec"], []
    for name, model, settings in (
            ("int8 explicit, int8 input", m["qdq"], {"input_dtype": "int8"}),
            ("int8 explicit, int8 chw4 input", m["qdq"], {"input_dtype": "int8", "input_format": "chw4"}),
            ("int8 explicit, fp32 input", m["qdq"], {"input_dtype": "fp32"}),
            ("fp16, fp16 input", m["fp32"], {"precision": "fp16", "input_dtype": "fp16"}),
            ("fp32", m["fp32"], {"precision": "fp32", "input_dtype": "fp32"})):
        graph, meta = prepare_graph(model, _plan(spec, **settings), spec.input_scale)   # runs the contract check
        out.append((name, graph, meta))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The real artifacts keep the contract
@pytest.mark.parametrize("which", ["effnet", "resnet"])
def test_every_graph_handed_to_tensorrt_keeps_the_contract(which, request):
    m = request.getfixturevalue(which)
    qdq = m["qdq"]
    inits = {i.name: i for i in qdq.graph.initializer}
    deq = [n for n in qdq.graph.node if n.op_type == "DequantizeLinear"]
    assert deq and not [n for n in deq if n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT32]
    biases = [n.input[2] for n in qdq.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 2]
    assert biases and all(inits[b].data_type == TensorProto.FLOAT for b in biases)     # biases stay float
    for name, graph, meta in graphs_for(m):
        assert contract.violations(graph, meta["input_dtype"], meta["input_scale"], meta["quantization"]) == [], name
        topk = [n for n in graph.graph.node if n.op_type == "TopK"]
        producer = {o: n for n in graph.graph.node for o in n.output}
        assert len(topk) == 1 and producer[topk[0].input[0]].op_type in ("Gemm", "MatMul", "Add"), name
        if meta["input_dtype"] == "int8":
            assert meta["input_scale"] == np.float32(m["spec"].input_scale)


def test_the_old_defaults_break_the_contract(effnet, tmp_path):
    """What the harness made before issue 12 is refused: ONNX Runtime's default QuantizeBias=True (INT32 biases
    into DequantizeLinear), and a top-1 taken on the model's quantised output."""
    spec = effnet["spec"]
    old_form = calibration.FORMS["tensorrt"]
    old_options = {k: v for k, v in old_form.extra_options.items() if k != "QuantizeBias"}
    old_path = str(tmp_path / "old.onnx")
    calibration.write_qdq(effnet["prepared"], os.path.join(effnet["folder"], "calibration", "minmax.ranges.json"),
                          "minmax", calibration.QdqForm(old_form.activation_type, old_form.weight_type,
                                                        old_form.per_channel, old_form.activation_symmetric,
                                                        old_options), old_path, "input_tensor:0", spec.input_scale)
    with pytest.raises(HarnessError, match="INT32 initializer.*QuantizeBias"):
        prepare_graph(onnx.load(old_path), _plan(spec, input_dtype="int8"), spec.input_scale)
    # TopK on the dequantised output, as the old surgery did when the output was not a bare Softmax.
    graph, meta = prepare_graph(effnet["qdq"], _plan(spec, input_dtype="int8"), spec.input_scale)
    old = onnx.ModelProto.FromString(graph.SerializeToString())
    topk = next(n for n in old.graph.node if n.op_type == "TopK")
    qdq_out = [n for n in effnet["qdq"].graph.node if n.output[0] == effnet["qdq"].graph.output[0].name]
    assert qdq_out[0].op_type == "DequantizeLinear"          # the quantiser's Q/DQ pair on the logits
    producer = {o: n for n in effnet["qdq"].graph.node for o in n.output}
    quant = producer[qdq_out[0].input[0]]
    old.graph.node.insert(0, quant)
    old.graph.node.insert(1, qdq_out[0])
    for init in effnet["qdq"].graph.initializer:
        if init.name in (quant.input[1], quant.input[2]) and init.name not in {i.name for i in old.graph.initializer}:
            old.graph.initializer.append(init)
    topk.input[0] = qdq_out[0].output[0]
    old.graph.node.remove(topk)
    old.graph.node.append(topk)
    problems = contract.violations(old, "int8", meta["input_scale"], "explicit")
    assert any("fed by DequantizeLinear" in p for p in problems), problems


def _graph(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _top1(model):
    return onnx_graph.top1_graph(model, op="topk", index_dtype=TensorProto.INT32)


def _fc_model(opset=13, extra=()):
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["logits"]), *extra]
    out = extra[-1].output[0] if extra else "logits"
    return _graph(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 1, 1])],
                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 3])], [w], opset)


def test_contract_violations_are_named():
    assert contract.violations(_top1(_fc_model()), "fp32") == []
    assert any("opset 8" in p for p in contract.violations(_top1(_fc_model(opset=8)), "fp32"))
    bad = _fc_model()
    bad.graph.node[0].input[0] = "h"
    bad.graph.node.insert(0, helper.make_node("Hardmax", ["x"], ["h"]))     # an op outside the matrix as checked
    bad = _top1(bad)
    assert any("Hardmax" in p and "support matrix" in p for p in contract.violations(bad, "fp32"))
    assert contract.violations(bad, "fp32", plugin_ops=["Hardmax"]) == []
    assert contract.violations(bad, "fp32", plugin_ops=True) == []
    assert any("metadata says int8" in p for p in contract.violations(_top1(_fc_model()), "int8", 0.5, "explicit"))
    assert any("no QuantizeLinear" in p for p in contract.violations(_top1(_fc_model()), "fp32", None, "explicit"))
    # A uint8 (ONNX Runtime's CPU form) Q/DQ pair, and a Softmax kept before TopK.
    s, z = numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z")
    m = _fc_model(extra=[helper.make_node("QuantizeLinear", ["logits", "s", "z"], ["q"]),
                         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])])
    m.graph.initializer.extend([s, z])
    found = contract.violations(_top1(m), "fp32")
    assert found == [], found                     # top1 surgery walks past the pair: nothing left of it
    m.graph.node.append(helper.make_node("TopK", ["dq", "k"], ["v", "i"], axis=1))
    m.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "k"))
    found = contract.violations(m, "fp32", None, "explicit")
    assert any("not a constant zero" in p for p in found) and any("fed by DequantizeLinear" in p for p in found)
    soft = _fc_model(extra=[helper.make_node("Softmax", ["logits"], ["p"], axis=1)])
    soft.graph.node.append(helper.make_node("TopK", ["p", "k"], ["v", "i"], axis=1))
    soft.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "k"))
    found = contract.violations(soft, "fp32")
    assert any("fed by Softmax" in p for p in found) and any("Softmax is left" in p for p in found)
    assert any("int32 [N] output" in p for p in found)


def test_opset_8_models_are_converted_for_tensorrt():
    spec = get_model("resnet50-synthetic")
    model = _fc_model(opset=8)
    graph, meta = prepare_graph(model, tp.make_plan(Options(system_id="x", precision="fp32", batch_size=2,
                                                            model_key=spec.key), (4, 1, 1), "m.onnx"), None)
    assert onnx_graph.opset_version(graph) == 13 and meta["input_dtype"] == "fp32"


# ---------------------------------------------------------------------------------------------------------------
# ONNX Runtime's top-1 on the graph handed to TensorRT is the model's own (ties included)
@pytest.mark.slow
def test_top1_on_val_1300_equals_the_models(effnet, prep_dir):
    """The graphs handed to TensorRT for the int8 (int8 input) and fp32 engines, on all 1300 images: top-1 equal to
    the model's own argmax of its logits, image by image. The fp32-input int8 and the fp16 graphs on 200."""
    spec = effnet["spec"]
    x = np.asarray(preprocessing.load_preprocessed(spec, imagenet.read_map(VAL_MAP_1300), prep_dir).array)
    assert len(x) == 1300
    graphs = {name: graph for name, graph, _ in graphs_for(effnet)}
    # One pass of the Q/DQ model gives both its float logits and its own (int8-quantised) output.
    qdq = onnx.ModelProto.FromString(effnet["qdq"].SerializeToString())
    fc = [n for n in qdq.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    qdq.graph.output.append(helper.make_tensor_value_info(fc.output[0], TensorProto.FLOAT, None))
    session = _session(qdq)
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: x[i:i + 100]}) for i in range(0, 1300, 100)]
    quantised, logits = np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
    want_int8, want_fp32 = logits.argmax(1), fc_logits(effnet["fp32"], x).argmax(1)
    got = model_output(graphs["int8 explicit, int8 input"], formats.quantize_int8(x, spec.input_scale))
    assert got.dtype == np.int32 and got.shape == (1300,)
    assert got.tolist() == want_int8.tolist(), f"int8: {(got != want_int8).sum()} of 1300 differ"
    got = model_output(graphs["fp32"], x)
    assert got.tolist() == want_fp32.tolist(), f"fp32: {(got != want_fp32).sum()} of 1300 differ"
    got = model_output(graphs["int8 explicit, fp32 input"], x[:200])
    assert got.tolist() == want_int8[:200].tolist()
    got = model_output(graphs["fp16, fp16 input"], x[:200].astype(np.float16))
    assert (got == want_fp32[:200]).mean() > 0.98                 # fp16 rounds the input: nearly all agree
    # The model's own output is int8-quantised logits: their ties (lowest index wins) change the top-1, which is
    # why the top-1 is taken on the float logits.
    ties = (quantised == quantised.max(1, keepdims=True)).sum(1) > 1
    print(f"val-1300: {ties.sum()} images with tied quantised outputs, "
          f"{(quantised.argmax(1) != want_int8).sum()} whose top-1 the old surgery would have changed")
    assert ties.any() and (quantised.argmax(1) != want_int8).any()


def test_top1_on_resnet50_topology_equals_the_models(resnet, tmp_path):
    spec = resnet["spec"]
    names = sorted(os.listdir(SAMPLES_250))[-24:]
    (tmp_path / "m.txt").write_text("".join(n + "\n" for n in names))
    image_map = imagenet.read_map(str(tmp_path / "m.txt"), need_labels=False)
    preprocessing.preprocess(spec, image_map, SAMPLES_250, str(tmp_path), progress=False)
    x = np.asarray(preprocessing.load_preprocessed(spec, image_map, str(tmp_path)).array)
    graphs = {name: (graph, meta) for name, graph, meta in graphs_for(resnet)}
    want_int8 = fc_logits(resnet["qdq"], x).argmax(1)
    assert model_output(graphs["int8 explicit, int8 input"][0], formats.quantize_int8(x, 1.0)).tolist() == \
        want_int8.tolist()
    assert model_output(graphs["fp32"][0], x).tolist() == fc_logits(resnet["fp32"], x).argmax(1).tolist()


# ---------------------------------------------------------------------------------------------------------------
# make generate_engines RUN_ARGS="--backend=tensorrt ... --onnx_only": the exact ONNX, without TensorRT
def test_onnx_only_writes_the_graph_tensorrt_would_parse(effnet_path, tmp_path):
    import re
    import shutil
    from conftest import run_main
    model = tmp_path / "efficientnet_lite0.onnx"
    shutil.copy(effnet_path, model)
    result = run_main("--action=generate_engines", "--system_name=H200x1", "--scenarios=Offline",
                      "--backend=tensorrt", "--model=efficientnet-lite0", f"--model_path={model}",
                      "--precision=fp16", "--input_dtype=fp16", "--onnx_only", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = re.findall(r"ONNX for TensorRT's parser written \(no engine built\): (\S+)", result.stdout)
    assert path.endswith("-gpu-b2048-fp16.default.plan.surgery.onnx") and os.path.exists(path)
    assert not os.path.exists(path[:-len(".surgery.onnx")])                    # no engine, no TensorRT needed
    graph = onnx.load(path)
    assert contract.violations(graph, "fp16") == []
    x = np.random.default_rng(0).standard_normal((4, 3, 224, 224)).astype(np.float32)
    assert model_output(graph, x.astype(np.float16)).dtype == np.int32
    os.remove(path)                                     # it went under build/engines/H200x1 of the checkout
    # Without a calibrated model, int8 stops with the usual clear error.
    result = run_main("--action=generate_engines", "--system_name=H200x1", "--scenarios=Offline",
                      "--backend=tensorrt", "--model=efficientnet-lite0", f"--model_path={model}", "--onnx_only")
    assert result.returncode == 2 and "make calibrate" in result.stderr and "Traceback" not in result.stderr
