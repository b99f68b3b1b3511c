"""Graph surgery on ONNX models, done in plain code so that CPU tests cover it and every backend runs the same graph.

- `top1_graph`: drop a trailing Softmax (argmax is the same on the logits) and make the only output the top-1 index
  (`ArgMax`, int64, shape [N]; TensorRT turns it into a TopK(k=1) layer).
- the batch dimension is made dynamic.
"""
from __future__ import annotations

from typing import Optional

import onnx
from onnx import helper

from .errors import HarnessError

TOP1_OUTPUT = "top1"


def load(path: str) -> onnx.ModelProto:
    try:
        return onnx.load(path)
    except FileNotFoundError:
        raise HarnessError(f"Model file {path} does not exist; run `make download_model` or pass --model_path.") from None
    except Exception as e:  # a truncated or non-ONNX file
        raise HarnessError(f"{path} is not a readable ONNX model ({e}).") from None


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


def top1_graph(model: onnx.ModelProto, output_name: Optional[str] = None) -> onnx.ModelProto:
    """A copy of `model` whose only output is the int64 top-1 index of the class scores."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    float_outputs = [o for o in graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    if output_name:
        chosen = [o for o in graph.output if o.name == output_name]
    else:
        chosen = [o for o in float_outputs if len(o.type.tensor_type.shape.dim) == 2] or float_outputs
    if not chosen:
        raise HarnessError(f"Model {graph.name!r}: no float class-score output among {[o.name for o in graph.output]}.")
    scores = chosen[0].name
    producer = {out: node for node in graph.node for out in node.output}
    node = producer.get(scores)
    if node is not None and node.op_type == "Softmax":  # argmax(softmax(x)) == argmax(x)
        scores = node.input[0]
    _make_batch_dynamic(model)
    graph.node.append(helper.make_node("ArgMax", [scores], [TOP1_OUTPUT], axis=1, keepdims=0, name="harness_top1"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(TOP1_OUTPUT, onnx.TensorProto.INT64, ["batch"]))
    _prune(model)
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
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    vis = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(vis)
