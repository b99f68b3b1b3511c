"""An ONNX importer for PyTorch, for the ops of the registry's CNNs (ResNet50-v1.5, EfficientNet-Lite, MobileNet).

`OnnxModule(model)` is an nn.Module that runs the ONNX graph with torch ops. At import, everything that depends only
on constants is folded (with numpy, through onnx's reference evaluator), BatchNormalization after a Conv is folded
into the Conv's weights, and float constants become buffers (cast to the run's dtype). Shape arithmetic that depends
on the input's shape (Shape -> Gather -> Concat -> Reshape, as PyTorch's exporter writes `x.view(bs, -1)`) runs on
the host once per batch size and is cached, so the forward pass at a given batch size issues only tensor ops: it can
be captured in a CUDA graph or compiled.

Unsupported ops fail at import with the op's name and the node, never at run time.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from harness.core.errors import HarnessError

# Ops evaluated on the host (numpy) when all their inputs are host values.
_HOST_OK = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "ConstantOfShape", "Reshape",
            "Transpose", "Constant", "Identity", "Add", "Sub", "Mul", "Div", "Range", "Size", "Equal", "Where",
            "Expand", "ReduceProd", "Flatten"}


# Ops whose constant inputs are tensor operands (the others read theirs as host parameters: shapes, pads, bounds).
_TENSOR_INPUT_OPS = {"Conv", "Add", "Sub", "Mul", "Div", "Gemm", "MatMul", "BatchNormalization", "Concat", "PRelu"}


def _attrs(node) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _eval_host(node, inputs: list) -> list:
    """Evaluate one node on numpy values with onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator
    names = [f"in{i}" for i in range(len(inputs))]
    feeds = {}
    graph_inputs = []
    renamed = []
    for name, value in zip(names, inputs):
        if value is None:
            renamed.append("")
            continue
        arr = np.asarray(value)
        feeds[name] = arr
        graph_inputs.append(onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape)))
        renamed.append(name)
    outs = [f"out{i}" for i in range(len(node.output))]
    single = onnx.helper.make_node(node.op_type, renamed, outs, domain=node.domain or None, **_attrs(node))
    graph = onnx.helper.make_graph([single], "fold", graph_inputs,
                                   [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                                    for o in outs])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", _eval_host.opset)])
    return list(ReferenceEvaluator(model).run(None, feeds))


_eval_host.opset = 17


def _ints(value) -> list[int]:
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_ints(v) if isinstance(v, (list, tuple)) else [int(v)])
        return out
    if isinstance(value, (int, float)):
        return [int(value)]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _scalar(value) -> float:
    while isinstance(value, (list, tuple)):
        (value,) = value
    return float(value)


def _pad_pairs(pads: list[int]) -> tuple[list[int], bool]:
    """ONNX [b1, b2, e1, e2] for H, W -> F.pad order (W_begin, W_end, H_begin, H_end); and whether symmetric."""
    n = len(pads) // 2
    begins, ends = pads[:n], pads[n:]
    torch_pads = []
    for b, e in zip(reversed(begins), reversed(ends)):
        torch_pads += [b, e]
    return torch_pads, begins == ends


def _fold_constants(nodes: list, consts: dict[str, np.ndarray]) -> list:
    """Constant folding: Constant nodes and nodes whose inputs are all constant become entries of `consts` (computed
    on the host); returns the nodes left."""
    kept = []
    for node in nodes:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"]) \
                if "value" in _attrs(node) else np.asarray(list(_attrs(node).values())[0])
            continue
        if all((not i) or i in consts for i in node.input) and node.op_type not in ("Shape",):
            for name, value in zip(node.output, _eval_host(node, [consts.get(i) if i else None
                                                                  for i in node.input])):
                consts[name] = value
            continue
        kept.append(node)
    return kept


def _fold_batch_norms(kept: list, consts: dict[str, np.ndarray], output_names: list[str]) -> list:
    """Conv + BatchNormalization folding: a Conv with constant weights whose only consumer is a BatchNormalization
    with constant parameters takes the scaled weights and bias (new constants) and the BN's output; the BN goes."""
    consumers: dict[str, list] = {}
    for node in kept:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    folded = set()
    for node in kept:
        if node.op_type != "Conv" or node.input[1] not in consts:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "BatchNormalization" or \
                not all(i in consts for i in users[0].input[1:5]) or node.output[0] in output_names:
            continue
        bn = users[0]
        scale, bias, mean, var = (consts[i].astype(np.float64) for i in bn.input[1:5])
        eps = _attrs(bn).get("epsilon", 1e-5)
        factor = scale / np.sqrt(var + eps)
        w = consts[node.input[1]].astype(np.float64)
        b = consts[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        new_w, new_b = f"{node.output[0]}__w", f"{node.output[0]}__b"
        consts[new_w] = (w * factor.reshape(-1, 1, 1, 1)).astype(np.float32)
        consts[new_b] = ((b - mean) * factor + bias).astype(np.float32)
        del node.input[1:]
        node.input.extend([new_w, new_b])
        node.output[0] = bn.output[0]
        folded.add(id(bn))
    return [n for n in kept if id(n) not in folded]


class OnnxModule(torch.nn.Module):
    def __init__(self, model: onnx.ModelProto, dtype: torch.dtype = torch.float32):
        super().__init__()
        model = onnx.ModelProto.FromString(model.SerializeToString())   # folding edits nodes: never the caller's
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        _eval_host.opset = max(opset, 13)
        self.dtype = dtype
        graph = model.graph
        init_names = {i.name for i in graph.initializer}
        self.input_name = next(i.name for i in graph.input if i.name not in init_names)
        self.output_names = [o.name for o in graph.output]
        consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        kept = _fold_constants(list(graph.node), consts)                  # 1. constant folding
        kept = _fold_batch_norms(kept, consts, self.output_names)          # 2. Conv + BatchNormalization folding
        self._classify(kept, consts, dtype)                                # 3. host vs tensor nodes, buffers
        self.consts = consts
        # Constants that tensor ops read as parameters (shapes, pads, bounds), as plain Python values.
        self.params = {name: value.tolist() for name, value in consts.items() if name not in self._buffers_by_name}
        self._host_cache: dict[tuple, dict[str, np.ndarray]] = {}

    def _classify(self, kept: list, consts: dict[str, np.ndarray], dtype: torch.dtype) -> None:
        """The plan: host nodes (shape arithmetic) vs tensor nodes; float constants used by tensor nodes -> buffers."""
        host_names = set(consts)
        self.plan: list[tuple[str, Any]] = []
        self._buffers_by_name: dict[str, str] = {}
        for node in kept:
            if node.op_type == "Shape" or (node.op_type in _HOST_OK and
                                           all((not i) or i in host_names for i in node.input)):
                host_names.update(node.output)
                self.plan.append(("host", node))
                continue
            if node.op_type not in _OPS:
                raise HarnessError(f"The torch backend cannot import ONNX op {node.op_type} (node {node.name!r}); "
                                   f"supported: {', '.join(sorted(_OPS))}.")
            if node.op_type in _TENSOR_INPUT_OPS:   # their constant inputs are operands: keep them on the device
                for i in node.input:
                    if i in consts and i not in self._buffers_by_name:
                        value = torch.from_numpy(np.array(consts[i]))
                        buf = f"c{len(self._buffers_by_name)}"
                        self.register_buffer(buf, value.to(dtype) if value.is_floating_point() else value)
                        self._buffers_by_name[i] = buf
            self.plan.append(("tensor", (_OPS[node.op_type], tuple(node.input), tuple(node.output), _attrs(node))))

    def _value(self, name: str, env: dict, host: dict):
        if not name:
            return None
        if name in env:
            return env[name]
        if name in self._buffers_by_name:
            return getattr(self, self._buffers_by_name[name])
        if name in host:
            return host[name]
        return self.params[name]

    def forward(self, x: torch.Tensor):
        key = tuple(x.shape)
        host = self._host_cache.get(key)
        fill = host is None
        if fill:
            host = {}
        env = {self.input_name: x}
        for kind, node in self.plan:
            if kind == "host":
                if fill:
                    if node.op_type == "Shape":
                        host[node.output[0]] = np.asarray(self._value(node.input[0], env, host).shape, np.int64)
                    else:
                        args = [host[i] if i in host else self.consts.get(i) if i else None for i in node.input]
                        for name, value in zip(node.output, _eval_host(node, args)):
                            host[name] = value
                continue
            fn, inputs, outputs, attrs = node   # plain Python values: traceable by torch.compile
            out = fn([self._value(i, env, host) for i in inputs], attrs, self)
            if isinstance(out, tuple):
                for name, value in zip(outputs, out):
                    env[name] = value
            else:
                env[outputs[0]] = out
        if fill:
            self._host_cache[key] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in host.items()}
        outs = [env[n] for n in self.output_names]
        return outs[0] if len(outs) == 1 else tuple(outs)


# ---------------------------------------------------------------------------------------------------------------
# Tensor ops. Each takes (inputs, attributes, module); host values arrive as numpy arrays.
def _conv(a, at, m):
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise HarnessError("Conv with auto_pad is not supported by the torch importer; re-export with explicit pads.")
    pads = list(at.get("pads", [0] * 4))
    torch_pads, symmetric = _pad_pairs(pads)
    if not symmetric:
        x = F.pad(x, torch_pads)
        padding = 0
    else:
        padding = tuple(pads[: len(pads) // 2])
    return F.conv2d(x, w, b, tuple(at.get("strides", [1, 1])), padding, tuple(at.get("dilations", [1, 1])),
                    int(at.get("group", 1)))


def _pool(kind):
    def op(a, at, m):
        x = a[0]
        pads = list(at.get("pads", [0] * 4))
        torch_pads, symmetric = _pad_pairs(pads)
        k, s = tuple(at["kernel_shape"]), tuple(at.get("strides", [1, 1]))
        ceil = bool(at.get("ceil_mode", 0))
        if kind == "max":
            if not symmetric:
                x = F.pad(x, torch_pads, value=float("-inf"))
                pads = [0] * 4
            return F.max_pool2d(x, k, s, tuple(pads[:2]), ceil_mode=ceil)
        if not symmetric:
            raise HarnessError("AveragePool with asymmetric pads is not supported by the torch importer.")
        return F.avg_pool2d(x, k, s, tuple(pads[:2]), ceil_mode=ceil,
                            count_include_pad=bool(at.get("count_include_pad", 0)))
    return op


def _clip(a, at, m):
    lo = a[1] if len(a) > 1 and a[1] is not None else at.get("min")
    hi = a[2] if len(a) > 2 and a[2] is not None else at.get("max")
    lo = None if lo is None else _scalar(lo)
    hi = None if hi is None else _scalar(hi)
    if lo == 0.0 and hi == 6.0:
        return F.relu6(a[0])
    return torch.clamp(a[0], lo, hi)


def _as_tensor(v, like: torch.Tensor):
    if isinstance(v, torch.Tensor):
        return v
    return torch.as_tensor(np.asarray(v), device=like.device).to(like.dtype if np.asarray(v).dtype.kind == "f"
                                                                 else torch.int64)


def _binary(fn):
    def op(a, at, m):
        x, y = a
        if not isinstance(x, torch.Tensor):
            x = _as_tensor(x, y)
        if not isinstance(y, torch.Tensor):
            y = _as_tensor(y, x)
        return fn(x, y)
    return op


def _reshape(a, at, m):
    x, shape = a[0], _ints(a[1])
    shape = [x.shape[i] if s == 0 and not at.get("allowzero", 0) else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _axes(a, at, index=1):
    if len(a) > index and a[index] is not None:
        return _ints(a[index])
    return list(at.get("axes", []))


def _squeeze(a, at, m):
    axes = _axes(a, at)
    return a[0].squeeze(tuple(axes)) if axes else a[0].squeeze()


def _unsqueeze(a, at, m):
    x = a[0]
    for axis in sorted(_axes(a, at)):
        x = x.unsqueeze(axis)
    return x


def _reduce_mean(a, at, m):
    axes = _axes(a, at)
    keep = bool(at.get("keepdims", 1))
    return a[0].mean(dim=tuple(axes), keepdim=keep) if axes else a[0].mean()


def _gemm(a, at, m):
    x, w = a[0], a[1]
    c = a[2] if len(a) > 2 else None
    if at.get("transA", 0):
        x = x.t()
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    if at.get("transB", 0) and alpha == 1.0 and beta == 1.0:
        return F.linear(x, w, c)
    y = alpha * (x @ (w.t() if at.get("transB", 0) else w))
    return y if c is None else y + beta * c


def _pad(a, at, m):
    pads = _ints(a[1]) if len(a) > 1 and a[1] is not None else list(at["pads"])
    mode = at.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = _scalar(a[2]) if len(a) > 2 and a[2] is not None else float(at.get("value", 0.0))
    torch_pads, _ = _pad_pairs(pads)
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:   # F.pad wants only the trailing dims that change
        torch_pads = torch_pads[:-2]
    return F.pad(a[0], torch_pads, mode=mode, value=value) if mode == "constant" else F.pad(a[0], torch_pads, mode=mode)


def _argmax(a, at, m):
    return torch.argmax(a[0], dim=int(at.get("axis", 0)), keepdim=bool(at.get("keepdims", 1)))


def _cast(a, at, m):
    to = int(at["to"])
    if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
        return a[0].to(m.dtype)
    return a[0].to(torch.int64 if to == onnx.TensorProto.INT64 else torch.int32)


_OPS: dict[str, Callable] = {
    "Conv": _conv,
    "Relu": lambda a, at, m: F.relu(a[0]),
    "Clip": _clip,
    "Sigmoid": lambda a, at, m: torch.sigmoid(a[0]),
    "HardSigmoid": lambda a, at, m: torch.clamp(a[0] * float(at.get("alpha", 0.2)) + float(at.get("beta", 0.5)), 0, 1),
    "HardSwish": lambda a, at, m: F.hardswish(a[0]),
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda a, at, m: a[0].mean(dim=(2, 3), keepdim=True),
    "ReduceMean": _reduce_mean,
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "Flatten": lambda a, at, m: a[0].flatten(int(at.get("axis", 1))) if int(at.get("axis", 1)) > 0
    else a[0].reshape(1, -1),
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Gemm": _gemm,
    "MatMul": _binary(torch.matmul),
    "Softmax": lambda a, at, m: torch.softmax(a[0], dim=int(at.get("axis", -1))),
    "ArgMax": _argmax,
    "Transpose": lambda a, at, m: a[0].permute(*at["perm"]) if "perm" in at else a[0].permute(
        *reversed(range(a[0].dim()))),
    "Pad": _pad,
    "Concat": lambda a, at, m: torch.cat([_as_tensor(v, next(t for t in a if isinstance(t, torch.Tensor)))
                                          for v in a], dim=int(at["axis"])),
    "Identity": lambda a, at, m: a[0],
    "Dropout": lambda a, at, m: a[0],
    "Cast": _cast,
    "BatchNormalization": lambda a, at, m: F.batch_norm(a[0], a[3], a[4], a[1], a[2], False, 0.0,
                                                        float(at.get("epsilon", 1e-5))),
}
