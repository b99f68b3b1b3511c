"""harness/graph/formats.py: sample formats and engine-input conversions."""
import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.graph import formats


def test_check_and_parse_formats():
    assert formats.check_format("int8_chw4") == "int8_chw4"
    with pytest.raises(HarnessError, match=r"^Unknown preprocessed format 'int4'; known: fp32_nchw, int8_linear, "
                                           r"int8_nhwc, int8_chw4\.$"):
        formats.check_format("int4")
    assert formats.parse_formats("int8_linear, fp32_nchw,int8_linear") == ["int8_linear", "fp32_nchw"]
    with pytest.raises(HarnessError, match=r"^--formats is empty; expected a comma list of fp32_nchw"):
        formats.parse_formats(" , ")
    with pytest.raises(HarnessError, match="Unknown preprocessed format 'x'"):
        formats.parse_formats("fp32_nchw,x")


def test_shapes_dtypes_and_sizes():
    chw = (3, 224, 224)
    assert formats.format_shape("fp32_nchw", chw) == (3, 224, 224)
    assert formats.format_shape("int8_linear", chw) == (3, 224, 224)
    assert formats.format_shape("int8_nhwc", chw) == (224, 224, 3)
    assert formats.format_shape("int8_chw4", chw) == (1, 224, 224, 4)
    assert formats.format_shape("int8_chw4", (5, 2, 2)) == (2, 2, 2, 4)
    assert formats.format_dtype("fp32_nchw") == np.float32 and formats.format_dtype("int8_nhwc") == np.int8
    assert formats.sample_nbytes(chw, "fp32", "linear") == 3 * 224 * 224 * 4
    assert formats.sample_nbytes(chw, "int8", "chw4") == 4 * 224 * 224
    assert formats.sample_nbytes(chw, "fp16", "nhwc") == 3 * 224 * 224 * 2


def test_quantize_int8_rounds_half_to_even_and_clips():
    x = np.array([0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0, 0.26], dtype=np.float32)
    assert formats.quantize_int8(x, 1.0).tolist() == [0, 2, 2, 0, 127, -128, 0]
    assert formats.quantize_int8(np.array([0.26]), 0.1).tolist() == [3]
    assert formats.quantize_int8(x, 1.0).dtype == np.int8
    with pytest.raises(HarnessError, match=r"^int8 samples need the model's input scale, and there is none"):
        formats.quantize_int8(x, None)


def test_chw4_round_trip_pads_with_zeros():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.int8).reshape(2, 3, 2, 2)
    v = formats.to_chw4(x)
    assert v.shape == (2, 1, 2, 2, 4) and v.flags.c_contiguous
    assert (v[..., 3] == 0).all()
    assert v[1, 0, 1, 0].tolist() == [x[1, 0, 1, 0], x[1, 1, 1, 0], x[1, 2, 1, 0], 0]
    assert np.array_equal(formats.from_chw4(v, 3), x)


def test_convert_samples_layouts_and_pass_through():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    assert formats.convert_samples(x, "fp32", "linear", None).dtype == np.float32
    half = formats.convert_samples(x, "fp16", "linear", None)
    assert half.dtype == np.float16 and np.allclose(half, x, atol=1e-2)
    nhwc = formats.convert_samples(x, "int8", "nhwc", 0.05)
    assert nhwc.shape == (2, 4, 5, 3)
    assert np.array_equal(nhwc, formats.quantize_int8(x, 0.05).transpose(0, 2, 3, 1))
    chw4 = formats.convert_samples(x, "int8", "chw4", 0.05)
    assert chw4.shape == (2, 1, 4, 5, 4)
    assert formats.convert_samples(chw4, "int8", "chw4", 0.05) is not None
    assert np.array_equal(formats.convert_samples(chw4, "int8", "chw4", 0.05), chw4)   # already converted
    with pytest.raises(HarnessError, match=r"^Samples have shape \(3, 4, 5\); expected fp32 NCHW"):
        formats.convert_samples(x[0], "int8", "linear", 0.05)


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_to_format_matches_convert_samples(fmt):
    chw = np.random.default_rng(1).standard_normal((3, 4, 4)).astype(np.float32)
    out = formats.to_format(chw, fmt, 0.02)
    assert out.shape == formats.format_shape(fmt, chw.shape) and out.dtype == formats.format_dtype(fmt)
    dtype, layout = formats.FORMAT_INPUT[fmt]
    assert np.array_equal(out, formats.convert_samples(chw[None], dtype, layout, 0.02)[0])
    buffer = np.empty(formats.format_shape(fmt, chw.shape), formats.format_dtype(fmt))
    assert formats.to_format(chw, fmt, 0.02, out=buffer) is buffer and np.array_equal(buffer, out)
