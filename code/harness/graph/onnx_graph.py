"""Graph surgery on ONNX models, done in plain code so that CPU tests cover it and every backend runs the same graph.

- `top1_graph`: take the top-1 on the logits (the FC output): a trailing Softmax, and in Q/DQ models the Q/DQ pairs
  around it, are dropped (`logits_tensor`), and the only output becomes the top-1 index,
  shape [N]: `ArgMax` (int64) for ONNX Runtime, or, with `op="topk"`, `TopK(k=1)` indices reshaped to [N] and cast to
  int32, which is what the seed's TensorRT engines compute (TensorRT's TopK layer, int32 indices). The TensorRT backend
  uses the TopK form, and ONNX Runtime runs that same graph in the CPU tests.
- `int8_input_graph`: for an explicitly quantised (Q/DQ) model, make the image input int8 by removing the
  QuantizeLinear that the input feeds; returns the input scale, which the harness uses to quantise samples.
- `fp16_input_graph`: make the image input float16 (a Cast to float32 follows it).
- the batch dimension is made dynamic.
"""
from __future__ import annotations

from typing import Optional

import onnx
from onnx import helper

from harness.core.errors import HarnessError

TOP1_OUTPUT = "top1"


class UnreadableModel(HarnessError):
    """A model file onnx cannot parse (a truncated download, not an ONNX file): callers add the remedy they know."""


def load(path: str) -> onnx.ModelProto:
    try:
        return onnx.load(path)
    except FileNotFoundError:
        raise HarnessError(f"Model file {path} does not exist; run `make download_model` or pass --model_path.") from None
    except Exception as e:  # a truncated or non-ONNX file
        raise UnreadableModel(f"{path} is not a readable ONNX model ({e}): truncated (an interrupted download or "
                              "copy?) or not an ONNX file.") from None


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    init_names = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init_names]


def input_shape(model: onnx.ModelProto) -> list:
    (inp,) = graph_inputs(model)[:1] or [None]
    if inp is None:
        return []
    return [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]


def check_input(model: onnx.ModelProto, path: str, expected_chw: tuple[int, int, int]) -> None:
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise HarnessError(f"{path}: expected one image input, found {[i.name for i in inputs]}.")
    shape = input_shape(model)
    if len(shape) != 4 or any(isinstance(s, int) and s > 0 and s != w for s, w in zip(shape[1:], expected_chw)):
        raise HarnessError(f"{path}: input {inputs[0].name} has shape {shape}, but the model registry and config "
                           f"expect [N, {', '.join(map(str, expected_chw))}]. Check --model / --model_path.")


def _make_batch_dynamic(model: onnx.ModelProto) -> None:
    for value in list(graph_inputs(model)) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def opset_version(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    return 1


# Nodes that sit between a classifier's logits and its output without changing which class is largest (before
# quantisation): the softmax, and the Q/DQ pairs a quantiser puts around it (these do change it: probabilities
# quantised to int8 tie, and a tie goes to the lowest index).
_AFTER_LOGITS = ("Softmax", "LogSoftmax", "QuantizeLinear", "DequantizeLinear")


def logits_tensor(model: onnx.ModelProto, output_name: str) -> str:
    """The float logits behind a class-score output: walk back through Softmax/LogSoftmax and Q/DQ nodes (an
    explicitly quantised model's output is DequantizeLinear(QuantizeLinear(Softmax(...))), often with a Q/DQ pair
    on the logits too), so the top-1 is taken on the FC output, as NVIDIA's ResNet50 graph surgery does."""
    producer = {out: node for node in model.graph.node for out in node.output}
    name = output_name
    seen = set()
    while name in producer and producer[name].op_type in _AFTER_LOGITS and name not in seen:
        seen.add(name)
        name = producer[name].input[0]
    return name


def top1_graph(model: onnx.ModelProto, output_name: Optional[str] = None, op: str = "argmax",
               index_dtype: int = onnx.TensorProto.INT64) -> onnx.ModelProto:
    """A copy of `model` whose only output is the top-1 index of the class scores, shape [N].

    op="argmax": ArgMax(axis=1). op="topk": TopK(k=1, axis=1) indices, reshaped to [N]. `index_dtype` is
    TensorProto.INT64 (ONNX's native index type) or TensorProto.INT32 (a Cast is added; TensorRT's indices are int32).
    Ties go to the lower index either way, as in ONNX's definition of both operators.
    """
    if op not in ("argmax", "topk"):
        raise ValueError(f"op must be 'argmax' or 'topk', not {op!r}")
    if index_dtype not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
        raise ValueError("index_dtype must be TensorProto.INT64 or TensorProto.INT32")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    float_outputs = [o for o in graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    if output_name:
        chosen = [o for o in graph.output if o.name == output_name]
    else:
        chosen = [o for o in float_outputs if len(o.type.tensor_type.shape.dim) == 2] or float_outputs
    if not chosen:
        raise HarnessError(f"Model {graph.name!r}: no float class-score output among {[o.name for o in graph.output]}.")
    scores = logits_tensor(model, chosen[0].name)
    _make_batch_dynamic(model)
    index = TOP1_OUTPUT if index_dtype == onnx.TensorProto.INT64 else "harness_top1_int64"
    if op == "argmax":
        graph.node.append(helper.make_node("ArgMax", [scores], [index], axis=1, keepdims=0, name="harness_top1"))
    else:
        outs = ["harness_top1_values", "harness_top1_indices"]
        if opset_version(model) >= 10:   # K became an input in opset 10
            graph.initializer.append(helper.make_tensor("harness_top1_k", onnx.TensorProto.INT64, [1], [1]))
            graph.node.append(helper.make_node("TopK", [scores, "harness_top1_k"], outs, axis=1, name="harness_top1"))
        else:
            graph.node.append(helper.make_node("TopK", [scores], outs, axis=1, k=1, name="harness_top1"))
        graph.initializer.append(helper.make_tensor("harness_top1_shape", onnx.TensorProto.INT64, [1], [-1]))
        graph.node.append(helper.make_node("Reshape", [outs[1], "harness_top1_shape"], [index],
                                           name="harness_top1_flatten"))
    if index_dtype == onnx.TensorProto.INT32:
        graph.node.append(helper.make_node("Cast", [index], [TOP1_OUTPUT], to=onnx.TensorProto.INT32,
                                           name="harness_top1_cast"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(TOP1_OUTPUT, index_dtype, ["batch"]))
    _prune(model)
    return model


def _initializer_value(model: onnx.ModelProto, name: str):
    from onnx import numpy_helper
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def input_quantize_node(model: onnx.ModelProto) -> Optional[onnx.NodeProto]:
    """The QuantizeLinear the image input feeds, when that is its only consumer (an explicitly quantised model)."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        return None
    name = inputs[0].name
    consumers = [n for n in model.graph.node if name in n.input]
    if len(consumers) == 1 and consumers[0].op_type == "QuantizeLinear" and consumers[0].input[0] == name:
        return consumers[0]
    return None


def input_quant_scale(model: onnx.ModelProto) -> Optional[float]:
    """The scale of the input's QuantizeLinear, or None when the model has none (not explicitly quantised)."""
    node = input_quantize_node(model)
    if node is None:
        return None
    scale = _initializer_value(model, node.input[1])
    if scale is None or scale.size != 1:
        raise HarnessError(f"The input QuantizeLinear {node.name!r} has no constant per-tensor scale; the harness "
                           "needs one scale for the whole input tensor.")
    return float(scale.reshape(-1)[0])


def int8_input_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, float]:
    """A copy of an explicitly quantised model whose image input is int8: the input's QuantizeLinear is removed and
    its consumers (DequantizeLinear) read the int8 input directly. Returns (model, input scale).

    The zero point must be int8 0 (symmetric), which TensorRT requires; the harness quantises each sample as
    clip(round(x / scale), -128, 127), exactly what the removed QuantizeLinear computed.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    node = input_quantize_node(model)
    if node is None:
        raise HarnessError("input_dtype int8 needs an explicitly quantised (Q/DQ) model whose image input feeds one "
                           "QuantizeLinear; this model has none. Run `make calibrate`, or use --implicit_int8 with a "
                           "calibration cache.")
    scale = input_quant_scale(model)
    if len(node.input) > 2 and node.input[2]:
        zero = _initializer_value(model, node.input[2])
        if zero is None or zero.dtype != "int8" or int(zero.reshape(-1)[0]) != 0:
            raise HarnessError(f"The input QuantizeLinear {node.name!r} has zero point "
                               f"{None if zero is None else zero.reshape(-1)[0].item()} ({getattr(zero, 'dtype', None)}); "
                               "an int8 input needs a symmetric int8 quantisation (zero point int8 0).")
    (inp,) = graph_inputs(model)
    graph = model.graph
    quantized = node.output[0]
    graph.node.remove(node)
    for other in graph.node:
        for i, name in enumerate(other.input):
            if name == quantized:
                other.input[i] = inp.name
    inp.type.tensor_type.elem_type = onnx.TensorProto.INT8
    _prune(model)
    return model, scale


def fp16_input_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose image input is float16, cast to float32 before the first layer."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    (inp,) = graph_inputs(model)[:1]
    cast_out = inp.name + "_harness_fp32"
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == inp.name:
                node.input[i] = cast_out
    model.graph.node.insert(0, helper.make_node("Cast", [inp.name], [cast_out], to=onnx.TensorProto.FLOAT,
                                                name="harness_input_cast"))
    inp.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    return model


def _prune(model: onnx.ModelProto) -> None:
    """Remove nodes (and initializers) no output depends on, e.g. the dropped Softmax and an old ArgMax."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    dropped = {i.name for i in graph.initializer if i.name not in needed}
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    # Old IR versions also list initializers among the graph inputs: drop those entries with their initializers.
    kept_inputs = [i for i in graph.input if i.name not in dropped]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    vis = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(vis)
