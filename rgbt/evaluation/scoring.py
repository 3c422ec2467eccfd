"""Scoring detection result files against ground truth: what ``rgbt evaluate`` computes.

:func:`score_results` reads every result file (see :mod:`rgbt.evaluation.detections` for the
formats) and scores it with the KAIST log-average miss rate (one row per file and setup, all / day /
night, :mod:`rgbt.evaluation.missrate`) or COCO AP (one row per file, :mod:`rgbt.evaluation.coco`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rgbt.evaluation import coco, missrate
from rgbt.evaluation.detections import read_detections

#: Metrics of :func:`score_results` (``auto``: miss rate for KAIST ground truth, COCO AP otherwise).
METRICS: tuple[str, ...] = ("auto", "missrate", "coco")


@dataclass
class ScoreTable:
    """The scores of several result files.

    Attributes:
        metric: ``missrate`` or ``coco``.
        rows: ``missrate``: one :func:`~rgbt.evaluation.missrate.report_row` per (file, setup), files
            in the given order, setups in the given order within a file; ``coco``: one
            ``{'results': path, **evaluate_coco(...)}`` per file (AP values in ``[0, 1]``).
    """

    metric: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        """The rows as a markdown table (miss rates and APs in percent, two decimals)."""
        return coco.format_table(self.rows) if self.metric == "coco" else missrate.format_table(self.rows)


def legend_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Short distinct names of result files: their stems, else their file names, else the paths."""
    for names in ([Path(p).stem for p in paths], [Path(p).name for p in paths]):
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def score_results(
    ground_truth: str | os.PathLike[str],
    results: Sequence[str | os.PathLike[str]],
    metric: str = "auto",
    *,
    image_set: str | None = None,
    setups: Sequence[str] | None = None,
    height_scale: float = 1.0,
    classes: Sequence[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
) -> ScoreTable:
    """Score every result file against one ground truth.

    Args:
        ground_truth: a KAIST root (``annotations/`` + ``imageSets/``), a KAIST json
            (``KAIST_annotation.json``) or a COCO json (FLIR).
        results: result files or per-frame folders (:func:`~rgbt.evaluation.detections.read_detections`;
            COCO: results json files).
        metric: one of :data:`METRICS`.
        image_set: miss rate: the frame list (see :func:`~rgbt.evaluation.missrate.load_ground_truth`).
        setups: miss rate: setup names (default ``['reasonable']``).
        height_scale: miss rate: multiplies the setups' height ranges (frames ``h`` px high: ``h / 512``).
        classes: COCO: category names to evaluate (default: every ground-truth category).
        plot: miss rate: draw miss rate vs FPPI of the first setup (all frames), one curve per file,
            to this PNG.

    Raises:
        ValueError: an unknown metric, options of the other metric, an unknown setup or bad values.
        DataFormatError, FileNotFoundError: unreadable ground truth or results.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if metric == "auto":
        metric = "missrate" if missrate.is_kaist_ground_truth(ground_truth) else "coco"
    if metric == "coco":
        if image_set or setups or plot:
            raise ValueError("--image-set, --setup and --plot apply to the miss-rate metric only")
        return ScoreTable("coco", [{"results": path, **coco.evaluate_coco(ground_truth, path, classes)}
                                   for path in results])
    if classes:
        raise ValueError("--classes applies to the coco metric only (the miss rate scores 'person')")
    gt = missrate.load_ground_truth(ground_truth, image_set)
    setups = list(setups or ["reasonable"])
    rows, curves = [], {}
    for path, name in zip(results, legend_names(results)):
        detections = read_detections(path, gt.frame_ids, gt.image_ids, ground_truth=gt.frames_from,
                                     person_category=gt.person_category)
        for setup in setups:
            periods = missrate.evaluate_periods(gt.samples, detections, missrate.height_scaled(setup, height_scale))
            rows.append(missrate.report_row(path, setup, periods))
            if setup == setups[0]:
                curves[name] = periods["all"]
    if plot:
        from rgbt.evaluation.plots import plot_miss_rate

        plot_miss_rate(curves, plot, title=f"KAIST {setups[0]}, all ({len(gt.frame_ids)} frames)")
    return ScoreTable("missrate", rows)
