"""The onnxruntime backend: what it is (INFO), the options it reads (OPTIONS) and their typed
form (Options: what Backend.load and BuildRequest carry)."""
from harness.backends.base import BackendInfo, options_class
from harness.core.options import Flag, parse_bool

OPTIONS = (
    Flag("threads", int, None, "onnxruntime: intra-op threads per worker (default: all cores).", config_key="threads",
         min=1),
    Flag("spin", parse_bool, None, "onnxruntime: intra-op threads spin between inferences (default on: the "
         "fastest back-to-back batches, Offline). Off for Server and SingleStream when the threads take every core: "
         "spinning threads starve LoadGen's issue thread and the SUT, and the p99 grows (docs/performance.md).",
         config_key="spin", switch=True),
)

INFO = BackendInfo("onnxruntime", "cpu", ".onnx", precisions=("fp32", "int8"), build_keys=("threads",),
                   framework="ONNX Runtime", framework_package="onnxruntime", calibration_form="u8s8")

Options = options_class("OnnxRuntimeOptions", OPTIONS)
