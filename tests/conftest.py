"""Shared fixtures. Tests use the real material in ../shared (ImageNet images, maps) and the real LoadGen."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
IMAGENET = os.path.join(SHARED, "data", "imagenet")
VAL_1300 = os.path.join(IMAGENET, "val-1300")
VAL_MAP_1300 = os.path.join(IMAGENET, "val_map_1300.txt")
SAMPLES_250 = os.path.join(IMAGENET, "samples-250")
SAMPLES_MAP_250 = os.path.join(IMAGENET, "samples_250_map.txt")
MAIN = os.path.join(ROOT, "code", "main.py")


def run_main(*args, cwd=None, timeout=900):
    """code/main.py in a subprocess, as `make` runs it."""
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=timeout)


@pytest.fixture(scope="session")
def imagenet():
    if not os.path.isdir(VAL_1300):
        pytest.fail(f"{VAL_1300} is missing: the tests need the shared ImageNet material beside the checkout "
                    "(../shared) or MLPERF_SHARED_DIR pointing at it.")
    return IMAGENET


@pytest.fixture(scope="session")
def effnet_path():
    """EfficientNet-Lite0 with its real ImageNet weights, exported to build/models once and reused."""
    from resnet50.model_files import ensure_model
    from resnet50.models import get_model
    return ensure_model(get_model("efficientnet-lite0"))


@pytest.fixture(scope="session")
def prep_dir(tmp_path_factory, imagenet, effnet_path):
    """val-1300 preprocessed for EfficientNet-Lite0 into a session folder."""
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    from resnet50.models import get_model
    base = str(tmp_path_factory.mktemp("preprocessed"))
    preprocess(get_model("efficientnet-lite0"), read_map(VAL_MAP_1300), VAL_1300, base, progress=False)
    return base


@pytest.fixture(scope="session")
def val16(tmp_path_factory, imagenet):
    """(map, preprocessed base) of the first 16 images of val-1300 for EfficientNet-Lite0: runs of the null
    backend, which reads no pixels, on real data paths (interruption, exit codes, staging integrity)."""
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    from resnet50.models import get_model
    base = tmp_path_factory.mktemp("val16")
    map_path = base / "map.txt"
    with open(VAL_MAP_1300) as f:
        map_path.write_text("".join(f.readlines()[:16]))
    preprocess(get_model("efficientnet-lite0"), read_map(str(map_path)), VAL_1300, str(base / "prep"), progress=False)
    return str(map_path), str(base / "prep")
