"""The tensorrt backend: what it is (INFO), the options it reads (OPTIONS) and their typed
form (Options: what Backend.load and BuildRequest carry) (besides the GPU ones in backends/gpu_options.py)."""
from harness.backends.base import BackendInfo, options_class
from harness.core.options import Flag, parse_bool
from harness.backends.gpu_options import GPU_OPTIONS

OPTIONS = GPU_OPTIONS + (
    Flag("input_dtype", str, None, "tensorrt: engine input type (int8 is quantised with the model's input scale).",
         choices=("int8", "fp16", "fp32"), config_key="input_dtype"),
    Flag("input_format", str, None, "tensorrt: engine input layout (chw4: TensorRT's vectorised int8 layout).",
         choices=("linear", "chw4"), config_key="input_format"),
    Flag("implicit_int8", parse_bool, None, "TensorRT int8: build from the FP32 model and the calibration cache "
         "(implicit INT8) instead of the calibrated Q/DQ model.", switch=True, config_key="implicit_int8"),
    Flag("calib_cache", str, None, "TensorRT calibration cache for --implicit_int8 (default "
         "build/models/<model>/calibration/entropy.cache).", config_key="calib_cache"),
    Flag("plugins", str, None, "TensorRT: comma list of plugin libraries (.so) loaded before building and running.",
         config_key="plugins"),
    Flag("workspace_size", int, None, "TensorRT builder workspace in bytes (default 1073741824).",
         config_key="workspace_size", min=1),
    Flag("timing_cache", str, None, "TensorRT timing cache file, or `none` (default "
         "build/engines/<system>/timing.cache).", config_key="timing_cache"),
    Flag("run_infer_on_copy_streams", parse_bool, None, "tensorrt: run inference on the copy streams instead of "
         "separate inference streams (the seed's T4 setting).", switch=True, config_key="run_infer_on_copy_streams"),
    Flag("warmup_duration", float, None, "tensorrt: seconds of full batches run at load, before LoadGen starts "
         "(default 0).", config_key="warmup_duration", min=0),
)

INFO = BackendInfo("tensorrt", "gpu", ".plan", precisions=("fp32", "fp16", "int8"),
                   build_keys=("input_dtype", "input_format", "workspace_size", "gpu_copy_streams", "implicit_int8",
                               "plugins"),
                   framework="TensorRT", framework_package="tensorrt", calibration_form="tensorrt")

Options = options_class("TensorRTOptions", OPTIONS)
