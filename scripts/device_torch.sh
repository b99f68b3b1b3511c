#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool runs this from the repo root). Carried paths:
#   .whl/      mlcommons-loadgen for that machine's Python (README of the device tool says how to download it)
#   .devdata/  val-1300/ images, val_map_1300.txt and efficientnet_lite0.onnx (scripts/device_prepare.sh makes it)
# Usage: bash scripts/device_torch.sh [--seconds 10] [--only Offline,raw,Server,SingleStream,MultiStream,accuracy,x2]
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv,noheader
python3 scripts/device_torch.py "$@" 2>&1 | tee "${OUT:-build}/device_torch.log"
