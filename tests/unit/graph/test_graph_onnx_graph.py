"""harness/graph/onnx_graph.py on small graphs built with onnx.helper (a ResNet50-sized one: tests/unit/graph/test_onnx_graph.py)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.core.errors import HarnessError
from harness.graph import onnx_graph

W = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32)


def _model(nodes, inits, *, input_dtype=TensorProto.FLOAT, outputs=None, opset=13, batch=1):
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", input_dtype, [batch, 3, 2, 2])],
        outputs or [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 5])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def float_model(**kw):
    """image -> Flatten -> MatMul -> Softmax -> probs."""
    return _model([helper.make_node("Flatten", ["image"], ["flat"]),
                   helper.make_node("MatMul", ["flat", "W"], ["logits"]),
                   helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
                  [numpy_helper.from_array(W, "W")], **kw)


def qdq_model(scale=0.05, zero_point=np.int8(0)):
    """image -> Q -> DQ -> Flatten -> MatMul -> Softmax -> Q -> DQ -> probs (an explicitly quantised model)."""
    zp = np.array(zero_point)
    return _model([helper.make_node("QuantizeLinear", ["image", "s", "zp"], ["image_q"], name="input_q"),
                   helper.make_node("DequantizeLinear", ["image_q", "s", "zp"], ["image_dq"]),
                   helper.make_node("Flatten", ["image_dq"], ["flat"]),
                   helper.make_node("MatMul", ["flat", "W"], ["logits"]),
                   helper.make_node("Softmax", ["logits"], ["sm"], axis=1),
                   helper.make_node("QuantizeLinear", ["sm", "ps", "pzp"], ["sm_q"]),
                   helper.make_node("DequantizeLinear", ["sm_q", "ps", "pzp"], ["probs"])],
                  [numpy_helper.from_array(W, "W"), numpy_helper.from_array(np.array(scale, np.float32), "s"),
                   numpy_helper.from_array(zp, "zp"), numpy_helper.from_array(np.array(1 / 255, np.float32), "ps"),
                   numpy_helper.from_array(np.array(0, np.uint8), "pzp")])


def run(model, x):
    import onnxruntime as ort
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


X = np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32)


def test_inputs_shape_and_opset():
    model = float_model()
    assert [i.name for i in onnx_graph.graph_inputs(model)] == ["image"]     # initializers are not inputs
    assert onnx_graph.input_shape(model) == [1, 3, 2, 2]
    assert onnx_graph.opset_version(model) == 13
    onnx_graph.check_input(model, "m.onnx", (3, 2, 2))
    with pytest.raises(HarnessError, match=r"^m\.onnx: input image has shape \[1, 3, 2, 2\], but the model registry "
                                           r"and config expect \[N, 3, 4, 4\]\. Check --model / --model_path\.$"):
        onnx_graph.check_input(model, "m.onnx", (3, 4, 4))


def test_old_ir_initializers_listed_as_inputs_are_not_image_inputs():
    model = float_model()
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [12, 5]))
    assert [i.name for i in onnx_graph.graph_inputs(model)] == ["image"]


def test_logits_tensor_walks_back_through_softmax_and_qdq():
    assert onnx_graph.logits_tensor(float_model(), "probs") == "logits"
    assert onnx_graph.logits_tensor(qdq_model(), "probs") == "logits"
    assert onnx_graph.logits_tensor(float_model(), "logits") == "logits"


@pytest.mark.parametrize("op", ["argmax", "topk"])
@pytest.mark.parametrize("dtype, np_dtype", [(TensorProto.INT64, np.int64), (TensorProto.INT32, np.int32)])
def test_top1_graph_is_the_argmax_of_the_logits(op, dtype, np_dtype):
    model = float_model()
    top1 = onnx_graph.top1_graph(model, op=op, index_dtype=dtype)
    assert [o.name for o in top1.graph.output] == [onnx_graph.TOP1_OUTPUT]
    assert not any(n.op_type == "Softmax" for n in top1.graph.node)
    assert onnx_graph.input_shape(top1)[0] == "batch"        # the batch is dynamic
    got = run(top1, X)
    assert got.dtype == np_dtype and got.shape == (4,)
    assert got.tolist() == (X.reshape(4, 12) @ W).argmax(1).tolist()
    assert onnx_graph.input_shape(model) == [1, 3, 2, 2]     # the original is not changed


def test_top1_graph_with_topk_before_opset_10_uses_the_k_attribute():
    top1 = onnx_graph.top1_graph(float_model(opset=9), op="topk")
    (topk,) = [n for n in top1.graph.node if n.op_type == "TopK"]
    assert len(topk.input) == 1 and [a.i for a in topk.attribute if a.name == "k"] == [1]


def test_top1_graph_of_a_qdq_model_takes_the_fp_logits_and_prunes_the_rest():
    top1 = onnx_graph.top1_graph(qdq_model())
    ops = [n.op_type for n in top1.graph.node]
    assert ops == ["QuantizeLinear", "DequantizeLinear", "Flatten", "MatMul", "ArgMax"]
    assert {i.name for i in top1.graph.initializer} == {"W", "s", "zp"}
    expected = (formats_quantized(X, 0.05).reshape(4, 12) @ W).argmax(1)
    assert run(top1, X).tolist() == expected.tolist()


def formats_quantized(x, scale):
    return np.clip(np.rint(x / scale), -128, 127) * scale


def test_top1_graph_bad_arguments():
    with pytest.raises(ValueError, match="op must be 'argmax' or 'topk', not 'max'"):
        onnx_graph.top1_graph(float_model(), op="max")
    with pytest.raises(ValueError, match="index_dtype must be"):
        onnx_graph.top1_graph(float_model(), index_dtype=TensorProto.FLOAT)
    int_out = float_model(outputs=[helper.make_tensor_value_info("probs", TensorProto.INT64, [1, 5])])
    with pytest.raises(HarnessError, match=r"^Model 'tiny': no float class-score output among \['probs'\]\.$"):
        onnx_graph.top1_graph(int_out)


def test_int8_input_graph_drops_the_input_quantize_and_returns_its_scale():
    model = qdq_model(scale=0.05)
    assert onnx_graph.input_quant_scale(model) == pytest.approx(0.05)
    assert onnx_graph.input_quantize_node(model).name == "input_q"
    int8, scale = onnx_graph.int8_input_graph(model)
    assert scale == pytest.approx(0.05)
    assert onnx_graph.graph_inputs(int8)[0].type.tensor_type.elem_type == TensorProto.INT8
    assert onnx_graph.input_quantize_node(int8) is None
    q = np.clip(np.rint(X[:1] / np.float32(0.05)), -128, 127).astype(np.int8)
    assert np.allclose(run(int8, q), run(model, X[:1]))


def test_int8_input_graph_refusals():
    assert onnx_graph.input_quant_scale(float_model()) is None
    with pytest.raises(HarnessError, match=r"^input_dtype int8 needs an explicitly quantised \(Q/DQ\) model"):
        onnx_graph.int8_input_graph(float_model())
    with pytest.raises(HarnessError, match=r"^The input QuantizeLinear 'input_q' has zero point .*3.* \(int8\); an "
                                           r"int8 input needs a symmetric int8 quantisation \(zero point int8 0\)\.$"):
        onnx_graph.int8_input_graph(qdq_model(zero_point=np.int8(3)))
    with pytest.raises(HarnessError, match=r"zero point .*0.* \(uint8\); an int8 input needs a symmetric"):
        onnx_graph.int8_input_graph(qdq_model(zero_point=np.uint8(0)))


def test_the_zero_point_message_shows_the_plain_number():
    with pytest.raises(HarnessError, match=r"has zero point 3 \(int8\);"):
        onnx_graph.int8_input_graph(qdq_model(zero_point=np.int8(3)))


def test_fp16_input_graph_casts_to_float():
    model = float_model()
    half = onnx_graph.fp16_input_graph(model)
    assert onnx_graph.graph_inputs(half)[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert half.graph.node[0].op_type == "Cast"
    assert np.allclose(run(half, X[:1].astype(np.float16)), run(model, X[:1].astype(np.float16).astype(np.float32)))


def test_load_errors(tmp_path):
    with pytest.raises(HarnessError, match=r"does not exist; run `make download_model` or pass --model_path\.$"):
        onnx_graph.load(str(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x01\x02not a model")
    with pytest.raises(HarnessError, match=r"junk\.onnx is not a readable ONNX model \("):
        onnx_graph.load(str(tmp_path / "junk.onnx"))
    onnx.save(float_model(), str(tmp_path / "ok.onnx"))
    assert onnx_graph.load(str(tmp_path / "ok.onnx")).graph.name == "tiny"
