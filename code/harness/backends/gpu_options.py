"""Options every GPU backend (torch, tensorrt) reads: which GPUs, how many streams, graphs, samples on the device."""
from harness.core.options import Flag, parse_bool

GPU_OPTIONS = (
    Flag("devices", str, None, "GPU backends: comma list of device ids (default: all).", config_key="devices"),
    Flag("gpu_copy_streams", int, None, "GPU backends: copy streams per GPU (TensorRT: one execution context and "
         "optimisation profile each).", config_key="gpu_copy_streams", min=1),
    Flag("gpu_inference_streams", int, None, "GPU backends: inference streams per GPU, shared by the copy streams' "
         "contexts.", config_key="gpu_inference_streams", min=1),
    Flag("use_graphs", parse_bool, None, "GPU backends: CUDA graphs per batch size.", switch=True,
         config_key="use_graphs"),
    Flag("start_from_device", parse_bool, None, "GPU backends: keep the loaded samples in GPU memory.", switch=True,
         config_key="start_from_device"),
)
