"""The native build's safety net: native/build.py self-tests the module it built in a child process and records the
outcome next to it; harness/loadgen/sut.py uses the native SUT only with a passed record of that very file and numpy."""
import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "code"))

from harness.core.storage import file_digest  # noqa: E402
from harness.loadgen import sut as sut_module  # noqa: E402
from harness.core.errors import HarnessError  # noqa: E402

needs_native = pytest.mark.skipif(sut_module.native_module() is None,
                                  reason="loadgen_native is not built and self-tested (make venv NATIVE=0)")


def _build_module():
    spec = importlib.util.spec_from_file_location("native_build", os.path.join(ROOT, "native", "build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_module(tmp_path, record=None):
    so = tmp_path / "loadgen_native.cpython-311-x86_64-linux-gnu.so"
    so.write_bytes(b"\x7fELF not really")
    if record is not None:
        rec = {"passed": True, "module": str(so), "module_sha256": file_digest(str(so), "sha256"),
               "numpy": np.__version__, "python": "3.11.7", "pybind11": "2.13.6"}
        rec.update(record)
        (tmp_path / sut_module.SELFTEST_RECORD).write_text(json.dumps(rec))
    return str(so)


def test_a_module_without_a_passed_self_test_record_is_never_used(tmp_path):
    ok, why = sut_module.native_selftest(_fake_module(tmp_path))
    assert not ok and "has no self-test record" in why
    ok, why = sut_module.native_selftest(_fake_module(tmp_path, {"passed": False, "error": "native/selftest.py "
                                                                 "killed by signal 11 (SIGSEGV)"}))
    assert not ok and "FAILED its self-test" in why and "SIGSEGV" in why and sut_module.SELFTEST_RECORD in why
    ok, why = sut_module.native_selftest(_fake_module(tmp_path, {"numpy": "0.0.1"}))
    assert not ok and "self-tested with numpy 0.0.1" in why and np.__version__ in why
    ok, why = sut_module.native_selftest(_fake_module(tmp_path, {"module_sha256": "0" * 64}))
    assert not ok and "is not the file its self-test record" in why
    assert sut_module.native_selftest(_fake_module(tmp_path, {})) == (True, "")


def test_auto_falls_back_to_python_with_a_warning_when_the_self_test_failed(monkeypatch, capsys):
    why = "the installed loadgen_native (/x.so) FAILED its self-test when it was built (native/selftest.py killed " \
          "by signal 11 (SIGSEGV))"
    monkeypatch.setattr(sut_module, "native_status", lambda: (None, why))
    qsl = sut_module.QSL(np.zeros((4, 1), np.float32), 4)
    assert sut_module.make_sut("auto", qsl, [sut_module.Runner()], 1, 0).kind == "python"
    err = capsys.readouterr().err
    assert "WARNING" in err and "FAILED its self-test" in err and "using the Python SUT" in err and "make venv" in err
    with pytest.raises(HarnessError, match="--sut=native: .*FAILED its self-test.*--sut=python"):
        sut_module.make_sut("native", qsl, [], 1, 0)


@pytest.mark.parametrize("body,expect", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "killed by signal 11 (SIGSEGV)"),
    ("raise SystemExit('selftest: Server: the callback failed: boom')", "exit status 1"),
    ("print('no OK line')", "exit status 0"),
])
def test_build_marks_a_module_whose_self_test_crashes_unusable(tmp_path, capsys, body, expect):
    build = _build_module()
    so = _fake_module(tmp_path, {})            # an earlier passed record: replaced, never left behind
    script = tmp_path / "selftest.py"
    script.write_text(body + "\n")
    assert build.selftest(so, np.__version__, dict(os.environ), str(tmp_path), script=str(script)) is False
    record = json.loads((tmp_path / build.SELFTEST_RECORD).read_text())
    assert record["passed"] is False and expect in record["error"]
    assert record["numpy"] == np.__version__ and record["module_sha256"] == file_digest(so, "sha256")
    assert "FAILED its self-test" in capsys.readouterr().err
    ok, why = sut_module.native_selftest(so)
    assert not ok and expect in why


def test_build_records_a_passed_self_test(tmp_path):
    build = _build_module()
    so = _fake_module(tmp_path)
    script = tmp_path / "selftest.py"
    script.write_text(f"import json; print('SELFTEST OK ' + json.dumps({{'module': {so!r}, 'scenarios': []}}))\n")
    assert build.selftest(so, np.__version__, dict(os.environ), str(tmp_path), script=str(script)) is True
    assert sut_module.native_selftest(so) == (True, "")
    other = tmp_path / "other.so"        # the child imported some other loadgen_native: not a pass
    script.write_text(f"import json; print('SELFTEST OK ' + json.dumps({{'module': {str(other)!r}}}))\n")
    assert build.selftest(so, np.__version__, dict(os.environ), str(tmp_path), script=str(script)) is False
    assert "not the module just built" in json.loads((tmp_path / build.SELFTEST_RECORD).read_text())["output_tail"]


@needs_native
def test_the_native_self_test_passes_with_the_installed_module(tmp_path):
    """The self-test itself (2 C++ workers whose first batches arrive at once, the QSL's numpy on LoadGen's
    StartTest thread run from a Python worker thread): what build.py runs, against the module this Python uses."""
    out = subprocess.run([sys.executable, "-X", "faulthandler", os.path.join(ROOT, "native", "selftest.py"),
                          "--duration_ms", "500"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("SELFTEST OK ")][-1]
    result = json.loads(line[len("SELFTEST OK "):])
    assert [s["scenario"] for s in result["scenarios"]] == ["Server", "Offline"]
    assert all(s["samples"] > 0 for s in result["scenarios"])


def test_build_refuses_a_module_that_embeds_libstdcxx(tmp_path, capsys):
    """On the 1xH200 host the toolchain linked libstdc++.a into the module; beside numpy's libstdc++.so.6 LoadGen's
    logging thread then crashed. build.py reads the module's DT_NEEDED and refuses such a build before its
    self-test (the record says why; --sut=auto falls back to the Python SUT)."""
    import _json
    build = _build_module()
    plain_c = getattr(_json, "__file__", None)      # a C extension of the standard library: no libstdc++
    if not plain_c or not plain_c.endswith(".so"):
        pytest.skip("this Python's _json is built in, not an extension module")
    assert not any(n.startswith("libstdc++") for n in build.elf_needed(plain_c))
    assert "static copy of libstdc++" in build.link_problem(plain_c)
    (tmp_path / "x.so").write_bytes(b"not an ELF file")
    assert build.elf_needed(str(tmp_path / "x.so")) == []
    so = _fake_module(tmp_path, {})
    script = tmp_path / "selftest.py"
    script.write_text("raise SystemExit('must not run')\n")
    assert build.selftest(so, np.__version__, dict(os.environ), str(tmp_path), script=str(script),
                          refuse=build.link_problem(plain_c)) is False
    record = json.loads((tmp_path / build.SELFTEST_RECORD).read_text())
    assert record["passed"] is False and record["error"].startswith("not run: it is linked with a static copy")
    assert "must not run" not in record["output_tail"]
    ok, why = sut_module.native_selftest(so)
    assert not ok and "static copy of libstdc++" in why
    assert "FAILED its self-test" in capsys.readouterr().err


@needs_native
def test_the_installed_module_loads_the_shared_libstdcxx():
    build = _build_module()
    module = sut_module.native_module().__file__
    assert "libstdc++.so.6" in build.elf_needed(module) and build.link_problem(module) is None
