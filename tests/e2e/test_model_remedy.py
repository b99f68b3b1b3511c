"""A truncated model file names its remedy, and a full or read-only disk during calibrate keeps its own words."""

import pytest

from conftest import run_main
from harness.actions import parse_args, preprocess_data
from harness.core.errors import HarnessError
from harness.core.storage import StorageError
from resnet50.models import get_model


def test_a_truncated_model_at_generate_engines_says_how_to_fetch_it_again(effnet_path, tmp_path):
    cut = tmp_path / "cut.onnx"
    data = open(effnet_path, "rb").read()
    cut.write_bytes(data[:len(data) // 3])
    result = run_main("--action=generate_engines", "--system_name=CPU", "--model=efficientnet-lite0",
                      "--backend=onnxruntime", "--precision=fp32", "--scenarios=Offline", f"--model_path={cut}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{cut} is not a readable ONNX model" in result.stderr and "truncated" in result.stderr
    assert ('Fetch it again with `make download_model RUN_ARGS="--model=efficientnet-lite0 --overwrite"`, or pass '
            "--model_path=<a complete .onnx file>.") in result.stderr, result.stderr


def test_a_storage_error_during_calibration_preprocessing_is_not_calibration_list_advice(tmp_path, monkeypatch):
    """A read-only build/ (simulated: preprocess raises the StorageError the array writer raises) stays a storage
    error; any other problem of the list still gets the list's advice."""
    cal = tmp_path / "cal.txt"
    cal.write_text("a.JPEG\n")
    args = parse_args(["--action=calibrate"])
    spec = get_model("efficientnet-lite0")

    def read_only(*a, **k):
        raise StorageError("Cannot write build/preprocessed/x.npy.partial: the file system is read-only.")
    monkeypatch.setattr(preprocess_data, "preprocess", read_only)
    with pytest.raises(StorageError) as e:
        preprocess_data._preprocess_calibration(spec, str(cal), str(tmp_path), str(tmp_path), args)
    assert str(e.value) == "Cannot write build/preprocessed/x.npy.partial: the file system is read-only."

    def bad_list(*a, **k):
        raise HarnessError("1 of 1 images could not be preprocessed.")
    monkeypatch.setattr(preprocess_data, "preprocess", bad_list)
    with pytest.raises(HarnessError, match=r"^Calibration list .*cal.txt: 1 of 1 images .* must be complete"):
        preprocess_data._preprocess_calibration(spec, str(cal), str(tmp_path), str(tmp_path), args)
