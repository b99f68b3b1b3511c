"""The null backend's options."""
from ...options import Flag

OPTIONS = (
    Flag("null_label", int, None, "null backend: the class index it answers every sample with (default 0).",
         config_key="null_label", min=0),
)
