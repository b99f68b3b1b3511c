"""harness/core/paths.py: the build/ tree (spelled only there) and run folders."""
import os

from harness.core import paths


def test_repo_root_holds_the_code():
    assert os.path.isfile(os.path.join(paths.REPO_ROOT, "code", "main.py"))
    assert paths.BUILD_DIR == os.path.join(paths.REPO_ROOT, "build")
    assert paths.LOGS_DIR == os.path.join(paths.REPO_ROOT, "build", "logs")
    assert paths.BENCHMARK == "resnet50"


def test_new_run_root_never_reuses_a_folder(tmp_path):
    base = str(tmp_path)
    made = [paths.new_run_root(base) for _ in range(4)]
    assert len(set(made)) == 4
    assert all(os.path.isdir(p) and os.path.dirname(p) == base for p in made)
    assert all(os.listdir(p) == [] for p in made)


def test_new_run_root_suffix_and_numbering(tmp_path, monkeypatch):
    monkeypatch.setattr(paths.time, "strftime", lambda fmt: "2026.01.02-03.04.05")   # one second for every call
    names = [os.path.basename(paths.new_run_root(str(tmp_path))) for _ in range(3)]
    assert names == ["2026.01.02-03.04.05", "2026.01.02-03.04.05-2", "2026.01.02-03.04.05-3"]
    names = [os.path.basename(paths.new_run_root(str(tmp_path), "int8")) for _ in range(2)]
    assert names == ["2026.01.02-03.04.05-int8", "2026.01.02-03.04.05-int8-2"]


def test_scenario_and_measurements_dirs():
    assert paths.scenario_dir("/r", "CPU-x-2c", "Offline") == os.path.join("/r", "CPU-x-2c", "resnet50", "Offline")
    assert paths.measurements_dir("T4x1", "Server") == os.path.join(paths.REPO_ROOT, "measurements", "T4x1",
                                                                    "resnet50", "Server")


def test_engine_and_calibration_paths():
    assert paths.engine_dir("T4x1", "Offline") == os.path.join(paths.REPO_ROOT, "build", "engines", "T4x1",
                                                               "resnet50", "Offline")
    assert paths.engine_dir("T4x1", "Offline", base="/e") == os.path.join("/e", "T4x1", "resnet50", "Offline")
    assert paths.calibration_cache_path("resnet50") == os.path.join(paths.REPO_ROOT, "build", "models", "resnet50",
                                                                    "calibration", "entropy.cache")
    assert paths.calibration_cache_path("m", "minmax", "/b") == os.path.join("/b", "m", "calibration", "minmax.cache")


def test_the_build_tree():
    build = os.path.join(paths.REPO_ROOT, "build")
    assert paths.BUILD_DIR == build
    assert paths.LOGS_DIR == os.path.join(build, "logs")
    assert paths.DIGEST_CACHE_DIR == os.path.join(build, "cache", "digests")
    assert paths.model_file("resnet50", "m.onnx") == os.path.join(build, "models", "resnet50", "m.onnx")
    assert paths.calibration_cache_path("resnet50") == os.path.join(build, "models", "resnet50", "calibration",
                                                                    "entropy.cache")
    assert paths.engine_dir("S", "Offline") == os.path.join(build, "engines", "S", "resnet50", "Offline")
    assert paths.timing_cache_path("S") == os.path.join(build, "engines", "S", "timing.cache")
    assert paths.measurements_dir("S", "Server") == os.path.join(paths.REPO_ROOT, "measurements", "S", "resnet50",
                                                                 "Server")


def test_no_other_module_joins_the_build_folder():
    """Only core/paths.py spells `"build"` as a path part."""
    offenders = []
    for folder in ("harness", "resnet50"):
        for base, _, files in os.walk(os.path.join(paths.REPO_ROOT, "code", folder)):
            for name in files:
                path = os.path.join(base, name)
                if not name.endswith(".py") or path.endswith(os.path.join("core", "paths.py")):
                    continue
                rel = os.path.relpath(path, os.path.join(paths.REPO_ROOT, "code"))
                with open(path) as f:
                    if '"build"' in f.read():
                        offenders.append(rel)
    assert offenders == []
