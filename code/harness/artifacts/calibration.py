"""INT8 calibration (`make calibrate`): activation ranges once, then a TensorRT calibration cache and explicit Q/DQ
ONNX models for each backend, all with ONNX Runtime's quantisation tools (onnxruntime.quantization).

Everything goes beside the FP32 model it was made from (by default build/models/<model>/<stem>.onnx):

    calibration/prepared.onnx           the FP32 graph that was calibrated (quant_pre_process)
    calibration/<method>.ranges.json    per-tensor ranges (the library's own calibration cache format)
    calibration/<method>.cache          TensorRT format: `TRT-<version>-EntropyCalibration2`, then
                                        `<tensor>: <big-endian float32 scale in hex>`, scale = amax / 127; for the
                                        registry's model this is core/paths.calibration_cache_path(), where the
                                        TensorRT builder reads it (--implicit_int8)
    calibration/calibration.json        what the current Q/DQ models were made from (the FP32 model's md5, the
                                        calibration array's checksum, ...) and the md5 of every output: the record
                                        (idempotence, and the check of generate_engines)
    <stem>.int8-qdq.<backend>.onnx      the Q/DQ model of each backend, in the form that backend runs best

Steps: (1) quant_pre_process (shape inference and the graph optimisations the quantiser expects: constant folding,
Pad fused into Conv; tensor names are kept); (2) the library's calibrator for the method (entropy, minmax or
percentile, with the library's default settings) collects the ranges of every float tensor over the calibration
images, in chunks of CHUNK_IMAGES images; (3) quantize_static writes each backend's Q/DQ model from those ranges
(its calibration_cache_path: no second calibration pass), with the model input's scale pinned to the registry's
input_scale so the int8 preprocessed formats feed the engines unchanged.

The calibration folder is locked while calibrating (harness/core/storage.py). The record is removed first and written
last: after an interrupted calibration there is none, and `check_calibration_current` (generate_engines, before an
int8 build) refuses the Q/DQ models left over; it also refuses them when the FP32 model file changed since (its md5
differs from the record's) or when a Q/DQ model is not the file the record lists.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from harness.core.storage import file_digest, folder_lock, read_json, write_bytes_atomic, write_json_atomic
from harness.core.errors import HarnessError
from harness.core.names import make_command
from harness.graph.calibration_cache import METHODS
from harness.backends import backend_info, registered
from harness.graph.calibration_cache import calibration_cache_version
from harness.graph import onnx_graph
from harness.graph.calibration_cache import format_calibration_cache

CHUNK_IMAGES = 32           # images per collect_data call (bounds memory: every activation of a chunk is held)
BATCH_IMAGES = 8            # images per inference of the calibration session
# The cache header's version when TensorRT is not installed here to ask: the container's TensorRT 10.8.0 (TensorRT 10
# numbers it major*10000+minor*100+patch; TensorRT 10 rejects the old "8601"). The builder rewrites the header to the
# installed version anyway (backends/tensorrt/plan.py cache_for_tensorrt).
DEFAULT_TRT_VERSION = "100800"
RECORD_VERSION = 2            # 2: the outputs' md5s

# Ops through which TensorRT sees the same values as their input (a Pad's zeros are inside any range): the cache
# gives their outputs the input's scale, so tensors that quant_pre_process folded away are still covered.
_SAME_RANGE_OPS = ("Pad", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "MaxPool")


@dataclass(frozen=True)
class QdqForm:
    """How a Q/DQ model is quantised (the arguments of quantize_static)."""
    activation_type: str            # QuantType name: QUInt8 (asymmetric uint8) or QInt8
    weight_type: str
    per_channel: bool
    activation_symmetric: bool
    extra_options: dict = field(default_factory=dict)
    reduce_range: bool = False      # 7-bit weights: no int16 saturation in U8S8 kernels without VNNI (AVX2)
    why: str = ""

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "why"}


FORMS = {
    # uint8 activations (asymmetric), int8 per-channel weights: ONNX Runtime's MLAS U8S8 kernels (VNNI vpdpbusd).
    # reduce_range: on a CPU without VNNI (AVX2 only) the U8S8 kernels add pairs of u8 x s8 products in int16
    # (vpmaddubsw), which saturates with 8-bit weights; 7-bit weights cannot. Measured on an AVX2-only AMD EPYC,
    # EfficientNet-Lite0 on val-1300 (FP32 82.85%): 79.69% with 8-bit weights (below the 99% target), 82.46% with
    # reduce_range. An engine may run on another CPU than the one that calibrated, so the form always reduces.
    "u8s8": QdqForm("QUInt8", "QInt8", True, False, reduce_range=True,
                    why="2.03x FP32 on an AVX512-VNNI CPU at FP32 accuracy; 7-bit weights keep it on AVX2 CPUs"),
    "s8s8": QdqForm("QInt8", "QInt8", True, False, why="int8 asymmetric activations"),
    "s8s8_symmetric": QdqForm("QInt8", "QInt8", True, True, why="int8 symmetric activations"),
    "u8s8_per_tensor": QdqForm("QUInt8", "QInt8", False, False, why="per-tensor weights (2.2 points of top-1 lost)"),
    # TensorRT: symmetric int8 activations and per-channel symmetric int8 weights; float weights with their own Q/DQ
    # pair and one Q/DQ pair per consumer, so TensorRT chooses the fusions (its explicit-quantisation rules).
    # Biases stay float (QuantizeBias=False): the quantiser's default turns each bias into an INT32 initializer feeding
    # a DequantizeLinear, which TensorRT cannot parse (its dequantize input must be INT8/FP8/INT4); TensorRT fuses the
    # float bias itself, as in NVIDIA's own graphs. (issue 12; checked by backends/tensorrt/contract.py)
    "tensorrt": QdqForm("QInt8", "QInt8", True, True,
                        extra_options={"WeightSymmetric": True, "AddQDQPairToWeight": True,
                                       "DedicatedQDQPair": True, "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
                                       "QuantizeBias": False},
                        why="TensorRT explicit quantisation: symmetric int8, per-channel weights"),
}
def backend_forms() -> dict[str, str]:
    """The Q/DQ form of each backend that reads a calibrated model (backends/<name>/options.py INFO)."""
    return {b: backend_info(b).calibration_form for b in registered() if backend_info(b).calibration_form}


# ---------------------------------------------------------------------------------------------------------------
# Paths
def calibration_dir(model_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), "calibration")


def quantized_model_path(model_path: str, backend: str) -> str:
    """The Q/DQ model that generate_engines builds --precision=int8 engines of `backend` from."""
    return f"{os.path.splitext(os.path.abspath(model_path))[0]}.int8-qdq.{backend}.onnx"


def paths(model_path: str, method: str) -> dict[str, str]:
    folder = calibration_dir(model_path)
    return {"prepared": os.path.join(folder, "prepared.onnx"), "ranges": os.path.join(folder, f"{method}.ranges.json"),
            "trt_cache": os.path.join(folder, f"{method}.cache"), "record": os.path.join(folder, "calibration.json")}


# ---------------------------------------------------------------------------------------------------------------
# Library access
def _quant():
    try:
        from onnxruntime import quantization
        from onnxruntime.quantization import calibrate as calibrate_module
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise HarnessError(f"Calibration needs onnxruntime's quantisation tools ({e}); `make venv`.") from None
    return quantization, calibrate_module, quant_pre_process


def _method_enum(method: str):
    quantization, _, _ = _quant()
    names = {"entropy": "Entropy", "minmax": "MinMax", "percentile": "Percentile"}
    if method not in names:
        raise HarnessError(f"--calib_method={method}: expected one of {', '.join(METHODS)}.")
    return getattr(quantization.CalibrationMethod, names[method])


@contextlib.contextmanager
def _quiet():
    """The quantisation tools print progress lines and log warnings; keep the harness output readable."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def trt_version() -> str:
    try:
        import tensorrt
    except ImportError:
        return DEFAULT_TRT_VERSION
    return str(calibration_cache_version(tensorrt.__version__))


# ---------------------------------------------------------------------------------------------------------------
# Ranges
class _Reader:
    """CalibrationDataReader over rows of the preprocessed fp32 array (a memory map)."""

    def __init__(self, input_name: str, array: np.ndarray, batch: int, fixed_batch: bool):
        self.input_name, self.array, self.batch, self.fixed, self.pos = input_name, array, batch, fixed_batch, 0

    def get_next(self) -> Optional[dict]:
        left = len(self.array) - self.pos
        if left <= 0 or (self.fixed and left < self.batch):
            return None
        rows = np.ascontiguousarray(self.array[self.pos:self.pos + self.batch], dtype=np.float32)
        self.pos += self.batch
        return {self.input_name: rows}

    def __len__(self) -> int:
        return len(self.array)


def _groups(n: int, chunk: int, batch: int, fixed: bool) -> list[tuple[int, int, int]]:
    """(start, count, batch size) of each collect_data call: whole batches of one size per call (the histogram
    calibrators stack a call's outputs, so they must agree in shape); a short tail is its own call, or is left out
    when the model's batch size is fixed."""
    out = []
    for s in range(0, n, chunk):
        count = min(chunk, n - s)
        whole = count // batch * batch
        if whole:
            out.append((s, whole, batch))
        if count > whole and not fixed:
            out.append((s + whole, count - whole, count - whole))
    return out


def collect_ranges(prepared_path: str, array: np.ndarray, method: str, progress: bool = True):
    """Ranges of every float tensor of the model over `array` (N, C, H, W), with the library's calibrator."""
    quantization, _, _ = _quant()
    import onnx
    model = onnx.load(prepared_path, load_external_data=False)
    (inp,) = onnx_graph.graph_inputs(model)[:1]
    dim0 = inp.type.tensor_type.shape.dim[0]
    fixed = dim0.dim_value > 0            # a model with a fixed batch size is fed batches of exactly that size
    batch = dim0.dim_value if fixed else BATCH_IMAGES
    chunk_images = CHUNK_IMAGES if not fixed else max(batch, CHUNK_IMAGES // batch * batch)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="calibrate.") as tmp:
        with _quiet():
            calibrator = quantization.create_calibrator(
                prepared_path, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                calibrate_method=_method_enum(method))
        for s, count, size in _groups(len(array), chunk_images, batch, fixed):
            with _quiet():
                calibrator.collect_data(_Reader(inp.name, array[s:s + count], size, fixed))
            if progress:
                done = s + count
                print(f"\r[calibrate] {method}: collected {done}/{len(array)} images "
                      f"({done / max(time.monotonic() - start, 1e-9):.1f} images/s)", end="", flush=True)
        if progress:
            print(f"\n[calibrate] {method}: computing ranges ...", flush=True)
        with _quiet():
            ranges = calibrator.compute_data()
        del calibrator
    return ranges


def tensor_amax(ranges) -> dict[str, float]:
    out = {}
    for name, data in ranges.items():
        low, high = data.range_value
        out[name] = float(max(abs(float(np.min(low))), abs(float(np.max(high)))))
    return out


def trt_scales(ranges, original_model, input_name: str, input_scale: Optional[float]) -> dict[str, float]:
    """Per-tensor scale = amax / 127 for TensorRT, in graph order of the original FP32 model; the input gets the
    registry's input scale (the int8 preprocessed data's scale) when it fixes one."""
    amax = tensor_amax(ranges)
    scales = {} if input_scale is None else {input_name: float(np.float32(input_scale))}
    for name, value in amax.items():
        if name not in scales:
            scales[name] = float(np.float32(value / 127.0)) if value > 0 else float(np.float32(1.0 / 127.0))
    for node in original_model.graph.node:   # tensors folded away by quant_pre_process: same range as their input
        if node.op_type in _SAME_RANGE_OPS and node.input and node.input[0] in scales:
            for out in node.output[:1]:
                scales.setdefault(out, scales[node.input[0]])
    order = [input_name] + [o for node in original_model.graph.node for o in node.output]
    ordered = {name: scales[name] for name in order if name in scales}
    ordered.update({k: v for k, v in scales.items() if k not in ordered})
    return ordered


# ---------------------------------------------------------------------------------------------------------------
# Q/DQ models
def write_qdq(prepared_path: str, ranges_path: str, method: str, form: QdqForm, out_path: str, input_name: str,
              input_scale: Optional[float]) -> str:
    """quantize_static from the kept ranges (no calibration pass), the input's scale pinned to `input_scale` (when
    given); written then renamed."""
    quantization, _, _ = _quant()
    qtype = quantization.QuantType
    act = getattr(qtype, form.activation_type)
    zero_point = np.array(128, np.uint8) if act == qtype.QUInt8 else np.array(0, np.int8)
    extra = dict(form.extra_options)
    extra["ActivationSymmetric"] = form.activation_symmetric
    if input_scale is not None:
        extra["TensorQuantOverrides"] = {input_name: [{"scale": np.array(input_scale, np.float32),
                                                       "zero_point": zero_point}]}
    tmp = out_path + ".partial.onnx"
    with _quiet():
        quantization.quantize_static(
            prepared_path, tmp, None, quant_format=quantization.QuantFormat.QDQ, per_channel=form.per_channel,
            activation_type=act, weight_type=getattr(qtype, form.weight_type), calibrate_method=_method_enum(method),
            calibration_cache_path=ranges_path, reduce_range=form.reduce_range, extra_options=extra)
    os.replace(tmp, out_path)
    return out_path


# ---------------------------------------------------------------------------------------------------------------
# The action
def load_checked_model(spec, model_path: str):
    """The FP32 ONNX model, checked against the registry's input (the recipe's C, H, W): a clear error otherwise."""
    if not os.path.exists(model_path):
        raise HarnessError(f"Model file {model_path} does not exist; run `make download_model "
                           f"RUN_ARGS=\"--model={spec.key}\"` or pass --model_path.")
    try:
        model = onnx_graph.load(model_path)
    except onnx_graph.UnreadableModel as e:
        raise HarnessError(f"{e} Fetch it again with `"
                           f"{make_command('download_model', [f'--model={spec.key}', '--overwrite'])}`, or pass "
                           "--model_path=<a complete .onnx file>.") from None
    onnx_graph.check_input(model, model_path, spec.input_shape)
    return model


@dataclass
class CalibrationInputs:
    model_path: str
    array: np.ndarray                  # fp32 (N, C, H, W) calibration tensors
    array_path: str
    array_checksum: str           # the preprocessed array manifest's checksum
    map_path: str
    map_md5: str
    files: list


def _record(spec, inputs: CalibrationInputs, method: str, backends: list[str]) -> dict:
    return {
        "version": RECORD_VERSION,
        "ranges": {"model": spec.key, "model_md5": file_digest(inputs.model_path, cached=True), "method": method,
                   "chunk_images": CHUNK_IMAGES, "calibration_map": inputs.map_path, "map_md5": inputs.map_md5,
                   "array_checksum": inputs.array_checksum, "images": len(inputs.files), "versions": _versions()},
        "input_scale": spec.input_scale,
        "forms": {b: FORMS[backend_forms()[b]].params() for b in backends},
        "trt_version": trt_version(),
    }


def calibrate(spec, inputs: CalibrationInputs, method: str = "entropy", force: bool = False,
              backends: Optional[list[str]] = None, progress: bool = True) -> dict[str, Any]:
    """Calibrate `spec` on `inputs`; idempotent (nothing is redone when the record matches, unless `force`);
    exclusive (the calibration folder is locked)."""
    with folder_lock(calibration_dir(inputs.model_path), f"calibrate {spec.key}"):
        return _calibrate_locked(spec, inputs, method, force, backends, progress)


def _outputs_md5(outputs: dict[str, str]) -> dict[str, Optional[str]]:
    return {name: (file_digest(path, cached=True) if os.path.exists(path) else None)
            for name, path in sorted(outputs.items()) if name != "record"}


def _calibrate_locked(spec, inputs: CalibrationInputs, method: str, force: bool, backends: Optional[list[str]],
                      progress: bool) -> dict[str, Any]:
    backends = list(backends or backend_forms())
    _method_enum(method)
    p = paths(inputs.model_path, method)
    outputs = dict(p, **{f"qdq_{b}": quantized_model_path(inputs.model_path, b) for b in backends})
    original = load_checked_model(spec, inputs.model_path)
    if tuple(inputs.array.shape[1:]) != tuple(spec.input_shape):
        raise HarnessError(f"{inputs.array_path}: calibration samples are {tuple(inputs.array.shape[1:])}, model "
                           f"{spec.key} takes {tuple(spec.input_shape)}.")
    if len(inputs.array) == 0:
        raise HarnessError(f"{inputs.map_path}: no calibration images.")
    input_name = onnx_graph.graph_inputs(original)[0].name
    record = _record(spec, inputs, method, backends)
    old = read_json(p["record"], missing=None, invalid=None)
    old_core = {k: v for k, v in old.items() if k != "outputs"} if isinstance(old, dict) else None
    if (not force and old_core == record and all(os.path.exists(v) for v in outputs.values())
            and old.get("outputs") == _outputs_md5(outputs)):
        if progress:
            print(f"[calibrate] {spec.key}: up to date ({method}, {len(inputs.files)} images of "
                  f"{inputs.map_path}); --force_calibration redoes it.")
        return {"up_to_date": True, **outputs}

    os.makedirs(calibration_dir(inputs.model_path), exist_ok=True)
    if os.path.exists(p["record"]):
        os.remove(p["record"])              # stale until everything below is rewritten
    _, calibrate_module, quant_pre_process = _quant()
    start = time.monotonic()
    tmp = p["prepared"] + ".partial.onnx"
    with _quiet():
        quant_pre_process(inputs.model_path, tmp)
    os.replace(tmp, p["prepared"])
    ranges = None
    if not force and ranges_reusable(old, record, p["ranges"], say=print if progress else None):
        try:
            ranges = calibrate_module.load_tensors_data(p["ranges"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"[calibrate] {p['ranges']} cannot be read ({e}): recalibrating.")
        else:
            if progress:
                print(f"[calibrate] {spec.key}: reusing the ranges in {p['ranges']}")
    if ranges is None:
        ranges = collect_ranges(p["prepared"], inputs.array, method, progress)
        calibrate_module.save_tensors_data(ranges, p["ranges"])     # written then renamed by the library
    cache = format_calibration_cache(f"TRT-{record['trt_version']}-EntropyCalibration2",
                                     trt_scales(ranges, original, input_name, spec.input_scale))
    write_bytes_atomic(p["trt_cache"], cache.encode())
    for backend in backends:
        write_qdq(p["prepared"], p["ranges"], method, FORMS[backend_forms()[backend]], outputs[f"qdq_{backend}"],
                  input_name, spec.input_scale)
    write_json_atomic(p["record"], dict(record, outputs=_outputs_md5(outputs)), indent=1)
    if progress:
        print(f"[calibrate] {spec.key}: {method} on {len(inputs.files)} images of {inputs.map_path} "
              f"({time.monotonic() - start:.0f} s)")
        for name, path in outputs.items():
            print(f"[calibrate]   {name:<16} {path}")
    return {"up_to_date": False, **outputs}


def ranges_reusable(old: Any, record: dict, ranges_path: str, say=None) -> bool:
    """The kept ranges file may be reused: the old record's ranges inputs equal this calibration's, and the file's
    md5 is the one the old record lists for it (an edited or damaged ranges file is recalibrated, never reused)."""
    if not isinstance(old, dict) or old.get("ranges") != record["ranges"] or not os.path.isfile(ranges_path):
        return False
    want = (old.get("outputs") or {}).get("ranges")
    if want is not None and file_digest(ranges_path, cached=True) == want:
        return True
    if say:
        say(f"[calibrate] {ranges_path} is not the file calibration wrote (its md5 differs from the one in the "
            "calibration record): recalibrating.")
    return False


def check_calibration_current(fp32_path: str, backend: str, inputs: dict[str, str], model_key: str,
                              explicit_cache: bool = False) -> None:
    """Before an int8 build from calibration outputs (the Q/DQ model, or the calibration cache unless --calib_cache
    names one): the calibration record exists (no interrupted calibration), was made from the current FP32 model
    (its md5), and lists the md5 of the outputs the build reads; else a HarnessError saying to run `make calibrate`."""
    fp32_path = os.path.abspath(fp32_path)
    record_file = paths(fp32_path, "entropy")["record"]
    qdq = quantized_model_path(fp32_path, backend)
    calibrated = {name: os.path.abspath(path) for name, path in inputs.items()
                  if path and (os.path.abspath(path) == qdq or (name == "calibration_cache" and not explicit_cache))}
    if not calibrated:
        return
    again = (f"Run `make calibrate RUN_ARGS=\"--model={model_key} --model_path={fp32_path}\"` first.")
    cache = calibrated.get("calibration_cache")
    if cache and os.path.dirname(cache) != calibration_dir(fp32_path):
        raise HarnessError(f"The calibration cache {cache} belongs to another model file than {fp32_path}; pass "
                           f"--calib_cache=<its cache> or calibrate this model. {again}")
    record = read_json(record_file, missing=None, invalid=None)
    if not isinstance(record, dict):
        raise HarnessError(f"No calibration record at {record_file}: calibration was never completed for "
                           f"{fp32_path} (or was interrupted), so {', '.join(sorted(calibrated.values()))} cannot be "
                           f"trusted. {again}")
    model_md5 = file_digest(fp32_path, cached=True)
    if (record.get("ranges") or {}).get("model_md5") != model_md5:
        raise HarnessError(f"{record_file} was made from another FP32 model (md5 "
                           f"{(record.get('ranges') or {}).get('model_md5')}) than {fp32_path} (md5 {model_md5}): "
                           f"the model changed since calibration. {again}")
    listed = {os.path.abspath(path): digest for path, digest in
              ((_output_path(fp32_path, record, name), digest) for name, digest in (record.get("outputs") or {}).items())
              if path}
    for name, path in calibrated.items():
        want = listed.get(os.path.abspath(path))
        if want is None or not os.path.exists(path) or file_digest(path, cached=True) != want:
            raise HarnessError(f"{path} is not the file that calibration ({record_file}) wrote: it was replaced "
                               f"or left over from an earlier calibration. {again}")


def _output_path(fp32_path: str, record: dict, name: str) -> Optional[str]:
    method = (record.get("ranges") or {}).get("method") or "entropy"
    if name.startswith("qdq_"):
        return quantized_model_path(fp32_path, name[4:])
    return paths(fp32_path, method).get(name)
