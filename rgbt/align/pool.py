"""Pooling the per-frame registrations of one sequence into one robust estimate.

One camera rig filming one video keeps (nearly) the same RGB-thermal offset, while a single frame
can fail: a dark night RGB frame, a frame full of repeated structure, a moving object that
dominates. :func:`pool_registrations` combines the frames of a sequence with a confidence-weighted
*median*, which a minority of wrong frames cannot move, and reports the frames that disagree.

The transforms are compared through where they send the four thermal-frame corners (a measure
every model shares, in pixels): the pooled corners are the score-weighted median of each corner
coordinate over the frames, and the pooled transform is the model fitted to them (exactly for
``shift`` and ``homography``, least squares for ``similarity`` and ``affine``). A frame is an
*outlier* when one of its corners lies more than ``max(OUTLIER_PX, 3 x 1.4826 x MAD)`` px from the
pooled corner (MAD: the median absolute deviation of those distances over the sequence).

:func:`sequence_of` tells which frames belong together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from rgbt.align.result import Registration
from rgbt.align.transform import apply, check_model, corners, nearest_similarity, translation

#: Smallest corner distance (px) that makes a frame an outlier, whatever the sequence's spread.
OUTLIER_PX = 2.0
#: Frames scoring below this take no part in the pooled estimate (they are still compared with it).
MIN_SCORE = 0.05

_KAIST = re.compile(r"^(set\d{2})[/_](V\d{3})[/_]I\d{5}$")
_FLIR_V2_VIDEO = re.compile(r"^(video-[A-Za-z0-9]+)-frame-")


def sequence_of(frame_id: str, split: str = "all") -> str:
    """The sequence (one video of one rig) a frame belongs to.

    * KAIST-layout ids ``setXX/VYYY/IZZZZZ``: ``setXX/VYYY``;
    * FLIR ADAS v2 video frames ``video-<id>-frame-<n>-<hash>``: ``video-<id>``;
    * anything else (FLIR v1.3 and FLIR-aligned splits, a folder of pairs): ``split``, the whole
      split being one rig.
    """
    match = _KAIST.match(frame_id)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    match = _FLIR_V2_VIDEO.match(frame_id)
    if match:
        return match.group(1)
    return split


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    half = cumulative[-1] / 2.0
    index = int(np.searchsorted(cumulative, half))
    # An exact half lands between two values: take their mean, as an unweighted median does.
    if np.isclose(cumulative[index], half) and index + 1 < len(values):
        return float((values[index] + values[index + 1]) / 2.0)
    return float(values[index])


def fit_model(source: np.ndarray, target: np.ndarray, model: str, pivot: np.ndarray) -> np.ndarray:
    """The ``model`` transform best mapping ``(4, 2)`` points ``source`` onto ``target`` (see the module
    docstring); a similarity is fitted as an affine and projected about ``pivot``."""
    check_model(model)
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    if model == "shift":
        dx, dy = (target - source).mean(axis=0)
        return translation(float(dx), float(dy))
    if model == "homography":
        return cv2.getPerspectiveTransform(source.astype(np.float32), target.astype(np.float32)).astype(np.float64)
    design = np.concatenate([source, np.ones((len(source), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    affine = np.vstack([solution.T, [0.0, 0.0, 1.0]])
    return nearest_similarity(affine, pivot) if model == "similarity" else affine


def initial_transform(registration: Registration) -> np.ndarray:
    """The ``(3, 3)`` thermal -> RGB transform the registration's search started from (its ``details``
    ``init``: the frame-size ratio for RGB of another size); the identity for frames of one size."""
    init = registration.details.get("init")
    return np.eye(3) if init is None else np.asarray(init, dtype=np.float64).reshape(3, 3)


@dataclass
class PooledSequence:
    """The pooled estimate of one sequence.

    Attributes:
        registration: the pooled transform as a :class:`Registration` (``H = None``, status ``no_match``,
            when no frame of the sequence was registered).
        used: indices of the frames that took part (a transform and a score >= :data:`MIN_SCORE`).
        outliers: indices of the frames with a transform that disagrees with the pooled one.
        distances: per frame, the largest corner distance (px) to the pooled transform (NaN
            without a transform).
        threshold: the outlier distance of this sequence (px).
    """

    registration: Registration
    used: list[int]
    outliers: list[int]
    distances: list[float]
    threshold: float


def pool_registrations(registrations: Sequence[Registration], model: str = "shift") -> PooledSequence:
    """Pool the registrations of one sequence (one thermal frame size, one RGB frame size) into one
    transform.

    Frames whose search started from a transform (``details["init"]``, RGB of another size) are
    compared after it, in thermal pixels, and the pooled transform is that start composed with the
    ``model`` fitted to the rest (the first used frame's start: the frames of one sequence share it).

    The pooled score is the weighted fraction of the frames' scores that agree with the pooled
    transform times their median score: a sequence where most confident frames agree scores high.

    Raises:
        ValueError: no registrations, or frames of different thermal sizes.
    """
    if not registrations:
        raise ValueError("no registrations to pool")
    sizes = {r.size for r in registrations}
    if len(sizes) != 1:
        raise ValueError(f"cannot pool frames of different thermal sizes: {sorted(sizes)}")
    size = registrations[0].size
    points = corners(size)
    pivot = np.array([(size[1] - 1) / 2.0, (size[0] - 1) / 2.0])
    with_h = [i for i, r in enumerate(registrations) if r.H is not None]
    used = [i for i in with_h if registrations[i].score >= MIN_SCORE]
    if not used:
        # Nothing confident: a weak majority is better than nothing, but only if there is one.
        used = with_h
    if not used:
        failed = Registration.failed("no_match", size, model, frames=len(registrations))
        return PooledSequence(failed, [], [], [float("nan")] * len(registrations), OUTLIER_PX)
    # RGB of another size: the frames are compared after the transform their search started from (the
    # frame-size ratio), in thermal pixels, and the model is fitted to what remains, so a shift model
    # does not lose the scale between the cameras.
    base = initial_transform(registrations[used[0]])
    unbase = np.linalg.inv(base)
    mapped = np.stack([apply(unbase @ registrations[i].H, points) for i in used])  # (n, 4, 2)
    weights = np.array([max(registrations[i].score, 1e-6) for i in used])
    pooled_corners = np.array([[_weighted_median(mapped[:, c, k], weights) for k in range(2)] for c in range(4)])
    pooled_rest = fit_model(points, pooled_corners, model, pivot)
    pooled = base @ pooled_rest
    target = apply(pooled_rest, points)
    distances = [float("nan")] * len(registrations)
    for i in with_h:
        distances[i] = float(np.linalg.norm(apply(unbase @ registrations[i].H, points) - target, axis=1).max())
    spread = np.array([distances[i] for i in used])
    mad = float(np.median(np.abs(spread - np.median(spread))))
    threshold = max(OUTLIER_PX, 3.0 * 1.4826 * mad)
    outliers = [i for i in with_h if distances[i] > threshold]
    agree = [i for i in used if distances[i] <= threshold]
    scores = np.array([registrations[i].score for i in used])
    agreeing = sum(registrations[i].score for i in agree) / max(float(scores.sum()), 1e-12)
    median_score = float(np.median([registrations[i].score for i in agree])) if agree else 0.0
    details = {"frames": len(registrations), "used": len(used), "agree": len(agree), "outliers": len(outliers),
               "outlier_px": round(threshold, 3)}
    if "init" in registrations[used[0]].details:
        details["init"] = registrations[used[0]].details["init"]
    registration = Registration(pooled, size, agreeing * median_score, "ok", model, details)
    return PooledSequence(registration, used, outliers, distances, threshold)
