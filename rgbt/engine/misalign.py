"""The misalignment sweep as a job: ``rgbt misalign`` as library calls.

:func:`detector_names` and :func:`load_sweep_detectors` name and load the detectors (trained
checkpoints or the ground-truth references); :func:`run_sweep` measures each of them at every point of a sweep from
:mod:`rgbt.evaluation.sweep`, which defines the points, the rows and the result files. Detection
runs through :func:`rgbt.engine.inference.detect_source`: per pass (one point, or several for
detectors that reuse stream features, see :func:`run_sweep`), every frame is loaded once,
perturbed for each point of the pass, then handed to each detector that still needs it. With
``align``, chosen detectors also get a *registered* curve, named ``<name>_registered``: every
perturbed pair is registered (:class:`rgbt.engine.align.RegisteredInput`) and its RGB warped into
the thermal frame before the detector sees it, in a second pass over the frames with that
per-sample hook.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource
from rgbt.engine.align import RegisteredInput
from rgbt.engine.inference import DetectFn, detect_source, load_detector
from rgbt.engine.run import resolve_device
from rgbt.evaluation.missrate import MissRateSetup, evaluate_periods
from rgbt.evaluation.sweep import (
    PLOT_NAME,
    GroundTruthDetector,
    SweepPoint,
    append_row,
    detector_fingerprint,
    measured_row,
    moved_row,
    open_sweep_dir,
    pending_points,
    plot_sweep,
    sweep_rows,
)

log = logging.getLogger(__name__)

#: Suffix of the ``detector`` column of a registered curve (``rgb_thermal`` -> ``rgb_thermal_registered``).
REGISTERED_SUFFIX = "_registered"


def detector_names(
    checkpoints: Sequence[str | os.PathLike[str]] | None = None,
    references: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> list[str]:
    """The ``detector`` column of each sweep detector: ``names`` when given, else the checkpoint file
    stems (``runs/a/last.pt`` -> ``last``), else ``gt-<modality>`` for each reference.

    Raises:
        ValueError: neither checkpoints nor references, a wrong number of names, or repeated names.
    """
    specs = list(checkpoints or references or [])
    if not specs:
        raise ValueError("no detectors: give checkpoints or reference modalities")
    if names is not None and len(names) != len(specs):
        raise ValueError(f"--names gives {len(names)} names for {len(specs)} detectors")
    if names is not None:
        out = list(names)
    elif checkpoints:
        out = [Path(path).stem for path in checkpoints]
    else:
        out = [f"gt-{modality}" for modality in specs]
    if len(set(out)) != len(out):
        raise ValueError(f"detector names must be unique, got {out}; name them with --names")
    return out


def load_sweep_detectors(
    names: Sequence[str],
    checkpoints: Sequence[str | os.PathLike[str]] | None = None,
    references: Sequence[str] | None = None,
    device: str = "auto",
    reuse_streams: bool = True,
) -> dict[str, DetectFn]:
    """Name -> detector: trained checkpoints, or (without them) ground-truth references.

    Args:
        names: one per detector (see :func:`detector_names`).
        checkpoints: ``rgbt train-detector`` checkpoint files, loaded with
            :func:`~rgbt.engine.inference.load_detector` on ``device``.
        references: :class:`~rgbt.evaluation.sweep.GroundTruthDetector` modalities (``thermal``, ``rgb``).
        device: where checkpoints run (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        reuse_streams: let fusion checkpoints compute the unperturbed modality's trunk once per
            frame for all the points of a pass (see :class:`~rgbt.engine.inference.FusionDetector`);
            ``False`` runs every point from scratch (the same rows, slower).

    Every detector has a ``fingerprint`` (``sha256:<checkpoint file hash>``, ``reference:<modality>``)
    that :func:`run_sweep` keys the rows of its name on.

    Raises:
        FileNotFoundError: a checkpoint file that does not exist (checked before any is loaded).
        ValueError: an unknown ``device`` (also with references, which do not use it).
    """
    resolved = resolve_device(device)
    if not checkpoints:
        return {name: GroundTruthDetector(modality) for name, modality in zip(names, references or [])}
    for path in checkpoints:
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
    return {name: load_detector(path, resolved, reuse_streams=reuse_streams) for name, path in zip(names, checkpoints)}


def run_sweep(
    detectors: Mapping[str, DetectFn],
    source: FrameSource,
    points: Sequence[SweepPoint],
    out_dir: str | os.PathLike[str],
    batch_size: int = 8,
    setup: str | MissRateSetup = "reasonable",
    *,
    workers: int = 0,
    progress: bool = True,
    plot: bool = True,
    points_per_pass: int = 11,
    align: str | None = None,
    align_names: Sequence[str] | None = None,
    align_max_shift: float | None = None,
) -> list[dict[str, Any]]:
    """Measure every detector at every sweep point; resumable.

    Args:
        detectors: name -> detector callable (see :data:`~rgbt.engine.inference.DetectFn`; each
            returns per sample an ``(M, 5)`` ``[x1, y1, x2, y2, score]`` array). Names are the
            ``detector`` column and must be unique strings.
        source: the test frames (``source[i]`` with images; ``source.annotations(i)`` is the
            ground truth).
        points: from :func:`~rgbt.evaluation.sweep.build_sweep`; points with equal keys are
            computed once. A detector with a ``modalities`` attribute is run once for all the points
            that perturb none of the modalities it reads (its input, hence its miss rate, is the
            same for all of them).
        out_dir: created if needed; rows already in its ``misalignment.csv`` are not recomputed, as long
            as their name still means the same detector: a detector's ``fingerprint`` attribute (a
            checkpoint's file hash, a reference's modality) is recorded per name, and a name with rows
            of another fingerprint is refused.
        batch_size: frames per detector call.
        setup: evaluation setup passed to ``evaluate_periods`` (a name such as ``reasonable``, or a
            :class:`~rgbt.evaluation.missrate.MissRateSetup`).
        workers: threads loading and perturbing the next batches while the detectors run (the
            source must then tolerate concurrent ``source[i]`` calls); 0 loads in the calling thread.
        progress: show a tqdm bar (batches over the remaining points).
        plot: write ``misalignment.png`` at the end.
        points_per_pass: for detectors that reuse stream features (a fusion
            :class:`~rgbt.engine.inference.FusionDetector`), up to this many consecutive points that
            change the same modalities are measured in one pass over the frames: each frame is loaded
            once, its copies under every point go to the detector together, and the trunk of the
            modality they leave alone runs once per frame. Their rows are appended when the pass
            ends (an interrupted sweep resumes from the last finished pass). Other detectors are
            measured one point per pass.
        align: a registration model (``shift``, ``similarity``, ``affine``, ``homography``): each
            detector of ``align_names`` is also measured on registered pairs, under the name
            ``<name>_registered`` (its own curve and rows; its fingerprint is the detector's plus
            ``+align:<model>``, so resuming keeps working); ``None``: no registered curves.
        align_names: the detectors that get a registered curve (default: all of them).
        align_max_shift: the registration's search range in pixels (default: 5 % of the frame).

    Returns:
        one row per (detector, distinct point key), detectors in the given order (each registered
        curve right after its detector), points in sweep order: ``detector, perturbation, value, dx,
        dy`` and MR percent ``all, day, night`` (``None`` for a period without frames or positives).

    Raises:
        ValueError: no detectors or points, a bad ``batch_size``, an empty source, an ``align_names``
            entry that is not a detector, or an unknown ``align`` model.
    """
    if not detectors:
        raise ValueError("no detectors to evaluate")
    if not points:
        raise ValueError("no sweep points")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if points_per_pass < 1:
        raise ValueError(f"points_per_pass must be >= 1, got {points_per_pass}")
    if len(source) == 0:
        raise ValueError(f"the frame source {source.name!r} at {source.root} has no frames")
    out_dir = Path(out_dir)
    fingerprints = {name: detector_fingerprint(det) for name, det in detectors.items()}
    hook = None if align is None else RegisteredInput(align, align_max_shift)
    # registered name -> the detector it registers the input of.
    registered = _registered_names(detectors, align_names) if hook is not None else {}
    order = [n for name in detectors for n in (name, *(r for r, base in registered.items() if base == name))]
    for name, base in registered.items():
        fingerprints[name] = f"{fingerprints[base] or 'unnamed'}+{hook.fingerprint}"  # type: ignore[union-attr]
    rows = open_sweep_dir(out_dir, setup, source, {name: fingerprints[name] for name in order})
    unique, tasks = pending_points(points, order, rows)
    if len(tasks) < len(unique):
        log.info("resuming in %s: %d of %d points already done", out_dir, len(unique) - len(tasks), len(unique))

    if tasks:
        # name -> a row measured on inputs no perturbation had touched, reusable for the others.
        unaffected: dict[str, dict[str, Any]] = {}
        ground_truth = [source.annotations(i) for i in range(len(source))]
        n_batches = math.ceil(len(source) / batch_size)
        passes = 2 if registered else 1
        bar = tqdm(total=len(tasks) * n_batches * passes, unit="batch", desc="misalignment", disable=not progress)

        def base_of(name: str) -> DetectFn:
            return detectors[registered.get(name, name)]

        try:
            by_name = {name: base_of(name) for name in order}
            for group in _passes(tasks, by_name, points_per_pass):
                bar.set_postfix_str(" ".join(point.key for point, _ in group), refresh=False)
                reused = [{name: unaffected[name] for name in names
                           if name in unaffected and not point.changes(_modalities(by_name[name]))}
                          for point, names in group]
                running = [name for name in group[0][1] if name not in reused[0]]
                detections: dict[str, list[list[np.ndarray]]] = {}
                # One pass over the frames for the plain detectors, one with the registration hook.
                for names_in_pass, transform in (([n for n in running if n not in registered], None),
                                                 ([n for n in running if n in registered], hook))[:passes]:
                    if names_in_pass:
                        detections.update(detect_source(
                            {name: by_name[name] for name in names_in_pass}, source, None, batch_size,
                            workers, progress=False, threads=True, columns=5,
                            on_batch=_FrameSizes(ground_truth, bar, len(group)),
                            variants=[point.perturbations for point, _ in group], transform=transform,
                        ))
                    else:
                        bar.update(n_batches * len(group))
                for k, (point, names) in enumerate(group):
                    for name in names:
                        if name in reused[k]:
                            rows.append(moved_row(reused[k][name], point))
                        else:
                            curves = evaluate_periods(ground_truth, detections[name][k], setup)
                            rows.append(measured_row(name, point, curves))
                            if not point.changes(_modalities(by_name[name])):
                                unaffected[name] = rows[-1]
                        append_row(out_dir, rows[-1], rows)
        finally:
            bar.close()

    result = sweep_rows(rows, order, list(unique))
    if plot:
        plot_sweep(result, points, out_dir / PLOT_NAME)
    return result


def _passes(
    tasks: Sequence[tuple[SweepPoint, list[str]]], detectors: Mapping[str, DetectFn], points_per_pass: int
) -> list[list[tuple[SweepPoint, list[str]]]]:
    """The tasks in passes over the frames, in the order of each pass's first point.

    Points that need the same detectors and change the same modalities share a pass (up to
    ``points_per_pass``, in sweep order) when one of those detectors reuses the trunk features of
    a modality they leave alone (a :class:`~rgbt.engine.inference.FusionDetector` with
    ``reusable_streams``: RGB shifts, rotations, scales and the RGB blackout share the thermal
    stream); any other point is a pass of its own, as is a point some detector would not run
    (its row is moved from a run on unperturbed input).
    """
    passes: list[list[tuple[SweepPoint, list[str]]]] = []
    open_passes: dict[tuple[tuple[str, ...], frozenset[str]], list[tuple[SweepPoint, list[str]]]] = {}
    for point, names in tasks:
        shares = all(point.changes(_modalities(detectors[n])) for n in names) and any(
            set(getattr(detectors[n], "reusable_streams", ())) - point.touched for n in names
        )
        key = (tuple(names), point.touched)
        current = open_passes.get(key) if shares else None
        if current is not None and len(current) < points_per_pass:
            current.append((point, names))
            continue
        passes.append([(point, names)])
        if shares:
            open_passes[key] = passes[-1]
    return passes


def _registered_names(detectors: Mapping[str, DetectFn], align_names: Sequence[str] | None) -> dict[str, str]:
    """``<name>_registered -> name`` for each detector of ``align_names`` (default: every detector)."""
    chosen = list(detectors) if align_names is None else list(align_names)
    unknown = [name for name in chosen if name not in detectors]
    if unknown:
        raise ValueError(f"align_names {unknown} are not among the detectors {list(detectors)}")
    out = {f"{name}{REGISTERED_SUFFIX}": name for name in chosen}
    clash = sorted(set(out) & set(detectors))
    if clash:
        raise ValueError(f"detector names {clash} are taken by registered curves of other detectors; rename them")
    return out


def _modalities(detector: DetectFn) -> Sequence[str] | None:
    """The modalities a detector declares it reads (``None`` when it does not say)."""
    return getattr(detector, "modalities", None)


class _FrameSizes:
    """``detect_source``'s ``on_batch`` for a pass of ``step`` sweep points: advances the progress bar by a
    batch of each point, and
    copies each perturbed frame's size into ground-truth records that have no size of their own.

    Perturbations keep the frame size: it tells the evaluator's border rule the size of frames whose
    annotation records carry neither images nor ``meta['size']``.
    """

    def __init__(self, ground_truth: list[PairSample], bar: tqdm, step: int = 1) -> None:
        self.ground_truth = ground_truth
        self.bar = bar
        self.step = step
        self.position = 0

    def __call__(self, batch: list[PairSample]) -> None:
        for sample in batch:
            record = self.ground_truth[self.position]
            bare = record.thermal is None and record.rgb is None and "size" not in record.meta
            if bare and (sample.thermal is not None or sample.rgb is not None):
                self.ground_truth[self.position] = replace(record, meta={**record.meta, "size": sample.size})
            self.position += 1
        self.bar.update(self.step)
