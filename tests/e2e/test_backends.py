"""The backend registry (code/harness/backends/): a backend is one folder plus one registry line.

The toy backend below is written into a copy of the harness as a new folder, registered with one line, and runs
Offline end to end through code/main.py and the real LoadGen; its option is a flag at once, and reaches the backend
as a field of its typed options (backends/base.py options_class)."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, VAL_MAP_1300
from harness.backends import all_options, backend_info, backend_options, get_backend, registered
from harness.config.flags import CONFIG_KEYS, FLAGS

TOY_INIT = '''"""The toy backend."""
from .options import INFO, OPTIONS, Options  # noqa: F401


def __getattr__(name):
    if name == "BACKEND":
        from .backend import BACKEND
        return BACKEND
    raise AttributeError(name)
'''
TOY_OPTIONS = '''from ..base import BackendInfo, options_class
from harness.core.options import Flag

OPTIONS = (Flag("toy_answer", int, None, "toy backend: the class it answers.", config_key="toy_answer", min=0),)
INFO = BackendInfo("toy", "cpu", ".toy.json", precisions=("fp32",), build_keys=("toy_answer",),
                   framework="toy", reads_model=False)
Options = options_class("ToyOptions", OPTIONS)
'''
TOY_BACKEND = '''import json
import os

import numpy as np

from ..base import Backend, Runner
from .options import INFO, Options


class ToyRunner(Runner):
    def __init__(self, answer):
        self.answer = answer

    def infer(self, batch):
        return np.full(len(batch), self.answer, dtype=np.int64)


class ToyBackend(Backend):
    info = INFO
    options_type = Options

    def build(self, request):
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        with open(request.engine_path, "w") as f:
            json.dump({"toy": True}, f)
        return request.engine_path

    def load(self, engine_path, device, options):
        return ToyRunner(int(options.toy_answer or 0))


BACKEND = ToyBackend()
'''


def test_every_backend_declares_what_it_is_and_reads():
    for name in registered():
        info = backend_info(name)
        assert info.name == name == get_backend(name).name
        assert info.device_kind in ("cpu", "gpu") and info.precisions
        for option in backend_options(name):
            assert option in FLAGS and CONFIG_KEYS[option.config_key] is option
        assert set(info.build_keys) <= set(CONFIG_KEYS), name
    assert {o.name for o in all_options()} >= {"threads", "devices", "torch_compile", "input_format", "null_label"}


def test_each_backend_reads_a_frozen_typed_options_object():
    """Every backend's Options is generated from its OPTIONS: the common run values, then one field per option,
    typed from its Flag, default None; from_values takes flat settings and ignores other keys."""
    from typing import Optional
    from harness.backends import make_options, options_type
    from harness.backends.base import RunOptions
    for name in registered():
        cls = options_type(name)
        assert issubclass(cls, RunOptions) and get_backend(name).options_type is cls
        names = [f.name for f in dataclasses.fields(cls)]
        common = [f.name for f in dataclasses.fields(RunOptions)]
        assert names == common + [o.config_key for o in backend_options(name)], name
    fields = {f.name: f for f in dataclasses.fields(options_type("tensorrt"))}
    assert fields["use_graphs"].type == Optional[bool] and fields["gpu_copy_streams"].type == Optional[int]
    assert fields["warmup_duration"].type == Optional[float] and fields["plugins"].type == Optional[str]
    assert fields["use_graphs"].default is None
    options = make_options("onnxruntime", {"threads": 3, "precision": "int8", "batch_size": 8, "model": "resnet50",
                                           "system_id": "CPU", "spin": None, "workers": 2})
    assert (options.threads, options.spin, options.precision, options.batch_size, options.model_key,
            options.system_id) == (3, None, "int8", 8, "resnet50", "CPU")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.threads = 1
    assert make_options("null", {}).batch_size == 1 and make_options("null", {}).null_label is None


@pytest.mark.slow
def test_a_toy_backend_is_one_folder_and_one_registry_line(prep_dir, tmp_path):
    repo = tmp_path / "repo"
    for part in ("code", "configs", "data_maps"):
        shutil.copytree(os.path.join(ROOT, part), repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    toy = repo / "code" / "harness" / "backends" / "toy"
    toy.mkdir()
    (toy / "__init__.py").write_text(TOY_INIT)
    (toy / "options.py").write_text(TOY_OPTIONS)
    (toy / "backend.py").write_text(TOY_BACKEND)
    registry = repo / "code" / "harness" / "backends" / "__init__.py"
    text = registry.read_text()
    line = '    "null": _null,\n'
    assert line in text
    imports = "from harness.backends import torch as _torch\n"
    assert imports in text
    registry.write_text(text.replace(line, line + '    "toy": _toy,\n')
                        .replace(imports, imports + "from harness.backends import toy as _toy\n"))

    main = str(repo / "code" / "main.py")
    help_text = subprocess.run([sys.executable, main, "--help"], capture_output=True, text=True).stdout
    assert "--toy_answer" in help_text
    log_dir = tmp_path / "logs"
    result = subprocess.run([sys.executable, main, "--action=run", "--backend=toy", "--toy_answer=7",
                             "--system_name=CPU", "--model=efficientnet-lite0", f"--map_path={VAL_MAP_1300}",
                             f"--preprocessed_data_dir={prep_dir}", f"--log_dir={log_dir}", "--scenarios=Offline",
                             "--min_duration=300", "--offline_expected_qps=20000"],
                            capture_output=True, text=True, cwd=str(repo), timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (stamp,) = os.listdir(log_dir)
    with open(log_dir / stamp / "CPU" / "resnet50" / "Offline" / "summary.json") as f:
        summary = json.load(f)
    assert summary["result_validity"] == "VALID" and summary["fingerprint"]["backend"] == "toy"
    assert summary["settings"]["toy_answer"] == 7
    assert summary["engine"].endswith(".toy.json") and str(repo) in summary["engine"]


def test_onnxruntime_spin_reaches_the_session(monkeypatch):
    """--spin / the config key `spin` (off for latency scenarios on few cores: spinning intra-op threads starve
    LoadGen's threads) reaches the session; unset keeps ORT's spinning on (fastest back-to-back batches)."""
    pytest.importorskip("onnxruntime")
    from harness.backends.onnxruntime import backend as ort_backend
    from harness.actions import parse_args
    from harness.config import runconfig
    key = "session.intra_op.allow_spinning"
    assert ort_backend.session_options(2).get_session_config_entry(key) == "1"
    assert ort_backend.session_options(2, False).get_session_config_entry(key) == "0"
    assert ort_backend.session_options(2, True).get_session_config_entry(key) == "1"
    seen = {}
    monkeypatch.setattr(ort_backend, "OrtRunner", lambda path, threads, spin=None: seen.update(t=threads, s=spin))
    monkeypatch.setattr(ort_backend.os.path, "exists", lambda path: True)
    for scenario, argv, spin in (("Offline", [], None),        # the CPU Offline block leaves ORT's default
                                 ("Server", [], False),        # the CPU Server block turns spinning off
                                 ("Server", ["--spin"], True), ("Offline", ["--spin=0"], False)):
        cfg = runconfig.build(parse_args(["--action=run", "--system_name=CPU", f"--scenarios={scenario}"] + argv),
                              scenario, "CPU", "default")
        ort_backend.BACKEND.load("x.onnx", None, cfg.options())
        assert seen == {"t": cfg.settings().get("threads"), "s": spin}, (scenario, argv)
