"""TensorRT and cuda-python, imported when first needed (an engine built or loaded), with clear failures.

Both halves of the backend use these: build.py (the builder, and the plugin libraries loaded before parsing) and
runner.py (the plugins again before deserialising, streams, memory, graphs, the gather kernel). The tests replace
the load_* functions here with fakes (tests/unit/backends/test_tensorrt_runtime.py), so every caller reaches them through this
module (`libs.load_cudart()`), never by importing the name.
"""
from __future__ import annotations

import ctypes

from harness.core.errors import HarnessError

CONTAINER_HINT = ("Run inside the NVIDIA container (`make prebuild`, FAQ.md 'The TensorRT backend'), which has "
                  "TensorRT 10 and cuda-python; CPU-only machines use --backend=onnxruntime.")


# ---------------------------------------------------------------------------------------------------------------
# Lazy imports with clear failures
def load_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise HarnessError(f"The tensorrt backend needs NVIDIA TensorRT's Python package, and `import tensorrt` "
                           f"failed ({e}). {CONTAINER_HINT}") from None
    try:
        major = int(str(trt.__version__).split(".")[0])
    except ValueError:
        major = 0
    if major < 10:
        raise HarnessError(f"TensorRT {trt.__version__} is too old: the tensorrt backend uses the TensorRT 10 API. "
                           f"{CONTAINER_HINT}")
    return trt


def load_cudart():
    try:
        from cuda.bindings import runtime as cudart          # cuda-python 12.6+ and 13.x
    except ImportError:
        try:
            from cuda import cudart                           # older cuda-python 12.x
        except ImportError as e:
            raise HarnessError(f"The tensorrt backend needs cuda-python (`import cuda.bindings.runtime` failed: {e}); "
                               f"install docker/requirements-gpu.txt. {CONTAINER_HINT}") from None
    return cudart


def check(result, what: str):
    """cuda-python calls return (error, *values): raise on an error, else return the value(s)."""
    cudart = load_cudart()
    err, values = result[0], tuple(result[1:])
    if err != cudart.cudaError_t.cudaSuccess:
        try:
            name = cudart.cudaGetErrorName(err)[1].decode()
        except Exception:
            name = str(err)
        raise HarnessError(f"CUDA call {what} failed: {name}.")
    return values[0] if len(values) == 1 else (values or None)


def visible_gpu_count() -> int:
    cudart = load_cudart()
    try:
        err, count = cudart.cudaGetDeviceCount()
    except RuntimeError as e:           # cuda-python raises this when libcuda.so.1 (the driver) is absent
        raise HarnessError(f"No NVIDIA driver here ({e}): the tensorrt backend needs an NVIDIA GPU and its driver. "
                           f"{CONTAINER_HINT}") from None
    if err != cudart.cudaError_t.cudaSuccess:
        if err == cudart.cudaError_t.cudaErrorNoDevice:
            return 0
        raise HarnessError(f"cudaGetDeviceCount failed ({err}): the NVIDIA driver is not usable here (driver too old "
                           f"for this CUDA, or no GPU). Check nvidia-smi. {CONTAINER_HINT}")
    return int(count)


def make_logger(trt, verbose: bool):
    """TensorRT's logger: VERBOSE with --verbose, else WARNING."""
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


def load_plugins(trt, logger, plugins: list[str]) -> list:
    """TensorRT's own plugins, then each --plugins library (its plugin creators register themselves on load)."""
    trt.init_libnvinfer_plugins(logger, "")
    handles = []
    for lib in plugins:
        try:
            handles.append(ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL))
        except OSError as e:
            raise HarnessError(f"Could not load plugin library {lib}: {e}.") from None
    return handles


def load_driver():
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver                       # older cuda-python 12.x
    return driver


def load_nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        from cuda import nvrtc                                # older cuda-python 12.x
    return nvrtc


def check_driver(driver, result, what: str):
    err, values = result[0], tuple(result[1:])
    if err != driver.CUresult.CUDA_SUCCESS:
        raise HarnessError(f"CUDA driver call {what} failed: {err}.")
    return values[0] if len(values) == 1 else (values or None)
