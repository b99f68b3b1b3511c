"""generate_conf_files (every user.conf without running) and info (system, resolved config, versions)."""
import os

from conftest import run_main
from harness.actions import parse_args


def test_generate_conf_files_writes_every_system_and_scenario(tmp_path, monkeypatch, capsys):
    from harness.actions import generate_conf_files as tools
    monkeypatch.setattr(tools, "measurements_dir",
                        lambda system, scenario: str(tmp_path / system / "resnet50" / scenario))
    assert tools.generate_conf_files(parse_args(["--action=generate_conf_files"]), ["--action=generate_conf_files"]) == 0
    out = capsys.readouterr().out
    systems = tools.config_systems()
    assert "CPU" in systems and "A10x2" in systems and len(systems) >= 5
    written = sorted(os.path.relpath(os.path.join(d, f), tmp_path) for d, _, files in os.walk(tmp_path) for f in files)
    assert "CPU/resnet50/Server/user.conf" in written and "A10x2/resnet50/Offline/user.conf" in written
    assert "A10x2 SingleStream" in out          # no block there: skipped and named
    server = (tmp_path / "A10x2" / "resnet50" / "Server" / "user.conf").read_text()
    assert "resnet50.Server.target_qps = " in server and "block A10x2" in server

    # One system, scenarios and a flag override: only those, with the override.
    for f in written:
        os.remove(tmp_path / f)
    argv = ["--action=generate_conf_files", "--system_name=CPU", "--scenarios=Server", "--server_target_qps=77"]
    tools.generate_conf_files(parse_args(argv), argv)
    (only,) = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files]
    assert only.endswith("CPU/resnet50/Server/user.conf")
    assert "resnet50.Server.target_qps = 77.0" in open(only).read()


def test_info_shows_system_config_and_versions():
    result = run_main("--action=info", "--system_name=CPU", "--scenarios=Server")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "detected system id: CPU-" in out and "(using --system_name=CPU)" in out
    assert "Server (block CPU, config_ver default):" in out and "server_target_qps=" in out
    assert "Offline (block" not in out
    assert "mlcommons-loadgen==" in out and "matplotlib==" in out and "PyYAML==" in out
    assert "mlcommons/inference checkout:" in out
