"""Sample formats, in one home for preprocessing and every backend.

Formats of a preprocessed sample (one sample each; C, H, W from the model registry):

    fp32_nchw    float32 (C, H, W)            the recipe's output; calibration and FP32 engines read it
    int8_linear  int8    (C, H, W)            round(x / input_scale) clipped to [-128, 127] (ONNX QuantizeLinear)
    int8_nhwc    int8    (H, W, C)            the same values, channels last
    int8_chw4    int8    (ceil(C/4), H, W, 4) TensorRT's vectorised kCHW4: channels padded with zeros to 4

and the engine-input conversions (dtype int8/fp16/fp32, layout linear/chw4) a runner applies to loaded samples.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from harness.core.errors import HarnessError

FORMATS = ("fp32_nchw", "int8_linear", "int8_nhwc", "int8_chw4")
DTYPE_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}
NUMPY_DTYPES = {"int8": np.int8, "fp16": np.float16, "fp32": np.float32}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise HarnessError(f"Unknown preprocessed format {fmt!r}; known: {', '.join(FORMATS)}.")
    return fmt


def parse_formats(text: str) -> list[str]:
    out = [check_format(w.strip()) for w in text.split(",") if w.strip()]
    if not out:
        raise HarnessError(f"--formats is empty; expected a comma list of {', '.join(FORMATS)}.")
    return list(dict.fromkeys(out))


def format_shape(fmt: str, chw: Sequence[int]) -> tuple[int, ...]:
    c, h, w = chw
    return {"fp32_nchw": (c, h, w), "int8_linear": (c, h, w), "int8_nhwc": (h, w, c),
            "int8_chw4": ((c + 3) // 4, h, w, 4)}[check_format(fmt)]


def format_dtype(fmt: str) -> np.dtype:
    return np.dtype(np.float32 if check_format(fmt) == "fp32_nchw" else np.int8)


# A preprocessed format is an engine input form: (dtype, layout) of one sample.
FORMAT_INPUT = {"fp32_nchw": ("fp32", "linear"), "int8_linear": ("int8", "linear"), "int8_nhwc": ("int8", "nhwc"),
                "int8_chw4": ("int8", "chw4")}


def to_format(chw: np.ndarray, fmt: str, scale: Optional[float], out: Optional[np.ndarray] = None) -> np.ndarray:
    """One fp32 (C, H, W) sample in `fmt` (convert_samples on a batch of one), written into `out` when given."""
    shape = format_shape(fmt, chw.shape)
    if out is None:
        out = np.empty(shape, format_dtype(fmt))
    if fmt == "fp32_nchw":
        if out is not chw:
            out[...] = chw
        return out
    dtype, layout = FORMAT_INPUT[fmt]
    out[...] = convert_samples(chw[None], dtype, layout, scale)[0]
    return out


# Engine inputs (dtype int8/fp16/fp32, layout linear/nhwc/chw4): what a runner converts loaded fp32 samples to, and
# (through to_format) what preprocessing stores.
def quantize_int8(x: np.ndarray, scale: Optional[float]) -> np.ndarray:
    """clip(round_half_even(x / scale), -128, 127) as int8: what ONNX QuantizeLinear with this scale and zero point 0
    computes."""
    if scale is None:
        raise HarnessError("int8 samples need the model's input scale, and there is none: the model registry fixes no "
                           "input_scale for this model (use fp32_nchw), or the engine's metadata lacks it.")
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale))
    return np.clip(q, -128, 127).astype(np.int8)


def to_chw4(x: np.ndarray) -> np.ndarray:
    """NCHW -> TensorRT's CHW4: (N, ceil(C/4), H, W, 4), channels padded with zeros to a multiple of 4."""
    n, c, h, w = x.shape
    groups = -(-c // 4)
    padded = np.zeros((n, groups * 4, h, w), dtype=x.dtype)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, groups, 4, h, w).transpose(0, 1, 3, 4, 2))


def from_chw4(x: np.ndarray, channels: int) -> np.ndarray:
    n, groups, h, w, four = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, groups * four, h, w)[:, :channels])


def convert_samples(array: np.ndarray, dtype: str, fmt: str, scale: Optional[float]) -> np.ndarray:
    """Preprocessed fp32 NCHW samples -> what the engine input takes (dtype and layout: linear, nhwc or chw4),
    contiguous. Samples already in the target dtype and layout pass through unchanged."""
    target = NUMPY_DTYPES[dtype]
    expected_ndim = 5 if fmt == "chw4" else 4
    if array.dtype == target and array.ndim == expected_ndim:
        return np.ascontiguousarray(array)
    if array.ndim != 4:
        raise HarnessError(f"Samples have shape {array.shape}; expected fp32 NCHW (N, C, H, W).")
    out = quantize_int8(array, scale) if dtype == "int8" else np.asarray(array, dtype=target)
    if fmt == "chw4":
        return to_chw4(out)
    if fmt == "nhwc":
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(out)


def sample_nbytes(chw: Sequence[int], dtype: str, fmt: str) -> int:
    c, h, w = (int(d) for d in chw)
    if fmt == "chw4":
        c = -(-c // 4) * 4
    return c * h * w * DTYPE_BYTES[dtype]
