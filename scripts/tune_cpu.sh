#!/usr/bin/env bash
# The CPU config block's values from `make tune` (EfficientNet-Lite0 on ONNX Runtime), FP32 (the block itself) and
# INT8 (its `int8` config_ver), every scenario, one after another, written into configs/ with --tune_write: review
# with `git diff configs/` and commit. Needs `make demo` (model, preprocessed val-1300) and, for INT8,
# `make calibrate RUN_ARGS="--model=efficientnet-lite0 --calib_data_map=<list> --data_dir=<images>"`.
# Run it on a quiet machine: ONNX Runtime's timings collapse when other work shares the cores.
# Usage: bash scripts/tune_cpu.sh [Server,SingleStream,MultiStream,Offline]   (default: all four)
# Environment: CONFIRM_MS (60000; LoadGen's rules: 600000), PROBE_MS (5000), SHARED (../shared).
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${MLPERF_SHARED_DIR:-${SHARED:-../shared}}
ONLY=${1:-Server,SingleStream,MultiStream,Offline}
CONFIRM=${CONFIRM_MS:-60000}
C=(--system_name=CPU --model=efficientnet-lite0 --map_path="$SHARED/data/imagenet/val_map_1300.txt"
   --tune_probe_ms="${PROBE_MS:-5000}" --tune_probe_queries=600 --tune_confirm_ms="$CONFIRM" --tune_write)
INT8=(--precision=int8 --tune_config_ver=int8)
status=0
run() {
  echo "=== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): make tune RUN_ARGS=\"$*\""
  .venv/bin/python code/main.py --action=tune "${C[@]}" "$@"
  local rc=$?
  [ $rc -eq 130 ] && exit 130      # Ctrl-C or kill of a tune ends the whole script
  [ $rc -ne 0 ] && status=1
}
has() { [[ ",$ONLY," == *",$1,"* ]]; }
if has Server; then
  # One single-threaded session per core: no intra-op spinning, two inferences at once, batch 1 (lowest latency).
  SERVER=(--scenarios=Server --batch_size=1 --server_batch_timeout_us=0 --workers=2 --threads=1 --tune_confirm_runs=3)
  run "${SERVER[@]}" --server_target_qps=100
  run "${SERVER[@]}" "${INT8[@]}" --server_target_qps=150
fi
if has SingleStream; then run --scenarios=SingleStream; run --scenarios=SingleStream "${INT8[@]}"; fi
if has MultiStream; then run --scenarios=MultiStream; run --scenarios=MultiStream "${INT8[@]}"; fi
if has Offline; then     # min_query_count 1: LoadGen's 24,576 samples would take 150 s at FP32 on 2 cores
  run --scenarios=Offline --min_query_count=1; run --scenarios=Offline "${INT8[@]}" --min_query_count=1
fi
echo "=== done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg); review: git diff configs/"
exit $status
