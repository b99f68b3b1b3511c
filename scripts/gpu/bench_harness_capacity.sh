#!/usr/bin/env bash
# On a GPU host without internet (the lead runs it with the device tool, carrying .whl/ from
# scripts/gpu/prepare_capacity.sh): the harness's own capacity with the null backend (LoadGen + SUT, no inference),
# native SUT and Python SUT: Offline samples/s, then the highest VALID Server rate found by a search (doubling from a
# start rate, then bisection), SingleStream p90. Short runs (min_query_count 100): LoadGen's verdicts on such runs,
# not a submission. Prints as it goes; about 5 minutes; the log also goes to $OUT/bench_harness_capacity.log.
#
# Needs python3 (3.12 there) with numpy, pip, and a C++17 compiler if no prebuilt loadgen_native wheel imports.
# Usage: bash scripts/gpu/bench_harness_capacity.sh [--seconds 3] [--workers 4] [--server_start 200000]
set -uo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=3 WORKERS=4 START=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --server_start) START=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
LOG=${OUT:-build}/bench_harness_capacity.log
mkdir -p "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1
t0=$(date +%s)
echo "== host: $(nproc) cores, $(python3 --version), numpy $(python3 -c 'import numpy; print(numpy.__version__)')"
source scripts/gpu/setup_site.sh || exit 1
native_ok=$NATIVE_OK
SUTS=python
[ $native_ok = 1 ] && SUTS=native,python
echo "== ready after $(( $(date +%s) - t0 )) s; SUTs: $SUTS"
COMMON=(--seconds "$SECONDS_PER_RUN" --batch_size 256 --timeout_us 200)
echo "== Offline and SingleStream (alternated), $WORKERS worker(s) for native, 1 for python"
if [ $native_ok = 1 ]; then
  python3 scripts/bench_sut.py "${COMMON[@]}" --suts native --workers "$WORKERS" --only offline,singlestream \
    --rounds 2 --offline_qps native=1e7
fi
python3 scripts/bench_sut.py "${COMMON[@]}" --suts python --workers 1 --only offline,singlestream --rounds 1
echo "== Server search (coalescing on)"
if [ $native_ok = 1 ]; then
  python3 scripts/bench_sut.py "${COMMON[@]}" --suts native --workers "$WORKERS" --only server \
    --server_start "$START" --bisect 4
  python3 scripts/bench_sut.py "${COMMON[@]}" --suts native --workers 1 --only server --server_start "$START" --bisect 2
fi
python3 scripts/bench_sut.py "${COMMON[@]}" --suts python --workers 1 --only server --server_start 50000 --bisect 3
echo "== done in $(( $(date +%s) - t0 )) s"
