"""Paired augmentation: one geometry for every modality and its boxes, photometry per modality.

A :class:`PairedTransform` maps a :class:`~rgbt.data.sample.PairSample` to a new one in three
stages:

1. **geometric** albumentations ops (flip, scale, crop, resize, pad, small affine) drawn once
   and applied identically to ``rgb``, ``thermal``, ``fake_rgb`` and ``aligned_rgb`` and to both box sets
   (``boxes`` in the thermal frame, ``boxes_rgb`` in the RGB frame). Boxes are clipped to the new
   frame; an object whose thermal box is then narrower or lower than ``min_size`` pixels is
   dropped together with its label, ignore flag, occlusion and RGB box;
2. **misalignment** (``shift_rgb > 0``): the RGB stream alone moves by a random integer
   ``(dx, dy)`` with ``|dx|, |dy| <= shift_rgb`` (:func:`rgbt.data.perturbation.shift_image`, zero
   fill); thermal, fake RGB and the thermal-frame ground truth are untouched, ``boxes_rgb`` (or,
   without paired boxes, the thermal boxes) move along, and ``meta['augment']['shift_rgb']``
   records the shift;
3. **photometric** albumentations ops per modality with their own probabilities: the RGB list runs
   on ``rgb`` and, drawn independently, on ``fake_rgb`` and ``aligned_rgb``; the thermal list on ``thermal``.

Randomness: each stage is an ``albumentations.Compose`` with its own generator. A transform built
with ``seed`` is reproducible in the main process; inside a torch ``DataLoader`` worker it reseeds
from ``(seed, worker seed)`` on first use, so workers never repeat each other's draws and a run
seeded with ``torch.manual_seed`` augments identically every time. Training goes further:
:meth:`rgbt.data.dataset.PairDataset.set_epoch` reseeds the transform (:meth:`PairedTransform.set_seed`)
before every item from ``(seed, epoch, index)``, which makes augmentation independent of workers
and exactly repeatable after a resume.

albumentations is imported with ``NO_ALBUMENTATIONS_UPDATE=1`` (it otherwise checks the network
for a newer version).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402  (the variable above must be set before the import)
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from rgbt.data.perturbation import blackout, shift_image  # noqa: E402
from rgbt.data.sample import PairSample  # noqa: E402

#: Image fields of a sample, in the order they are handed to albumentations.
_IMAGE_FIELDS: tuple[str, ...] = ("thermal", "rgb", "fake_rgb", "aligned_rgb")


def _bbox_params() -> A.BboxParams:
    # Pixel xyxy in and out; clip=True clips to the frame before every op, filtering is ours.
    return A.BboxParams(format="pascal_voc", label_fields=["ids"], clip=True, min_area=0.0, min_visibility=0.0)


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip ``(N, 4)`` xyxy boxes to ``[0, width] x [0, height]`` (float32 copy)."""
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def select_objects(sample: PairSample, keep: np.ndarray, boxes: np.ndarray, boxes_rgb: np.ndarray | None,
                   **images: np.ndarray | None) -> PairSample:
    """A copy of ``sample`` keeping the objects where ``keep`` is true, with new boxes and images.

    Args:
        keep: ``(N,)`` bool over the sample's objects.
        boxes, boxes_rgb: ``(N, 4)`` xyxy boxes (all objects, before selection).
        images: replaced images (``rgb=...``, ``thermal=...``, ``fake_rgb=...``).
    """
    keep = np.asarray(keep, dtype=bool)
    return replace(
        sample,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4)[keep],
        labels=[label for label, k in zip(sample.labels, keep) if k],
        ignore=sample.ignore[keep],
        occlusion=sample.occlusion[keep],
        boxes_rgb=None if boxes_rgb is None else np.asarray(boxes_rgb, np.float32).reshape(-1, 4)[keep],
        meta=dict(sample.meta),
        **images,
    )


def _worker_seed() -> int | None:
    """The torch DataLoader worker seed, or ``None`` in the main process (or without torch)."""
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # transforms work without torch; only worker reseeding needs it
        return None
    info = get_worker_info()
    return None if info is None else int(info.seed)


class PairedTransform:
    """Paired augmentation of a :class:`PairSample` (see the module docstring).

    Args:
        geometric: albumentations spatial transforms, applied identically to every image and box set.
        rgb_photometric: albumentations pixel transforms for ``rgb`` (and independently ``fake_rgb``).
        thermal_photometric: albumentations pixel transforms for the ``(H, W)`` thermal image.
        shift_rgb: largest random RGB shift in pixels (0: off).
        shift_rgb_prob: probability that a sample is shifted at all (1: every sample); the others
            stay aligned, so a detector trained with shifts still sees aligned pairs.
        min_size: objects whose clipped thermal box is narrower or lower than this (pixels) are dropped.
        seed: makes the draws reproducible (``None``: fresh entropy in the main process).
        modality_dropout: probability that a sample holding two or more images has one of them,
            drawn uniformly, blacked out (set to 0, as ``rgbt misalign``'s ``blackout:all``), so a
            fusion detector learns to detect from either modality alone (0: off). Boxes are kept.
    """

    def __init__(
        self,
        geometric: Sequence[A.BasicTransform] = (),
        rgb_photometric: Sequence[A.BasicTransform] = (),
        thermal_photometric: Sequence[A.BasicTransform] = (),
        shift_rgb: float = 0.0,
        min_size: float = 2.0,
        seed: int | None = None,
        modality_dropout: float = 0.0,
        shift_rgb_prob: float = 1.0,
    ) -> None:
        if shift_rgb < 0:
            raise ValueError(f"shift_rgb must be >= 0, got {shift_rgb}")
        if not 0 <= shift_rgb_prob <= 1:
            raise ValueError(f"shift_rgb_prob is a probability in [0, 1], got {shift_rgb_prob}")
        if not 0 <= modality_dropout <= 1:
            raise ValueError(f"modality_dropout is a probability in [0, 1], got {modality_dropout}")
        self.shift_rgb = float(shift_rgb)
        self.shift_rgb_prob = float(shift_rgb_prob)
        self.modality_dropout = float(modality_dropout)
        self.min_size = float(min_size)
        self.seed = seed
        targets = {name: "image" for name in _IMAGE_FIELDS}
        self.geometric = (
            A.Compose(list(geometric), bbox_params=_bbox_params(), additional_targets=targets) if geometric else None
        )
        self.rgb_photometric = A.Compose(list(rgb_photometric)) if rgb_photometric else None
        self.thermal_photometric = A.Compose(list(thermal_photometric)) if thermal_photometric else None
        self._rng = np.random.default_rng()
        self._dropout_rng = np.random.default_rng()
        self._seeded_for: int | None = None
        if seed is not None:
            self._seed_stages(seed)

    def __repr__(self) -> str:
        def names(compose: A.Compose | None) -> list[str]:
            return [type(t).__name__ for t in compose.transforms] if compose is not None else []

        return (f"PairedTransform(geometric={names(self.geometric)}, rgb_photometric={names(self.rgb_photometric)}, "
                f"thermal_photometric={names(self.thermal_photometric)}, shift_rgb={self.shift_rgb}, "
                f"modality_dropout={self.modality_dropout})")

    def set_seed(self, seed: int | None) -> None:
        """Reseed every stage (albumentations composes and the shift generator).

        This also stands in for the per-worker reseeding: the caller chose the stream.
        """
        self._seeded_for = _worker_seed()
        self._seed_stages(seed)

    def _seed_stages(self, seed: int | None) -> None:
        children = np.random.SeedSequence(seed).spawn(5) if seed is not None else [None] * 5
        ints = [int(c.generate_state(1)[0]) if c is not None else None for c in children]
        for compose, child in zip((self.geometric, self.rgb_photometric, self.thermal_photometric), ints):
            if compose is not None:
                compose.set_random_seed(child)
        self._rng = np.random.default_rng(children[3])
        # Its own stream: turning modality dropout on leaves every other draw as it was.
        self._dropout_rng = np.random.default_rng(children[4])

    def _maybe_reseed(self) -> None:
        # Forked DataLoader workers inherit identical generator states: give each its own stream.
        worker = _worker_seed()
        if worker is not None and worker != self._seeded_for:
            self._seeded_for = worker
            self._seed_stages(int(np.random.SeedSequence([self.seed or 0, worker % 2**63]).generate_state(1)[0]))

    def __call__(self, sample: PairSample) -> PairSample:
        """Augment one sample; returns a new :class:`PairSample` (the input is not modified)."""
        self._maybe_reseed()
        if self.geometric is not None:
            sample = self._apply_geometric(sample)
        if self.shift_rgb > 0 and sample.rgb is not None and self._shift_drawn():
            sample = self._apply_shift(sample)
        images: dict[str, Any] = {}
        if self.rgb_photometric is not None:
            for name in ("rgb", "fake_rgb", "aligned_rgb"):
                image = getattr(sample, name)
                if image is not None:
                    images[name] = self.rgb_photometric(image=image)["image"]
        if self.thermal_photometric is not None and sample.thermal is not None:
            images["thermal"] = self.thermal_photometric(image=sample.thermal)["image"]
        if self.modality_dropout > 0:
            present = [name for name in _IMAGE_FIELDS if images.get(name, getattr(sample, name)) is not None]
            if len(present) >= 2 and self._dropout_rng.random() < self.modality_dropout:
                name = present[int(self._dropout_rng.integers(len(present)))]
                images[name] = blackout(images.get(name, getattr(sample, name)), "all")
        return sample.with_images(**images) if images else sample

    def _apply_geometric(self, sample: PairSample) -> PairSample:
        present = [name for name in _IMAGE_FIELDS if getattr(sample, name) is not None]
        if not present:
            raise ValueError(f"sample {sample.frame_id!r} has no image to transform")
        height, width = getattr(sample, present[0]).shape[:2]
        n = len(sample.boxes)
        paired = sample.boxes_rgb is not None
        all_boxes = clip_boxes(np.concatenate([sample.boxes, sample.boxes_rgb]) if paired else sample.boxes,
                               height, width)
        ids = np.arange(len(all_boxes))
        # albumentations rejects empty boxes: keep only boxes with an area left after clipping.
        valid = (all_boxes[:, 2] > all_boxes[:, 0]) & (all_boxes[:, 3] > all_boxes[:, 1])
        kwargs = {"image": getattr(sample, present[0])}
        kwargs.update({name: getattr(sample, name) for name in present[1:]})
        out = self.geometric(**kwargs, bboxes=all_boxes[valid], ids=ids[valid])
        new_images = {present[0]: out["image"], **{name: out[name] for name in present[1:]}}
        new_h, new_w = out["image"].shape[:2]
        boxes = np.zeros((len(all_boxes), 4), np.float32)
        found = np.zeros(len(all_boxes), bool)
        out_ids = np.asarray(out["ids"], dtype=np.int64)
        if len(out_ids):
            boxes[out_ids] = clip_boxes(np.asarray(out["bboxes"])[:, :4], new_h, new_w)
            found[out_ids] = True
        thermal_boxes = boxes[:n]
        size_ok = ((thermal_boxes[:, 2] - thermal_boxes[:, 0]) >= self.min_size) & (
            (thermal_boxes[:, 3] - thermal_boxes[:, 1]) >= self.min_size)
        keep = found[:n] & size_ok
        rgb_boxes = None
        if paired:
            rgb_boxes = boxes[n:].copy()
            # An RGB box that left the frame entirely while its thermal box stays: no RGB evidence is
            # left, so the thermal box stands in (rare: needs a crop edge between the two boxes).
            lost = ~found[n:]
            rgb_boxes[lost] = thermal_boxes[lost]
        return select_objects(sample, keep, thermal_boxes, rgb_boxes, **new_images)

    def _shift_drawn(self) -> bool:
        """Whether this sample's RGB is shifted (no draw at ``shift_rgb_prob == 1``, so the draws of
        every other augmentation stay those of a transform without the probability)."""
        return self.shift_rgb_prob >= 1 or bool(self._rng.random() < self.shift_rgb_prob)

    def _apply_shift(self, sample: PairSample) -> PairSample:
        dx, dy = (int(v) for v in np.rint(self._rng.uniform(-self.shift_rgb, self.shift_rgb, size=2)))
        rgb = shift_image(sample.rgb, dx, dy)
        height, width = rgb.shape[:2]
        base = sample.boxes_rgb if sample.boxes_rgb is not None else sample.boxes
        boxes_rgb = clip_boxes(base + np.array([dx, dy, dx, dy], np.float32), height, width)
        meta = dict(sample.meta)
        meta["augment"] = {**meta.get("augment", {}), "shift_rgb": (dx, dy)}
        return replace(sample, rgb=rgb, boxes_rgb=boxes_rgb, meta=meta)


def build_train_transform(
    hflip: float = 0.5,
    scale: Sequence[float] = (1.0, 1.0),
    color: float = 0.0,
    shift_rgb: float = 0.0,
    crop: Sequence[int] | None = None,
    thermal_jitter: float = 0.0,
    seed: int | None = None,
    modality_dropout: float = 0.0,
    shift_rgb_prob: float = 1.0,
) -> PairedTransform:
    """The detector-training augmentation (arguments mirror :class:`rgbt.config.AugmentConfig`).

    Args:
        hflip: probability of a horizontal flip.
        scale: ``(low, high)`` random rescale factors (``(1, 1)``: off); the image size changes.
        color: probability of RGB brightness / contrast jitter; hue / saturation jitter, blur and
            sensor noise follow with probabilities ``color / 2``, ``color / 4`` and ``color / 4``.
        shift_rgb: misalignment augmentation: largest random RGB shift in pixels (0: off).
        crop: ``(height, width)`` random crop after scaling, zero-padding smaller frames (None or
            empty: off).
        thermal_jitter: probability of thermal brightness / contrast jitter (gain / offset of the
            camera's automatic gain control), with noise at half that probability.
        seed: see :class:`PairedTransform`.
        modality_dropout: probability of blacking out one modality of a sample (see :class:`PairedTransform`).
        shift_rgb_prob: probability that a sample's RGB is shifted (see :class:`PairedTransform`).
    """
    low, high = (float(v) for v in scale)
    if not 0 < low <= high:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {tuple(scale)}")
    for name, p in (("hflip", hflip), ("color", color), ("thermal_jitter", thermal_jitter)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} is a probability in [0, 1], got {p}")
    geometric: list[A.BasicTransform] = []
    if hflip > 0:
        geometric.append(A.HorizontalFlip(p=hflip))
    if (low, high) != (1.0, 1.0):
        geometric.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR, p=1.0))
    if crop:  # None or an empty list (a config default) mean no crop
        if len(crop) != 2:
            raise ValueError(f"crop must be (height, width), got {list(crop)}")
        crop_h, crop_w = (int(v) for v in crop)
        geometric += [
            A.PadIfNeeded(min_height=crop_h, min_width=crop_w, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                          fill=0),
            A.RandomCrop(height=crop_h, width=crop_w, p=1.0),
        ]
    rgb_photometric: list[A.BasicTransform] = []
    if color > 0:
        # Brightness/contrast and hue/saturation as lookup tables: ~1 ms per 640x512 frame where
        # ColorJitter takes ~8 ms; per-pixel noise is the costly op (~11 ms), hence its lower rate.
        rgb_photometric += [
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=color),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=25, val_shift_limit=0, p=color / 2),
            A.GaussianBlur(blur_limit=(3, 5), p=color / 4),
            A.GaussNoise(std_range=(0.01, 0.04), per_channel=False, p=color / 4),
        ]
    thermal_photometric: list[A.BasicTransform] = []
    if thermal_jitter > 0:
        thermal_photometric += [
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=thermal_jitter),
            A.GaussNoise(std_range=(0.01, 0.03), p=thermal_jitter / 2),
        ]
    return PairedTransform(geometric, rgb_photometric, thermal_photometric, shift_rgb=shift_rgb, seed=seed,
                           modality_dropout=modality_dropout, shift_rgb_prob=shift_rgb_prob)


def random_crop_pair(sample: PairSample, height: int, width: int, rng: np.random.Generator) -> PairSample:
    """Crop every modality of ``sample`` at the same random window (translator training).

    Boxes are moved into the crop, clipped, and objects left with no area are dropped.

    Args:
        sample: a sample with images of equal size.
        height, width: crop size in pixels.
        rng: the generator that draws the window.

    Raises:
        ValueError: the frame is smaller than the crop, or the sample has no image.
    """
    present = [name for name in _IMAGE_FIELDS if getattr(sample, name) is not None]
    if not present:
        raise ValueError(f"sample {sample.frame_id!r} has no image to crop")
    frame_h, frame_w = getattr(sample, present[0]).shape[:2]
    if frame_h < height or frame_w < width:
        raise ValueError(f"frame {sample.frame_id!r} is {frame_w}x{frame_h}, smaller than the {width}x{height} crop")
    y0 = int(rng.integers(0, frame_h - height + 1))
    x0 = int(rng.integers(0, frame_w - width + 1))
    images = {name: np.ascontiguousarray(getattr(sample, name)[y0:y0 + height, x0:x0 + width]) for name in present}
    offset = np.array([x0, y0, x0, y0], np.float32)
    boxes = clip_boxes(sample.boxes - offset, height, width)
    boxes_rgb = clip_boxes(sample.boxes_rgb - offset, height, width) if sample.boxes_rgb is not None else None
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return select_objects(sample, keep, boxes, boxes_rgb, **images)
