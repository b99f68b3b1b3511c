"""Graph surgery (code/harness/graph/onnx_graph.py)."""

import numpy as np
import onnx
import pytest

from harness.graph import onnx_graph
from harness.core.errors import HarnessError
from resnet50.model_files import build_resnet50_synthetic


def test_top1_graph_matches_argmax_of_the_original(tmp_path):
    import onnxruntime as ort
    path = str(tmp_path / "syn.onnx")
    build_resnet50_synthetic(path)
    model = onnx.load(path)
    top1 = onnx_graph.top1_graph(model)
    assert [o.name for o in top1.graph.output] == [onnx_graph.TOP1_OUTPUT]
    assert not any(n.op_type == "Softmax" for n in top1.graph.node)   # argmax(softmax(x)) == argmax(x)
    x = np.random.default_rng(0).standard_normal((4, 3, 224, 224)).astype(np.float32)
    full = ort.InferenceSession(path).run(None, {"input_tensor:0": x})[0]
    got = ort.InferenceSession(top1.SerializeToString()).run(None, {"input_tensor:0": x})[0]
    assert got.dtype == np.int64 and got.tolist() == full.argmax(1).tolist()


def test_model_input_shape_is_checked(tmp_path):
    path = str(tmp_path / "syn.onnx")
    build_resnet50_synthetic(path)
    with pytest.raises(HarnessError, match=r"expect \[N, 3, 176, 176\]"):
        onnx_graph.check_input(onnx.load(path), path, (3, 176, 176))
    onnx_graph.check_input(onnx.load(path), path, (3, 224, 224))
