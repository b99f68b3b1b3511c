"""A run over 0 samples (an `--allow_missing` array of an empty folder) is refused with a message, never handed to
LoadGen, where both SUTs segfault on it (issue 19)."""
from types import SimpleNamespace

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.loadgen import scenario
from harness.loadgen.sut import QSL


def test_qsl_over_zero_samples_is_refused():
    with pytest.raises(HarnessError, match="holds 0 samples: there is nothing to run.*--allow_missing"):
        QSL(np.zeros((0, 3, 8, 8), np.float32), 1024)


def test_run_scenario_refuses_an_array_of_zero_rows(monkeypatch, tmp_path):
    empty = SimpleNamespace(array=np.zeros((0, 3, 8, 8), np.int8), path=str(tmp_path / "int8_linear.npy"),
                            skipped={"a.JPEG": "missing", "b.JPEG": "missing"}, labels=None)
    monkeypatch.setattr(scenario, "load_preprocessed", lambda *a, **k: empty)
    monkeypatch.setattr(scenario, "preprocessed_dir", lambda rc: str(tmp_path))
    rc = SimpleNamespace(options=lambda: None, verify=False)
    backend = SimpleNamespace(preprocessed_format=lambda options: "int8_linear")
    image_map = SimpleNamespace(path="/data/val_map.txt")
    with pytest.raises(HarnessError, match=r"int8_linear.npy holds 0 samples: every image of /data/val_map.txt "
                                           r"was skipped \(2 under --allow_missing\)"):
        scenario._load_data(rc, None, backend, {}, image_map)
