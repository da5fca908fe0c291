import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ros_ground.image_codec import SUPPORTED_ENCODINGS, ImageDecodeError, decode_image, encode_rgb8

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7


def _msg_fields(pixels: np.ndarray, encoding: str, big: bool = False, pad: int = 0):
    h, w = pixels.shape[:2]
    if pixels.dtype.itemsize > 1:
        pixels = pixels.astype(pixels.dtype.newbyteorder(">" if big else "<"))
    rows = pixels.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    return dict(encoding=encoding, height=h, width=w, step=rows.shape[1],
                is_bigendian=int(big), data=rows.tobytes())


@pytest.mark.parametrize("pad", [0, 5])
def test_colour_encodings(pad):
    np.testing.assert_array_equal(decode_image(**_msg_fields(RGB, "rgb8", pad=pad)), RGB)
    np.testing.assert_array_equal(decode_image(**_msg_fields(RGB[:, :, ::-1], "bgr8", pad=pad)), RGB)
    alpha = np.full((2, 3, 1), 9, np.uint8)
    rgba = np.concatenate([RGB, alpha], axis=2)
    np.testing.assert_array_equal(decode_image(**_msg_fields(rgba, "rgba8", pad=pad)), RGB)
    bgra = np.concatenate([RGB[:, :, ::-1], alpha], axis=2)
    np.testing.assert_array_equal(decode_image(**_msg_fields(bgra, "bgra8", pad=pad)), RGB)


def test_mono8_is_grey():
    mono = np.array([[0, 128, 255]], np.uint8)
    out = decode_image(**_msg_fields(mono[:, :, None], "mono8"))
    assert out.shape == (1, 3, 3)
    assert (out[..., 0] == mono).all() and (out[..., 2] == mono).all()


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("big", [False, True])
def test_16bit_both_endiannesses(encoding, big):
    depth = np.array([[0, 1000, 2000]], np.uint16)[:, :, None]
    out = decode_image(**_msg_fields(depth, encoding, big=big))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_32fc1_depth_with_nan_and_inf():
    depth = np.array([[0.5, np.nan, 1.5, np.inf]], np.float32)[:, :, None]
    out = decode_image(**_msg_fields(depth, "32FC1"))
    assert out[0, :, 0].tolist() == [0, 0, 255, 0]
    big = decode_image(**_msg_fields(depth, "32FC1", big=True))
    np.testing.assert_array_equal(out, big)


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(encoding="yuv422_weird"), "unsupported encoding"),
        (dict(height=0, width=0, step=0, data=b""), "empty image"),
        (dict(step=4), "step"),
        (dict(data=b"\0" * 5), "expected height\\*step"),
        (dict(data=b"\0" * 100), "expected height\\*step"),
    ],
)
def test_bad_fields_raise(change, match):
    fields = _msg_fields(RGB, "rgb8")
    fields.update(change)
    with pytest.raises(ImageDecodeError, match=match):
        decode_image(**fields)


def test_pixel_limit():
    fields = _msg_fields(RGB, "rgb8")
    with pytest.raises(ImageDecodeError, match="limit"):
        decode_image(**fields, max_pixels=5)


def test_encode_rgb8_round_trip():
    h, w, step, data = encode_rgb8(RGB)
    out = decode_image("rgb8", h, w, step, 0, data)
    np.testing.assert_array_equal(out, RGB)


@settings(max_examples=400, deadline=None)
@given(
    encoding=st.sampled_from(list(SUPPORTED_ENCODINGS) + ["", "RGB8", "foo", "32FC3"]),
    height=st.integers(-2, 6),
    width=st.integers(-2, 6),
    step=st.integers(-4, 40),
    big=st.booleans(),
    data=st.binary(max_size=200),
)
def test_fuzz_only_typed_errors(encoding, height, width, step, big, data):
    try:
        out = decode_image(encoding, height, width, step, big, data)
    except ImageDecodeError:
        return
    assert out.dtype == np.uint8 and out.shape == (height, width, 3)
