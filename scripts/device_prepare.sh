#!/usr/bin/env bash
# Here (not on the GPU machine): gather what scripts/device_torch.sh needs into git-excluded folders to carry.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MLPERF_SHARED_DIR:-../shared}
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/.devdata/' .git/info/exclude || echo '/.devdata/' >> .git/info/exclude
mkdir -p .whl .devdata
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  -d .whl mlcommons-loadgen==6.0.17
cp -r "$SHARED/data/imagenet/val-1300" .devdata/
cp "$SHARED/data/imagenet/val_map_1300.txt" .devdata/
make download_model RUN_ARGS="--model=efficientnet-lite0"
cp build/models/efficientnet-lite0/efficientnet_lite0.onnx .devdata/
du -sh .whl .devdata
