"""The onnxruntime backend: what it is (INFO) and the options it reads (OPTIONS)."""
from ..base import BackendInfo
from ...options import Flag

OPTIONS = (
    Flag("threads", int, None, "onnxruntime: intra-op threads per worker (default: all cores).", config_key="threads",
         min=1),
)

INFO = BackendInfo("onnxruntime", "cpu", ".onnx", precisions=("fp32", "int8"), build_keys=("threads",),
                   framework="ONNX Runtime", framework_package="onnxruntime", calibration_form="u8s8")
