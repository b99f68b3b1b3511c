#!/usr/bin/env bash
# The torch backend's figures on any CUDA GPU host (H200, A100, ...): Offline (with the backend's raw loop), Server,
# SingleStream, MultiStream, an accuracy run, and Offline on two GPUs when there are two. Run from anywhere:
#
#   BENCH_DATA=/path/with/val-1300 bash scripts/gpu/bench_torch.sh [--seconds 10] [--only Offline,raw,Server,...]
#
# Needs: Python 3.10+ with torch (a CUDA build), numpy, onnx, opencv (requirements.txt) and LoadGen. LoadGen comes
# from PyPI (`mlcommons-loadgen`, pinned in requirements.txt) unless it is installed already; on a host without
# internet, put its wheel in .whl/ (scripts/gpu/pack_offline.sh gathers the wheel and the images on a host with
# internet). BENCH_DATA holds val-1300/ and val_map_1300.txt (default: .devdata/, else $MLPERF_SHARED_DIR's ImageNet).
#
# The log goes to docs/gpu_runs/<host>_<date>_bench_torch.log (HOST_LABEL overrides the host name) and, when $OUT
# is set, to $OUT too; results.json to $OUT or build/.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if ! $PY -c "import mlperf_loadgen" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    $PY -m pip install -q "$(grep -i '^mlcommons-loadgen==' requirements.txt)" || exit 1
  fi
fi
if [ -z "${BENCH_DATA:-}" ]; then
  if [ -f .devdata/val_map_1300.txt ]; then BENCH_DATA=.devdata
  else BENCH_DATA=${MLPERF_SHARED_DIR:-../shared}/data/imagenet; fi
fi
export BENCH_DATA
test -f "$BENCH_DATA/val_map_1300.txt" || { echo "no $BENCH_DATA/val_map_1300.txt: set BENCH_DATA"; exit 1; }
HOST=${HOST_LABEL:-$(hostname -s 2>/dev/null || echo host)}
LOG=docs/gpu_runs/${HOST}_$(date -u +%Y-%m-%d)_bench_torch.log
mkdir -p docs/gpu_runs
{ date -u; nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv,noheader 2>/dev/null
  $PY scripts/gpu/bench_torch.py "$@" 2>&1; } | tee -a "$LOG"
if [ -n "${OUT:-}" ]; then cp "$LOG" "$OUT/"; fi
echo "log: $LOG"
