"""How well a region-feature-alignment detector predicts the RGB offset of each object: :func:`offset_errors`.

An RFA detector (:class:`rgbt.detect.rfa.RFAFasterRCNN`, ``model.align: rfa`` or ``rfa_region``) predicts, per region,
where the RGB content lies relative to the thermal box. On data with paired annotations (KAIST-Paired,
the synthetic benchmark) the truth is known per object: the centre of its RGB box minus the centre
of its thermal box. This runs the detector's offset head on every object's thermal box (through
:func:`rgbt.engine.inference.detect_source`, so perturbations such as ``shift:8,0`` apply, and move the
RGB boxes with the RGB image) and reports the error in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rgbt.data.perturbation import Perturbation
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource
from rgbt.detect.rfa import RFAFasterRCNN
from rgbt.engine.align import error_stats
from rgbt.engine.inference import FusionDetector, detect_source, samples_to_inputs


class _OffsetProbe:
    """A ``detect_source`` detector returning, per sample, ``(N, 4)`` rows ``[pred_dx, pred_dy, true_dx,
    true_dy]`` (px) of its objects with a paired RGB box and a positive area."""

    def __init__(self, detector: FusionDetector) -> None:
        if not isinstance(detector.model, RFAFasterRCNN):
            raise ValueError(f"offset errors need a detector trained with model.align=rfa or rfa_region, got "
                             f"{type(detector.model).__name__}")
        self.detector = detector

    def __call__(self, samples: list[PairSample]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, 4))] * len(samples)
        chosen, boxes, truths = [], [], []
        for k, sample in enumerate(samples):
            if sample.boxes_rgb is None:
                raise ValueError(f"frame {sample.frame_id!r} has no paired RGB boxes (annotations_paired/): the "
                                 "offset truth is unknown")
            keep = (sample.boxes[:, 2] > sample.boxes[:, 0]) & (sample.boxes[:, 3] > sample.boxes[:, 1])
            if keep.any():
                chosen.append(k)
                boxes.append(torch.from_numpy(sample.boxes[keep]).float().to(self.detector.device))
                thermal, rgb = sample.boxes[keep], sample.boxes_rgb[keep]
                truths.append((rgb[:, :2] + rgb[:, 2:]) / 2 - (thermal[:, :2] + thermal[:, 2:]) / 2)
        if chosen:
            inputs = samples_to_inputs([samples[k] for k in chosen], self.detector.modalities)
            predicted = self.detector.model.region_offsets([x.to(self.detector.device) for x in inputs], boxes)
            for k, pred, truth in zip(chosen, predicted, truths):
                out[k] = np.concatenate([pred.double().cpu().numpy(), truth.astype(np.float64)], axis=1)
        return out


def offset_errors(
    detector: FusionDetector,
    source: FrameSource,
    perturbations: Sequence[Perturbation] = (),
    batch_size: int = 8,
    workers: int = 0,
) -> dict[str, Any]:
    """Offset-prediction error (px) of an RFA detector on every annotated object of ``source``.

    Args:
        detector: from :func:`rgbt.engine.inference.load_detector` on an ``rfa`` checkpoint.
        source: frames with paired annotations.
        perturbations: applied to every frame first (``shift:8,0`` moves the RGB image and its boxes).
        batch_size, workers: see :func:`rgbt.engine.inference.detect_source`.

    Returns:
        ``{'objects', 'median', 'p95', 'max', 'within_0.5px', 'within_1px', 'within_2px'}`` of
        ``|predicted - true|`` (see :func:`rgbt.engine.align.error_stats`), and ``true_median``: the
        median true offset (what predicting no offset would be off by).

    Raises:
        ValueError: not an RFA detector, or a frame without paired boxes.
    """
    rows = detect_source(_OffsetProbe(detector), source, perturbations, batch_size, workers, progress=False,
                         threads=True)
    table = np.concatenate([np.asarray(r).reshape(-1, 4) for r in rows]) if rows else np.zeros((0, 4))
    errors = np.hypot(table[:, 0] - table[:, 2], table[:, 1] - table[:, 3])
    stats = error_stats([float(e) for e in errors])
    stats["objects"] = stats.pop("frames")
    stats.pop("registered")
    stats["true_median"] = round(float(np.median(np.hypot(table[:, 2], table[:, 3]))), 4) if len(table) else None
    return stats
