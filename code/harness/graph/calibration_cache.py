"""The TensorRT calibration-cache format (`TRT-<version>-<calibrator>` then `<tensor>: <hex of a big-endian float32
scale>` lines), the calibration methods, and TensorRT version numbers as cache headers write them. Calibration
(artifacts/calibration.py) writes caches in this format and the TensorRT backend reads them; neither needs TensorRT
to read this module."""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from harness.core.errors import HarnessError


METHODS = ("entropy", "minmax", "percentile")


def parse_calibration_cache(text: str, path: str = "<calibration cache>") -> tuple[str, dict[str, float]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("TRT-"):
        raise HarnessError(f"{path}: not a TensorRT calibration cache (the first line should be "
                           "`TRT-<version>-EntropyCalibration2` or similar).")
    scales: dict[str, float] = {}
    for n, line in enumerate(lines[1:], 2):
        name, sep, value = line.rpartition(":")
        try:
            if not sep:
                raise ValueError
            scales[name.strip()] = float(np.frombuffer(bytes.fromhex(value.strip()), dtype=">f4")[0])
        except (ValueError, IndexError):
            raise HarnessError(f"{path}:{n}: expected `<tensor>: <8 hex digits>`, got {line!r}.") from None
    return lines[0], scales


def read_calibration_cache(path: str) -> tuple[str, dict[str, float]]:
    try:
        with open(path) as f:
            return parse_calibration_cache(f.read(), path)
    except FileNotFoundError:
        raise HarnessError(f"No calibration cache at {path}: implicit INT8 needs one. Run `make calibrate` (it writes "
                           "the cache there) or pass --calib_cache=<file>; or drop --implicit_int8 to build from "
                           "the calibrated Q/DQ model.") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not a text TensorRT calibration cache.") from None


def format_calibration_cache(header: str, scales: dict[str, float]) -> str:
    """The inverse of parse_calibration_cache (hex of the big-endian float32 scale, as TensorRT writes it)."""
    lines = [header] + [f"{name}: {np.array(scale, dtype='>f4').tobytes().hex()}" for name, scale in scales.items()]
    return "\n".join(lines) + "\n"


TARGET_TENSORRT = "10.8.0"          # the container's TensorRT (docker/Dockerfile); cache headers default to it


CACHE_CALIBRATOR = "EntropyCalibration2"   # the calibrator class the builder replays the cache through


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = []
    for word in str(version).split(".")[:3]:
        digits = re.match(r"\d*", word).group()      # the leading digits: 10.0.0b6 -> patch 0 (a pre-release)
        if not digits:
            raise HarnessError(f"TensorRT version {version!r} is not <major>.<minor>.<patch>[.<build>].")
        parts.append(int(digits))
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def calibration_cache_version(version: str) -> int:
    """The number in a calibration cache header, as TensorRT writes it: NV_TENSORRT_VERSION, which is
    major*10000 + minor*100 + patch from TensorRT 10 on (10.8.0 -> 100800) and major*1000 + minor*100 + patch
    before (8.6.1 -> 8601)."""
    major, minor, patch = version_tuple(version)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def calibration_cache_header(version: str = TARGET_TENSORRT, calibrator: str = CACHE_CALIBRATOR) -> str:
    return f"TRT-{calibration_cache_version(version)}-{calibrator}"


def cache_for_tensorrt(text: str, installed: str, path: str = "<calibration cache>") -> tuple[str, Optional[str]]:
    """The calibration cache as the installed TensorRT will accept it: TensorRT rejects a cache whose header names
    another version (it then calibrates, which a cache-only calibrator cannot do). The harness's caches hold
    amax/127 scales computed by `make calibrate`, independent of the TensorRT version, so the header is rewritten to
    the installed version (returned with a note saying so); another calibrator's cache is refused."""
    header, scales = parse_calibration_cache(text, path)
    parts = header.split("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        raise HarnessError(f"{path}: header {header!r} is not `TRT-<version>-<calibrator>`.")
    if parts[2] != CACHE_CALIBRATOR:
        raise HarnessError(f"{path}: a {parts[2]} cache; the builder replays caches through {CACHE_CALIBRATOR} and "
                           "TensorRT refuses another calibrator's cache. Re-run `make calibrate` (its cache is "
                           f"{CACHE_CALIBRATOR}).")
    want = calibration_cache_header(installed)
    if header == want:
        return text, None
    return (format_calibration_cache(want, scales),
            f"{path}: header {header} rewritten to {want} for the installed TensorRT {installed} (the scales are "
            "unchanged).")
