"""numpy -> sensor_msgs/Image fields: the (height, width, step, data) a node publishes, with no
cast that could corrupt the values; no ROS."""

from __future__ import annotations

import numpy as np

from ros_ground.image_codec import ImageCodecError


class ImageEncodeError(ImageCodecError):
    """An array that is not the image an encoder writes (a cast would corrupt its values)."""


def encode_rgb8(image: np.ndarray) -> tuple[int, int, int, bytes]:
    """(height, width, step, data) of an HxWx3 uint8 RGB image, for an rgb8 message.

    Raises ImageEncodeError for another shape or dtype: a cast would wrap or truncate the
    values (a float image in 0..1 would go out black) instead of failing.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageEncodeError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} with "
                               f"shape {image.shape}")
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    return height, width, width * 3, image.tobytes()


def encode_mono8(image: np.ndarray) -> tuple[int, int, int, bytes]:
    """(height, width, step, data) of an HxW uint8 grey image, for a mono8 message.

    Raises ImageEncodeError for another shape or dtype, as encode_rgb8 does.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ImageEncodeError(f"expected an HxW uint8 grey image, got {image.dtype} with "
                               f"shape {image.shape}")
    image = np.ascontiguousarray(image)
    height, width = image.shape
    return height, width, width, image.tobytes()


def encode_depth_32fc1(depth: np.ndarray) -> tuple[int, int, int, bytes]:
    """(height, width, step, data) of an HxW depth image in metres, for a 32FC1 message.

    Raises ImageEncodeError when `depth` is not 2-D, ValueError when it is not numeric.
    """
    depth = np.ascontiguousarray(depth, dtype="<f4")
    if depth.ndim != 2:
        raise ImageEncodeError(f"expected an HxW depth image, got shape {depth.shape}")
    height, width = depth.shape
    return height, width, width * 4, depth.tobytes()
