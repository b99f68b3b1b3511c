"""RunConfig: one frozen, validated run configuration per (config_ver, scenario), built before anything runs.

    rc = build(args, "Offline", "CPU-...-2c", "default")
    rc.loadgen.offline_expected_qps, rc.batch_size, rc.backend.get("threads"), rc.paths.map_path, ...

It is built once from the flag table (flags.py) and the config layers (config.py: default -> extends -> system
block -> config_ver -> RUN_ARGS). Every value was typed and range-checked where it was read (a flag by parse_args, a
config value by the schema); what depends on several values (the scenario's batch rule, the options the chosen
backend reads) is checked here. A bad value is a HarnessError naming the flag or the file + block + key, the value
and what is allowed: main.py prints it as one line and exits 2, before any folder, engine or user.conf is written.

`settings()` is the flat dict that summary.json, user.conf and the engine build records read; `options()` is the
same run's values as the chosen backend's typed options (backends/base.py RunOptions + the backend's declared
options), what Backend.load and BuildRequest carry.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.config.command import Command
from harness.core.paths import REPO_ROOT
from harness.config import files as configs
from harness.config import bounds
from harness.backends import backend_options
from harness.core.errors import HarnessError
from harness.config.flags import CONFIG_KEYS, overrides
from harness.config.scenarios import LOADGEN_DEFAULT_MIN_DURATION_MS
from harness.config.scenarios import Scenario, get as get_scenario
from resnet50.models import get_model
from harness.backends import backend_info
from resnet50.imagenet import default_map_path
from harness.backends import registered
from harness.backends import make_options
from harness.backends.base import RunOptions

DEFAULT_BACKEND = "onnxruntime"
DEFAULT_PRECISION = "fp32"
DEFAULT_PERFORMANCE_SAMPLE_COUNT = 1024      # mlperf.conf's, for ResNet50
FAST_MIN_DURATION_MS = 60000


@dataclass(frozen=True)
class LoadGenSettings:
    """What goes into user.conf and LoadGen's TestSettings (None: LoadGen's mlperf.conf decides)."""
    test_mode: str
    min_duration_ms: Optional[int] = None
    max_duration_ms: Optional[int] = None
    min_query_count: Optional[int] = None
    max_query_count: Optional[int] = None
    performance_sample_count: Optional[int] = None
    offline_expected_qps: Optional[float] = None
    server_target_qps: Optional[float] = None
    single_stream_expected_latency_ns: Optional[int] = None
    multi_stream_expected_latency_ns: Optional[int] = None
    multi_stream_samples_per_query: Optional[int] = None
    server_coalesce_queries: bool = False


@dataclass(frozen=True)
class DataPaths:
    data_dir: Optional[str]               # raw images (None: the default; only preprocess_data reads it)
    map_path: str                         # validation map, resolved
    calib_data_map: str                   # calibration list, resolved
    preprocessed_data_dir: Optional[str]  # None: the default under build/
    log_dir: Optional[str]                # None: build/logs
    model_path: Optional[str]             # --model_path (absolute), None: the registry's


@dataclass(frozen=True)
class BackendOptions:
    """The options the chosen backend declares (backends/<name>/options.py), with the values this run gives them."""
    name: str
    values: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.values).get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class RunConfig:
    system_id: str
    config_block: str
    config_ver: str
    config_file: str
    scenario: Scenario
    model: str
    precision: str
    batch_size: int                       # after the scenario's batch rule
    workers: int                          # SUT worker threads for CPU backends
    server_batch_timeout_us: int
    calib_method: str
    verbose: bool
    verify: bool                          # --verify: check every row of the preprocessed arrays
    loadgen: LoadGenSettings
    paths: DataPaths
    backend: BackendOptions
    # Every resolved key (the schema's) and where it came from; what settings() hands to backends.
    values: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    sources: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def batch_timeout_s(self) -> float:
        """The SUT's dynamic batching wait: the Server's timeout, 0 where the scenario does not batch dynamically."""
        return self.server_batch_timeout_us / 1e6 if self.scenario.dynamic_batching else 0.0

    def source(self, key: str) -> str:
        return dict(self.sources).get(key, key)

    def settings(self) -> dict[str, Any]:
        """The flat settings: every resolved config key with the run's values (batch rule applied), plus system_id,
        config_block, config_ver and scenario."""
        out = dict(self.values)
        out.update(system_id=self.system_id, config_block=self.config_block, config_ver=self.config_ver,
                   scenario=self.scenario.name, backend=self.backend.name, model=self.model,
                   precision=self.precision, batch_size=self.batch_size, verbose=self.verbose)
        return out

    def options(self) -> RunOptions:
        """The chosen backend's typed options with this run's values (precision, batch size after the batch rule,
        model key, system id, calib_method, verbose, and the options the backend declares)."""
        return make_options(self.backend.name, self.settings())


def _path(value: Optional[str]) -> Optional[str]:
    """Relative paths are tried from the working directory, then the repo root."""
    if value and not os.path.isabs(value) and not os.path.exists(value):
        return os.path.join(REPO_ROOT, value)
    return value


def build(args: Command, scenario: str, system_id: str, config_ver: str = "default",
          config_dir: Optional[str] = None) -> RunConfig:
    """The RunConfig of one scenario and config_ver, or a HarnessError naming the bad value."""
    sc = get_scenario(scenario)
    config_dir = config_dir or getattr(args, "config_dir", None)
    values, sources = configs.resolve_with_sources(sc.name, system_id, config_ver, overrides(args), config_dir)

    def fail(key: str, value: Any, why: str) -> HarnessError:
        return HarnessError(f"{sources.get(key, key)}={value}: {why}")

    backend = values.get("backend") or DEFAULT_BACKEND
    options = {o.config_key for o in backend_options(backend) if o.config_key}
    _refuse_other_backends_flags(args, backend, options)
    model = get_model(values.get("model")).key
    precision = values.get("precision") or DEFAULT_PRECISION
    if precision not in backend_info(backend).precisions:
        raise fail("precision", precision, f"the {backend} backend builds {', '.join(backend_info(backend).precisions)}"
                   " engines.")
    batch = _batch_size(sc, values, fail)
    min_duration, min_query_count = _durations(args, sc, values, sources, fail)
    bounds.check(sc, values, sources, batch, get_model(model).input_shape,
                 _path(values.get("map_path") or default_map_path("val")), min_duration, min_query_count,
                 bounds.Machine.for_action(getattr(args, "action", None)))
    flat = dict(values)
    flat.update(backend=backend, model=model, precision=precision, batch_size=batch)
    for key, value in (("min_duration", min_duration), ("min_query_count", min_query_count)):
        if value is not None:
            flat[key] = value
    for key in ("system_id", "config_block", "config_ver", "scenario", "config_file"):
        flat.pop(key, None)
    return RunConfig(
        system_id=system_id, config_block=values["config_block"], config_ver=values["config_ver"],
        config_file=values["config_file"], scenario=sc, model=model, precision=flat["precision"], batch_size=batch,
        workers=int(values.get("workers") or 1), server_batch_timeout_us=int(values.get("server_batch_timeout_us") or 0),
        calib_method=values.get("calib_method") or "entropy", verbose=bool(getattr(args, "verbose", False)),
        verify=bool(getattr(args, "verify", False)),
        loadgen=_loadgen_settings(args, values, min_duration, min_query_count), paths=_data_paths(args, values),
        backend=BackendOptions(backend, tuple((k, v) for k, v in flat.items() if k in options)),
        values=tuple(flat.items()), sources=tuple(sources.items()))


def _refuse_other_backends_flags(args: Command, backend: str, options: set) -> None:
    """A backend option given on the command line for another backend is refused, naming its owners."""
    for flag_key in overrides(args):
        flag = CONFIG_KEYS[flag_key]
        owners = _owners(flag_key)
        if owners and flag_key not in options:
            raise HarnessError(f"--{flag.name}: the {backend} backend does not read it (it is an option of "
                               f"{', '.join(owners)}); leave it out or pick that --backend.")


def _batch_size(sc: Scenario, values: dict, fail) -> int:
    """The batch size after the scenario's rule (a fixed-batch scenario refuses another configured batch)."""
    configured = values.get("batch_size")
    if sc.fixed_batch is not None and configured is not None and configured != sc.fixed_batch:
        raise fail("batch_size", configured, f"{sc.name} issues one sample per query, so it runs batch "
                   f"{sc.fixed_batch}; set batch_size to {sc.fixed_batch} or leave it out for {sc.name}.")
    batch = sc.batch_size(configured, values)
    if sc.samples_per_query_key and configured is not None:
        per_query = int(values.get(sc.samples_per_query_key) or sc.default_batch)
        if batch < per_query:
            raise fail("batch_size", configured, f"{sc.name} issues {per_query} samples per query "
                       f"({sc.samples_per_query_key}) and its latency is the whole query's: a smaller batch splits "
                       f"each query into several inferences. Set batch_size to at least {per_query} (or leave it "
                       f"out: it then follows {sc.samples_per_query_key}).")
    return batch


def _durations(args: Command, sc: Scenario, values: dict, sources: dict, fail) -> tuple:
    """min_duration and min_query_count (--fast shortens what the command line leaves unset), checked against
    max_query_count and max_duration."""
    min_duration = values.get("min_duration")
    min_query_count = values.get("min_query_count")
    if bool(getattr(args, "fast", False)):
        if getattr(args, "min_duration", None) is None:
            min_duration = FAST_MIN_DURATION_MS
        if sc.one_query and getattr(args, "min_query_count", None) is None:
            min_query_count = 1
    if values.get("max_query_count") and min_query_count and values["max_query_count"] < min_query_count:
        raise fail("max_query_count", values["max_query_count"],
                   f"below min_query_count {min_query_count} ({sources.get('min_query_count', 'fast')}).")
    max_duration = values.get("max_duration")
    min_ms = min_duration if min_duration is not None else LOADGEN_DEFAULT_MIN_DURATION_MS
    if max_duration and max_duration < min_ms:
        raise fail("max_duration", max_duration, f"max_duration {max_duration} ms must be 0 (no limit) or at least "
                   f"min_duration ({min_ms} ms): a shorter run can never be VALID.")
    return min_duration, min_query_count


def _loadgen_settings(args: Command, values: dict, min_duration, min_query_count) -> LoadGenSettings:
    return LoadGenSettings(
        test_mode=args.test_mode, min_duration_ms=min_duration, max_duration_ms=values.get("max_duration"),
        min_query_count=min_query_count, max_query_count=values.get("max_query_count"),
        performance_sample_count=values.get("performance_sample_count"),
        offline_expected_qps=values.get("offline_expected_qps"), server_target_qps=values.get("server_target_qps"),
        single_stream_expected_latency_ns=values.get("single_stream_expected_latency_ns"),
        multi_stream_expected_latency_ns=values.get("multi_stream_expected_latency_ns"),
        multi_stream_samples_per_query=values.get("multi_stream_samples_per_query"),
        server_coalesce_queries=bool(values.get("server_coalesce_queries")))


def _data_paths(args: Command, values: dict) -> DataPaths:
    return DataPaths(
        data_dir=getattr(args, "data_dir", None),
        map_path=_path(values.get("map_path") or default_map_path("val")),
        calib_data_map=_path(values.get("calib_data_map") or default_map_path("cal")),
        preprocessed_data_dir=getattr(args, "preprocessed_data_dir", None),
        log_dir=getattr(args, "log_dir", None),
        model_path=os.path.abspath(args.model_path) if getattr(args, "model_path", None) else None)


def _owners(config_key: str) -> list[str]:
    """The backends that declare `config_key` (empty: a harness key every backend shares)."""
    return [name for name in registered() if config_key in {o.config_key for o in backend_options(name)}]
