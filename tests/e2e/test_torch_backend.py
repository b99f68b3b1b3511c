"""The torch backend's ONNX importer and runner, on the CPU (the same code runs on CUDA GPUs; see
scripts/gpu/bench_torch.py for the GPU runs)."""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import VAL_MAP_1300, run_main
from harness.graph import onnx_graph
from harness.backends.torch.onnx_torch import OnnxModule

torch = pytest.importorskip("torch")   # requirements.txt pins the CPU build; it is always there under `make test`


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _odd_ops_model() -> onnx.ModelProto:
    """Conv + BatchNormalization (folded at import), asymmetric padding, MaxPool, ReduceMean, Reshape with 0,
    Gemm without transB, Sigmoid/Mul (swish) and HardSwish: ops the registry's CNNs use, in one small graph."""
    rng = np.random.default_rng(1)
    init = lambda name, arr: numpy_helper.from_array(arr.astype(np.float32), name)   # noqa: E731
    inits = [init("w1", rng.standard_normal((8, 3, 3, 3)) * 0.3), init("s", rng.uniform(0.5, 1.5, 8)),
             init("b", rng.standard_normal(8)), init("m", rng.standard_normal(8) * 0.1), init("v", rng.uniform(0.5, 2, 8)),
             init("w2", rng.standard_normal((8, 1, 3, 3)) * 0.3), init("fc", rng.standard_normal((8, 10)) * 0.3),
             init("fcb", rng.standard_normal(10)),
             numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[0, 0, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["bn"], epsilon=1e-3),
        helper.make_node("Sigmoid", ["bn"], ["sg"]),
        helper.make_node("Mul", ["bn", "sg"], ["sw"]),
        helper.make_node("MaxPool", ["sw"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["mp", "w2"], ["dw"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("HardSwish", ["dw"], ["hs"]),
        helper.make_node("ReduceMean", ["hs", "axes"], ["gap"], keepdims=1),
        helper.make_node("Reshape", ["gap", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 33, 33])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("which", ["odd_ops", "efficientnet-lite0", "resnet50-synthetic"])
def test_import_matches_onnxruntime(which, effnet_path, tmp_path):
    if which == "odd_ops":
        model, shape = _odd_ops_model(), (3, 3, 33, 33)
    elif which == "efficientnet-lite0":
        model, shape = onnx.load(effnet_path), (2, 3, 224, 224)
    else:
        from resnet50.model_files import build_resnet50_synthetic
        build_resnet50_synthetic(str(tmp_path / "syn.onnx"))
        model, shape = onnx.load(str(tmp_path / "syn.onnx")), (2, 3, 224, 224)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ref = _ort(model, x)
    module = OnnxModule(model).eval()
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
        smaller = module(torch.from_numpy(x[:1])).numpy()      # another batch size: the host-shape cache
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5
    np.testing.assert_allclose(smaller, ref[:1], rtol=1e-4, atol=2e-5)
    if which == "odd_ops":   # the BatchNormalization was folded into the Conv before it
        from harness.backends.torch.onnx_torch import _OPS
        assert all(fn is not _OPS["BatchNormalization"] for kind, (fn, *_) in module.plan if kind == "tensor")
    top1 = OnnxModule(onnx_graph.top1_graph(model)).eval()
    with torch.no_grad():
        assert top1(torch.from_numpy(x)).tolist() == ref.argmax(1).tolist()


def test_unsupported_op_fails_at_import():
    from harness.core.errors import HarnessError
    node = helper.make_node("LRN", ["x"], ["y"], size=3)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    with pytest.raises(HarnessError, match="cannot import ONNX op LRN"):
        OnnxModule(helper.make_model(graph))


@pytest.mark.slow
def test_torch_backend_accuracy_through_loadgen_on_the_cpu(prep_dir, tmp_path):
    """--backend=torch --devices=cpu runs the GPU backend's code on the CPU: same top-1 as ONNX Runtime's FP32."""
    log_dir = tmp_path / "logs"
    common = ["--system_name=CPU", "--model=efficientnet-lite0", f"--map_path={VAL_MAP_1300}",
              f"--preprocessed_data_dir={prep_dir}", "--test_mode=AccuracyOnly", "--batch_size=64"]
    result = run_main("--action=run", "--backend=torch", "--devices=cpu", "--precision=fp32", f"--log_dir={log_dir}",
                      *common)
    assert result.returncode == 0, result.stderr[-3000:]
    (stamp,) = os.listdir(log_dir)
    with open(os.path.join(log_dir, stamp, "CPU", "resnet50", "Offline", "accuracy_summary.json")) as f:
        torch_acc = json.load(f)
    result = run_main("--action=run", f"--log_dir={tmp_path / 'ort'}", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    (stamp,) = os.listdir(tmp_path / "ort")
    with open(os.path.join(tmp_path / "ort", stamp, "CPU", "resnet50", "Offline", "accuracy_summary.json")) as f:
        ort_acc = json.load(f)
    assert abs(torch_acc["top1"] - ort_acc["top1"]) <= 0.3, (torch_acc, ort_acc)
    assert torch_acc["total"] == 1300


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_torch_backend_without_a_gpu_says_so(prep_dir, tmp_path):
    result = run_main("--action=run", "--system_name=CPU", "--backend=torch", "--model=efficientnet-lite0",
                      f"--map_path={VAL_MAP_1300}", f"--preprocessed_data_dir={prep_dir}", f"--log_dir={tmp_path}",
                      "--precision=fp16")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "needs a CUDA GPU" in result.stderr and "--devices=cpu" in result.stderr
