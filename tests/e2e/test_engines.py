"""Engines and calibration outputs prove their inputs (issue 11): engine names carry the model identity under
--model_path, a run refuses an engine whose build record differs from the current model, calibration and config,
int8 builds refuse a Q/DQ model from an interrupted calibration or from another FP32 model, and a registry model
file is md5-checked again."""
import json
import os
import shutil

import pytest

from conftest import run_main
from harness.core import paths
from harness.backends import base as backend_base
from harness.core import storage as artifacts
from harness.artifacts import calibration, engines
from harness.backends.base import Backend
from harness.core.errors import HarnessError
from resnet50 import model_files
from resnet50.models import get_model


@pytest.fixture(autouse=True)
def _digest_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(artifacts.DIGEST_CACHE_ENV, str(tmp_path / "digests"))


class FakeBackend(Backend):
    """A CPU backend whose "engine" is any file: only names, inputs and records matter here."""
    name = "onnxruntime"

    def versions(self):
        return {"fake": "1"}


def _model(tmp_path, name="m.onnx", content=b"fp32 weights"):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _settings(**kw):
    return dict({"scenario": "Offline", "precision": "fp32", "batch_size": 8}, **kw)


def _build(tmp_path, backend, settings, spec, fp32):
    """What generate_engines writes: the engine and its record."""
    engine = str(tmp_path / "engine.onnx")
    open(engine, "wb").write(b"engine")
    engines.write_record(engine, engines.build_record(engines.engine_inputs(backend, settings, spec, fp32), settings,
                                                      backend.versions()))
    return engine


def test_engine_names_carry_the_model_identity_under_model_path(tmp_path):
    spec = get_model("efficientnet-lite0")
    assert engines.model_identity(spec, None) == "efficientnet-lite0"
    assert engines.model_identity(spec, spec.default_path) == "efficientnet-lite0"
    a, b = _model(tmp_path, "a.onnx", b"one"), _model(tmp_path, "b.onnx", b"two")
    ia, ib = engines.model_identity(spec, a), engines.model_identity(spec, b)
    assert ia.startswith("efficientnet-lite0-md5_") and len(ia) == len("efficientnet-lite0-md5_") + 8 and ia != ib
    assert engines.engine_name(ia, "Offline", "cpu", 8, "fp32", "default", ".onnx") != \
        engines.engine_name(spec.key, "Offline", "cpu", 8, "fp32", "default", ".onnx")
    with pytest.raises(HarnessError, match="nonexistent.onnx does not exist \\(--model_path\\)"):
        engines.model_identity(spec, str(tmp_path / "nonexistent.onnx"))


def test_a_run_refuses_an_engine_built_from_another_model(tmp_path):
    spec, backend, settings = get_model("efficientnet-lite0"), FakeBackend(), _settings()
    fp32 = _model(tmp_path)
    engine = _build(tmp_path, backend, settings, spec, fp32)
    engines.check_engine_current(engine, backend, settings, spec, fp32)            # current: fine
    os.remove(fp32)
    _model(tmp_path, content=b"other weights")                                      # the model file replaced
    with pytest.raises(HarnessError) as e:
        engines.check_engine_current(engine, backend, settings, spec, fp32)
    assert f"{engine} is stale" in str(e.value) and f"model ({fp32})" in str(e.value)
    assert "make generate_engines" in str(e.value)


def test_an_engine_file_replaced_by_another_is_refused_and_not_up_to_date(tmp_path):
    """Another valid engine copied over this config's engine (same size, mtime restored, as `cp -p` would): the
    record's inputs still match, the engine's md5 does not (the ctime in the digest cache's stamp re-reads it)."""
    spec, backend, settings = get_model("efficientnet-lite0"), FakeBackend(), _settings()
    fp32 = _model(tmp_path)
    engine = _build(tmp_path, backend, settings, spec, fp32)
    record = engines.build_record(engines.engine_inputs(backend, settings, spec, fp32), settings, backend.versions())
    assert engines.is_up_to_date(engine, record)
    engines.check_engine_current(engine, backend, settings, spec, fp32)             # caches the engine's md5
    st = os.stat(engine)
    open(engine, "r+b").write(b"ENGINE")                                            # another engine, same size
    os.utime(engine, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(HarnessError) as e:
        engines.check_engine_current(engine, backend, settings, spec, fp32)
    assert f"{engine} is not the engine that was built under this name" in str(e.value)
    assert "make generate_engines" in str(e.value) and "--overwrite" in str(e.value)
    assert not engines.is_up_to_date(engine, record)                               # generate_engines rebuilds it
    engines.write_record(engine, record)                                            # as after that rebuild
    engines.check_engine_current(engine, backend, settings, spec, fp32)


def test_a_run_refuses_an_engine_of_other_build_settings_or_without_record(tmp_path):
    spec, backend = get_model("efficientnet-lite0"), FakeBackend()
    fp32 = _model(tmp_path)
    engine = _build(tmp_path, backend, _settings(), spec, fp32)
    with pytest.raises(HarnessError, match="config batch_size: built 8, now 16"):
        engines.check_engine_current(engine, backend, _settings(batch_size=16), spec, fp32)
    engines.remove_record(engine)                                                   # as an interrupted build
    with pytest.raises(HarnessError, match="no readable build record .* interrupted"):
        engines.check_engine_current(engine, backend, _settings(), spec, fp32)
    with pytest.raises(HarnessError, match="No engine at"):
        engines.check_engine_current(str(tmp_path / "none.onnx"), backend, _settings(), spec, fp32)


def test_nonexistent_model_path_is_an_error_for_every_backend(tmp_path):
    spec = get_model("efficientnet-lite0")
    null = FakeBackend()
    null.name = "null"
    with pytest.raises(HarnessError, match="does not exist \\(--model_path\\)"):
        engines.check_engine_current(str(tmp_path / "e"), null, _settings(), spec, str(tmp_path / "nonexistent.onnx"))


def test_run_harness_with_a_nonexistent_model_path():
    r = run_main("--action=run_harness", "--system_name=CPU", "--backend=null", "--model_path=/nonexistent.onnx",
                 "--fast")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "/nonexistent.onnx does not exist (--model_path)" in r.stderr


def _calibrated(tmp_path, backend="onnxruntime"):
    """A calibration as calibrate() leaves it: the Q/DQ model and the record listing the FP32 model's md5 and the
    outputs' md5s."""
    fp32 = _model(tmp_path)
    qdq = calibration.quantized_model_path(fp32, backend)
    open(qdq, "wb").write(b"qdq from fp32 weights")
    p = calibration.paths(fp32, "entropy")
    os.makedirs(os.path.dirname(p["record"]), exist_ok=True)
    record = {"ranges": {"model_md5": artifacts.file_digest(fp32), "method": "entropy"},
              "outputs": {f"qdq_{backend}": artifacts.file_digest(qdq)}}
    json.dump(record, open(p["record"], "w"))
    return fp32, qdq, p["record"]


def test_int8_build_checks_the_calibration(tmp_path):
    spec, backend = get_model("efficientnet-lite0"), FakeBackend()
    fp32, qdq, record = _calibrated(tmp_path)
    settings = _settings(precision="int8")
    inputs = engines.engine_inputs(backend, settings, spec, fp32)
    assert inputs["model"] == qdq and inputs["fp32_model"] == fp32 and inputs["calibration_record"] == record
    calibration.check_calibration_current(fp32, backend.name, inputs, spec.key)     # current: fine

    os.remove(fp32)
    _model(tmp_path, content=b"new fp32 weights")                                   # the FP32 model replaced
    with pytest.raises(HarnessError) as e:
        calibration.check_calibration_current(fp32, backend.name, inputs, spec.key)
    assert "the model changed since calibration" in str(e.value) and "make calibrate" in str(e.value)


def test_int8_build_refuses_the_qdq_model_of_an_interrupted_calibration(tmp_path):
    spec, backend = get_model("efficientnet-lite0"), FakeBackend()
    fp32, qdq, record = _calibrated(tmp_path)
    inputs = engines.engine_inputs(backend, _settings(precision="int8"), spec, fp32)
    os.remove(record)                                      # calibrate() removes it first and writes it last
    with pytest.raises(HarnessError, match="never completed .* \\(or was interrupted\\)"):
        calibration.check_calibration_current(fp32, backend.name, inputs, spec.key)
    fp32, qdq, record = _calibrated(tmp_path / "again" if os.makedirs(tmp_path / "again") is None else None)
    open(qdq, "wb").write(b"a Q/DQ model from some other calibration")
    with pytest.raises(HarnessError, match="is not the file that calibration .* wrote"):
        calibration.check_calibration_current(fp32, backend.name, inputs | {"model": qdq}, spec.key)


def test_implicit_int8_cache_of_another_model_is_refused(tmp_path):
    fp32 = _model(tmp_path)
    inputs = {"model": fp32, "calibration_cache": paths.calibration_cache_path("efficientnet-lite0")}
    with pytest.raises(HarnessError, match="belongs to another model file"):
        calibration.check_calibration_current(fp32, "tensorrt", inputs, "efficientnet-lite0")
    calibration.check_calibration_current(fp32, "tensorrt", inputs, "efficientnet-lite0", explicit_cache=True)


def test_generate_engines_refuses_int8_after_an_interrupted_calibration(tmp_path):
    fp32, qdq, record = _calibrated(tmp_path)
    os.remove(record)
    r = run_main("--action=generate_engines", "--system_name=CPU", "--model=efficientnet-lite0",
                 f"--model_path={fp32}", "--precision=int8")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "No calibration record" in r.stderr and "make calibrate" in r.stderr


def test_registry_model_md5_is_checked_again(tmp_path, monkeypatch):
    spec = get_model("resnet50")
    assert spec.md5
    fake = get_model("resnet50").__class__(**{**spec.__dict__, "file_name": "resnet50_v1.onnx"})
    monkeypatch.setattr(type(fake), "default_path", property(lambda self: str(tmp_path / self.file_name)))
    path = _model(tmp_path, "resnet50_v1.onnx", b"not the registry's file")
    with pytest.raises(HarnessError) as e:
        model_files.ensure_model(fake)
    assert f"{path}: md5 " in str(e.value) and spec.md5 in str(e.value) and "--overwrite" in str(e.value)
    # Another file under --model_path is the user's: not compared with the registry.
    other = _model(tmp_path, "mine.onnx", b"an experiment")
    assert model_files.ensure_model(fake, other) == other


def test_build_record_and_meta_writes_are_atomic(tmp_path):
    engine = str(tmp_path / "e.plan")
    open(engine, "wb").close()
    engines.write_record(engine, {"a": 1})
    backend_base.write_meta(engine, {"b": 2})
    assert engines.is_up_to_date(engine, {"a": 1}) and backend_base.read_meta(engine) == {"b": 2}
    os.remove(engine)
    assert engines.is_up_to_date(engine, {"a": 1}) is False                         # no engine file
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".partial")]
    shutil.rmtree(tmp_path / "digests", ignore_errors=True)
