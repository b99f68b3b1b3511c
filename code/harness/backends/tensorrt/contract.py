"""The TensorRT ONNX contract: what the graph handed to TensorRT's ONNX parser must look like, checked in plain code
before any build (and by the CPU tests on every graph the harness makes).

The facts come from onnx-tensorrt's `docs/operators.md` for TensorRT 10 (as of its 10.1 GA release, the newest
checked: the opset range 9..20, the support matrix and its per-op restrictions; a later release may allow more) and
TensorRT's `NvInfer.h` (`addDequantize`: the input must be INT8, FP8 or INT4), plus what the harness itself promises
the runner (one int32 top-1 output taken on the logits; the input's dtype and int8 scale as the model registry and
engine metadata say). A violation is named with the node and what to do; nothing is silently rewritten here.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto

from harness.core.errors import HarnessError
from harness.graph.onnx_graph import TOP1_OUTPUT, graph_inputs

TARGET = "TensorRT 10"
OPSET_RANGE = (9, 20)          # operators.md (TensorRT 10.x): "the inclusive range of opset 9 to opset 20"
MAX_TOPK = 3840                # operators.md: TopK's K must be less than 3840

F32, F16, BF16 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16
I32, I64, I8, U8, BOOL = TensorProto.INT32, TensorProto.INT64, TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL
FLOATS = (F32, F16, BF16)
QUANTIZED = tuple(t for t in (I8, getattr(TensorProto, "FLOAT8E4M3FN", None), getattr(TensorProto, "INT4", None))
                  if t is not None)

# The support matrix (types of the data input; for ConstantOfShape and Where: the shape or condition) for the ops a
# classifier graph is made of. An op not listed is reported as outside what this harness has checked against the
# matrix: extend the table from operators.md.
_SHAPE_TYPES = FLOATS + (I32, I64, BOOL)
SUPPORTED: dict[str, tuple[int, ...]] = {
    "Conv": FLOATS, "ConvTranspose": FLOATS, "Gemm": FLOATS, "MatMul": FLOATS,
    "BatchNormalization": FLOATS, "Relu": FLOATS + (I32, I64), "Clip": FLOATS, "Sigmoid": FLOATS,
    "HardSigmoid": FLOATS, "HardSwish": FLOATS, "Tanh": FLOATS, "LeakyRelu": FLOATS,
    "Add": FLOATS + (I32, I64), "Sub": FLOATS + (I32, I64), "Mul": FLOATS + (I32, I64), "Div": FLOATS + (I32, I64),
    "Sum": FLOATS + (I32, I64), "Max": FLOATS + (I32, I64), "Min": FLOATS + (I32, I64),
    "Pow": FLOATS, "Sqrt": FLOATS, "Exp": FLOATS,
    "MaxPool": FLOATS, "AveragePool": FLOATS, "GlobalAveragePool": FLOATS, "GlobalMaxPool": FLOATS,
    "ReduceMean": FLOATS + (I32, I64), "ReduceMax": FLOATS + (I32, I64), "Pad": FLOATS + (I32, I64),
    "Flatten": _SHAPE_TYPES, "Reshape": _SHAPE_TYPES, "Squeeze": _SHAPE_TYPES, "Unsqueeze": _SHAPE_TYPES,
    "Transpose": _SHAPE_TYPES, "Concat": _SHAPE_TYPES, "Identity": _SHAPE_TYPES, "Shape": _SHAPE_TYPES,
    "Gather": _SHAPE_TYPES, "Slice": _SHAPE_TYPES, "Constant": _SHAPE_TYPES, "Dropout": FLOATS,
    "ConstantOfShape": (I64,), "Expand": _SHAPE_TYPES, "Where": (BOOL,), "Equal": FLOATS + (I32, I64),
    "Less": FLOATS + (I32, I64), "Greater": FLOATS + (I32, I64), "Neg": FLOATS + (I32, I64), "Not": (BOOL,),
    "Range": FLOATS + (I32, I64),
    "Cast": FLOATS + (I32, I64, U8, BOOL), "Softmax": FLOATS, "TopK": FLOATS + (I32, I64),
    "QuantizeLinear": FLOATS, "DequantizeLinear": QUANTIZED,
}
# Between a classifier's FC layer and the TopK only ops that keep the values may stand.
_VALUE_KEEPING = ("Reshape", "Flatten", "Squeeze", "Identity")
_FC_OPS = ("Gemm", "MatMul", "Add", "Conv")


def _type_name(t: Optional[int]) -> str:
    return "unknown" if t is None else TensorProto.DataType.Name(t)


def _constant(model: onnx.ModelProto, name: str) -> Optional[np.ndarray]:
    from onnx import numpy_helper
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor that ONNX's shape inference (or the graph itself) can tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:     # a graph inference cannot handle: fall back to what the graph declares
        inferred = model
    types = {}
    for value in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    return types


def _default_opset(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    return 0


def _where(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node {node.name or '(unnamed)'!r}"


def violations(model: onnx.ModelProto, input_dtype: str, input_scale: Optional[float] = None,
               quantization: str = "none", plugin_ops: Union[Sequence[str], bool] = ()) -> list[str]:
    """Everything in `model` that TensorRT 10's ONNX parser would reject, or that breaks what the harness's runner
    expects. `input_dtype` int8/fp16/fp32; `input_scale` the int8 input scale the engine metadata will carry;
    `quantization` explicit (Q/DQ), implicit (calibration cache) or none; `plugin_ops` op types that plugin
    libraries provide (True: plugin libraries are loaded and may provide any op, so unknown ops are not reported)."""
    problems: list[str] = []
    opset = _default_opset(model)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        problems.append(f"opset {opset}: {TARGET}'s ONNX parser takes opsets {OPSET_RANGE[0]} to {OPSET_RANGE[1]} "
                        "(convert the model with onnx.version_converter).")
    types = _tensor_types(model)
    problems += _op_violations(model, types, plugin_ops)
    problems += _qdq_violations(model, types, quantization)
    problems += _input_violations(model, input_dtype, input_scale, quantization)
    problems += _output_violations(model)
    return problems


def _op_violations(model: onnx.ModelProto, types: dict, plugin_ops: Union[Sequence[str], bool]) -> list[str]:
    problems: list[str] = []
    graph = model.graph
    # Every op in the support matrix, with a supported type on its data input.
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED:
            if plugin_ops is True or (not isinstance(plugin_ops, bool) and node.op_type in plugin_ops):
                continue
            problems.append(f"{_where(node)} (domain {node.domain or 'ai.onnx'!r}) is not in the support matrix of "
                            f"onnx-tensorrt for {TARGET} as checked here (backends/tensorrt/contract.py SUPPORTED); "
                            "a plugin op needs its library in --plugins.")
            continue
        if node.op_type == "Constant" or not node.input:
            continue
        t = types.get(node.input[0])
        if t is not None and t not in SUPPORTED[node.op_type]:
            problems.append(f"{_where(node)}: input {node.input[0]!r} is {_type_name(t)}; {TARGET} supports "
                            f"{', '.join(_type_name(x) for x in SUPPORTED[node.op_type])} there.")
    return problems


def _qdq_violations(model: onnx.ModelProto, types: dict, quantization: str) -> list[str]:
    problems: list[str] = []
    graph = model.graph
    # Q/DQ: INT8 (or FP8/INT4) into DequantizeLinear, zero points zero, no INT32 bias Q/DQ.
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for node in qdq:
        data = node.input[0]
        if node.op_type == "DequantizeLinear" and types.get(data) == I32:
            problems.append(f"{_where(node)}: dequantizes the INT32 initializer {data!r}, a bias quantised by ONNX "
                            "Runtime's quantiser (QuantizeBias=True, its default); TensorRT's dequantize input must "
                            "be INT8, FP8 or INT4. Re-run `make calibrate` (the TensorRT form keeps biases float).")
        zero_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if zero_name:
            zero = _constant(model, zero_name)
            if zero is None or zero.any():
                problems.append(f"{_where(node)}: zero point {zero_name!r} is not a constant zero; TensorRT "
                                "quantisation is symmetric (operators.md: zero point must be 0).")
            elif zero.dtype not in (np.int8,) and str(zero.dtype) not in ("float8_e4m3fn", "int4"):
                problems.append(f"{_where(node)}: zero point {zero_name!r} is {zero.dtype}; TensorRT quantises to "
                                "INT8 (or FP8/INT4), not UINT8 (use the TensorRT Q/DQ form of `make calibrate`).")
    if quantization == "explicit" and not qdq:
        problems.append("explicit quantisation, but the graph has no QuantizeLinear/DequantizeLinear nodes.")
    if quantization != "explicit" and qdq:
        problems.append(f"{len(qdq)} Q/DQ nodes in a graph built with quantization={quantization}: TensorRT would "
                        "build it as explicitly quantised and ignore the calibration cache.")
    return problems


def _input_violations(model: onnx.ModelProto, input_dtype: str, input_scale: Optional[float],
                      quantization: str) -> list[str]:
    problems: list[str] = []
    graph = model.graph
    # The input: one image tensor of the engine's dtype; an int8 input goes straight into DequantizeLinear with the
    # scale the metadata carries (the runner quantises samples with it).
    inputs = graph_inputs(model)
    want = {"int8": I8, "fp16": F16, "fp32": F32}[input_dtype]
    if len(inputs) != 1:
        problems.append(f"expected one image input, found {[i.name for i in inputs]}.")
    else:
        inp = inputs[0]
        if inp.type.tensor_type.elem_type != want and not (input_dtype == "int8" and quantization == "implicit"):
            problems.append(f"input {inp.name!r} is {_type_name(inp.type.tensor_type.elem_type)}; the engine "
                            f"metadata says {input_dtype}.")
        if input_dtype == "int8" and quantization == "explicit":
            consumers = [n for n in graph.node if inp.name in n.input]
            if not consumers or any(n.op_type != "DequantizeLinear" or n.input[0] != inp.name for n in consumers):
                problems.append(f"int8 input {inp.name!r} must feed only DequantizeLinear nodes; it feeds "
                                f"{sorted({n.op_type for n in consumers})}.")
            for n in consumers:
                if n.op_type != "DequantizeLinear":
                    continue
                scale = _constant(model, n.input[1])
                if scale is None or scale.size != 1:
                    problems.append(f"{_where(n)}: the int8 input's scale is not one constant.")
                elif input_scale is not None and not np.isclose(float(scale.reshape(-1)[0]), input_scale,
                                                                rtol=1e-6, atol=0):
                    problems.append(f"{_where(n)}: the int8 input's scale is {float(scale.reshape(-1)[0])!r}, but "
                                    f"the samples are quantised with {input_scale!r} (model registry / metadata).")
    return problems


def _output_violations(model: onnx.ModelProto) -> list[str]:
    problems: list[str] = []
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    # The output: one int32 [N] top-1, from a TopK(k=1) on the logits.
    outputs = list(graph.output)
    if len(outputs) != 1 or outputs[0].name != TOP1_OUTPUT or outputs[0].type.tensor_type.elem_type != I32 \
            or len(outputs[0].type.tensor_type.shape.dim) != 1:
        problems.append(f"expected one int32 [N] output {TOP1_OUTPUT!r}, found "
                        f"{[(o.name, _type_name(o.type.tensor_type.elem_type)) for o in outputs]}.")
    topks = [n for n in graph.node if n.op_type == "TopK"]
    if len(topks) != 1:
        problems.append(f"expected one TopK (the top-1), found {len(topks)}.")
    for node in topks:
        k = _constant(model, node.input[1]) if len(node.input) > 1 else None
        k_value = int(k.reshape(-1)[0]) if k is not None and k.size == 1 else next(
            (a.i for a in node.attribute if a.name == "k"), None)
        if k_value != 1:
            problems.append(f"{_where(node)}: K must be a constant 1 (operators.md: an initializer, < {MAX_TOPK}).")
        if any(a.name == "sorted" and a.i != 1 for a in node.attribute):
            problems.append(f"{_where(node)}: `sorted` must be 1 for {TARGET}.")
        name, path = node.input[0], []
        while name in producer and producer[name].op_type in _VALUE_KEEPING:
            path.append(producer[name].op_type)
            name = producer[name].input[0]
        source = producer.get(name)
        if source is None or source.op_type not in _FC_OPS:
            problems.append(f"{_where(node)} is fed by {source.op_type if source else 'a graph input'} "
                            f"({name!r}), not by the logits of the FC layer ({'/'.join(_FC_OPS)}): a Softmax or a "
                            "Q/DQ pair before TopK ranks quantised probabilities, whose ties go to the lowest index.")
    if any(n.op_type in ("Softmax", "LogSoftmax") for n in graph.node):
        problems.append("a Softmax is left in the graph: the top-1 is taken on the logits.")
    return problems


def check(model: onnx.ModelProto, path: str, input_dtype: str, input_scale: Optional[float] = None,
          quantization: str = "none", plugin_ops: Union[Sequence[str], bool] = ()) -> None:
    """Raise a HarnessError that lists every violation of the contract (path: the ONNX file it is about)."""
    problems = violations(model, input_dtype, input_scale, quantization, plugin_ops)
    if problems:
        listed = "\n  - ".join(problems)
        raise HarnessError(f"{path} breaks the {TARGET} ONNX contract (code/harness/backends/tensorrt/contract.py):"
                           f"\n  - {listed}")
