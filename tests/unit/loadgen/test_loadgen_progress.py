"""harness/loadgen/progress.py: the status line's text, when it is on, and the line on a non-terminal."""
import io
import types

from harness.loadgen import progress


def test_format_line():
    assert progress.format_line("Offline", 12.34, 600, 1234567, 2345.678) == \
        "[progress] Offline   12.3/600 s | 1,234,567 samples | 2,345.7 samples/s"
    assert progress.format_line("Offline", 1, 60, 10, 1.0, total_samples=24576) == \
        "[progress] Offline    1.0/60 s | 10/24,576 samples | 1.0 samples/s"
    assert progress.format_line("MultiStream", 0, 1, 80, 0.0, samples_per_query=8) == \
        "[progress] MultiStream    0.0/1 s | 80 samples (10 queries) | 0.0 samples/s"


def test_enabled_by_environment_or_terminal(monkeypatch):
    for value, expected in (("1", True), ("on", True), ("0", False), ("off", False)):
        monkeypatch.setenv(progress.ENV, value)
        assert progress.enabled(io.StringIO()) is expected
    monkeypatch.delenv(progress.ENV)
    assert progress.enabled(io.StringIO()) is False
    tty = types.SimpleNamespace(isatty=lambda: True)
    assert progress.enabled(tty) is True
    assert progress.enabled(object()) is False


def test_off_when_disabled_or_without_a_count(monkeypatch):
    monkeypatch.setenv(progress.ENV, "0")
    line = progress.ProgressLine.for_run("Offline", types.SimpleNamespace(), types.SimpleNamespace(completed=lambda: 0))
    assert isinstance(line, progress._Off)
    line.stop()
    monkeypatch.setenv(progress.ENV, "1")
    assert isinstance(progress.ProgressLine.for_run("Offline", object(), object()), progress._Off)


def test_a_plain_line_on_a_non_terminal_and_a_final_one_on_stop():
    stream = io.StringIO()
    line = progress.ProgressLine("Server", 60, lambda: 42, stream=stream, interval_s=3600)
    line.stop()
    text = stream.getvalue()
    assert text.endswith("\n") and "\r" not in text
    assert text.splitlines()[-1].startswith("[progress] Server ") and "| 42 samples |" in text


def test_for_run_sizes_the_offline_query(monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    settings = types.SimpleNamespace(min_duration_ms=10000, min_query_count=1, offline_expected_qps=100.0)
    line = progress.ProgressLine.for_run("Offline", settings, types.SimpleNamespace(completed=lambda: 0))
    try:
        assert line.total_samples == 1100 and line.min_duration_s == 10.0 and line.samples_per_query == 1
    finally:
        line._stop.set()
    settings = types.SimpleNamespace(min_duration_ms=1000, multi_stream_samples_per_query=8)
    line = progress.ProgressLine.for_run("MultiStream", settings, types.SimpleNamespace(completed=lambda: 0))
    try:
        assert line.total_samples is None and line.samples_per_query == 8
    finally:
        line._stop.set()
