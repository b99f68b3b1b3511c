#!/usr/bin/env bash
# `make tune` on one H200 with the torch backend, in one device call (run 2026-12-01: 507 s, 26,486 q/s = 86.4% of
# Offline, VALID 3 of 3; docs/gpu_runs/h200-lent_2026-12-01_tune_torch_native.log).
#
#   1. setup: LoadGen from the carried wheel, the ResNet50-v1.5 topology with seeded random weights
#      (--model=resnet50-synthetic, built there: speed does not depend on the weights), val-1300 preprocessed for it;
#   2. Offline, one run of OFFLINE_MS (default 10 s), as scripts/gpu/bench_torch.sh runs it;
#   3. tune for Server from 80% of that Offline rate: bracketing x1.08, bisection to 3%, at most 3 short probes of
#      8 s, then 3 confirming runs of 60 s, all of which must be VALID (a failed one steps the target down 3%);
#   4. a table: Offline, every probe, the target chosen and its share of Offline; results in $OUT.
# Everything prints as it goes (one line per probe). Budget: about 80 s setup + Offline (torch.compile in each
# process costs about 35 s), 3 x 45 s probes, 3 x 95 s confirmations: about 8.5 minutes; the tune is stopped at
# TUNE_LIMIT_S (default 450 s) so the call ends before 10 minutes, and the table then shows what was done.
#
# Carry (made here by `bash scripts/gpu/prepare_capacity.sh` and `bash scripts/gpu/pack_offline.sh`; git-excluded):
#   .whl/      mlcommons-loadgen==6.0.17 wheel for the device's Python 3.12 and its sdist, pybind11, setuptools: the
#              native SUT core is built there first (about 30 s; NATIVE=0 skips it) and --sut=auto uses it
#   .devdata/  val-1300/ (the 1300 JPEGs) and val_map_1300.txt (efficientnet_lite0.onnx is carried but unused here)
# Device tool call: command "bash scripts/gpu/tune_torch.sh", carry [".whl", ".devdata"], kind nvidia-h200,
# timeout_s 600. Options (environment): OFFLINE_MS=10000 TUNE_LIMIT_S=450 CONFIRM_MS=60000 PROBE_MS=8000.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
OUT=${OUT:-build/gpu_tune}
mkdir -p "$OUT"
step() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*"; }

PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -z "${PYTHON:-}" ]; then    # on the GPU host: LoadGen and the native SUT core from .whl/ (scripts/gpu/setup_site.sh)
  step "LoadGen and loadgen_native from .whl/"
  source scripts/gpu/setup_site.sh || exit 1
fi
test -f .devdata/val_map_1300.txt || { echo "no .devdata/val_map_1300.txt (carry .devdata)"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv,noheader 2>/dev/null

# RUN_ARGS_OVERRIDE replaces the system/backend flags (a local smoke test of this script on the null backend:
# PYTHON=.venv/bin/python RUN_ARGS_OVERRIDE="--system_name=CPU --backend=null --model=efficientnet-lite0
#  --map_path=.devdata/val_map_1300.txt" OFFLINE_MS=1000 PROBE_MS=1000 CONFIRM_MS=2000 bash scripts/gpu/tune_torch.sh)
if [ -n "${RUN_ARGS_OVERRIDE:-}" ]; then
  read -r -a COMMON <<< "$RUN_ARGS_OVERRIDE"
else
  COMMON=(--system_name=H200x1 --config_ver=torch --backend=torch --model=resnet50-synthetic --devices=0
          --map_path=.devdata/val_map_1300.txt)
fi
step "setup: model and preprocessed val-1300"
MODEL=$(printf '%s\n' "${COMMON[@]}" | sed -n 's/^--model=//p')
$PY code/main.py --action=download_model --model="$MODEL" || exit 1
$PY code/main.py --action=preprocess_data "${COMMON[@]}" --data_dir=.devdata/val-1300 --val_only || exit 1

step "Offline, ${OFFLINE_MS:-10000} ms"
$PY code/main.py --action=run --scenarios=Offline "${COMMON[@]}" --min_duration="${OFFLINE_MS:-10000}" \
  --log_dir="$OUT/offline" || exit 1
OFFLINE=$($PY -c "
import glob, json
(path,) = glob.glob('$OUT/offline/*/*/resnet50/Offline/summary.json')
print(json.load(open(path))['samples_per_second'])") || exit 1
START_QPS=$($PY -c "print(round(0.8 * $OFFLINE))")
step "Offline: $OFFLINE samples/s; tune Server from $START_QPS q/s (80%)"

timeout --signal=TERM "${TUNE_LIMIT_S:-450}" $PY code/main.py --action=tune --scenarios=Server "${COMMON[@]}" \
  --server_target_qps="$START_QPS" --tune_growth=1.08 --tune_tolerance=0.03 --tune_max_probes=3 --tune_latency_margin=0.85 \
  --tune_probe_ms="${PROBE_MS:-8000}" --tune_confirm_runs=3 --tune_confirm_ms="${CONFIRM_MS:-60000}" \
  --log_dir="$OUT/tune"
RC=$?
step "tune ended (exit $RC)"

$PY - "$OUT" "$OFFLINE" <<'PY'
import glob, json, sys
out, offline = sys.argv[1], float(sys.argv[2])
logs = glob.glob(f"{out}/tune/*/tune/Server/tune_log.jsonl")
entries = [json.loads(line) for path in logs for line in open(path)]
print(f"\n| step | server_target_qps | % of Offline | validity | p99 ms | completed/s | s |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print(f"| Offline | {offline:,.0f} samples/s | 100% | | | | |")
for e in entries:
    if e.get("event") == "probe":
        print(f"| {e['phase']} | {e['value']:,} | {100 * e['value'] / offline:.1f}% | {e['validity']} | "
              f"{e.get('latency_ms')} | {e.get('measured')} | {e.get('seconds')} |")
result = next((e for e in entries if e.get("event") == "result"), None)
confirmed = (result or {}).get("confirmed")
summary = {"offline_samples_per_second": offline, "chosen_server_target_qps": confirmed,
           "share_of_offline": confirmed / offline if confirmed else None,
           "confirming_runs": [e for e in entries if e.get("phase") == "confirm"], "overlay": (result or {}).get("values")}
print(f"\nchosen Server target: {confirmed} q/s = {100 * confirmed / offline:.1f}% of Offline" if confirmed else
      "\nno confirmed Server target")
json.dump(summary, open(f"{out}/tune_torch_summary.json", "w"), indent=1)
PY
step "done"
exit $RC
