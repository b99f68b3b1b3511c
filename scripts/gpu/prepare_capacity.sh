#!/usr/bin/env bash
# Here (a machine with PyPI), before scripts/gpu/bench_harness_capacity.sh runs on a GPU host without internet: put
# into .whl/ (git-excluded; the device tool carries it) everything that script installs there, for Python 3.12:
#   mlcommons-loadgen 6.0.17 wheel (the Python SUT's LoadGen), its sdist (the native module is built from it there),
#   pybind11 and setuptools wheels (to build it), and, when a python3.12 is found here, a prebuilt loadgen_native
#   wheel (used there if it imports; else the module is built from the sdist).
# Usage: bash scripts/gpu/prepare_capacity.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  -d .whl mlcommons-loadgen==6.0.17
$PY -m pip download -q --no-deps --only-binary=:all: -d .whl pybind11==2.13.6 setuptools==80.9.0
$PY -m pip download -q --no-deps --no-binary=:all: -d .whl mlcommons-loadgen==6.0.17
PY312=${PY312:-python3.12}   # e.g. PY312=~/.pyenv/versions/3.12.1/bin/python3.12
if "$PY312" --version >/dev/null 2>&1; then   # a prebuilt module for the host's Python 3.12 (optional)
  tmp=$(mktemp -d)
  "$PY312" -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --disable-pip-version-check .whl/pybind11-*.whl .whl/setuptools-*.whl
  "$tmp/venv/bin/python" native/build.py --sdist .whl/mlcommons_loadgen-6.0.17.tar.gz --wheel_dir .whl --no_install
  rm -rf "$tmp"
fi
ls -la .whl
