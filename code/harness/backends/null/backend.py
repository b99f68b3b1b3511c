"""The null backend: answers every sample with a fixed label at once, to measure the harness (LoadGen + SUT) alone.

It takes row numbers, not tensors, so no sample data is gathered or copied: what it measures is queueing,
batching and completion, the cost every real backend pays on top of its own inference.
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import numpy as np

from harness.backends.null.options import INFO, Options
from harness.backends.base import Backend, BuildRequest, Runner


class NullRunner(Runner):
    takes_rows = True

    def __init__(self, label: int = 0, latency_us: int = 0):
        self.label = label
        self.latency_s = max(0, int(latency_us)) / 1e6

    def infer(self, rows: np.ndarray) -> np.ndarray:
        if self.latency_s:   # --null_latency_us: a device of known capacity (batch size / latency) for soak tests
            time.sleep(self.latency_s)
        return np.full(len(rows), self.label, dtype=np.int64)


class NullBackend(Backend):
    info = INFO
    options_type = Options

    def build(self, request: BuildRequest) -> str:
        os.makedirs(os.path.dirname(request.engine_path), exist_ok=True)
        with open(request.engine_path, "w") as f:
            json.dump({"backend": "null", "label": 0}, f)
        return request.engine_path

    def load(self, engine_path: str, device: Optional[str], options: Options) -> Runner:
        return NullRunner(int(options.null_label or 0), int(options.null_latency_us or 0))


BACKEND = NullBackend()
