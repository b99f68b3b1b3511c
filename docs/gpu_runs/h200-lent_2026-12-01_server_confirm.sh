#!/usr/bin/env bash
export PYTHONUNBUFFERED=1; T0=$(date +%s)
python3 -c "import pybind11; print('device pybind11', pybind11.__version__, pybind11.__file__)"
bash tools/gpu/bench_harness_capacity.sh --seconds 3 --workers 4 --server_start 400000 > $OUT/capacity_console.log 2>&1
grep -v "^\s*$" $OUT/capacity_console.log | tail -42
head -c 1200 /tmp/harness-site/loadgen_native.selftest.json; echo
echo "== capacity done +$(( $(date +%s) - T0 ))s"
export PYTHONPATH=/tmp/harness-site
C="--system_name=H200x1 --config_ver=torch --backend=torch --model=resnet50-synthetic --devices=0 --map_path=.devdata/val_map_1300.txt"
python3 code/main.py --action=download_model --model=resnet50-synthetic >/dev/null
python3 code/main.py --action=preprocess_data $C --data_dir=.devdata/val-1300 --val_only >/dev/null || echo SETUP_FAILED
SUT=$(python3 -c "import sys; sys.path.insert(0,'code'); from harness.sut import native_status as s; m,w=s(); print('native' if m else 'python')")
echo "== torch Server with the $SUT SUT, 3 x 60 s at ${TARGET:-24222} q/s"
for i in 1 2 3; do
  timeout 140 python3 code/main.py --action=run --scenarios=Server $C --sut=$SUT --server_target_qps=${TARGET:-24222} \
    --min_duration=60000 --log_dir=$OUT/c$i 2>&1 | grep -E "VALID|ERROR|rror" | head -3
  echo "   +$(( $(date +%s) - T0 ))s"
done
python3 - <<'EOF'
import glob, json, os
out = os.environ["OUT"]
for i in (1, 2, 3):
    for p in glob.glob(f"{out}/c{i}/*/*/resnet50/Server/summary.json"):
        d = json.load(open(p)); w = d.get("sut_workers") or []
        n = sum(x["samples"] for x in w); c = sum(x.get("complete_s", 0) for x in w)
        g = sum(x.get("gil_s", 0) for x in w); inf = sum(x["infer_s"] for x in w)
        print(f"run {i}", d.get("sut"), d.get("result_validity"), d.get("scheduled_queries_per_second"), "p99",
              d.get("p99_latency_ms"), "samples", n, "infer_s", round(inf, 2), "complete_s", round(c, 4), "gil_s",
              round(g, 4), "harness us/sample", round(1e6 * (c + g) / max(n, 1), 3), "wall", d.get("wall_seconds"))
        json.dump(d, open(f"{out}/c{i}_summary.json", "w"), indent=1)
EOF
echo "== total $(( $(date +%s) - T0 )) s"
