"""Upper bounds from the machine and LoadGen, checked when the RunConfig is built (before LoadGen starts).

The flag table bounds each number from below (a batch of 0, a negative rate). A number that sizes memory, threads or
LoadGen's schedule also needs an upper bound, or LoadGen and the SUT die inside (std::bad_alloc, a segfault, a
machine swapping for hours). Each bound here comes from what the number sizes:

- LoadGen's schedule (loadgen-notes): Offline issues one query of max(min_query_count, 1.1 x min_duration x
  offline_expected_qps) samples; Server schedules max(min_query_count, server_target_qps x min_duration) queries up
  front; SingleStream min_duration / single_stream_expected_latency_ns queries, MultiStream as many queries of
  multi_stream_samples_per_query samples. Each scheduled sample costs LoadGen and the SUT about
  BYTES_PER_SCHEDULED_SAMPLE bytes, and all of them must fit in SCHEDULE_MEMORY_FRACTION of the machine's memory.
- One batch of the model's input (fp32, C x H x W) must fit in BATCH_MEMORY_FRACTION of the machine's memory.
- Threads (workers, onnxruntime threads, their product, GPU streams) at most THREADS_PER_CORE x the cores.
- performance_sample_count at most the data set (the validation map's lines): LoadGen's QSL must hold that many.

The machine is this one for the actions that start LoadGen here (RUNS_HERE); the others may name another system's
block (generate_conf_files writes every system's user.conf) and are held to the largest host planned for (8 TiB,
512 cores), which still refuses what no machine holds.

A value past its bound is a HarnessError naming where it came from (the flag, or the file + block + key), the value,
the bound and what to do; main.py exits 2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from harness.core.errors import HarnessError
from harness.config.scenarios import LOADGEN_DEFAULT_MIN_DURATION_MS, Scenario

BYTES_PER_SCHEDULED_SAMPLE = 256        # LoadGen's query + sample records and latency slot, the SUT's response slot
SCHEDULE_MEMORY_FRACTION = 0.5
BATCH_MEMORY_FRACTION = 0.25
THREADS_PER_CORE = 16
OFFLINE_SLACK = 1.1                     # LoadGen's Offline query: 1.1 x min_duration x target_qps samples
FP32_BYTES = 4
THREAD_KEYS = ("workers", "threads", "gpu_copy_streams", "gpu_inference_streams")


# The actions that start LoadGen on this machine: their bounds are this machine's. The others (generate_conf_files,
# info, generate_engines, ...) may name another system's block (`make generate_conf_files` writes every system's
# user.conf): they are held to the largest host this harness plans for, which still refuses what no machine holds.
RUNS_HERE = ("run_harness", "run", "run_audit_harness")
LARGEST_HOST_MEMORY = 8 << 40            # 8 TiB
LARGEST_HOST_CORES = 512


def memory_bytes() -> int:
    """This machine's physical memory."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return LARGEST_HOST_MEMORY


def cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Machine:
    memory: int
    cores: int
    name: str                           # how messages name it

    @staticmethod
    def for_action(action: Optional[str]) -> "Machine":
        if action in RUNS_HERE:
            return Machine(memory_bytes(), cores(), "this machine")
        return Machine(LARGEST_HOST_MEMORY, LARGEST_HOST_CORES, "the largest host this harness plans for")


def _gib(n: float) -> str:
    return f"{n / (1 << 30):,.1f} GiB"


def check(sc: Scenario, values: dict, sources: dict, batch: int, input_shape: tuple, map_path: Optional[str],
          min_duration: Optional[int], min_query_count: Optional[int], machine: Machine) -> None:
    """Every upper bound above for one scenario's resolved values; the first broken one raises."""
    def src(key: str) -> str:
        return sources.get(key, key)
    _check_threads(values, src, machine)
    _check_batch(batch, input_shape, src, machine)
    _check_sample_count(values.get("performance_sample_count"), map_path, src)
    _check_schedule(sc, values, src, min_duration, min_query_count, machine)


def _check_threads(values: dict, src: Callable[[str], str], machine: Machine) -> None:
    limit = THREADS_PER_CORE * machine.cores
    for key in THREAD_KEYS:
        value = values.get(key)
        if value is not None and value > limit:
            raise HarnessError(f"{src(key)}={value}: at most {limit} ({THREADS_PER_CORE} x the {machine.cores} cores of "
                               f"{machine.name}); more threads only contend for the cores (and can exhaust the "
                               f"process's threads). Use a value up to {limit}, e.g. {machine.cores}.")
    workers, threads = values.get("workers"), values.get("threads")
    if workers and threads and workers * threads > limit:
        raise HarnessError(f"{src('workers')}={workers} x {src('threads')}={threads}: {workers * threads} threads, "
                           f"more than {limit} ({THREADS_PER_CORE} x the {machine.cores} cores of {machine.name}). Lower "
                           f"workers or threads so that their product is at most {limit}.")


def _check_batch(batch: int, input_shape: tuple, src: Callable[[str], str], machine: Machine) -> None:
    sample = FP32_BYTES
    for n in input_shape:
        sample *= int(n)
    limit = max(1, int(machine.memory * BATCH_MEMORY_FRACTION) // sample)
    if batch > limit:
        raise HarnessError(f"{src('batch_size')}={batch}: one batch of the model's input ({'x'.join(map(str, input_shape))}"
                           f" fp32, {sample:,} bytes a sample) would take {_gib(batch * sample)}; at most "
                           f"{limit:,} fits in {BATCH_MEMORY_FRACTION:.0%} of the "
                           f"{_gib(machine.memory)} of {machine.name}. Use a batch_size up to {limit:,} (a few hundred is plenty).")


def dataset_size(map_path: Optional[str]) -> Optional[int]:
    """The samples of the validation map (its non-empty lines), None when it cannot be read (reported elsewhere)."""
    if not map_path:
        return None
    try:
        with open(map_path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


def _check_sample_count(count: Optional[int], map_path: Optional[str], src: Callable[[str], str]) -> None:
    if count is None:
        return
    size = dataset_size(map_path)
    if size is not None and count > size:
        raise HarnessError(f"{src('performance_sample_count')}={count}: more than the {size:,} samples of the data "
                           f"set ({map_path}); LoadGen's QSL must hold at least performance_sample_count samples. "
                           f"Use at most {size:,} (mlperf.conf's 1024 for ResNet50), or a larger --map_path.")


def _schedule(sc: Scenario, values: dict, duration_s: float) -> tuple[float, Optional[str], float]:
    """(samples LoadGen schedules, the key of the rate or latency behind it, samples per unit of that key's value:
    for a rate the samples it schedules per q/s, for a latency the samples per 1/ns)."""
    key = sc.target_key
    value = values.get(key) if key else None
    if not value:
        return 0.0, None, 0.0
    if sc.one_query:
        per = OFFLINE_SLACK * duration_s
        return per * value, key, per
    if sc.latency_bound:
        per = duration_s * 1e9 * _spq(sc, values)
        return per / value, key, per
    return duration_s * value, key, duration_s


def _check_schedule(sc: Scenario, values: dict, src: Callable[[str], str], min_duration: Optional[int],
                    min_query_count: Optional[int], machine: Machine) -> None:
    duration_ms = min_duration if min_duration is not None else LOADGEN_DEFAULT_MIN_DURATION_MS
    limit = int(machine.memory * SCHEDULE_MEMORY_FRACTION) // BYTES_PER_SCHEDULED_SAMPLE
    samples, key, per = _schedule(sc, values, duration_ms / 1000)
    cap = values.get("max_query_count")
    if cap and not sc.one_query:
        samples = min(samples, float(cap) * _spq(sc, values))       # max_query_count ends the schedule
    room = (f"LoadGen holds every scheduled sample in memory (about {BYTES_PER_SCHEDULED_SAMPLE} bytes each, with "
            f"the SUT's): at most {limit:,} fit in {SCHEDULE_MEMORY_FRACTION:.0%} of the "
            f"{_gib(machine.memory)} of {machine.name}")
    if key and samples > limit:
        bound = f"at most {limit / per:,.6g}" if not sc.latency_bound else f"at least {per / limit:,.0f}"
        raise HarnessError(f"{src(key)}={values[key]:g}: {sc.name} would schedule {samples:,.0f} samples over "
                           f"min_duration {duration_ms / 1000:g} s; {room}. Set {key} to {bound} (the system's "
                           f"real {'latency' if sc.latency_bound else 'rate'}: `make tune` finds it), or shorten "
                           f"min_duration.")
    queries = min_query_count or 0
    if queries * _spq(sc, values) > limit:
        raise HarnessError(f"{src('min_query_count')}={queries}: {sc.name} would schedule at least "
                           f"{queries * _spq(sc, values):,} samples; {room}. Use a min_query_count up to "
                           f"{limit // _spq(sc, values):,}.")


def _spq(sc: Scenario, values: dict) -> int:
    """Samples per query: MultiStream's samples_per_query, else 1 (Offline's min_query_count counts samples)."""
    if sc.samples_per_query_key:
        return int(values.get(sc.samples_per_query_key) or sc.default_batch)
    return 1

