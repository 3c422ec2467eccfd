"""Perturbation operators: shift, rotate, scale or black out one modality of a pair (misalignment).

These are the perturbations of the misalignment robustness protocol (AR-CNN, Zhang et al.,
ICCV 2019): the thermal frame is the reference, one camera is moved against it, and a detector's
miss rate is measured against the unchanged thermal-frame ground truth.

Sign convention (image coordinates, ``x`` right, ``y`` *down*, as everywhere in rgbt):

* ``shift (dx, dy)``: positive ``dx`` moves the content **right**, positive ``dy`` moves it
  **down**; ``out[y, x] = in[y - dy, x - dx]``; uncovered pixels are 0.
* ``rotate(degrees)``: positive angles turn the content **counter-clockwise as displayed**, about
  the image centre (OpenCV's convention).
* ``scale(factor)``: ``factor > 1`` enlarges the content about the image centre (a zoom in),
  ``factor < 1`` shrinks it and fills the uncovered frame with 0.

Mapping to AR-CNN's scripts: they measure ``y`` **upwards**, so their shift ``(dx, dy)`` is
``(dx, -dy)`` here (an AR-CNN shift "up by 2" is ``shift:0,-2`` in rgbt). ``x`` and rotation
directions agree.

Geometry of pixels and boxes: an image pixel ``(col, row)`` has its centre at integer coordinates
(OpenCV), a box ``[x1, y1, x2, y2]`` is in continuous coordinates where pixel ``col`` spans
``[col, col + 1)``. Rotation and scale therefore pivot about ``((W - 1) / 2, (H - 1) / 2)`` in pixel
indices and about ``(W / 2, H / 2)`` in box coordinates: the same physical point. Boxes are moved
by transforming their four corners and taking the axis-aligned hull (exact for shifts and
scales); they are not clipped to the image, like the content that leaves the frame.

Text form of a :class:`Perturbation` (``modality`` defaults to ``rgb``)::

    shift:DX,DY[:MODALITY]      shift:4,-2      shift:0.5,0:thermal
    rotate:DEGREES[:MODALITY]   rotate:2
    scale:FACTOR[:MODALITY]     scale:1.05:rgb
    blackout:REGION[:MODALITY]  blackout:all    blackout:left:rgb   blackout:border:thermal

Blackout regions: ``all`` (the whole image), ``left`` / ``right`` (the third of the width on
that side, ``round(W / 3)`` columns), ``border`` (a frame ``max(1, round(min(H, W) / 8))`` pixels
wide on all four sides: 64 px on a 640x512 KAIST frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

from rgbt.data.sample import MODALITIES, PairSample

#: Perturbation kinds, in the order of the text forms above.
KINDS: tuple[str, ...] = ("shift", "rotate", "scale", "blackout")
#: Blackout regions.
REGIONS: tuple[str, ...] = ("all", "left", "right", "border")

_FORMS = "shift:DX,DY | rotate:DEGREES | scale:FACTOR | blackout:all|left|right|border, each with optional :MODALITY"


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return image


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bilinear ``cv2.warpAffine`` (forward ``matrix``, pixel-index coordinates) with zero border."""
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]

    def warp(plane: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            plane, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    if image.ndim == 2:
        return warp(image)
    if channels in (3, 4):
        return warp(image)
    # OpenCV drops a singleton channel axis and caps channels at 4: warp plane by plane instead.
    return np.stack([warp(np.ascontiguousarray(image[..., c])) for c in range(channels)], axis=-1)


def shift_image(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate an image by ``(dx, dy)`` pixels with zero fill.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (uint8 in rgbt).
        dx: pixels to move the content right (negative: left).
        dy: pixels to move the content down (negative: up).

    Returns:
        a new array of the same shape and dtype. Integer shifts are exact slicing (bit exact,
        ``out[y, x] = image[y - dy, x - dx]``); a zero shift returns an identical copy;
        fractional shifts are bilinear (``cv2.warpAffine``), so the pixels next to the uncovered
        edge blend with the zero fill.
    """
    image = _check_image(image)
    dx, dy = _finite("dx", dx), _finite("dy", dy)
    if not (dx.is_integer() and dy.is_integer()):
        return _warp(image, np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]))
    height, width = image.shape[:2]
    ix, iy = int(dx), int(dy)
    out = np.zeros_like(image)
    if abs(ix) >= width or abs(iy) >= height:
        return out
    out[max(0, iy):height + min(0, iy), max(0, ix):width + min(0, ix)] = (
        image[max(0, -iy):height + min(0, -iy), max(0, -ix):width + min(0, -ix)]
    )
    return out


def _centred_matrix(angle: float, factor: float, cx: float, cy: float) -> np.ndarray:
    """Forward 2x3 matrix turning ``angle`` degrees counter-clockwise (as displayed) and scaling by
    ``factor`` about ``(cx, cy)``, in y-down coordinates."""
    theta = math.radians(angle)
    a, b = factor * math.cos(theta), factor * math.sin(theta)
    return np.array([[a, b, cx - a * cx - b * cy], [-b, a, cy + b * cx - a * cy]])


def rotate_image(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate an image about its centre, counter-clockwise as displayed for positive ``degrees``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (uint8 in rgbt).
        degrees: rotation angle.

    Returns:
        a new array of the same shape and dtype; bilinear, corners uncovered by the rotation are 0.
        A zero angle returns an identical copy.
    """
    image = _check_image(image)
    degrees = _finite("degrees", degrees)
    if degrees == 0.0:
        return image.copy()
    height, width = image.shape[:2]
    return _warp(image, _centred_matrix(degrees, 1.0, (width - 1) / 2, (height - 1) / 2))


def scale_image(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale an image's content about its centre, keeping the image size.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (uint8 in rgbt).
        factor: ``> 0``; above 1 enlarges the content (the border is cropped away), below 1
            shrinks it (the uncovered frame is 0).

    Returns:
        a new array of the same shape and dtype (bilinear). A factor of 1 returns an identical copy.
    """
    image = _check_image(image)
    factor = _finite("factor", factor)
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    if factor == 1.0:
        return image.copy()
    height, width = image.shape[:2]
    return _warp(image, _centred_matrix(0.0, factor, (width - 1) / 2, (height - 1) / 2))


def border_width(height: int, width: int) -> int:
    """Width in pixels of the ``border`` blackout frame: ``max(1, round(min(H, W) / 8))``."""
    return max(1, int(round(min(height, width) / 8)))


def blackout(image: np.ndarray, region: str) -> np.ndarray:
    """Set a region of an image to 0.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array.
        region: ``all``; ``left`` / ``right``: the ``round(W / 3)`` columns on that side;
            ``border``: a frame :func:`border_width` pixels wide on all four sides.

    Returns:
        a new array; the input is not modified.
    """
    image = _check_image(image)
    if region not in REGIONS:
        raise ValueError(f"unknown blackout region {region!r}; expected one of {REGIONS}")
    height, width = image.shape[:2]
    out = image.copy()
    third = int(round(width / 3))
    if region == "all":
        out[...] = 0
    elif region == "left":
        out[:, :third] = 0
    elif region == "right":
        out[:, width - third:] = 0
    else:
        b = border_width(height, width)
        out[:b] = 0
        out[height - b:] = 0
        out[:, :b] = 0
        out[:, width - b:] = 0
    return out


def _format_number(value: float) -> str:
    """Shortest text that parses back to ``value``: ``4`` for 4.0, ``0.05`` for 0.05."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def finite_float(text: str, context: str) -> float:
    """``float(text)`` for command-line specs; ValueError ``"{context}: 'text' is not a number"`` (or finite)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{context}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{context}: {text!r} is not finite")
    return value


def _parse_number(text: str, what: str, whole: str) -> float:
    return finite_float(text, f"invalid perturbation {whole!r}: {what}")


@dataclass(frozen=True)
class Perturbation:
    """One perturbation of one modality.

    Attributes:
        kind: ``shift``, ``rotate``, ``scale`` or ``blackout``.
        modality: ``rgb`` (default), ``thermal`` or ``fake_rgb``. Perturbing ``thermal`` also
            perturbs ``fake_rgb`` (it is computed from thermal, so it moves with it).
        dx, dy: shift in pixels (``shift`` only); +dx right, +dy down.
        angle: degrees, counter-clockwise as displayed (``rotate`` only).
        scale: content scale factor > 0 (``scale`` only).
        region: ``all``, ``left``, ``right`` or ``border`` (``blackout`` only).

    Fields that do not belong to ``kind`` must keep their defaults, so equal perturbations have
    equal text forms. ``str(p)`` is the text form (modality always written) and
    ``Perturbation.parse(str(p)) == p``.
    """

    kind: str
    modality: str = "rgb"
    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    scale: float = 1.0
    region: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown perturbation kind {self.kind!r}; expected one of {KINDS}")
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; expected one of {MODALITIES}")
        for name in ("dx", "dy", "angle", "scale"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        used = {"shift": {"dx", "dy"}, "rotate": {"angle"}, "scale": {"scale"}, "blackout": {"region"}}[self.kind]
        for item in fields(self):
            unused = item.name not in ("kind", "modality") and item.name not in used
            if unused and getattr(self, item.name) != item.default:
                raise ValueError(f"a {self.kind} perturbation takes no {item.name} (got {getattr(self, item.name)!r})")
        if self.kind == "scale" and self.scale <= 0:
            raise ValueError(f"scale factor must be > 0, got {self.scale}")
        if self.kind == "blackout" and self.region not in REGIONS:
            raise ValueError(f"unknown blackout region {self.region!r}; expected one of {REGIONS}")

    @classmethod
    def parse(cls, text: str) -> Perturbation:
        """Parse ``shift:DX,DY[:MODALITY]``, ``rotate:DEG[:M]``, ``scale:F[:M]``, ``blackout:REGION[:M]``.

        Raises:
            ValueError: naming ``text`` and what is wrong with it.
        """
        parts = [part.strip() for part in str(text).strip().split(":")]
        if len(parts) not in (2, 3) or not parts[1]:
            raise ValueError(f"invalid perturbation {text!r}: expected {_FORMS}")
        kind, argument = parts[0].lower(), parts[1]
        modality = parts[2] if len(parts) == 3 else "rgb"
        if kind not in KINDS:
            raise ValueError(f"invalid perturbation {text!r}: unknown kind {kind!r}; expected {_FORMS}")
        if modality not in MODALITIES:
            raise ValueError(f"invalid perturbation {text!r}: unknown modality {modality!r}; expected {MODALITIES}")
        if kind == "shift":
            values = argument.split(",")
            if len(values) != 2:
                raise ValueError(f"invalid perturbation {text!r}: a shift is DX,DY (two numbers)")
            dx, dy = (_parse_number(v.strip(), "shift", text) for v in values)
            return cls("shift", modality, dx=dx, dy=dy)
        if kind == "rotate":
            return cls("rotate", modality, angle=_parse_number(argument, "angle", text))
        if kind == "scale":
            factor = _parse_number(argument, "scale factor", text)
            if factor <= 0:
                raise ValueError(f"invalid perturbation {text!r}: scale factor must be > 0")
            return cls("scale", modality, scale=factor)
        if argument not in REGIONS:
            raise ValueError(f"invalid perturbation {text!r}: unknown blackout region {argument!r}; expected {REGIONS}")
        return cls("blackout", modality, region=argument)

    def __str__(self) -> str:
        if self.kind == "shift":
            argument = f"{_format_number(self.dx)},{_format_number(self.dy)}"
        elif self.kind == "rotate":
            argument = _format_number(self.angle)
        elif self.kind == "scale":
            argument = _format_number(self.scale)
        else:
            argument = self.region
        return f"{self.kind}:{argument}:{self.modality}"

    @property
    def geometric(self) -> bool:
        """True for shift, rotate and scale (which move boxes); False for blackout."""
        return self.kind != "blackout"

    def apply_to_image(self, image: np.ndarray) -> np.ndarray:
        """The perturbed copy of one image (``(H, W)`` or ``(H, W, C)``)."""
        if self.kind == "shift":
            return shift_image(image, self.dx, self.dy)
        if self.kind == "rotate":
            return rotate_image(image, self.angle)
        if self.kind == "scale":
            return scale_image(image, self.scale)
        return blackout(image, self.region)


def transform_boxes(boxes: np.ndarray, p: Perturbation, size: tuple[int, int]) -> np.ndarray:
    """Move boxes the way ``p`` moves the content of their image.

    Args:
        boxes: ``(N, 4)`` float ``xyxy`` boxes in pixels of the perturbed image.
        p: the perturbation; a blackout leaves boxes unchanged.
        size: ``(height, width)`` of that image (the pivot of rotation and scale is its centre).

    Returns:
        ``(N, 4)`` float32 boxes: the axis-aligned hull of the transformed corners, not clipped.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not p.geometric or len(boxes) == 0:
        return boxes.astype(np.float32)
    if p.kind == "shift":
        return (boxes + np.array([p.dx, p.dy, p.dx, p.dy])).astype(np.float32)
    height, width = size
    matrix = _centred_matrix(p.angle, p.scale, width / 2, height / 2)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x1, y2], -1),
                        np.stack([x2, y2], -1)], axis=1)
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1).astype(np.float32)


def apply_perturbation(sample: PairSample, p: Perturbation) -> PairSample:
    """Perturb one modality of a sample.

    * Only ``p.modality``'s image changes; ``thermal`` also changes ``fake_rgb`` (computed from
      thermal, it follows thermal and never the perturbed RGB). A missing image stays ``None``.
    * The ground truth (``boxes``, in the thermal reference frame) never moves: a detector is
      asked to find the objects where the reference camera saw them.
    * ``boxes_rgb`` (KAIST-Paired RGB-frame boxes), when present, follow a geometric
      perturbation of ``rgb`` (see :func:`transform_boxes`); they stay ``None`` when absent.
    * ``meta['perturbations']`` gains ``str(p)`` (provenance); the input sample is not modified.

    Returns:
        a new :class:`PairSample` sharing the unchanged arrays with ``sample``.
    """
    targets = [p.modality] + (["fake_rgb"] if p.modality == "thermal" else [])
    images = {name: p.apply_to_image(sample.image(name)) for name in targets if sample.image(name) is not None}
    boxes_rgb = sample.boxes_rgb
    if p.modality == "rgb" and p.geometric and boxes_rgb is not None:
        size = sample.rgb.shape[:2] if sample.rgb is not None else sample.size
        boxes_rgb = transform_boxes(boxes_rgb, p, (int(size[0]), int(size[1])))
    meta = dict(sample.meta)
    meta["perturbations"] = [*sample.meta.get("perturbations", []), str(p)]
    return replace(sample, **images, boxes_rgb=boxes_rgb, meta=meta)
