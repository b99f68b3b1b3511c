"""What produced a run (its fingerprint, recorded in summary.json at run time) and how two runs' fingerprints differ."""
from __future__ import annotations

import os
from typing import Any, Optional

from harness.artifacts.engines import record_path
from harness.core.storage import file_digest, read_json


FINGERPRINT_KEYS = {
    "system_id": "system", "model": "model", "model_md5": "model file", "backend": "backend",
    "precision": "precision", "batch_size": "batch size", "config_block": "config block",
    "config_ver": "config_ver", "engine": "engine", "engine_md5": "engine file contents",
    "dataset_map_md5": "dataset map", "dataset_samples": "dataset size",
}


def run_fingerprint(cfg: dict[str, Any], spec, backend, engine: str, image_map, total: int,
                    batch_size: int) -> dict[str, Any]:
    """What produced a run (recorded at run time in summary.json)."""
    record = read_json(record_path(engine), missing=None, invalid=None) or {}
    return {
        "system_id": cfg["system_id"], "model": spec.key, "model_md5": (record.get("inputs") or {}).get("model"),
        "backend": backend.name, "precision": cfg["precision"], "batch_size": int(batch_size),
        "config_block": cfg.get("config_block"), "config_ver": cfg.get("config_ver"),
        "engine": os.path.basename(engine), "engine_md5": file_digest(engine) if os.path.exists(engine) else None,
        "dataset_map_md5": image_map.md5, "dataset_samples": int(total),
    }


def fingerprint_differences(a: Optional[dict], b: Optional[dict]) -> list[str]:
    if not a or not b:
        return ["a run has no fingerprint"]
    return [f"{label} {a.get(k)!r} vs {b.get(k)!r}" for k, label in FINGERPRINT_KEYS.items() if a.get(k) != b.get(k)]
