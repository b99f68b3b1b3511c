#!/usr/bin/env python3
"""Build and install `loadgen_native` (LoadGen + the native SUT core) into the running Python's environment.

    .venv/bin/python native/build.py                 # what `make venv` runs
    .venv/bin/python native/build.py --sdist FILE    # a carried sdist (machines without PyPI)
    .venv/bin/python native/build.py --wheel_dir DIR # also keep the wheel (to carry to a machine of the same Python)
    python3 native/build.py --sdist FILE --target DIR # install into DIR (pip --target), e.g. on a GPU host

LoadGen's sources are never committed: the sdist of the version pinned in requirements.txt is fetched from PyPI
(`pip download`) or taken from --sdist, and its sha256 must be the one below. Build dependencies: a C++17 compiler,
pybind11 and setuptools (pinned in requirements.txt). About a minute on 2 cores.
"""
import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# mlcommons-loadgen sdists this build accepts: version -> sha256 (PyPI's digest of mlcommons_loadgen-<v>.tar.gz).
SDIST_SHA256 = {"6.0.17": "a2e85d09e3cc0c606f89bfe1fbf97537c8b5b238ae0afbd923ad9c710fcf2ca8"}


def pinned_version() -> str:
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        m = re.search(r"^mlcommons-loadgen==(\S+)", f.read(), re.M)
    if not m:
        sys.exit("native/build.py: requirements.txt pins no mlcommons-loadgen==<version>.")
    return m.group(1)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(version: str, work: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
                    "--no-binary", ":all:", f"mlcommons-loadgen=={version}", "-d", work], check=True)
    found = glob.glob(os.path.join(work, f"mlcommons_loadgen-{version}.tar.gz"))
    if not found:
        sys.exit(f"native/build.py: pip download gave no mlcommons_loadgen-{version}.tar.gz in {work}.")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", help="mlcommons_loadgen-<version>.tar.gz to build from (default: from PyPI)")
    parser.add_argument("--wheel_dir", help="keep the built wheel here")
    parser.add_argument("--no_install", action="store_true", help="build the wheel only (needs --wheel_dir)")
    parser.add_argument("--target", help="install into this folder (pip install --target) instead of the environment")
    opts = parser.parse_args()
    version = pinned_version()
    if version not in SDIST_SHA256:
        sys.exit(f"native/build.py: no sha256 known for mlcommons-loadgen {version} (requirements.txt); add PyPI's "
                 "digest of its sdist to SDIST_SHA256.")
    work = os.path.join(ROOT, "build", "native")
    os.makedirs(work, exist_ok=True)
    sdist = os.path.abspath(opts.sdist) if opts.sdist else fetch_sdist(version, work)
    digest = sha256(sdist)
    if digest != SDIST_SHA256[version]:
        sys.exit(f"native/build.py: {sdist} has sha256 {digest}, expected {SDIST_SHA256[version]} for "
                 f"mlcommons-loadgen {version}. Refusing to build from it.")
    src_parent = os.path.join(work, "src")
    shutil.rmtree(src_parent, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(src_parent, filter="data")
    src = os.path.join(src_parent, f"mlcommons_loadgen-{version}")
    wheel_dir = os.path.abspath(opts.wheel_dir) if opts.wheel_dir else tempfile.mkdtemp(dir=work)
    for stale in [os.path.join(ROOT, "native", "build")] + glob.glob(os.path.join(ROOT, "native", "*.egg-info")):
        shutil.rmtree(stale, ignore_errors=True)   # setuptools reuses objects by source mtime: never stale ones
    env = dict(os.environ, LOADGEN_SRC=src)
    print(f"[native] building loadgen_native from {os.path.basename(sdist)} (sha256 ok) with {sys.executable}",
          flush=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
                    "--no-build-isolation", "-w", wheel_dir, os.path.join(ROOT, "native")], check=True, env=env)
    (wheel,) = glob.glob(os.path.join(wheel_dir, f"loadgen_native-{version}-*.whl"))
    if not opts.no_install:
        where = ["--target", os.path.abspath(opts.target), "--upgrade"] if opts.target else []
        subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
                        "--force-reinstall", *where, wheel], check=True)
        check_env = dict(os.environ)
        if opts.target:
            check_env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(opts.target),
                                                                     os.environ.get("PYTHONPATH")]))
        out = subprocess.run([sys.executable, "-c", "import loadgen_native as m; print(m.__file__)"],
                             capture_output=True, text=True, cwd=work, env=check_env)
        if out.returncode != 0:
            sys.exit(f"native/build.py: the installed module does not import: {out.stderr[-2000:]}")
        print(f"[native] installed {out.stdout.strip()}")
    print(f"[native] wheel: {wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
