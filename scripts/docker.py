#!/usr/bin/env python3
"""`make prebuild | build_docker | launch_docker | attach_docker | link_dirs`: see docker/container.py.

Runs on the host's python3 (standard library only), before any venv or container exists.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "code"), os.path.join(ROOT, "docker")]

from container import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
