"""The LoadGen module (`mlcommons-loadgen`) and its log settings: the one place that imports mlperf_loadgen."""
from __future__ import annotations

from harness.core.errors import HarnessError


def make_log_settings(lg, out_dir: str, to_stdout: bool = False):
    """LoadGen's LogSettings: logs into out_dir, no trace; the summary also on stdout when to_stdout."""
    log_output = lg.LogOutputSettings()
    log_output.outdir = out_dir
    log_output.copy_summary_to_stdout = to_stdout
    log_settings = lg.LogSettings()
    log_settings.log_output = log_output
    log_settings.enable_trace = False
    return log_settings


def _lg():
    try:
        import mlperf_loadgen
    except ImportError:
        raise HarnessError("LoadGen is missing: install `mlcommons-loadgen` (`make venv`).") from None
    return mlperf_loadgen
