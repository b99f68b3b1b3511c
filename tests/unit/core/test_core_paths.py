"""harness/core/paths.py: the one place the build/ tree is spelled."""
import os

from harness.core import paths


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
    """Only core/paths.py spells `"build"` as a path part (report/ and tune/ are being split elsewhere)."""
    offenders = []
    for folder in ("harness", "resnet50"):
        for base, _, files in os.walk(os.path.join(paths.REPO_ROOT, "code", folder)):
            for name in files:
                path = os.path.join(base, name)
                if not name.endswith(".py") or path.endswith(os.path.join("core", "paths.py")):
                    continue
                rel = os.path.relpath(path, os.path.join(paths.REPO_ROOT, "code"))
                if rel.startswith((os.path.join("harness", "report"), os.path.join("harness", "tune"))):
                    continue
                with open(path) as f:
                    if '"build"' in f.read():
                        offenders.append(rel)
    assert offenders == []
