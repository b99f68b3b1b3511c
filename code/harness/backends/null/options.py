"""The null backend: what it is (INFO), the options it reads (OPTIONS) and their typed
form (Options: what Backend.load and BuildRequest carry)."""
from harness.backends.base import BackendInfo, options_class
from harness.core.options import Flag

OPTIONS = (
    Flag("null_label", int, None, "null backend: the class index it answers every sample with (default 0).",
         config_key="null_label", min=0),
    Flag("null_latency_us", int, None, "null backend: sleep this long per batch, a device of known capacity "
         "(batch size / latency per worker) for soak and runaway tests.", config_key="null_latency_us", min=0),
)

INFO = BackendInfo("null", "cpu", ".null.json", precisions=("fp32", "fp16", "bf16", "int8"),
                   framework="none (null backend: answers instantly, measures the harness only)", reads_model=False)

Options = options_class("NullOptions", OPTIONS)
