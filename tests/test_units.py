"""Graph surgery, the work queue, image maps and the preprocessing recipe, without LoadGen."""
import os
import threading
import time

import numpy as np
import onnx
import pytest

from conftest import SAMPLES_250, VAL_1300
from harness import onnx_graph
from harness.errors import HarnessError
from harness.sut import WorkQueue
from resnet50 import imagenet
from resnet50 import preprocessing
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


def test_work_queue_splits_offline_chunks_into_batches():
    q = WorkQueue()
    q.put(list(range(10)), np.arange(10))
    sizes = []
    for _ in range(3):
        ids, idx = q.take(4)
        sizes.append(len(ids))
        assert list(ids) == idx.tolist()
    assert sizes == [4, 4, 2]


def test_work_queue_server_batching_waits_at_most_the_timeout():
    q = WorkQueue()
    q.put([1], np.array([1]))
    threading.Timer(0.01, lambda: q.put([2], np.array([2]))).start()
    start = time.monotonic()
    ids, idx = q.take(8, timeout_s=0.2)
    waited = time.monotonic() - start
    assert list(ids) == [1, 2] and 0.15 < waited < 1.0   # gathered the late sample, gave up at the timeout
    q.close()
    assert q.take(8) is None


def test_read_map_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.JPEG 1\nb.JPEG one two\n")
    with pytest.raises(HarnessError, match="bad.txt:2"):
        imagenet.read_map(str(bad))
    nolabel = tmp_path / "cal.txt"
    nolabel.write_text("a.JPEG\n")
    assert imagenet.read_map(str(nolabel), need_labels=False).labels is None
    with pytest.raises(HarnessError, match="has no label"):
        imagenet.read_map(str(nolabel))
    with pytest.raises(HarnessError, match="does not exist"):
        imagenet.read_map(str(tmp_path / "missing.txt"))


def test_resnet50_recipe_by_hand():
    """A flat colour comes out as colour - mean on every pixel; the shorter side goes to 256, then a centre 224."""
    img = np.zeros((300, 400, 3), np.uint8)
    img[:] = (200, 100, 50)
    out = imagenet.apply_recipe(img, "mlperf_resnet50")
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [200 - 123.68, 100 - 116.78, 50 - 103.94], atol=1e-4)
    # A left/right split: the crop of a 300x400 image resized to 256x341 keeps columns 58..281 of the resized one.
    img[:, :200] = 0
    out = imagenet.apply_recipe(img, "mlperf_resnet50")
    boundary = 341 / 2 - 58          # the split's position inside the crop, in resized pixels
    assert out[0, 100, int(boundary) - 3] == pytest.approx(-123.68, abs=1e-3)
    assert out[0, 100, int(boundary) + 3] == pytest.approx(200 - 123.68, abs=1e-3)


def test_resnet50_recipe_pinned_on_a_real_image():
    """Pinned values on a real full-size image (hand-checked once against the reference's arithmetic)."""
    path = os.path.join(SAMPLES_250, sorted(os.listdir(SAMPLES_250))[0])
    out = imagenet.preprocess_file(path, "mlperf_resnet50")
    assert out.shape == (3, 224, 224)
    rgb = imagenet.load_rgb(path)
    import cv2
    h, w = rgb.shape[:2]
    nh, nw = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    ref = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = int((nh - 224) / 2), int((nw - 224) / 2)
    ref = ref[top:top + 224, left:left + 224].astype(np.float32) - np.array([123.68, 116.78, 103.94], np.float32)
    np.testing.assert_array_equal(out, ref.transpose(2, 0, 1))


def test_preprocess_refuses_missing_images_unless_allowed(tmp_path):
    from resnet50.models import get_model
    names = sorted(os.listdir(VAL_1300))[:3]
    m = tmp_path / "map.txt"
    m.write_text("".join(f"{n} 1\n" for n in names) + "ILSVRC2012_val_99999999.JPEG 3\n")
    spec = get_model("efficientnet-lite0")
    with pytest.raises(HarnessError, match=r"1 of 4 images .* missing .*ILSVRC2012_val_99999999.JPEG"):
        preprocessing.preprocess(spec, imagenet.read_map(str(m)), VAL_1300, str(tmp_path / "p"), progress=False)
    npy = preprocessing.preprocess(spec, imagenet.read_map(str(m)), VAL_1300, str(tmp_path / "p"), allow_missing=True,
                              progress=False).paths["fp32_nchw"]
    data = preprocessing.load_preprocessed(spec, imagenet.read_map(str(m)), str(tmp_path / "p"))
    assert data.array.shape == (3, 3, 224, 224) and data.path == npy
    assert data.manifest["skipped"] == {"ILSVRC2012_val_99999999.JPEG": "missing"}
