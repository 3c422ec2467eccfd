"""How visible each pedestrian is in each modality: per-person contrast against a surrounding ring.

The statistic measures the benchmark itself, not a detector: on real KAIST frames by day persons
are barely warmer than sunlit roads and walls, and a synthetic benchmark that makes them glow has
an easier thermal stream than the one users come to measure. The definitions:

* **persons**: the objects :func:`rgbt.evaluation.missrate.positive_mask` counts as positives under
  the ``reasonable`` setup with its heights scaled to the frame (``person`` label, not flagged
  ``ign``, height >= 55 px at 512 px frame height, occlusion none or partial, inside the 5 px frame
  border);
* **grey levels**: thermal as stored; RGB as ITU-R BT.601 luma (``cv2.COLOR_RGB2GRAY``), float;
* **core**: the box's central half in width (``x0 + w/4 .. x1 - w/4``), full height: a walking
  person covers most of it, while the full box is half background at the sides;
* **ring**: the band of width ``w / 2`` (:data:`RING_WIDTH` of the box width) around the box,
  clipped to the frame; other objects inside it count as surroundings, as a detector sees them;
* **d'** ``= (mean(core) - mean(ring)) / sqrt((var(core) + var(ring)) / 2)`` (signed: negative
  when the person is darker / colder than its surroundings); ``nan`` when the ring is empty or
  both regions are flat;
* **background as hot as a person** (thermal): per frame holding persons, the threshold is the
  median over its persons of the 90th percentile of the core (the person's skin and warm clothes,
  without the background between the legs); the background is every pixel outside all annotated
  boxes; the fraction is hot background pixels over background pixels, pooled over the frames of
  a period. Per frame, because thermal cameras rescale their grey levels frame by frame.

On the 9 real KAIST test frames of the fixture (26 persons by day, 9 by night) this gives thermal
median d' 0.67 by day and 0.93 by night, 73 % / 67 % of persons with ``|d'| < 1``, RGB median
``|d'|`` 0.45 by day, and 4.4 % of the day background as hot as a person (0.3 % by night).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from rgbt.data.sample import PairSample
from rgbt.evaluation.missrate import MissRateSetup, frame_setup, positive_mask

#: Width of the ring around a box, as a fraction of the box width (on each side).
RING_WIDTH = 0.5
#: Width of the core, as a fraction of the box width (centred; full box height).
CORE_WIDTH = 0.5
#: Percentile of the core's thermal values taken as a person's temperature.
PERSON_PERCENTILE = 90.0
#: Modalities measured, with how a sample's image becomes grey levels.
MODALITIES: tuple[str, ...] = ("thermal", "rgb")


def grey_levels(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 grey levels of an ``(H, W)`` thermal or ``(H, W, 3)`` RGB uint8 image (BT.601 luma).

    Raises:
        ValueError: another shape.
    """
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")


def _pixel_box(box: Sequence[float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer ``(x0, y0, x1, y1)`` of a float xyxy box (rounded), clipped to an ``(H, W)`` frame."""
    h, w = shape
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    return max(0, min(w, x0)), max(0, min(h, y0)), max(0, min(w, x1)), max(0, min(h, y1))


def box_regions(box: Sequence[float], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(H, W)`` masks of a box's core and ring (see the module docstring).

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels.
        shape: the frame's ``(H, W)``.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    half = (1.0 - CORE_WIDTH) / 2 * (x1 - x0)
    core = np.zeros(shape, dtype=bool)
    cx0, cy0, cx1, cy1 = _pixel_box((x0 + half, y0, x1 - half, y1), shape)
    core[cy0:cy1, cx0:cx1] = True
    pad = RING_WIDTH * (x1 - x0)
    ring = np.zeros(shape, dtype=bool)
    rx0, ry0, rx1, ry1 = _pixel_box((x0 - pad, y0 - pad, x1 + pad, y1 + pad), shape)
    ring[ry0:ry1, rx0:rx1] = True
    bx0, by0, bx1, by1 = _pixel_box(box, shape)
    ring[by0:by1, bx0:bx1] = False
    return core, ring


def d_prime(inside: np.ndarray, outside: np.ndarray) -> float:
    """``(mean(inside) - mean(outside)) / sqrt((var(inside) + var(outside)) / 2)``; ``nan`` when a
    region is empty or both are flat."""
    if inside.size == 0 or outside.size == 0:
        return math.nan
    a, b = inside.astype(np.float64), outside.astype(np.float64)
    pooled = math.sqrt((a.var() + b.var()) / 2)
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


@dataclass
class FrameContrast:
    """The contrast measurements of one frame.

    Attributes:
        frame_id, period: from the sample's meta.
        d_prime: modality -> one d' per person (``nan`` where undefined), in object order.
        hot_background: thermal background pixels as hot as a person (0 when the frame has no person).
        background: thermal background pixels counted (0 when the frame has no person).
    """

    frame_id: str
    period: str
    d_prime: dict[str, list[float]] = field(default_factory=dict)
    hot_background: int = 0
    background: int = 0


def frame_contrast(sample: PairSample, setup: str | MissRateSetup | None = None) -> FrameContrast:
    """Measure one decoded frame (see the module docstring).

    Args:
        sample: a frame with its images (a missing modality is skipped).
        setup: which persons count (a :class:`~rgbt.evaluation.missrate.MissRateSetup` or a setup
            name); default ``reasonable`` scaled to the frame's height.
    """
    shape = sample.size
    setup = frame_setup("reasonable", shape[0]) if setup is None else setup
    persons = sample.boxes[positive_mask(sample, setup)]
    out = FrameContrast(sample.frame_id, sample.period)
    regions = [box_regions(box, shape) for box in persons]
    for modality in MODALITIES:
        image = sample.image(modality)
        if image is None:
            continue
        grey = grey_levels(image)
        out.d_prime[modality] = [d_prime(grey[core], grey[ring]) for core, ring in regions]
    if sample.thermal is not None and len(persons):
        grey = grey_levels(sample.thermal)
        threshold = float(np.median([np.percentile(grey[core], PERSON_PERCENTILE) for core, _ring in regions
                                     if core.any()] or [math.inf]))
        background = np.ones(shape, dtype=bool)
        for box in sample.boxes:
            x0, y0, x1, y1 = _pixel_box(box, shape)
            background[y0:y1, x0:x1] = False
        out.background = int(background.sum())
        out.hot_background = int((grey[background] > threshold).sum())
    return out


@dataclass
class ContrastSummary:
    """Per-period summary of one modality (medians over persons with a defined d')."""

    persons: int
    median_d: float
    median_abs_d: float
    low_contrast: float  # fraction of persons with |d'| < 1
    hot_background: float | None = None  # thermal only: fraction of background as hot as a person

    def as_dict(self) -> dict[str, float | int | None]:
        return {"persons": self.persons, "median_d": self.median_d, "median_abs_d": self.median_abs_d,
                "low_contrast": self.low_contrast, "hot_background": self.hot_background}


def summarise(frames: Iterable[FrameContrast]) -> dict[str, dict[str, ContrastSummary]]:
    """``{period: {modality: ContrastSummary}}`` for ``day``, ``night`` and ``all`` (periods with no
    measured person are absent); ``hot_background`` is set for thermal."""
    frames = list(frames)
    out: dict[str, dict[str, ContrastSummary]] = {}
    for period in ("day", "night", "all"):
        chosen = [f for f in frames if period == "all" or f.period == period]
        row = {}
        for modality in MODALITIES:
            values = np.array([d for f in chosen for d in f.d_prime.get(modality, [])], dtype=np.float64)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            summary = ContrastSummary(int(values.size), float(np.median(values)), float(np.median(np.abs(values))),
                                      float((np.abs(values) < 1).mean()))
            if modality == "thermal":
                background = sum(f.background for f in chosen)
                summary.hot_background = sum(f.hot_background for f in chosen) / background if background else None
            row[modality] = summary
        if row:
            out[period] = row
    return out


def measure_contrast(
    samples: Iterable[PairSample], setup: str | MissRateSetup | None = None
) -> dict[str, dict[str, ContrastSummary]]:
    """:func:`frame_contrast` over decoded samples (e.g. a :class:`~rgbt.data.source.FrameSource`),
    then :func:`summarise`."""
    return summarise(frame_contrast(sample, setup) for sample in samples)
