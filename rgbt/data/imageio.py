"""Image files in and out: the one decoder every dataset reader uses.

In memory an RGB image is ``(H, W, 3)`` uint8 in RGB channel order and a thermal image is
``(H, W)`` uint8 (see DESIGN.md). OpenCV decodes to BGR, so the conversion happens here and
nowhere else. Thermal frames are often stored as 3-channel JPEGs (KAIST ``lwir``); their
channels are equal up to JPEG chroma noise and a small constant tint, so they are reduced to one
channel with the usual luminance weights (exact when the channels are equal).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rgbt.atomic import atomic_write_bytes
from rgbt.data.errors import DataFormatError

log = logging.getLogger(__name__)

#: File extensions recognised as images (lower case, with the dot), in lookup order.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

#: Extensions :func:`write_image` encodes.
WRITE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")

#: Mean absolute difference between colour channels (grey levels) above which a "thermal" image
#: is a real colour image (e.g. a false-colour palette) rather than grey stored in 3 channels.
#: KAIST lwir JPEGs differ by at most ~3 levels on average (chroma noise and a constant tint).
COLOUR_THRESHOLD = 8.0

_warned_colour_thermal = False


def read_image(path: str | os.PathLike[str], mode: str = "rgb") -> np.ndarray:
    """Decode an image file.

    Args:
        path: the image file (any format OpenCV decodes: jpg, png, bmp, tif ...).
        mode: ``rgb`` returns ``(H, W, 3)`` uint8 in RGB order (a grey file is replicated to 3
            channels); ``gray`` returns ``(H, W)`` uint8 (a 3-channel file is converted with the
            ITU-R BT.601 luminance weights; a warning is logged once per process when its channels
            really differ, i.e. a colour image was given as thermal).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: the file cannot be decoded, or is not 8-bit.
        ValueError: unknown ``mode``.
    """
    global _warned_colour_thermal
    if mode not in ("rgb", "gray"):
        raise ValueError(f"read_image: mode must be 'rgb' or 'gray', got {mode!r}")
    import cv2  # on first use: readers of annotations only (`rgbt evaluate`) never load OpenCV

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    # np.fromfile + imdecode instead of imread: imread returns None for both "missing" and
    # "corrupt" and cannot read non-ASCII paths on every platform.
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DataFormatError(path, None, f"cannot decode image ({data.size} bytes; corrupt or not an image)")
    if image.dtype != np.uint8:
        raise DataFormatError(
            path, None, f"expected an 8-bit image, got {image.dtype} (use the 8-bit thermal export, not 16-bit raw)"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] == 3):
        raise DataFormatError(path, None, f"unsupported image shape {image.shape}")
    if mode == "rgb":
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if not _warned_colour_thermal and _channel_spread(image) > COLOUR_THRESHOLD:
        _warned_colour_thermal = True
        log.warning(
            "%s: a 3-channel image with differing channels was read as thermal; converting it to grey "
            "(further such files are not reported)", path,
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header (nothing is decoded).

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not an image Pillow can identify (corrupt or another kind of file).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataFormatError(path, None, f"cannot read the image size (corrupt or not an image: {err})") from None
    return int(height), int(width)


def _channel_spread(image: np.ndarray) -> float:
    """Mean absolute difference (grey levels) between channel 0 and channels 1, 2 of an HxWx3 image."""
    base = image[:, :, 0].astype(np.int16)
    return max(float(np.abs(base - image[:, :, c]).mean()) for c in (1, 2))


def write_image(path: str | os.PathLike[str], image: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Encode an image atomically; the format follows the extension (``.jpg``, ``.jpeg``, ``.png``).

    Args:
        path: destination; parent folders are created.
        image: ``(H, W)`` uint8 grey or ``(H, W, 3)`` uint8 in RGB order.
        jpeg_quality: JPEG quality 0-100 (ignored for PNG, which is lossless).

    Raises:
        ValueError: unsupported extension, dtype or shape, or the encoder failed.
    """
    import cv2  # on first use, as in read_image

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        raise ValueError(f"write_image: unsupported extension {path.suffix!r} for {path}; use {WRITE_EXTENSIONS}")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image: expected uint8, got {image.dtype} for {path}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim != 2:
        raise ValueError(f"write_image: expected (H, W) or (H, W, 3), got shape {image.shape} for {path}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext in (".jpg", ".jpeg") else []
    ok, buffer = cv2.imencode(ext, image, params)
    if not ok:
        raise ValueError(f"write_image: OpenCV could not encode {path}")
    return atomic_write_bytes(path, buffer.tobytes())


def check_same_size(
    path: str | os.PathLike[str], image: np.ndarray, reference_path: str | os.PathLike[str], reference: np.ndarray
) -> None:
    """Raise :class:`DataFormatError` (at ``path``) when ``image`` and its ``reference`` differ in height/width."""
    if image.shape[:2] != reference.shape[:2]:
        h, w = image.shape[:2]
        rh, rw = reference.shape[:2]
        raise DataFormatError(path, None, f"image is {w}x{h} but its pair {reference_path} is {rw}x{rh}")


def find_image(stem_path: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> Path | None:
    """The first existing ``stem_path + ext`` over ``extensions`` (also upper-case), or ``None``."""
    stem_path = Path(stem_path)
    for ext in extensions:
        for candidate in (stem_path.with_name(stem_path.name + ext), stem_path.with_name(stem_path.name + ext.upper())):
            if candidate.is_file():
                return candidate
    return None


#: Extensions tried for translated (fake RGB) images, in order; ``.png`` is assumed when none exists.
FAKE_RGB_EXTENSIONS: tuple[str, ...] = (".jpg", ".png")


def fake_rgb_path(stem_path: str | os.PathLike[str]) -> Path:
    """The translated image ``stem_path`` + ``.jpg`` / ``.png`` (any case) that exists, else the ``.png`` path."""
    stem_path = Path(stem_path)
    return find_image(stem_path, FAKE_RGB_EXTENSIONS) or stem_path.with_name(stem_path.name + ".png")


def read_fake_rgb(
    path: Path | None, frame_id: str, thermal_path: str | os.PathLike[str] | None, thermal: np.ndarray | None,
    what: str = "fake RGB",
) -> np.ndarray | None:
    """Decode the fake RGB image of frame ``frame_id``: ``(H, W, 3)`` uint8 RGB, or ``None`` when ``path`` is.

    It is computed from the thermal frame, so it must have its size (checked when ``thermal`` is given).
    The aligned RGB image (``what="aligned RGB"``), warped into the thermal frame, is read the same way.

    Raises:
        FileNotFoundError: ``path`` is missing (the message names the frame).
        DataFormatError: undecodable, or of another size than ``thermal``.
    """
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} image missing for frame {frame_id}")
    fake_rgb = read_image(path, "rgb")
    if thermal is not None:
        check_same_size(path, fake_rgb, thermal_path, thermal)  # type: ignore[arg-type]
    return fake_rgb


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether the extension of ``path`` is one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


#: Name endings FLIR-aligned gives the thermal and RGB image of one frame (``FLIR_00002_PreviewData.jpeg``).
PAIR_SUFFIXES: tuple[str, ...] = ("_PreviewData", "_RGB")


def stem_candidates(frame: str) -> list[str]:
    """Frame ids a user's spelling may stand for where a layout names frames by image file stem.

    Most literal first: the text itself, its file name, the file's stem, then each of these without a
    :data:`PAIR_SUFFIXES` ending, so either image of a FLIR-aligned pair (or of pairs exported with
    those names) names its frame: ``data/FLIR_00002_RGB.jpg`` -> ``[..., 'FLIR_00002_RGB', 'FLIR_00002']``.
    """
    name = Path(frame.strip()).name
    candidates = [frame.strip(), name, Path(name).stem]
    for suffix in PAIR_SUFFIXES:
        candidates += [c[: -len(suffix)] for c in candidates if c.endswith(suffix)]
    return candidates
