"""The torch backend: what it is (INFO), the options it reads (OPTIONS) and their typed
form (Options: what Backend.load and BuildRequest carry) (besides the GPU ones in backends/gpu_options.py)."""
from harness.backends.base import BackendInfo, options_class
from harness.core.options import Flag, parse_bool, parse_int_list
from harness.backends.gpu_options import GPU_OPTIONS

OPTIONS = GPU_OPTIONS + (
    Flag("torch_compile", parse_bool, None, "torch backend: torch.compile in its default mode.", switch=True,
         config_key="torch_compile"),
    Flag("channels_last", parse_bool, None, "torch backend: weights and samples in channels-last layout (default "
         "true).", switch=True, config_key="channels_last"),
    Flag("graph_batch_sizes", parse_int_list, None, "torch backend with use_graphs: batch sizes that get a CUDA graph "
         "(default: batch_size, /2, /4, /8).", config_key="graph_batch_sizes", min=1),
)

INFO = BackendInfo("torch", "gpu", ".torch.onnx", precisions=("fp32", "fp16", "bf16"),
                   build_keys=("gpu_copy_streams", "torch_compile",
                               "channels_last"),
                   framework="PyTorch", framework_package="torch")

Options = options_class("TorchOptions", OPTIONS)
