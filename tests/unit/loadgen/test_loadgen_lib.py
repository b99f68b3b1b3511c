"""harness/loadgen/lib.py: the mlperf_loadgen import and its log settings."""
from harness.loadgen import lib


def test_lg_is_the_installed_loadgen():
    lg = lib._lg()
    assert lg.__name__ == "mlperf_loadgen" and lib._lg() is lg


def test_make_log_settings(tmp_path):
    lg = lib._lg()
    settings = lib.make_log_settings(lg, str(tmp_path))
    assert settings.log_output.outdir == str(tmp_path)
    assert settings.log_output.copy_summary_to_stdout is False
    assert settings.enable_trace is False
    assert lib.make_log_settings(lg, str(tmp_path), to_stdout=True).log_output.copy_summary_to_stdout is True
