"""`report`: the page of a run folder, rendered in headless Chromium (Debian's `chromium`; `make test` installs it).

Two short null-backend runs through code/main.py and the real LoadGen make two run folders; a tune log is added to
one. The page of each and the comparison page must load in Chromium with every image decoded (img.complete and
naturalWidth > 0, counted by a script after the load event) and a screenshot that is not blank.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import VAL_1300, VAL_MAP_1300, run_main

SYSTEM = "CPU"
NULL = ("--backend=null", "--scenarios=Offline,Server", "--min_duration=300", "--min_query_count=50",
        "--offline_expected_qps=6000000", "--server_target_qps=500")

# As tune writes it (harness/report/tune_log.py) (start, probe ..., result), plus a line the reader must skip.
TUNE_LOG = """{"event": "start", "scenario": "Server", "key": "server_target_qps", "start": 100, "server_latency_bound_ns": 15000000}
{"event": "probe", "scenario": "Server", "index": 1, "phase": "bracket", "key": "server_target_qps", "value": 100, "validity": "VALID", "valid": true, "latency_ms": 2.1, "bound_ms": 15.0, "measured": 99.8}
{"event": "probe", "scenario": "Server", "index": 2, "phase": "bracket", "key": "server_target_qps", "value": 400, "validity": "STOPPED", "valid": false, "latency_ms": 31.0, "bound_ms": 15.0, "measured": 310.2}
not json: a line the reader must skip
{"event": "probe", "scenario": "Server", "index": 3, "phase": "bisect", "key": "server_target_qps", "value": 250, "validity": "VALID", "valid": true, "latency_ms": 9.5, "bound_ms": 15.0}
{"event": "probe", "scenario": "Server", "index": 4, "phase": "bisect", "key": "server_target_qps", "value": 325, "validity": "INVALID", "valid": false, "latency_ms": 17.2, "bound_ms": 15.0}
{"event": "probe", "scenario": "Server", "index": 5, "phase": "confirm", "key": "server_target_qps", "value": 250, "validity": "VALID", "valid": true, "latency_ms": 11.0, "bound_ms": 15.0}
{"event": "result", "scenario": "Server", "key": "server_target_qps", "searched": 250, "confirmed": 250, "values": {"server_target_qps": 250}}
"""


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Headless Chromium is missing: `make test` installs Debian's chromium (make browser); or run "
                    "`apt-get install -y chromium`.")
    return path


def _browser(*args, timeout=120):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-dev-shm-usage", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_page(page, tmp_path):
    """Chromium loads the page: (images in the page, images decoded); and its screenshot is not blank."""
    probe = os.path.join(os.path.dirname(page), "probe.html")
    script = ("<script>window.addEventListener('load',function(){var i=Array.from(document.images);"
              "document.body.setAttribute('data-total',i.length);document.body.setAttribute('data-loaded',"
              "i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length);});</script>")
    with open(page) as f:
        text = f.read()
    with open(probe, "w") as f:
        f.write(text.replace("</body>", script + "</body>"))
    try:
        dom = _browser("--virtual-time-budget=10000", "--dump-dom", f"file://{probe}").stdout
    finally:
        os.remove(probe)
    m = re.search(r'<body[^>]*data-total="(\d+)"[^>]*data-loaded="(\d+)"', dom)
    assert m, f"the load-event script did not run; DOM starts: {dom[:500]!r}"
    shot = str(tmp_path / (os.path.basename(os.path.dirname(os.path.dirname(page))) + ".png"))
    result = _browser("--window-size=1200,1600", f"--screenshot={shot}", f"file://{page}")
    assert os.path.exists(shot), result.stderr[-2000:]
    from PIL import Image
    img = Image.open(shot).convert("L")
    hist = img.histogram()                               # 256 grey levels
    dark = sum(hist[:200]) / sum(hist)
    levels = sum(1 for n in hist if n)
    assert img.size == (1200, 1600) and dark > 0.01 and levels > 20, (shot, dark, levels)
    return int(m.group(1)), int(m.group(2)), shot


@pytest.fixture(scope="module")
def folders(tmp_path_factory, imagenet):
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    from resnet50.models import get_model
    base = tmp_path_factory.mktemp("report")
    map_path = base / "map.txt"
    with open(VAL_MAP_1300) as f:
        map_path.write_text("".join(f.readlines()[:64]))
    preprocess(get_model("efficientnet-lite0"), read_map(str(map_path)), VAL_1300, str(base / "prep"),
               progress=False)
    out = []
    for i in range(2):
        logs = base / f"logs{i}"
        result = run_main("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0",
                          f"--map_path={map_path}", f"--preprocessed_data_dir={base / 'prep'}", f"--log_dir={logs}",
                          *NULL)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        (root,) = os.listdir(logs)
        out.append((str(logs / root), result))
    return out


def test_run_harness_writes_its_report(folders):
    root, result = folders[0]
    page = os.path.join(root, "report", "report.html")
    assert f"Report: {page}" in result.stdout
    pngs = sorted(n for n in os.listdir(os.path.dirname(page)) if n.endswith(".png"))
    assert pngs == ["latency_CPU_resnet50_Offline.png", "latency_CPU_resnet50_Server.png", "workers.png"]
    text = open(page).read()
    assert text.count('src="data:image/png;base64,') == len(pngs)      # self-contained
    assert "p99 latency" in text and "vs bound 15 ms" in text and "sut_timing.json" in text
    timing = json.load(open(os.path.join(root, SYSTEM, "resnet50", "Server", "sut_timing.json")))
    summary = json.load(open(os.path.join(root, SYSTEM, "resnet50", "Server", "summary.json")))
    assert timing["samples"] == sum(w["samples"] for w in summary["sut_workers"]) > 0


def test_report_pages_render_in_chromium(folders, tmp_path):
    (a, _), (b, _) = folders
    with open(os.path.join(a, "tune_log.jsonl"), "w") as f:
        f.write(TUNE_LOG)
    result = run_main("--action=report", f"--log_dir={a},{b}")
    assert result.returncode == 0, result.stdout + result.stderr
    pages = re.findall(r"\[report\] (?:comparison: )?(\S+report\.html)", result.stdout)
    assert len(pages) == 3, result.stdout
    assert os.listdir(os.path.join(a, "report")).count("tune_tune_log_jsonl.png") == 1
    text = open(pages[0]).read()
    assert "Chosen: server_target_qps <b>250.0</b>" in text and "1 line(s) of the log were not JSON objects" in text
    for page in pages:
        total, loaded, shot = check_page(page, tmp_path)
        assert total == loaded and total >= (1 if "compare" in page or page not in pages[:2] else 3), (page, total)
    assert "2 run folders compared" in open(pages[2]).read()


def test_render_failure_warns_and_the_run_goes_on(tmp_path, capsys):
    from harness.report.page import render_after_run
    assert render_after_run(str(tmp_path / "nothing-here")) is None
    out = capsys.readouterr().out
    assert "WARNING: could not render the report" in out and "make report" in out


def test_tune_log_reader_is_tolerant(tmp_path):
    from harness.report.read import read_tune_log
    path = tmp_path / "tune_log.jsonl"
    path.write_text(TUNE_LOG + '[1, 2]\n{"kind": "probe", "server_target_qps": "x", "result_validity": "VALID"}\n'
                    '{"target": 300, "valid": true, "p99_ms": 12, "chosen": true}\n')
    log = read_tune_log(str(path), str(tmp_path))
    assert [p.value for p in log.probes] == [100, 400, 250, 325, 250, None, 300]
    assert [p.valid for p in log.probes] == [True, False, True, False, True, True, True]
    assert log.probes[1].latency_ms == 31.0 and log.probes[1].measured == 310.2 and log.bound_ms == 15
    assert log.key == "server_target_qps" and log.probes[4].phase == "confirm"
    assert log.chosen.value == 300 and log.skipped_lines == 2
    # A search whose confirming runs all failed names no chosen point, and says so.
    path.write_text('{"event": "result", "key": "server_target_qps", "searched": 250, "confirmed": null}\n')
    log = read_tune_log(str(path), str(tmp_path))
    assert log.chosen is None and "no confirming run was VALID" in log.note


def test_sut_timing_histogram_and_timeline():
    from harness.loadgen import timing as sut_timing
    w = sut_timing.WorkerTiming(t0=100.0)
    w.record(100.5, 3, [(100.499, 2), (100.4, 1)])      # 1 ms for 2 samples, 100 ms for 1
    w.record(101.0, 4, [(101.0 - 1e-9, 4)])              # below 1 µs: the first bin
    merged = sut_timing.merge([w, sut_timing.WorkerTiming(t0=100.0)])
    counts = merged["histogram"]["counts"]
    edges = sut_timing.bin_edges_s()
    assert merged["samples"] == 7 and counts[0] == 4
    (one_ms,) = [i for i, c in enumerate(counts) if c == 2]
    assert edges[one_ms] <= 1e-3 < edges[one_ms + 1] * 1.0001
    assert sum(merged["timeline"]["samples"]) == 7 and merged["timeline"]["samples"][50] == 3


def test_log_dir_base_means_its_newest_run_folder(tmp_path):
    from harness.report.read import resolve_folders
    for name in ("2026.01.01-10.00.00", "2026.01.02-10.00.00", "2026.01.02-10.00.00-2"):
        (tmp_path / name).mkdir()
    assert resolve_folders(str(tmp_path)) == [str(tmp_path / "2026.01.02-10.00.00-2")]
    assert resolve_folders(f"{tmp_path / '2026.01.01-10.00.00'}") == [str(tmp_path / "2026.01.01-10.00.00")]


def test_tune_probes_are_listed_in_the_tune_table_not_as_scenario_runs(tmp_path):
    from harness.report.read import read_folder
    tune = tmp_path / "tune" / "Server"
    probe = tune / "probes" / "01-server_target_qps=100" / "2026.01.01-10.00.00" / "CPU" / "resnet50" / "Server"
    probe.mkdir(parents=True)
    (probe / "summary.json").write_text('{"test_mode": "PerformanceOnly"}')
    (tune / "tune_log.jsonl").write_text(TUNE_LOG)
    folder = read_folder(str(tmp_path))
    assert folder.runs == [] and len(folder.tunes) == 1 and len(folder.tunes[0].probes) == 5


def test_mlperf_report_0_skips_the_hook(tmp_path, monkeypatch, capsys):
    from harness.report.page import render_after_run
    monkeypatch.setenv("MLPERF_REPORT", "0")
    assert render_after_run(str(tmp_path)) is None and capsys.readouterr().out == ""
