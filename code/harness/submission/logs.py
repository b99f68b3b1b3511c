"""What only the submission reads and writes beside LoadGen's logs: accuracy.txt and the submission's own JSON files.

LoadGen's logs (detail, summary, accuracy) are read by loadgen/logs.py, JSON files by core/storage.read_json and
digests come from core/storage.file_digest.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

ACCURACY_RE = re.compile(r"^accuracy=([\d.]+)%")
HASH_RE = re.compile(r"^hash=([0-9a-fA-F]+)$")


def read_accuracy_txt(path: str) -> tuple[Optional[float], Optional[str]]:
    """(top-1 %, recorded sha256) from an accuracy.txt; either may be None."""
    acc = digest = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                m = ACCURACY_RE.match(line)
                if m and acc is None:
                    acc = float(m.group(1))
                m = HASH_RE.match(line)
                if m:
                    digest = m.group(1).lower()
    except FileNotFoundError:
        pass
    return acc, digest


def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
