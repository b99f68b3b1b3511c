"""The NVIDIA container: `make prebuild`, `make build_docker`, `make launch_docker`, `make attach_docker`,
`make link_dirs` (scripts/docker.py runs these on the host; standard library only, so no venv is needed).

- The image is built from docker/Dockerfile (a pinned NVIDIA TensorRT base) as `mlperf-inference:<user>-latest`,
  with a user of the caller's name, uid and gid baked in.
  DOCKER_BUILD_ARGS is appended to `docker build` (e.g. `--build-arg INSTALL_TORCH=0`).
- It is launched with all GPUs (`--gpus=all`) unless DOCKER_ARGS chooses devices itself; DOCKER_ARGS is appended to
  `docker run`. The repo is mounted at /work, $MLPERF_SCRATCH_PATH at the same path (so links resolve on both
  sides), and the container runs as the caller's uid:gid, never as root unless the caller is root.
- build/{data,preprocessed_data,models} are links to $MLPERF_SCRATCH_PATH/{data,preprocessed_data,models}.

Every command is built by a plain function here; tests check the commands without a Docker engine.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from . import REPO_ROOT
from .errors import HarnessError

IMAGE_REPOSITORY = "mlperf-inference"
DOCKERFILE = os.path.join("docker", "Dockerfile")
CONTAINER_REPO = "/work"
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


def run_command(caller: Caller, scratch: str, repo: str = REPO_ROOT, docker_args: str = "",
                command: Sequence[str] = ("bash",)) -> list[str]:
    extra = shlex.split(docker_args or "")
    cmd = ["docker", "run", "--rm", "--interactive", "--tty", "--name", container_name(caller)]
    if not chooses_gpus(extra):
        cmd.append("--gpus=all")
    cmd += ["--user", f"{caller.uid}:{caller.gid}",
            "--volume", f"{repo}:{CONTAINER_REPO}", "--workdir", CONTAINER_REPO,
            "--volume", f"{scratch}:{scratch}", "--env", f"MLPERF_SCRATCH_PATH={scratch}",
            "--shm-size=4g", "--ulimit", "memlock=-1"]     # pinned host buffers need an unlimited memlock
    return cmd + extra + [image_name(caller), *command]


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


def _execute(cmd: list[str], dry_run: bool) -> int:
    print("+ " + shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.call(cmd)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="scripts/docker.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("prebuild", "build", "launch", "attach", "link"))
    parser.add_argument("--dry_run", action="store_true", help="print the docker commands, run nothing")
    args = parser.parse_args(argv)
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
            rc = _execute(build_command(caller, extra=shlex.split(os.environ.get("DOCKER_BUILD_ARGS", ""))),
                          args.dry_run)
            if rc != 0 or args.what == "build":
                return rc
        return _execute(run_command(caller, scratch, docker_args=os.environ.get("DOCKER_ARGS", "")), args.dry_run)
    except HarnessError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
