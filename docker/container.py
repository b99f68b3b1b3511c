"""The NVIDIA container: `make prebuild`, `make build_docker`, `make launch_docker`, `make attach_docker`,
`make link_dirs` (scripts/docker.py runs these on the host; standard library only, so no venv is needed).

- The image is built from docker/Dockerfile (a pinned NVIDIA TensorRT base) as `mlperf-inference:<user>-latest`,
  with a user of the caller's name, uid and gid baked in.
  DOCKER_BUILD_ARGS is appended to `docker build` (e.g. `--build-arg INSTALL_TORCH=0`).
- It is launched with all GPUs (`--gpus=all`) unless DOCKER_ARGS chooses devices itself; DOCKER_ARGS is appended to
  `docker run`. The repo is mounted at /work, $MLPERF_SCRATCH_PATH at the same path (so links resolve on both
  sides), and the container runs as the caller's uid:gid, never as root unless the caller is root.
- build/{data,preprocessed_data,models} are links to $MLPERF_SCRATCH_PATH/{data,preprocessed_data,models}.
- After building, `make prebuild` runs the image once (`scripts/docker.py report` inside it) and prints what it
  actually contains: TensorRT, CUDA runtime and NVRTC, cuda-python, Python, torch, the driver and the GPUs. It stops
  there when TensorRT is missing or older than 10 (`report` runs the same checks in any shell, e.g. a GPU host's).

Every command is built by a plain function here; tests check the commands without a Docker engine.
"""
from __future__ import annotations

import getpass
import importlib
import json
import platform
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from harness.core.errors import HarnessError   # code/ is on sys.path (scripts/docker.py, tests/conftest.py)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IMAGE_REPOSITORY = "mlperf-inference"
DOCKERFILE = os.path.join("docker", "Dockerfile")
CONTAINER_REPO = "/work"
CONTAINER_VENV = "/opt/mlperf-venv"    # the Dockerfile's VENV
MIN_TENSORRT_MAJOR = 10
SCRATCH_LINKS = ("data", "preprocessed_data", "models")
INSIDE_ENV = "MLPERF_CONTAINER"        # set by the Dockerfile
GPU_CHOICE_OPTIONS = ("--gpus", "--runtime", "--device")


@dataclass(frozen=True)
class Caller:
    name: str
    uid: int
    gid: int


def current_caller() -> Caller:
    return Caller(getpass.getuser(), os.getuid(), os.getgid())


def tag_safe(name: str) -> str:
    """A user name as Docker allows it in a tag or container name (lower case, [a-z0-9_.-])."""
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-.") or "user"
    return cleaned[:64]


def image_name(caller: Caller) -> str:
    return f"{IMAGE_REPOSITORY}:{tag_safe(caller.name)}-latest"


def container_name(caller: Caller) -> str:
    return f"{IMAGE_REPOSITORY}-{tag_safe(caller.name)}"


def scratch_path(env: Optional[dict] = None) -> str:
    env = os.environ if env is None else env
    value = env.get("MLPERF_SCRATCH_PATH", "").strip()
    if not value:
        raise HarnessError("MLPERF_SCRATCH_PATH is not set. Point it at a folder for data, preprocessed data and models "
                           "(e.g. `export MLPERF_SCRATCH_PATH=/scratch/mlperf`); the container mounts it and "
                           "build/{data,preprocessed_data,models} link into it.")
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isdir(path):
        raise HarnessError(f"MLPERF_SCRATCH_PATH={value} is not a folder; create it (mkdir -p {path}) or fix the "
                           "variable.")
    return path


def build_command(caller: Caller, repo: str = REPO_ROOT, extra: Sequence[str] = ()) -> list[str]:
    user = "root" if caller.uid == 0 else tag_safe(caller.name)
    return ["docker", "build", "--file", os.path.join(repo, DOCKERFILE), "--tag", image_name(caller),
            "--build-arg", f"USER_NAME={user}", "--build-arg", f"USER_ID={caller.uid}",
            "--build-arg", f"GROUP_ID={caller.gid}", *extra, repo]


def chooses_gpus(docker_args: Sequence[str]) -> bool:
    return any(a == o or a.startswith(o + "=") for a in docker_args for o in GPU_CHOICE_OPTIONS)


def split_args(value: Optional[str], name: str = "DOCKER_ARGS") -> list[str]:
    """The words of DOCKER_ARGS / DOCKER_BUILD_ARGS, split as a shell would; a malformed value names the variable."""
    try:
        return shlex.split(value or "")
    except ValueError as e:
        raise HarnessError(f"{name}={value!r} cannot be split into arguments ({e}): close the quote or escape it "
                           f"(e.g. {name}='--env NAME=\"a b\"'), then run make again.") from None


def run_command(caller: Caller, scratch: str, repo: str = REPO_ROOT, docker_args: str = "",
                command: Sequence[str] = ("bash",)) -> list[str]:
    extra = split_args(docker_args)
    cmd = ["docker", "run", "--rm", "--interactive", "--tty", "--name", container_name(caller)]
    if not chooses_gpus(extra):
        cmd.append("--gpus=all")
    cmd += ["--user", f"{caller.uid}:{caller.gid}",
            "--volume", f"{repo}:{CONTAINER_REPO}", "--workdir", CONTAINER_REPO,
            "--volume", f"{scratch}:{scratch}", "--env", f"MLPERF_SCRATCH_PATH={scratch}",
            "--shm-size=4g", "--ulimit", "memlock=-1"]     # pinned host buffers need an unlimited memlock
    return cmd + extra + [image_name(caller), *command]


def report_command(caller: Caller, repo: str = REPO_ROOT, docker_args: str = "") -> list[str]:
    """A throw-away container that prints what the image contains (scripts/docker.py report, run inside it)."""
    extra = split_args(docker_args)
    cmd = ["docker", "run", "--rm"]
    if not chooses_gpus(extra):
        cmd.append("--gpus=all")
    return cmd + ["--user", f"{caller.uid}:{caller.gid}", "--volume", f"{repo}:{CONTAINER_REPO}:ro",
                  "--workdir", CONTAINER_REPO, *extra, image_name(caller),
                  f"{CONTAINER_VENV}/bin/python", "scripts/docker.py", "report"]


def attach_command(caller: Caller) -> list[str]:
    return ["docker", "exec", "--interactive", "--tty", container_name(caller), "bash"]


def link_scratch_dirs(scratch: str, repo: str = REPO_ROOT) -> list[str]:
    """build/<name> -> <scratch>/<name> for data, preprocessed_data and models. Returns what was done.

    An existing link is re-pointed, an empty folder replaced; a folder with files is never touched (an error says
    how to move its files), so nothing is lost."""
    build = os.path.join(repo, "build")
    os.makedirs(build, exist_ok=True)
    done = []
    for name in SCRATCH_LINKS:
        target = os.path.join(scratch, name)
        link = os.path.join(build, name)
        os.makedirs(target, exist_ok=True)
        if os.path.islink(link):
            if os.readlink(link) == target:
                continue
            os.remove(link)
        elif os.path.isdir(link):
            if os.listdir(link):
                raise HarnessError(f"{link} is a folder with files, so it cannot become a link to {target}. Move its "
                                   f"contents there (mv {link}/* {target}/ && rmdir {link}), then run again.")
            os.rmdir(link)
        elif os.path.exists(link):
            raise HarnessError(f"{link} is a file; remove it so it can become a link to {target}.")
        os.symlink(target, link)
        done.append(f"{link} -> {target}")
    return done


Runner = Callable[..., subprocess.CompletedProcess]


def check_docker(which: Callable[[str], Optional[str]] = shutil.which, run: Runner = subprocess.run) -> None:
    """Docker is installed, its daemon answers, and it can give containers NVIDIA GPUs."""
    if not which("docker"):
        raise HarnessError("docker is not installed (no `docker` on PATH). Install Docker Engine and the NVIDIA "
                           "Container Toolkit, then run `make prebuild` again.")
    try:
        info = run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise HarnessError(f"`docker info` could not run ({e}).") from None
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()
        raise HarnessError("The Docker daemon is not reachable (`docker info` failed: "
                           f"{detail[-1] if detail else 'no output'}). Start it, or add your user to the docker "
                           "group, then run again.")
    try:
        runtimes = json.loads(info.stdout or "{}") or {}
    except json.JSONDecodeError:
        runtimes = {}
    if "nvidia" not in runtimes and not (which("nvidia-container-runtime-hook") or which("nvidia-ctk")):
        raise HarnessError("Docker has no NVIDIA runtime (no `nvidia` in `docker info` runtimes and no NVIDIA "
                           "Container Toolkit on PATH), so `--gpus` cannot work. Install the NVIDIA Container Toolkit "
                           "and run `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart "
                           "docker`.")


def container_running(caller: Caller, run: Runner = subprocess.run) -> bool:
    name = container_name(caller)
    result = run(["docker", "ps", "--filter", f"name=^{name}$", "--format", "{{.Names}}"], capture_output=True,
                 text=True, timeout=60)
    return result.returncode == 0 and name in result.stdout.split()


# ---------------------------------------------------------------------------------------------------------------
# What an environment (the image, or any GPU host) contains
def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in str(text).split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        out.append(int(digits.group()))
    return tuple(out)


def _cuda_version(number: int) -> str:
    """CUDA's integer versions (12080) as text (12.8)."""
    return f"{number // 1000}.{number % 1000 // 10}"


def collect_versions(import_module: Callable[[str], Any] = importlib.import_module,
                     run: Runner = subprocess.run) -> dict[str, Optional[str]]:
    """TensorRT, CUDA runtime (as cuda-python sees it), the driver's CUDA version, NVRTC, cuda-python, Python, torch
    and its CUDA, and nvidia-smi's driver version and GPUs. A missing piece is None (its error in `<key>_error`)."""
    info: dict[str, Optional[str]] = {"python": platform.python_version()}

    def attempt(key: str, fn: Callable[[], Optional[str]]) -> None:
        try:
            info[key] = fn()
        except Exception as e:       # an absent package or driver: reported, never a traceback
            info[key] = None
            info[key + "_error"] = f"{type(e).__name__}: {e}"

    attempt("tensorrt", lambda: str(import_module("tensorrt").__version__))

    def cuda_python() -> str:
        from importlib import metadata
        for dist in ("cuda-python", "cuda-bindings"):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        raise ImportError("neither cuda-python nor cuda-bindings is installed")
    attempt("cuda_python", cuda_python)

    def cudart_call(name: str) -> str:
        cudart = import_module("cuda.bindings.runtime")
        err, value = getattr(cudart, name)()
        if err != cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"{name} returned {err}")
        return _cuda_version(int(value))
    attempt("cuda_runtime", lambda: cudart_call("cudaRuntimeGetVersion"))
    attempt("cuda_driver", lambda: cudart_call("cudaDriverGetVersion"))

    def nvrtc() -> str:
        module = import_module("cuda.bindings.nvrtc")
        err, major, minor = module.nvrtcVersion()
        if err != module.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"nvrtcVersion returned {err}")
        return f"{major}.{minor}"
    attempt("nvrtc", nvrtc)

    def torch() -> str:
        module = import_module("torch")
        cuda = getattr(getattr(module, "version", None), "cuda", None)
        return f"{module.__version__} (CUDA {cuda})" if cuda else f"{module.__version__} (CPU build)"
    attempt("torch", torch)

    def smi() -> str:
        result = run(["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"], capture_output=True,
                     text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError((result.stderr or result.stdout).strip() or f"exit {result.returncode}")
        rows = [line.split(",", 1) for line in result.stdout.strip().splitlines() if line.strip()]
        info["gpus"] = "; ".join(f"{i}: {row[1].strip()}" for i, row in enumerate(rows) if len(row) == 2)
        return rows[0][0].strip() if rows else None
    attempt("driver", smi)
    return info


def version_problems(info: dict[str, Optional[str]]) -> list[str]:
    """What stops the tensorrt backend in this environment (empty: nothing)."""
    problems = []
    trt = info.get("tensorrt")
    if not trt:
        problems.append(f"TensorRT's Python package is missing ({info.get('tensorrt_error')}).")
    elif (_version_tuple(trt) or (0,))[0] < MIN_TENSORRT_MAJOR:
        problems.append(f"TensorRT {trt} is older than {MIN_TENSORRT_MAJOR}: the harness uses the TensorRT 10 API.")
    if not info.get("cuda_python"):
        problems.append("cuda-python is missing (docker/requirements-gpu.txt).")
    if not info.get("cuda_runtime") and info.get("cuda_python"):
        problems.append(f"cuda-python cannot reach the CUDA runtime ({info.get('cuda_runtime_error')}).")
    if not info.get("driver"):
        problems.append(f"No NVIDIA driver or GPU is visible here (nvidia-smi: {info.get('driver_error')}); run the "
                        "container with GPUs (--gpus) on a host with the NVIDIA driver.")
    elif info.get("cuda_driver") and info.get("cuda_runtime") and \
            _version_tuple(info["cuda_driver"]) < _version_tuple(info["cuda_runtime"]):
        problems.append(f"The driver {info['driver']} runs CUDA {info['cuda_driver']}, older than the CUDA runtime "
                        f"{info['cuda_runtime']} of cuda-python: update the driver (or use the CUDA forward-"
                        "compatibility libraries on a data-centre GPU).")
    return problems


def format_report(info: dict[str, Optional[str]]) -> list[str]:
    labels = (("tensorrt", "TensorRT"), ("cuda_runtime", "CUDA runtime (cuda-python)"), ("nvrtc", "NVRTC"),
              ("cuda_python", "cuda-python"), ("python", "Python"), ("torch", "torch"),
              ("driver", "NVIDIA driver"), ("cuda_driver", "CUDA of the driver"), ("gpus", "GPUs"))
    return [f"[image] {label:<27} {info.get(key) or 'absent (' + str(info.get(key + '_error', 'not found')) + ')'}"
            for key, label in labels]


def report(import_module: Callable[[str], Any] = importlib.import_module, run: Runner = subprocess.run) -> int:
    info = collect_versions(import_module, run)
    for line in format_report(info):
        print(line)
    problems = version_problems(info)
    for problem in problems:
        print(f"[image] PROBLEM: {problem}", file=sys.stderr)
    fatal = [p for p in problems if "TensorRT" in p]
    return 3 if fatal else 0


def _execute(cmd: list[str], dry_run: bool) -> int:
    print("+ " + shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.call(cmd)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="scripts/docker.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("prebuild", "build", "launch", "attach", "link", "report"))
    parser.add_argument("--dry_run", action="store_true", help="print the docker commands, run nothing")
    args = parser.parse_args(argv)
    if args.what == "report":         # inside the image (make prebuild runs it there) or on any host
        return report()
    try:
        if os.environ.get(INSIDE_ENV) and args.what != "link":
            raise HarnessError("This is already the NVIDIA container; run `make` targets here directly.")
        caller = current_caller()
        if args.what == "attach":
            if not args.dry_run:
                check_docker()
                if not container_running(caller):
                    raise HarnessError(f"No running container {container_name(caller)}; start one with "
                                       "`make launch_docker` (or `make prebuild`).")
            return _execute(attach_command(caller), args.dry_run)
        if args.what == "link":
            for line in link_scratch_dirs(scratch_path()):
                print(f"[docker] linked {line}")
            return 0
        scratch = scratch_path() if args.what in ("prebuild", "launch") else None
        if not args.dry_run:
            check_docker()
        if caller.uid == 0:
            print("WARNING: you are root, so the container runs as root and what it writes under the repo and "
                  "$MLPERF_SCRATCH_PATH belongs to root. Run make as your own user to avoid that.", file=sys.stderr)
        if scratch and not args.dry_run:
            for line in link_scratch_dirs(scratch):
                print(f"[docker] linked {line}")
        if args.what in ("prebuild", "build"):
            rc = _execute(build_command(caller, extra=split_args(os.environ.get("DOCKER_BUILD_ARGS", ""),
                                                                  "DOCKER_BUILD_ARGS")),
                          args.dry_run)
            if rc != 0 or args.what == "build":
                return rc
            rc = _execute(report_command(caller, docker_args=os.environ.get("DOCKER_ARGS", "")), args.dry_run)
            if rc != 0:
                raise HarnessError(f"The image {image_name(caller)} cannot run the tensorrt backend (the [image] lines "
                                   "above say why); fix that before building engines.")
        return _execute(run_command(caller, scratch, docker_args=os.environ.get("DOCKER_ARGS", "")), args.dry_run)
    except HarnessError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
