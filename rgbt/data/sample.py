"""The one sample type every rgbt component exchanges.

Conventions (see DESIGN.md):

* images are numpy ``uint8``; RGB is ``(H, W, 3)`` in RGB channel order, thermal is ``(H, W)``;
* boxes are float ``xyxy`` in pixels of the *thermal* frame (the reference modality);
* per-object arrays (``boxes``, ``labels``, ``ignore``, ``occlusion``) share their first dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: KAIST object labels in bbGt files; ``person`` is the only positive class of the benchmark.
KAIST_LABELS: tuple[str, ...] = ("person", "people", "cyclist", "person?")

#: Channels of each modality's model tensor, in the canonical modality order: RGB images have 3,
#: thermal 1 (KAIST's 3 equal channels are reduced at load), fake RGB and aligned RGB (the RGB frame
#: warped into the thermal frame by ``rgbt align --write-aligned``) are RGB images.
MODALITY_CHANNELS: dict[str, int] = {"rgb": 3, "thermal": 1, "fake_rgb": 3, "aligned_rgb": 3}

#: Modality names accepted everywhere a modality is chosen (datasets, detectors, perturbations).
MODALITIES: tuple[str, ...] = tuple(MODALITY_CHANNELS)


def empty_boxes() -> np.ndarray:
    """An ``(0, 4)`` float32 box array."""
    return np.zeros((0, 4), dtype=np.float32)


@dataclass
class PairSample:
    """One RGB-thermal frame pair with its annotations.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB image, or ``None`` when the frame has no RGB image.
        thermal: ``(H, W)`` uint8 thermal image, or ``None`` when missing.
        boxes: ``(N, 4)`` float32 ``xyxy`` boxes in thermal-frame pixels.
        labels: ``N`` label names (``person``, ``people``, ``cyclist``, ``person?`` for KAIST;
            category names for FLIR).
        ignore: ``(N,)`` bool; objects flagged ``ign`` in the annotation file itself.
            Evaluation-time ignore rules (height, occlusion, border) are applied by the evaluator.
        occlusion: ``(N,)`` int8, 0 none, 1 partial, 2 heavy (KAIST convention).
        fake_rgb: optional ``(H, W, 3)`` uint8 translated image aligned with thermal.
        aligned_rgb: optional ``(H, W, 3)`` uint8 RGB image registered and warped into the thermal
            frame (``rgbt align --write-aligned``); zero where the RGB camera saw nothing.
        boxes_rgb: optional ``(N, 4)`` float32 ``xyxy`` boxes of the same objects in the RGB frame
            (KAIST-Paired annotations); ``None`` when only thermal-frame boxes exist.
        meta: free-form provenance: ``dataset``, ``split``, ``frame_id`` (e.g.
            ``set06/V001/I00459``), ``set``, ``video``, ``frame``, ``period`` (``day``/``night``),
            ``paths`` (modality -> file path).
    """

    rgb: np.ndarray | None
    thermal: np.ndarray | None
    boxes: np.ndarray = field(default_factory=empty_boxes)
    labels: list[str] = field(default_factory=list)
    ignore: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    occlusion: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    fake_rgb: np.ndarray | None = None
    aligned_rgb: np.ndarray | None = None
    boxes_rgb: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.labels = list(self.labels)
        self.ignore = np.asarray(self.ignore, dtype=bool).reshape(-1)
        self.occlusion = np.asarray(self.occlusion, dtype=np.int8).reshape(-1)
        if self.boxes_rgb is not None:
            self.boxes_rgb = np.asarray(self.boxes_rgb, dtype=np.float32).reshape(-1, 4)
        sizes = {"labels": len(self.labels), "ignore": len(self.ignore), "occlusion": len(self.occlusion)}
        if self.boxes_rgb is not None:
            sizes["boxes_rgb"] = len(self.boxes_rgb)
        for name, size in sizes.items():
            if size != n:
                raise ValueError(f"PairSample: {name} has {size} entries but boxes has {n}")

    @property
    def frame_id(self) -> str:
        """The frame identifier in ``meta`` (``set06/V001/I00459`` for KAIST-layout roots)."""
        return str(self.meta.get("frame_id", ""))

    @property
    def period(self) -> str:
        """``day`` or ``night`` (``unknown`` when the dataset does not say)."""
        return str(self.meta.get("period", "unknown"))

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the thermal frame (the RGB frame when thermal is missing)."""
        ref = self.thermal if self.thermal is not None else self.rgb
        if ref is None:
            raise ValueError(f"sample {self.frame_id!r} has no image")
        return int(ref.shape[0]), int(ref.shape[1])

    def image(self, modality: str) -> np.ndarray | None:
        """The image of one modality (``rgb``, ``thermal``, ``fake_rgb`` or ``aligned_rgb``)."""
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        return getattr(self, modality)

    @classmethod
    def checked_before(cls, boxes: np.ndarray, labels: list[str], ignore: np.ndarray, occlusion: np.ndarray,
                       meta: dict[str, Any]) -> PairSample:
        """An annotation-only sample (no image) from fields a :class:`PairSample` already checked
        and converted (``boxes`` ``(N, 4)`` float32, ``ignore`` bool, ``occlusion`` int8, ``N``
        labels), e.g. read back from a cache of such samples: the checks are not run again."""
        sample = object.__new__(cls)
        sample.__dict__.update(rgb=None, thermal=None, boxes=boxes, labels=labels, ignore=ignore,
                               occlusion=occlusion, fake_rgb=None, aligned_rgb=None, boxes_rgb=None, meta=meta)
        return sample

    def with_images(self, **images: np.ndarray | None) -> PairSample:
        """A shallow copy with some images replaced (annotations shared)."""
        return replace(self, **images)
