"""The onnxruntime backend's options."""
from ...options import Flag

OPTIONS = (
    Flag("threads", int, None, "onnxruntime: intra-op threads per worker (default: all cores).", config_key="threads",
         min=1),
)
