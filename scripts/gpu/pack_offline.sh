#!/usr/bin/env bash
# On a host with internet: gather what scripts/gpu/bench_torch.sh and tune_torch.sh need on a GPU host without
# internet into git-excluded folders (.whl/: the LoadGen wheel for Python 3.12; .devdata/: val-1300 and the ONNX).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${MLPERF_SHARED_DIR:-../shared}
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.whl/' "$EXCLUDE" || echo '/.whl/' >> "$EXCLUDE"
grep -qx '/.devdata/' "$EXCLUDE" || echo '/.devdata/' >> "$EXCLUDE"
mkdir -p .whl .devdata
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  -d .whl mlcommons-loadgen==6.0.17
cp -r "$SHARED/data/imagenet/val-1300" .devdata/
cp "$SHARED/data/imagenet/val_map_1300.txt" .devdata/
make download_model RUN_ARGS="--model=efficientnet-lite0"
cp build/models/efficientnet-lite0/efficientnet_lite0.onnx .devdata/
du -sh .whl .devdata
