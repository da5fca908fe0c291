import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ros_ground.image_codec import SUPPORTED_ENCODINGS, ImageCodecError, ImageDecodeError, decode_image
from ros_ground.image_encode import ImageEncodeError, encode_mono8, encode_rgb8

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
    h, w, step, data = encode_rgb8(RGB[:, ::-1])  # a strided view is packed, not misread
    np.testing.assert_array_equal(decode_image("rgb8", h, w, step, 0, data), RGB[:, ::-1])


@pytest.mark.parametrize("image", [RGB / 255.0, RGB.astype(np.int64) + 200, RGB[:, :, 0],
                                   np.dstack([RGB, RGB[:, :, :1]])])
def test_encode_rgb8_refuses_what_a_cast_would_corrupt(image):
    with pytest.raises(ImageEncodeError, match="expected an HxWx3 uint8 RGB image"):
        encode_rgb8(image)
    assert not issubclass(ImageEncodeError, ImageDecodeError)  # an encoder's error is no decode's
    assert issubclass(ImageEncodeError, ImageCodecError) and issubclass(ImageDecodeError, ImageCodecError)


def test_encode_mono8_round_trip_and_refusals():
    grey = RGB[:, ::-1, 1]  # a strided view is packed
    h, w, step, data = encode_mono8(grey)
    assert step == w and decode_image("mono8", h, w, step, 0, data)[:, :, 0].tobytes() == grey.tobytes()
    for image in (RGB, grey / 255.0):
        with pytest.raises(ImageEncodeError, match="expected an HxW uint8 grey image"):
            encode_mono8(image)


@settings(max_examples=400, deadline=None)
@given(
    encoding=st.sampled_from(list(SUPPORTED_ENCODINGS) + ["", "RGB8", "foo", "32FC3", "NV21"]),
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


# -- encodings cameras publish: frames built here from a known RGB ------------------------------

FLAT = (200, 120, 40)  # R, G, B: distinct, so a swapped channel order shows


def _flat(h=4, w=6, colour=FLAT):
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


def _assert_colour(out, colour=FLAT, tol=4, interior=False):
    if interior:  # demosaicing is exact only away from the border
        out = out[1:-1, 1:-1]
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert np.abs(out.astype(int) - np.array(colour)).max() <= tol, out.reshape(-1, 3)[:4]


@pytest.mark.parametrize("encoding,code", [("yuv422_yuy2", "YUY2"), ("yuyv", "YUY2"),
                                           ("yuv422", "UYVY"), ("uyvy", "UYVY")])
@pytest.mark.parametrize("pad", [0, 6])
def test_packed_yuv422(encoding, code, pad):
    import cv2

    packed = cv2.cvtColor(_flat(), getattr(cv2, f"COLOR_RGB2YUV_{code}"))  # H x W x 2
    fields = _msg_fields(packed, encoding, pad=pad)
    _assert_colour(decode_image(**fields))


def test_uyvy_and_yuy2_are_not_confused():
    import cv2

    yuy2 = cv2.cvtColor(_flat(), cv2.COLOR_RGB2YUV_YUY2)
    out = decode_image(**_msg_fields(yuy2, "yuv422"))  # the same bytes read as UYVY
    assert np.abs(out.astype(int) - np.array(FLAT)).max() > 30


def _semi_planar(rgb, order):
    """NV12 (order 'uv') / NV21 ('vu') bytes from OpenCV's I420: Y plane, then interleaved chroma."""
    import cv2

    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).ravel()
    y, u, v = i420[:h * w], i420[h * w:h * w * 5 // 4], i420[h * w * 5 // 4:]
    first, second = (u, v) if order == "uv" else (v, u)
    chroma = np.stack([first, second], axis=1).ravel()
    return np.concatenate([y, chroma]).reshape(h * 3 // 2, w)


@pytest.mark.parametrize("encoding,order", [("nv12", "uv"), ("nv21", "vu")])
@pytest.mark.parametrize("pad", [0, 2])
def test_nv12_nv21(encoding, order, pad):
    rows = _semi_planar(_flat(), order)
    h, w = 4, 6
    step = w + pad
    data = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1).tobytes()
    _assert_colour(decode_image(encoding, h, w, step, 0, data))
    swapped = "nv21" if encoding == "nv12" else "nv12"
    assert np.abs(decode_image(swapped, h, w, step, 0, data).astype(int) - FLAT).max() > 30


def _mosaic(rgb, pattern, bits):
    """A Bayer frame: each pixel keeps the channel its place in the 2x2 `pattern` names."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], np.uint16 if bits == 16 else np.uint8)
    for k, name in enumerate(pattern):
        dy, dx = divmod(k, 2)
        values = rgb[dy::2, dx::2, channel[name]].astype(out.dtype)
        out[dy::2, dx::2] = values * 257 if bits == 16 else values
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits,big", [(8, False), (16, False), (16, True)])
def test_bayer(pattern, bits, big):
    frame = _mosaic(_flat(6, 8), pattern, bits)
    out = decode_image(**_msg_fields(frame[:, :, None], f"bayer_{pattern}{bits}", big=big, pad=2))
    _assert_colour(out, tol=2, interior=True)


@pytest.mark.parametrize("big", [False, True])
def test_16bit_colour_keeps_high_byte(big):
    rgb16 = _flat().astype(np.uint16) * 257
    alpha = np.full((4, 6, 1), 65535, np.uint16)
    for encoding, pixels in [("rgb16", rgb16), ("bgr16", rgb16[:, :, ::-1]),
                             ("rgba16", np.concatenate([rgb16, alpha], 2)),
                             ("bgra16", np.concatenate([rgb16[:, :, ::-1], alpha], 2))]:
        out = decode_image(**_msg_fields(np.ascontiguousarray(pixels), encoding, big=big))
        np.testing.assert_array_equal(out, _flat(), err_msg=encoding)


def test_8uc3_and_8uc4_are_opencv_bgr():
    bgr = _flat()[:, :, ::-1].copy()
    np.testing.assert_array_equal(decode_image(**_msg_fields(bgr, "8UC3")), _flat())
    bgra = np.concatenate([bgr, np.full((4, 6, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_image(**_msg_fields(bgra, "8UC4")), _flat())


@pytest.mark.parametrize("encoding,dtype", [("16SC1", np.int16), ("64FC1", np.float64)])
@pytest.mark.parametrize("big", [False, True])
def test_signed_and_double_scalars_are_grey(encoding, dtype, big):
    values = np.array([[-100, 0, 155]], dtype)[:, :, None]
    out = decode_image(**_msg_fields(values, encoding, big=big))
    assert out[0, :, 0].tolist() == [0, 100, 255] and (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("encoding,width,height", [("yuv422_yuy2", 3, 2), ("nv12", 4, 3)])
def test_odd_sizes_of_subsampled_encodings_are_refused(encoding, width, height):
    with pytest.raises(ImageDecodeError, match="even"):
        decode_image(encoding, height, width, width * 2, 0, b"\0" * (height * width * 2))


# -- depth --------------------------------------------------------------------------------------

from ros_ground.image_codec import (  # noqa: E402
    _DEPTH_HEADER,
    decode_compressed,
    decode_compressed_depth,
    decode_depth,
    image_to_depth,
    image_to_rgb,
)


@pytest.mark.parametrize("big", [False, True])
def test_depth_16uc1_millimetres_to_metres(big):
    mm = np.array([[0, 500, 1234, 65535]], np.uint16)[:, :, None]
    depth = decode_depth(**_msg_fields(mm, "16UC1", big=big, pad=3))
    assert depth.dtype == np.float32 and depth.shape == (1, 4)
    assert np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[0, 1:], [0.5, 1.234, 65.535], rtol=1e-6)


def test_depth_32fc1_metres_with_no_returns():
    metres = np.array([[0.0, 1.5, np.nan, np.inf, -np.inf, 0.25]], np.float32)[:, :, None]
    depth = decode_depth(**_msg_fields(metres, "32FC1", big=True))
    np.testing.assert_array_equal(np.isnan(depth[0]), [True, False, True, True, True, False])
    np.testing.assert_allclose(depth[0, [1, 5]], [1.5, 0.25])


def test_depth_refuses_colour():
    with pytest.raises(ImageDecodeError, match="depth must be"):
        decode_depth(**_msg_fields(RGB, "rgb8"))


# -- compressed ---------------------------------------------------------------------------------


def _encoded(ext, image, *params):
    import cv2

    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("format", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"])
def test_compressed_jpeg(format):
    import cv2

    payload = _encoded(".jpg", _flat(16, 16)[:, :, ::-1], cv2.IMWRITE_JPEG_QUALITY, 95)
    _assert_colour(decode_compressed(format, payload), tol=3)


def test_compressed_png_colour_mono_and_16bit():
    rgb = np.random.default_rng(2).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    out = decode_compressed("rgb8; png compressed bgr8", _encoded(".png", rgb[:, :, ::-1].copy()))
    np.testing.assert_array_equal(out, rgb)
    grey = rgb[:, :, 0].copy()
    out = decode_compressed("mono8; png compressed mono8", _encoded(".png", grey))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    bgra16 = np.concatenate([rgb[:, :, ::-1], np.full((5, 7, 1), 255, np.uint8)], 2).astype(np.uint16) * 257
    out = decode_compressed("bgra16; png compressed bgra16", _encoded(".png", bgra16))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("format", ["rgb8; png compressed rgb8", "rgba8; png compressed rgba8",
                                    "RGB8; PNG compressed RGB8"])
def test_compressed_red_first_when_the_format_says_so(format):
    """helper-114: "...; jpeg compressed rgb8" holds its channels red first, as
    compressed_image_transport's subscriber reads it (it swaps only for "compressed bgr"); read
    blue first, a red ball came back blue."""
    rgb = np.random.default_rng(3).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    stored = rgb if "rgba" not in format else np.concatenate([rgb, np.full((5, 7, 1), 255, np.uint8)], 2)
    np.testing.assert_array_equal(decode_compressed(format, _encoded(".png", stored)), rgb)


@pytest.mark.parametrize("flag, value", [(None, 0), ("IMWRITE_JPEG_QUALITY", 100),
                                         ("IMWRITE_JPEG_PROGRESSIVE", 1),
                                         ("IMWRITE_JPEG_RST_INTERVAL", 2), ("IMWRITE_JPEG_OPTIMIZE", 1)])
def test_a_jpeg_with_bytes_overwritten_is_refused_and_whole_ones_pass(flag, value):
    """helper-114: a JPEG with 400 bytes overwritten mid-scan (a USB MJPEG camera's) decoded to
    garbage rows, said only by libjpeg on stderr; every JPEG OpenCV writes still decodes."""
    import cv2

    image = cv2.resize(_flat(16, 16)[:, :, ::-1], (96, 64)) + np.arange(64, dtype=np.uint8)[:, None, None]
    payload = bytearray(_encoded(".jpg", image, *([getattr(cv2, flag), value] if flag else [])))
    assert decode_compressed("jpeg", bytes(payload)).shape == (64, 96, 3)
    start = payload.find(b"\xff\xda") + 20
    payload[start:start + 8] = b"\x12\xff\x45\x67\x89\xff\x13\x00"  # 0xFF45, 0xFF13: no scan marker
    with pytest.raises(ImageDecodeError, match="corrupt JPEG"):
        decode_compressed("jpeg", bytes(payload))


@pytest.mark.parametrize("payload", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_compressed_garbage_is_a_decode_error(payload):
    with pytest.raises(ImageDecodeError, match="compressed image"):
        decode_compressed("png", payload)


def test_compressed_size_limit():
    with pytest.raises(ImageDecodeError, match="limit of 10"):
        decode_compressed("png", _encoded(".png", _flat()), max_pixels=10)


def _declaring(ext, height, width):
    """A small real payload whose header is rewritten to declare height x width pixels."""
    import struct
    import zlib

    raw = bytearray(_encoded(ext, _flat(2, 2)))
    if ext == ".png":  # IHDR data follows the 8-byte signature and the chunk's length and type
        raw[16:24] = struct.pack(">II", width, height)
        raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    else:  # baseline SOF0: marker, length, precision, then height and width
        sof = raw.index(b"\xff\xc0")
        raw[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


@pytest.mark.parametrize("ext,format", [(".png", "png"), (".jpg", "jpeg"),
                                        (".png", "bgr8; png compressed bgr8")])
@pytest.mark.parametrize("side", [5000, 16384])  # below and above Pillow's own bomb limit
def test_compressed_size_limit_read_from_the_header(ext, format, side):
    # a decompression bomb: refused from the header, so its pixels are never allocated
    # (decoding the rewritten payloads would fail instead: "cannot decode")
    limit = r"above the limit of 16777216 \(max_image_pixels\)"
    with pytest.raises(ImageDecodeError, match=limit) as refused:
        decode_compressed(format, _declaring(ext, side, side), max_pixels=4096 * 4096)
    assert f"{side * side} pixels" in str(refused.value)  # the size declared, not Pillow's limit


@pytest.mark.parametrize("cut", [1, 2, 100])
def test_a_truncated_jpeg_is_refused(cut):
    # libjpeg would decode the rows it has and grey the rest, warning only on stderr
    whole = _encoded(".jpg", np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8))
    for trailer in (b"\0" * 16, b"\0" * 500, b"\xff" * 500, b"ftypmp42" + bytes(range(256))):
        # padding, or the video a motion photo appends after the image, is no truncation
        assert decode_compressed("jpeg", whole + trailer).shape == (64, 64, 3)
    with pytest.raises(ImageDecodeError, match=f"truncated JPEG: its {len(whole) - cut} bytes"):
        decode_compressed("jpeg", whole[:-cut])


def test_a_png_pillow_refuses_is_still_sized_from_its_ihdr():
    # a bad CRC on an ancillary chunk: Pillow refuses the file, libpng only warns and decodes
    # it, so a bomb of this kind would reach OpenCV
    import struct

    raw = _declaring(".png", 20000, 20000)
    text = b"tEXt" + b"Comment\0bomb"
    raw = raw[:33] + struct.pack(">I", len(text) - 4) + text + b"\0\0\0\0" + raw[33:]
    with pytest.raises(ImageDecodeError, match=r"image 20000x20000 has 400000000 pixels"):
        decode_compressed("png", raw)


_TAKEN = [".jpg", ".png", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".ras", ".jp2", ".avif"]


@pytest.mark.parametrize("ext", _TAKEN)
def test_every_format_whose_size_the_header_gives_still_decodes(ext, tmp_path):
    from ros_ground.image_files import load_rgb

    image = (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(64, 48, 3)
    payload = _encoded(ext, image[:, :, 0].copy() if ext in (".pgm", ".pbm") else image)
    assert decode_compressed("jpeg", payload).shape == (64, 48, 3)
    (tmp_path / f"image{ext}").write_bytes(payload)
    assert load_rgb(tmp_path / f"image{ext}").shape == (64, 48, 3)


@pytest.mark.parametrize("ext", [".hdr", ".pfm", ".pam"])
def test_a_format_whose_size_is_not_read_before_decoding_is_refused(ext, tmp_path):
    """trial132 D1: a 9 MB Radiance .hdr declaring 12000x12000 got past the header check (Pillow
    cannot read its header) and OpenCV decoded it whole: 2 GB (CLI) to 4 GB (node) before its
    size was checked. A format whose size is not read before decoding is refused, however small."""
    import cv2

    from ros_ground.image_files import load_rgb

    image = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
    payload = _encoded(ext, image if ext != ".pam" else (image * 255).astype(np.uint8))
    assert cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED) is not None
    refused = (r"cannot decode {}: not an image of a format taken \(JPEG, PNG, TIFF, BMP, WebP, "
               r".*those whose header says their size before decoding\)")
    with pytest.raises(ImageDecodeError, match=refused.format(r"compressed image \('jpeg'\)")):
        decode_compressed("jpeg", payload)
    (tmp_path / f"image{ext}").write_bytes(payload)
    with pytest.raises(ImageDecodeError, match=refused.format(".*image" + ext)):
        load_rgb(tmp_path / f"image{ext}")


def test_a_tiff_pillow_refuses_is_still_sized_from_its_first_ifd():
    # a float RGB TIFF: Pillow cannot open it ("unknown pixel mode"), libtiff decodes it
    import struct

    raw = bytearray(_encoded(".tiff", np.zeros((6, 8, 3), np.float32)))
    (ifd,) = struct.unpack("<I", raw[4:8])
    for k in range(struct.unpack("<H", raw[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", raw[entry:entry + 2])[0] in (256, 257):  # ImageWidth, ImageLength
            raw[entry + 8:entry + 12] = struct.pack("<HH" if raw[entry + 2] == 3 else "<I",
                                                     *((20000, 0) if raw[entry + 2] == 3 else (20000,)))
    with pytest.raises(ImageDecodeError, match=r"image 20000x20000 has 400000000 pixels"):
        decode_compressed("png", bytes(raw))


def test_compressed_depth_size_limit_read_from_the_header():
    payload = _DEPTH_HEADER.pack(0, 0.0, 0.0) + _declaring(".png", 16384, 16384)
    with pytest.raises(ImageDecodeError, match="limit of 100 "):
        decode_compressed_depth("16UC1; compressedDepth png", payload, max_pixels=100)


def test_compressed_depth_16uc1_png():
    mm = np.array([[0, 500, 1000], [1500, 2000, 65535]], np.uint16)
    payload = _DEPTH_HEADER.pack(0, 0.0, 0.0) + _encoded(".png", mm)
    depth = decode_compressed_depth("16UC1; compressedDepth png", payload)
    assert depth.dtype == np.float32 and depth.shape == (2, 3) and np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth.ravel()[1:], [0.5, 1.0, 1.5, 2.0, 65.535], rtol=1e-6)
    grey = decode_compressed("16UC1; compressedDepth png", payload)  # shown as grey
    assert grey.shape == (2, 3, 3) and grey[0, 0, 0] == 0 and grey[1, 2, 0] == 255


@pytest.mark.parametrize("format", ["32FC1; compressedDepth", "32FC1; compressedDepth png"])
def test_compressed_depth_32fc1_inverse_depth(format):
    # quantised as compressed_depth_image_transport does with its defaults (depth_max 10 m,
    # depth_quantization 100): value = A / depth + B, 0 beyond depth_max or without a return
    z0, depth_max = 100.0, 10.0
    quant_a = np.float32(z0 * (z0 + 1.0))
    quant_b = np.float32(1.0 - quant_a / depth_max)
    metres = np.array([[0.5, 1.0, 2.5], [7.0, np.nan, 12.0]], np.float32)
    with np.errstate(invalid="ignore"):
        keep = metres < depth_max
        inverse = np.where(keep, quant_a / np.where(keep, metres, 1) + quant_b, 0).astype(np.uint16)
    payload = _DEPTH_HEADER.pack(0, float(quant_a), float(quant_b)) + _encoded(".png", inverse)
    depth = decode_compressed_depth(format, payload)
    np.testing.assert_array_equal(np.isnan(depth), [[False] * 3, [False, True, True]])
    np.testing.assert_allclose(depth[keep], metres[keep], rtol=0.01)


@pytest.mark.parametrize("format,payload,match", [
    ("16UC1; compressedDepth png", b"\0" * 12, "no image"),
    ("16UC1; compressedDepth rvl", b"\0" * 40, "RVL"),
    ("rgb8; compressedDepth png", b"\0" * 40, "16UC1 or 32FC1"),
    ("16UC1; compressedDepth png", b"\0" * 12 + b"garbage", "cannot decode"),
])
def test_compressed_depth_bad_payloads(format, payload, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed_depth(format, payload)


def test_compressed_depth_refuses_8bit_png():
    payload = _DEPTH_HEADER.pack(0, 0.0, 0.0) + _encoded(".png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ImageDecodeError, match="16-bit"):
        decode_compressed_depth("16UC1; compressedDepth png", payload)


# -- message objects ------------------------------------------------------------------------------


class _Msg:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_message_level_decoders():
    image = _Msg(**_msg_fields(RGB, "rgb8"))
    np.testing.assert_array_equal(image_to_rgb(image), RGB)
    compressed = _Msg(format="png", data=_encoded(".png", RGB[:, :, ::-1].copy()))
    np.testing.assert_array_equal(image_to_rgb(compressed), RGB)
    mm = np.array([[0, 2000]], np.uint16)[:, :, None]
    depth = image_to_depth(_Msg(**_msg_fields(mm, "16UC1")))
    assert np.isnan(depth[0, 0]) and depth[0, 1] == 2.0
    payload = _DEPTH_HEADER.pack(0, 0.0, 0.0) + _encoded(".png", mm[:, :, 0])
    depth = image_to_depth(_Msg(format="16UC1; compressedDepth png", data=payload))
    assert np.isnan(depth[0, 0]) and depth[0, 1] == 2.0


def test_scalar_images_with_any_bit_pattern_decode_without_warnings():
    import warnings

    raw = np.random.default_rng(0).integers(0, 256, size=48 * 64 * 4, dtype=np.uint8).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # signalling NaNs among random floats warned on the cast
        rgb = decode_image("32FC1", 48, 64, 64 * 4, False, raw)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8


def test_a_long_encoding_or_format_is_quoted_shortened_with_its_length():
    # a 10 kB encoding made 10 kB log lines and errors (trial132 D7): the sender's string is
    # echoed up to errors.ECHO_CHARS (200) characters, then its length
    from ros_ground.image_codec import decode_compressed, decode_compressed_depth, depth_units

    long = "rgb8" + "x" * 9996
    fields = _msg_fields(RGB, "rgb8")
    fields.update(encoding=long)
    for fail in (lambda: decode_image(**fields), lambda: depth_units(long),
                 lambda: decode_compressed(long, b"\0" * 16),
                 lambda: decode_compressed_depth("16UC1; compressedDepth rvl" + long, b"\0" * 16)):
        with pytest.raises(ImageDecodeError) as raised:
            fail()
        message = str(raised.value)
        assert "x" * 201 not in message and len(message) < 1000, message
        assert " characters)" in message, message
    shortened = r"unsupported encoding 'rgb8x{196}\.\.\. \(10000 characters\)'"
    with pytest.raises(ImageDecodeError, match=shortened):
        decode_image(**fields)


_UNREAD = [(np.float32, 1, "floating-point"), (np.float32, 3, "floating-point"),
           (np.float64, 3, "floating-point"), (np.int16, 1, "signed integer"),
           (np.int16, 3, "signed integer"), (np.int8, 3, "signed integer"), (np.int32, 1, "signed integer")]


@pytest.mark.parametrize("dtype,channels,kind", _UNREAD)
def test_an_image_of_float_or_signed_samples_is_refused_alike_on_every_path(dtype, channels, kind, tmp_path):
    """trial137 D4: a float32 TIFF sent as a CompressedImage was read as 16-bit and answered as a
    black picture, while the CLI refused the file; an int16 one became a picture on both (the
    CLI's IMREAD_COLOR wrapped -1 to white). Every path refuses them with one message."""
    from types import SimpleNamespace

    from ros_ground.image_codec import image_to_rgb
    from ros_ground.image_files import load_depth, load_rgb

    shape = (6, 8, channels) if channels > 1 else (6, 8)
    image = (np.arange(np.prod(shape)).reshape(shape) - 20).astype(dtype)
    payload = _encoded(".tiff", image)
    why = (f"it is {'an' if kind.startswith('signed') else 'a'} {np.dtype(dtype)} ({kind}) image; "
           "unsigned 8- and 16-bit images are read")
    for decode in (lambda: decode_compressed("png", payload),
                   lambda: decode_compressed("rgb8; jpeg compressed bgr8", payload),
                   lambda: image_to_rgb(SimpleNamespace(format="jpeg", data=payload))):  # a bag's
        with pytest.raises(ImageDecodeError) as raised:
            decode()
        assert str(raised.value).endswith(why), str(raised.value)
    path = tmp_path / "samples.tiff"
    path.write_bytes(payload)
    for read, what in ((load_rgb, str(path)), (load_depth, f"depth image {str(path)!r}")):
        with pytest.raises(ImageDecodeError) as raised:
            read(path)
        assert str(raised.value) == f"cannot decode {what}: {why}"


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_unsigned_16_bit_files_still_read_as_their_high_byte(channels, tmp_path):
    import cv2

    from ros_ground.image_files import load_rgb

    shape = (5, 7, channels) if channels > 1 else (5, 7)
    image = np.random.default_rng(channels).integers(0, 65536, shape).astype(np.uint16)
    for ext in (".png", ".tiff"):
        path = tmp_path / f"deep{ext}"
        path.write_bytes(_encoded(ext, image))
        colour = image if channels == 3 else cv2.cvtColor(
            image, cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_BGRA2BGR)
        expected = (colour >> 8).astype(np.uint8)[:, :, ::-1]
        assert np.array_equal(load_rgb(path), expected)
        if channels > 1:  # a one-channel one is scaled by its range there (mono16)
            assert np.array_equal(decode_compressed("png", path.read_bytes()), expected)
