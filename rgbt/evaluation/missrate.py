"""The KAIST log-average miss rate (MR^-2), exactly as Piotr Dollar's ``bbGt`` computes it.

The protocol (DESIGN.md; Dollar's ``bbGt.m`` ``bbLoad``/``evalRes``/``compRoc`` with the KAIST
settings of the official matlab wrapper ``kaist_eval_full.m``):

* ground truth: ``person`` is a positive; ``people``, ``person?`` and ``cyclist`` are ignore
  regions; any other label is dropped. A positive becomes an ignore region when the file flags
  it (``ign``), when its height is outside the setup's range (inclusive bounds), when its
  occlusion level is not in the setup's set, or when it is not inside the frame border
  ``x1 >= 5, y1 >= 5, x2 <= W - 5, y2 <= H - 5`` (``[5, 635] x [5, 507]`` on KAIST's 640x512;
  other frame sizes keep the same 5-pixel margin);
* detections: all of them are used (the KAIST wrapper does not filter detections by height);
* matching, per image: detections by descending score (stable), each takes the unmatched
  positive with the highest IoU >= 0.5 (ties: the later one, as ``>=`` in ``evalRes``); a
  detection without such a positive is *ignored* (dropped) when it covers an ignore region
  (intersection / detection area >= 0.5), any number of detections per region; else it is a
  false positive. Widths and heights are ``x2 - x1`` (no +1 pixel);
* curve: the kept detections of every image of the subset sorted by score (stable);
  FPPI = false positives / number of images of the subset (images with nothing in them count);
  recall = true positives / positives;
* MR = ``exp(mean(log(max(1e-10, 1 - recall_i))))`` with ``recall_i`` the recall at the last
  curve point whose FPPI <= ``10^(-2:0.25:0)`` (9 points), 0 before the first point.

Day and night are separate evaluations over their own images (split by ``sample.period``).
Matching is per image and does not depend on the subset, so :func:`evaluate_periods` matches
once and builds the three curves from the one matching.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rgbt.data.errors import DataFormatError
from rgbt.data.kaist import (
    objects_to_sample,
    read_annotations,
    read_image_set,
    read_kaist_json,
    resolve_image_set,
)
from rgbt.data.sample import PairSample
from rgbt.evaluation.ground_truth_cache import cached_samples

#: The 9 FPPI reference points ``10^(-2:0.25:0)`` at which the miss rate is averaged.
REFERENCE_FPPI: np.ndarray = 10.0 ** np.arange(-2.0, 0.125, 0.25)

#: The overlap a detection needs with a ground-truth box to match it.
OVERLAP_THRESHOLD = 0.5

#: KAIST labels evaluated as positives / as ignore regions (other labels are dropped, as in bbLoad).
POSITIVE_LABELS: frozenset[str] = frozenset({"person"})
IGNORE_LABELS: frozenset[str] = frozenset({"people", "person?", "cyclist"})

#: Margin of the border rule in pixels: boxes not inside ``[5, W-5] x [5, H-5]`` are ignored.
BORDER_MARGIN = 5.0

#: Frame size ``(height, width)`` assumed when a sample carries neither images nor ``meta['size']``.
KAIST_FRAME_SIZE: tuple[int, int] = (512, 640)

_MIN_MISS = 1e-10


@dataclass(frozen=True)
class MissRateSetup:
    """Which ground truth counts as a positive.

    Attributes:
        height: inclusive ``(min, max)`` box height in pixels of a positive.
        occlusion: accepted occlusion levels (0 none, 1 partial, 2 heavy).
        description: one line for tables and ``--help``.
    """

    height: tuple[float, float]
    occlusion: tuple[int, ...]
    description: str = ""


#: The KAIST setups (``kaist_eval_full.m``): reasonable, the three scales, the three occlusion levels.
SETUPS: dict[str, MissRateSetup] = {
    "reasonable": MissRateSetup((55.0, math.inf), (0, 1), "height >= 55 px, no or partial occlusion"),
    "near": MissRateSetup((115.0, math.inf), (0,), "height >= 115 px, no occlusion"),
    "medium": MissRateSetup((45.0, 115.0), (0,), "45 <= height <= 115 px, no occlusion"),
    "far": MissRateSetup((1.0, 45.0), (0,), "1 <= height <= 45 px, no occlusion"),
    "none": MissRateSetup((1.0, math.inf), (0,), "no occlusion, any height >= 1 px"),
    "partial": MissRateSetup((1.0, math.inf), (1,), "partial occlusion, any height >= 1 px"),
    "heavy": MissRateSetup((1.0, math.inf), (2,), "heavy occlusion, any height >= 1 px"),
}


def scaled_setup(setup: MissRateSetup, factor: float) -> MissRateSetup:
    """``setup`` with its height range multiplied by ``factor``, for frames smaller or larger than KAIST's.

    KAIST's thresholds are pixels of a 512 px high frame; on a frame ``h`` pixels high use
    ``factor = h / 512`` so the same people count as positives (the synthetic benchmark's default
    256 px frames keep persons of 27.5 px and up in ``reasonable``).
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"the height scale factor must be a finite number > 0, got {factor}")
    low, high = setup.height
    return MissRateSetup((low * factor, high * factor), setup.occlusion,
                         f"{setup.description} (heights x{factor:g})")


def height_scaled(setup: str, factor: float) -> str | MissRateSetup:
    """The setup named ``setup`` for frames ``factor`` times KAIST's height (see :func:`scaled_setup`).

    Returns the name itself for ``factor == 1`` (so results keep naming the setup), else the scaled
    :class:`MissRateSetup`.

    Raises:
        ValueError: an unknown name (with ``factor != 1``; a name alone is checked where it is used),
            or ``factor <= 0``.
    """
    if factor == 1.0:
        return setup
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    return scaled_setup(SETUPS[setup], factor)


def height_scale_for(root: str | os.PathLike[str] | None, frame_height: int | None) -> tuple[float, str]:
    """The factor by which KAIST's height thresholds scale on a root's frames, and where it comes from.

    A synthetic benchmark root (``synthetic.json``) states its object scale relative to KAIST (its
    ``scale``: persons are drawn at that fraction of KAIST's sizes); any other root holds frames of
    one size, and a frame ``h`` pixels high scales by ``h / 512``. Without either, 1.

    Returns:
        ``(factor, reason)``, e.g. ``(0.5, 'synthetic.json: objects at 0.5 x KAIST size')``.

    Raises:
        DataFormatError: an unreadable ``synthetic.json``; ValueError: ``frame_height <= 0``.
    """
    manifest = None if root is None else Path(root) / "synthetic.json"
    if manifest is not None and manifest.is_file():
        # Only the one key: the generator module (and OpenCV with it) stays out of the evaluate path.
        from rgbt.data.jsonfields import as_number, get, load_json

        data = load_json(manifest)
        if not isinstance(data, dict):
            raise DataFormatError(manifest, None, f"expected a json object, got {type(data).__name__}")
        scale = as_number(get(data, "scale", manifest, "synthetic.json"), manifest, "scale")
        if not scale > 0:
            raise DataFormatError(manifest, None, f"'scale' must be > 0, got {scale}")
        return scale, f"{manifest}: objects at {scale:g} x KAIST size"
    if frame_height is None:
        return 1.0, "frame size unknown: KAIST's 512 px assumed"
    if frame_height <= 0:
        raise ValueError(f"the frame height must be > 0, got {frame_height}")
    return frame_height / KAIST_FRAME_SIZE[0], f"frames {frame_height} px high (KAIST: {KAIST_FRAME_SIZE[0]})"


def frame_setup(setup: str, frame_height: int, root: str | os.PathLike[str] | None = None) -> MissRateSetup:
    """The setup named ``setup`` on frames ``frame_height`` pixels high (of ``root`` when given): its
    height range scaled by :func:`height_scale_for` (``frame_height / 512``, or a synthetic root's
    own scale), so a 256 px synthetic frame keeps the persons KAIST would keep. Validation during
    training, the demo, ``rgbt evaluate`` and ``rgbt misalign`` all scale with it.

    Raises:
        ValueError: an unknown setup name or ``frame_height <= 0``.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    if frame_height <= 0:
        raise ValueError(f"the frame height must be > 0, got {frame_height}")
    return scaled_setup(SETUPS[setup], height_scale_for(root, frame_height)[0])


@dataclass
class MissRateCurve:
    """The miss-rate-vs-FPPI curve of one evaluation and its log-average miss rate.

    Attributes:
        mr: log-average miss rate over the 9 reference points, in ``[0, 1]`` (``nan`` when the
            subset has no positive).
        fppi: ``(K,)`` false positives per image after each kept detection, non-decreasing.
        miss_rate: ``(K,)`` miss rate ``1 - recall`` after each kept detection.
        n_images: images in the evaluated subset (the FPPI denominator).
        scores: ``(K,)`` the score of the detection at each curve point (descending).
        reference_miss: ``(9,)`` miss rate at :data:`REFERENCE_FPPI`.
        n_positives: positives (non-ignored ground truth) in the subset.
        setup: the setup name.
    """

    mr: float
    fppi: np.ndarray
    miss_rate: np.ndarray
    n_images: int
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_miss: np.ndarray = field(default_factory=lambda: np.ones(len(REFERENCE_FPPI)))
    n_positives: int = 0
    setup: str = "reasonable"

    @property
    def recall(self) -> float:
        """Recall at the end of the curve (every kept detection accepted); 0 without detections."""
        return float(1.0 - self.miss_rate[-1]) if len(self.miss_rate) else 0.0


@dataclass
class _Matching:
    """Per-detection outcome of the matching over every image (flat arrays, image-major)."""

    det_image: np.ndarray  # (D,) image index of each detection
    det_score: np.ndarray  # (D,) float64
    det_rank: np.ndarray  # (D,) rank inside its image (0 = highest score)
    det_match: np.ndarray  # (D,) int8: -1 ignored, 0 false positive, 1 true positive
    gt_image: np.ndarray  # (P,) image index of each positive
    n_images: int


def _frame_size(sample: PairSample) -> tuple[int, int]:
    """``(height, width)`` of a sample's frame: images, then ``meta['size']``, then KAIST's 512x640."""
    if sample.thermal is not None or sample.rgb is not None:
        return sample.size
    size = sample.meta.get("size")
    if size is not None:
        return int(size[0]), int(size[1])
    return KAIST_FRAME_SIZE


def _ground_truth_arrays(
    ground_truth: Sequence[PairSample], setup: MissRateSetup
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten the ground truth into per-object arrays with the evaluation-time ignore flag.

    Returns:
        boxes ``(G, 4)`` float64 xyxy, ignore ``(G,)`` bool, image ``(G,)`` int64, ordered by
        image, then positives before ignore regions (file order inside each group, as ``evalRes``
        sorts them), and the per-image start offsets ``(N + 1,)``.
    """
    n = len(ground_truth)
    counts = np.fromiter((len(s.boxes) for s in ground_truth), dtype=np.int64, count=n)
    total = int(counts.sum())
    image = np.repeat(np.arange(n, dtype=np.int64), counts)
    if total == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=bool), image, np.zeros(n + 1, dtype=np.int64)
    boxes = np.concatenate([s.boxes for s in ground_truth]).astype(np.float64)
    # 1 positive label, 2 ignore label, 0 any other (dropped)
    kinds = {**dict.fromkeys(POSITIVE_LABELS, 1), **dict.fromkeys(IGNORE_LABELS, 2)}
    kind = np.array([kinds.get(label, 0) for s in ground_truth for label in s.labels], dtype=np.int8)
    flagged = np.concatenate([s.ignore for s in ground_truth])
    occlusion = np.concatenate([s.occlusion for s in ground_truth])
    sizes = np.array([_frame_size(s) for s in ground_truth], dtype=np.float64).reshape(n, 2)[image]

    keep = kind > 0
    regular = _regular(boxes, kind == 1, flagged, occlusion, sizes, setup)
    boxes, regular, image = boxes[keep], regular[keep], image[keep]
    # evalRes sorts each image's ground truth positives-first (a stable sort on the ignore flag).
    order = np.lexsort((~regular, image))
    boxes, regular, image = boxes[order], regular[order], image[order]
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(image, minlength=n), out=starts[1:])
    return boxes, ~regular, image, starts


def _regular(boxes: np.ndarray, positive: np.ndarray, flagged: np.ndarray, occlusion: np.ndarray,
             sizes: np.ndarray, setup: MissRateSetup) -> np.ndarray:
    """Which objects are regular positives of ``setup`` (all arrays per object; ``sizes`` ``(G, 2)`` is
    each object's frame ``(height, width)``): a positive label, not flagged, inside the frame border,
    height in range, occlusion accepted. Every other object is an ignore region or dropped."""
    height = boxes[:, 3] - boxes[:, 1]
    inside = (
        (boxes[:, 0] >= BORDER_MARGIN) & (boxes[:, 1] >= BORDER_MARGIN)
        & (boxes[:, 2] <= sizes[:, 1] - BORDER_MARGIN) & (boxes[:, 3] <= sizes[:, 0] - BORDER_MARGIN)
    )
    return (
        positive & ~flagged & inside
        & (height >= setup.height[0]) & (height <= setup.height[1])
        & np.isin(occlusion, setup.occlusion)
    )


def positive_mask(sample: PairSample, setup: str | MissRateSetup = "reasonable") -> np.ndarray:
    """``(N,)`` bool: which of ``sample``'s objects :func:`evaluate_miss_rate` counts as positives under
    ``setup`` (the others are ignore regions or dropped); the frame size comes as in the evaluation."""
    _name, params = _setup(setup)
    boxes = sample.boxes.astype(np.float64)
    positive = np.array([label in POSITIVE_LABELS for label in sample.labels], dtype=bool)
    sizes = np.tile(np.array(_frame_size(sample), dtype=np.float64), (len(boxes), 1))
    return _regular(boxes, positive, sample.ignore, sample.occlusion, sizes, params)


def _detection_arrays(detections: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten detections into ``(D, 5)`` float64 rows, image index and rank, sorted per image by score."""
    if len(detections) != n:
        raise ValueError(f"{len(detections)} detection arrays for {n} ground-truth frames")
    arrays = [np.asarray(dets, dtype=np.float64) for dets in detections]
    for i, dets in enumerate(arrays):
        if dets.ndim != 2 or dets.shape[1] != 5:
            if dets.size:
                raise ValueError(f"detections of frame {i} must be (M, 5) [x1, y1, x2, y2, score], got {dets.shape}")
            arrays[i] = dets.reshape(0, 5)
    counts = np.fromiter((len(d) for d in arrays), dtype=np.int64, count=n)
    image = np.repeat(np.arange(n, dtype=np.int64), counts)
    dets = np.concatenate(arrays) if arrays else np.zeros((0, 5))
    if not np.isfinite(dets).all():
        bad = int(image[~np.isfinite(dets).all(axis=1)][0])
        raise ValueError(f"detections of frame {bad} hold a NaN or infinite value")
    # Highest score first inside each image; equal scores keep file order (MATLAB's sort is stable).
    order = np.lexsort((np.arange(len(dets)), -dets[:, 4], image))
    dets, image = dets[order], image[order]
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    rank = np.arange(len(dets), dtype=np.int64) - starts[image]
    return dets, image, rank


def _pairs(det_image: np.ndarray, gt_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth) index pair of the same image, detection-major."""
    gt_counts = np.diff(gt_starts)
    per_det = gt_counts[det_image]
    total = int(per_det.sum())
    det_index = np.repeat(np.arange(len(det_image), dtype=np.int64), per_det)
    block_start = np.cumsum(per_det) - per_det
    gt_index = np.arange(total, dtype=np.int64) - np.repeat(block_start - gt_starts[det_image], per_det)
    return det_index, gt_index


def _overlaps(dets: np.ndarray, gts: np.ndarray, ignore: np.ndarray) -> np.ndarray:
    """bbGt ``compOas`` on paired rows: IoU, or intersection / detection area for ignore regions.

    Args:
        dets: ``(K, >=4)`` xyxy; gts: ``(K, 4)`` xyxy; ignore: ``(K,)`` bool.

    Returns:
        ``(K,)`` overlaps in ``[0, 1]``; 0 where the boxes do not intersect (zero-area boxes included).
    """
    w = np.minimum(dets[:, 2], gts[:, 2]) - np.maximum(dets[:, 0], gts[:, 0])
    h = np.minimum(dets[:, 3], gts[:, 3]) - np.maximum(dets[:, 1], gts[:, 1])
    hit = (w > 0) & (h > 0)
    inter = np.where(hit, w * h, 0.0)
    det_area = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    gt_area = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    union = np.where(ignore, det_area, det_area + gt_area - inter)
    out = np.zeros(len(inter))
    np.divide(inter, union, out=out, where=hit)
    return out


def _match(ground_truth: Sequence[PairSample], detections: Sequence[np.ndarray], setup: MissRateSetup) -> _Matching:
    """bbGt ``evalRes`` on every image, vectorised over pairs; only contested matches loop."""
    n = len(ground_truth)
    gt_boxes, gt_ignore, gt_image, gt_starts = _ground_truth_arrays(ground_truth, setup)
    dets, det_image, det_rank = _detection_arrays(detections, n)
    match = np.zeros(len(dets), dtype=np.int8)

    det_index, gt_index = _pairs(det_image, gt_starts)
    oa = _overlaps(dets[det_index], gt_boxes[gt_index], gt_ignore[gt_index])
    candidate = oa >= OVERLAP_THRESHOLD
    on_ignore = candidate & gt_ignore[gt_index]
    on_regular = candidate & ~gt_ignore[gt_index]

    # Greedy assignment to positives. Pairs are detection-major and detections are sorted by
    # image then rank, so walking the candidate pairs in order visits detections in evalRes order.
    cand_det = det_index[on_regular].tolist()
    cand_gt = gt_index[on_regular].tolist()
    cand_oa = oa[on_regular].tolist()
    taken: set[int] = set()
    k, total = 0, len(cand_det)
    while k < total:
        d = cand_det[k]
        best_g, best_oa = -1, OVERLAP_THRESHOLD
        while k < total and cand_det[k] == d:
            g = cand_gt[k]
            # '>=' keeps the later of equally good positives, as evalRes does.
            if g not in taken and cand_oa[k] >= best_oa:
                best_g, best_oa = g, cand_oa[k]
            k += 1
        if best_g >= 0:
            taken.add(best_g)
            match[d] = 1
    # A detection without a positive is dropped when it lies on an ignore region.
    ignored = np.zeros(len(dets), dtype=bool)
    ignored[det_index[on_ignore]] = True
    match[ignored & (match == 0)] = -1
    return _Matching(det_image, dets[:, 4], det_rank, match, gt_image[~gt_ignore], n)


def _curve(matching: _Matching, images: np.ndarray, setup_name: str) -> MissRateCurve:
    """bbGt ``compRoc`` (ROC mode) plus the log-average over :data:`REFERENCE_FPPI`.

    Args:
        matching: the per-detection outcome over all images.
        images: ``(N,)`` bool, the images of the subset.
    """
    n_images = int(images.sum())
    n_positives = int(images[matching.gt_image].sum())
    kept = images[matching.det_image] & (matching.det_match >= 0)
    score = matching.det_score[kept]
    # Image order, then rank inside the image, then a stable sort on the score: compRoc's order.
    order = np.lexsort((matching.det_rank[kept], matching.det_image[kept], -score))
    score = score[order]
    tp = matching.det_match[kept][order] == 1
    if len(score) == 0 or n_images == 0:
        reference = np.zeros(len(REFERENCE_FPPI))
        fppi = miss = np.zeros(0)
    else:
        fppi = np.cumsum(~tp) / n_images
        recall = np.cumsum(tp) / n_positives if n_positives else np.full(len(tp), np.nan)
        miss = 1.0 - recall
        # Last curve point with fppi <= ref; before the first point the recall is 0.
        last = np.searchsorted(fppi, REFERENCE_FPPI, side="right")
        reference = np.where(last > 0, recall[np.maximum(last - 1, 0)], 0.0)
    if n_positives == 0:
        mr = math.nan
    else:
        mr = float(np.exp(np.mean(np.log(np.maximum(_MIN_MISS, 1.0 - reference)))))
    return MissRateCurve(mr, fppi, miss, n_images, score, 1.0 - reference, n_positives, setup_name)


def _setup(setup: str | MissRateSetup) -> tuple[str, MissRateSetup]:
    if isinstance(setup, MissRateSetup):
        return "custom", setup
    if setup not in SETUPS:
        raise ValueError(f"unknown miss-rate setup {setup!r}; expected one of {sorted(SETUPS)}")
    return setup, SETUPS[setup]


def evaluate_miss_rate(
    ground_truth: Sequence[PairSample],
    detections: Sequence[np.ndarray],
    setup: str | MissRateSetup = "reasonable",
) -> MissRateCurve:
    """Log-average miss rate of detections over a list of frames.

    Args:
        ground_truth: one annotation record per frame (images are not needed; the frame size for
            the border rule comes from the images, ``meta['size']`` ``(H, W)``, or KAIST's 512x640).
        detections: ``detections[i]`` is an ``(M, 5)`` float array ``[x1, y1, x2, y2, score]`` in
            thermal-frame pixels for ``ground_truth[i]`` (``M`` may be 0).
        setup: a name in :data:`SETUPS` or a :class:`MissRateSetup`.

    Returns:
        the curve over every frame given; ``mr`` is 1.0 when there is no detection at all and
        ``nan`` when no frame holds a positive.

    Raises:
        ValueError: lengths differ, a detection array is not ``(M, 5)`` or holds NaN/inf, unknown setup.
    """
    name, params = _setup(setup)
    matching = _match(ground_truth, detections, params)
    return _curve(matching, np.ones(len(ground_truth), dtype=bool), name)


def evaluate_periods(
    ground_truth: Sequence[PairSample],
    detections: Sequence[np.ndarray],
    setup: str | MissRateSetup = "reasonable",
) -> dict[str, MissRateCurve]:
    """:func:`evaluate_miss_rate` on all frames, the day frames and the night frames.

    Returns:
        ``{'all': ..., 'day': ..., 'night': ...}``; a period with no frame is absent. Each period
        has its own image count (FPPI denominator) and positives.
    """
    name, params = _setup(setup)
    matching = _match(ground_truth, detections, params)
    periods = np.array([s.period for s in ground_truth], dtype=object)
    out = {"all": _curve(matching, np.ones(len(ground_truth), dtype=bool), name)}
    for period in ("day", "night"):
        images = periods == period
        if images.any():
            out[period] = _curve(matching, images, name)
    return out


#: Bootstrap replicates of :func:`bootstrap_periods` when the caller does not say.
DEFAULT_REPLICATES = 200


@dataclass
class Bootstrap:
    """Spread of the miss rate over resampled test sets.

    Attributes:
        samples: ``{period: (R,) MR in [0, 1]}`` over ``R`` replicates (``nan`` where a replicate
            holds no positive).
        replicates: ``R``.
        seed: the seed of the resampling.
    """

    samples: dict[str, np.ndarray]
    replicates: int
    seed: int

    def sd(self, period: str = "all") -> float:
        """The bootstrap standard deviation of the period's MR (fraction, ``nan`` if undefined)."""
        values = self.samples.get(period)
        if values is None:
            return math.nan
        values = values[np.isfinite(values)]
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _weighted_mr(matching: _Matching, subset: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The MR of every replicate: ``weights[r, i]`` copies of image ``i`` (only images of ``subset``).

    A replicate that holds image ``i`` ``k`` times is scored as if its detections and positives
    appeared ``k`` times: copies of one detection share a score, so they are adjacent in the sorted
    curve and the reference lookups give exactly what the expanded test set gives.

    Args:
        subset: ``(N,)`` bool, the images of the evaluated period.
        weights: ``(R, N)`` int counts.

    Returns:
        ``(R,)`` MR in ``[0, 1]``, ``nan`` for a replicate without positives.
    """
    kept = subset[matching.det_image] & (matching.det_match >= 0)
    score = matching.det_score[kept]
    order = np.lexsort((matching.det_rank[kept], matching.det_image[kept], -score))
    image = matching.det_image[kept][order]
    tp = (matching.det_match[kept][order] == 1).astype(np.float64)
    w = weights[:, image].astype(np.float64)  # (R, K)
    n_images = weights[:, subset].sum(axis=1).astype(np.float64)
    gt_in = matching.gt_image[subset[matching.gt_image]]
    n_pos = weights[:, gt_in].sum(axis=1).astype(np.float64)
    out = np.full(len(weights), math.nan)
    for r in range(len(weights)):
        if n_pos[r] == 0:
            continue
        if len(image) == 0 or n_images[r] == 0:
            out[r] = 1.0
            continue
        fppi = np.cumsum(w[r] * (1.0 - tp)) / n_images[r]
        recall = np.cumsum(w[r] * tp) / n_pos[r]
        last = np.searchsorted(fppi, REFERENCE_FPPI, side="right")
        reference = np.where(last > 0, recall[np.maximum(last - 1, 0)], 0.0)
        out[r] = float(np.exp(np.mean(np.log(np.maximum(_MIN_MISS, 1.0 - reference)))))
    return out


def bootstrap_periods(
    ground_truth: Sequence[PairSample],
    detections: Sequence[np.ndarray],
    setup: str | MissRateSetup = "reasonable",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> Bootstrap:
    """Bootstrap of :func:`evaluate_periods` over the test frames.

    Each replicate draws, with replacement, as many day frames as the test set has day frames and
    as many night frames as it has night frames (so the day/night mix of ``all`` stays the test
    set's), and scores the drawn frames exactly as :func:`evaluate_periods` would score them as a
    test set of their own. Matching is per frame, so the frames are matched once.

    Args:
        ground_truth, detections, setup: as for :func:`evaluate_periods`.
        replicates: number of resampled test sets (>= 2).
        seed: seed of the resampling (the same seed gives the same spread).

    Returns:
        a :class:`Bootstrap` with samples for ``all`` and each period that has frames.

    Raises:
        ValueError: ``replicates < 2``, or what :func:`evaluate_periods` raises.
    """
    if replicates < 2:
        raise ValueError(f"the bootstrap needs at least 2 replicates, got {replicates}")
    name, params = _setup(setup)
    matching = _match(ground_truth, detections, params)
    n = len(ground_truth)
    periods = np.array([s.period for s in ground_truth], dtype=object)
    rng = np.random.default_rng(seed)
    weights = np.zeros((replicates, n), dtype=np.int64)
    strata = [np.flatnonzero(periods == p) for p in dict.fromkeys(periods.tolist())]
    for r in range(replicates):
        for members in strata:
            np.add.at(weights[r], rng.choice(members, size=len(members)), 1)
    samples = {"all": _weighted_mr(matching, np.ones(n, dtype=bool), weights)}
    for period in ("day", "night"):
        subset = periods == period
        if subset.any():
            samples[period] = _weighted_mr(matching, subset, weights)
    return Bootstrap(samples, replicates, seed)


# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------


def with_frame_size(records: Sequence[PairSample], size: tuple[int, int]) -> list[PairSample]:
    """Annotation records that know their frame size ``(height, width)``: the border rule of
    :func:`evaluate_miss_rate` needs it, and records without images carry it in ``meta['size']``
    (records that already know their size are kept as they are)."""
    from dataclasses import replace

    return [r if "size" in r.meta else replace(r, meta={**r.meta, "size": tuple(size)}) for r in records]


#: Image set used when a KAIST root is given without one.
DEFAULT_IMAGE_SET = "test-all-20"

_KAIST_JSON_IMAGE = re.compile(r'"im_name"\s*:\s*"set\d{2}[/_]V\d{3}[/_]I\d{5}')


@dataclass
class GroundTruth:
    """KAIST ground truth ready for :func:`evaluate_periods`.

    Attributes:
        samples: one annotation-only :class:`PairSample` per frame, in list order.
        frame_ids: ``setXX/VYYY/IZZZZZ`` of each frame.
        image_ids: json image id of each frame (json ground truth), else ``None``.
        source: the file or folder read.
        frames_from: the file that lists the frames (the image-set list, else the json), named in
            messages about results that refer to frames the ground truth lacks.
        person_category: the ``category_id`` of persons in COCO results json files.
        height_scale: the factor the setups' height ranges take on these frames
            (:func:`height_scale_for`: 0.5 on the default synthetic benchmark, 1 on KAIST).
        height_scale_from: why (the file or the frame height it was read from).
    """

    samples: list[PairSample]
    frame_ids: list[str]
    image_ids: list[int] | None
    source: str
    frames_from: str = ""
    person_category: int = 1
    height_scale: float = 1.0
    height_scale_from: str = ""


def is_kaist_ground_truth(path: str | os.PathLike[str]) -> bool:
    """True for a KAIST root (``annotations/`` folder) or a KAIST-style json (``im_name`` frame ids)."""
    path = Path(path)
    if path.is_dir():
        return (path / "annotations").is_dir()
    if path.is_file() and path.suffix.lower() == ".json":
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(1 << 16)
        return _KAIST_JSON_IMAGE.search(head) is not None
    return False


def _root_frame_size(root: Path, frame_ids: Sequence[str]) -> tuple[int, int] | None:
    """``(height, width)`` of a root's frames, read from the first thermal image (a KAIST-layout root
    holds frames of one size: 512x640 for KAIST, the generated size for the synthetic benchmark), so
    the border rule uses the real frame; ``None`` (640x512 assumed) when no image is present."""
    from rgbt.data.imageio import image_size
    from rgbt.data.kaist import image_path

    for frame_id in frame_ids[:1]:
        thermal = image_path(root, frame_id, "thermal")
        if thermal.is_file():
            return image_size(thermal)  # the header is enough: no decoder (OpenCV) on the evaluate path
    return None


def load_ground_truth(path: str | os.PathLike[str], image_set: str | os.PathLike[str] | None = None) -> GroundTruth:
    """Read KAIST ground truth from a root (``annotations/`` bbGt files + an image-set list) or a
    COCO-style json (``KAIST_annotation.json``).

    Args:
        path: the KAIST root folder or the json file.
        image_set: for a root, a list name under ``imageSets/`` or a list file (default
            :data:`DEFAULT_IMAGE_SET`); for a json, an optional list selecting (and ordering) frames.

    Raises:
        FileNotFoundError: missing root, list, json or annotation file.
        DataFormatError: malformed list, annotation or json (a frame listed twice, a field out of its
            domain: see :mod:`rgbt.data.domains`); a listed frame absent from the json; no frame at all.
    """
    path = Path(path)
    if path.is_dir():
        list_path = resolve_image_set(path, image_set or DEFAULT_IMAGE_SET)
        frame_ids = read_image_set(list_path)
        if not frame_ids:
            raise DataFormatError(list_path, None, "the image set lists no frame: there is nothing to evaluate")
        size = _root_frame_size(path, frame_ids)
        samples = cached_samples(path, list_path, frame_ids, size, lambda: [
            objects_to_sample(f, o, size=size) for f, o in zip(frame_ids, read_annotations(path, frame_ids))])
        scale, scale_from = height_scale_for(path, None if size is None else size[0])
        return GroundTruth(samples, frame_ids, None, str(path), str(list_path), height_scale=scale,
                           height_scale_from=scale_from)
    if not path.is_file():
        raise FileNotFoundError(f"ground truth not found: {path}")
    data = read_kaist_json(path)
    rows = list(range(len(data.frame_ids)))
    frames_from = str(path)
    if image_set is not None:
        list_path = Path(image_set)
        list_path = list_path if list_path.is_file() else resolve_image_set(path.parent, image_set)
        wanted = read_image_set(list_path)
        position = {f: i for i, f in enumerate(data.frame_ids)}
        missing = [f for f in wanted if f not in position]
        if missing:
            raise DataFormatError(
                path, None, f"{len(missing)} of the {len(wanted)} frames listed in {list_path} are not in the json "
                f"({len(data.frame_ids)} images), e.g. {missing[0]}",
            )
        rows = [position[f] for f in wanted]
        frames_from = str(list_path)
    if not rows:
        raise DataFormatError(frames_from, None, "the ground truth holds no frame: there is nothing to evaluate")
    samples = [objects_to_sample(data.frame_ids[i], data.objects[i], size=data.sizes[i]) for i in rows]
    heights = {data.sizes[i][0] for i in rows}
    if len(heights) == 1:
        scale, scale_from = height_scale_for(None, int(heights.pop()))
    else:
        # Frames of several heights cannot share one scale: KAIST's thresholds as they are.
        scale, scale_from = 1.0, "frames of several heights: KAIST's thresholds unscaled"
    return GroundTruth(samples, [data.frame_ids[i] for i in rows], [data.image_ids[i] for i in rows], str(path),
                       frames_from, data.person_category, height_scale=scale, height_scale_from=scale_from)


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------

PERIODS: tuple[str, ...] = ("all", "day", "night")


def report_row(results: str, setup: str, curves: dict[str, MissRateCurve], bootstrap: Bootstrap | None = None) -> dict:
    """One machine-readable result: MR and final recall per period, in percent (full precision).

    Keys: ``results``, ``setup``, ``all``, ``day``, ``night`` (MR %, ``None`` for a period without
    frames or positives), ``recall`` (``{period: recall % at the end of the curve}``, ``None`` without
    positives; the number the KAIST matlab
    wrapper prints next to the MR), ``n_images`` and ``n_positives`` (per period). With a
    :class:`Bootstrap`: ``all_sd``, ``day_sd``, ``night_sd`` (its standard deviations, MR %) and
    ``bootstrap`` (replicates, seed).
    """
    row: dict = {"results": results, "setup": setup}
    for period in PERIODS:
        mr = curves[period].mr if period in curves else math.nan
        row[period] = None if math.isnan(mr) else mr * 100.0
    # A period without positives has no recall: None, as for its MR (json has no NaN).
    row["recall"] = {p: None if c.n_positives == 0 or math.isnan(c.recall) else c.recall * 100.0
                     for p, c in curves.items()}
    row["n_images"] = {p: c.n_images for p, c in curves.items()}
    row["n_positives"] = {p: c.n_positives for p, c in curves.items()}
    if bootstrap is not None:
        for period in PERIODS:
            sd = bootstrap.sd(period)
            row[f"{period}_sd"] = None if math.isnan(sd) else sd * 100.0
        row["bootstrap"] = {"replicates": bootstrap.replicates, "seed": bootstrap.seed}
    return row


def format_table(rows: Sequence[dict]) -> str:
    """A markdown table of :func:`report_row` rows (MR % to two decimals; ``MR +- SD`` for rows with a
    bootstrap)."""

    def cell(row: dict, period: str) -> str:
        value = row[period]
        if value is None:
            return "-"
        sd = row.get(f"{period}_sd")
        return f"{value:.2f}" if sd is None else f"{value:.2f} +- {sd:.2f}"

    lines = ["| results | setup | all | day | night |", "|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['results']} | {row['setup']} | {cell(row, 'all')} | {cell(row, 'day')} | {cell(row, 'night')} |"
        )
    return "\n".join(lines)
