"""The misalignment robustness sweep: miss rate of detectors under shifted, rotated, scaled or
blacked-out modalities (the AR-CNN protocol, extended).

This module says what a sweep measures and where its results go: the sweep points
(:func:`build_sweep`), the reference detectors (:class:`GroundTruthDetector`), one result row per
(detector, point) with its resume key, the result files, the table and the plot. Running it is
:func:`rgbt.engine.misalign.run_sweep`: for every sweep point each test frame is perturbed with
:func:`rgbt.data.perturbation.apply_perturbation`, the detectors run in batches
(:func:`rgbt.engine.inference.detect_source`), and the log-average miss rate (percent, all / day /
night) is computed by :func:`rgbt.evaluation.missrate.evaluate_periods` against the unchanged
thermal-frame ground truth.

A *detector* is any callable ``detect(samples: list[PairSample]) -> list[np.ndarray]`` returning,
per sample, an ``(M, 5)`` float array ``[x1, y1, x2, y2, score]`` in thermal-frame pixels; the
sweep knows nothing else about it, except the ``modalities`` it reads and its ``fingerprint`` when
it declares them. The fingerprint is a string that changes when the detector does (a checkpoint's
``sha256:<file hash>``, a reference's ``reference:<modality>``): rows are resumed under a name only
while it still means the same detector.

Shift patterns (``s`` is the signed magnitude; rgbt's convention, ``+dx`` right, ``+dy`` down):

======  =================  ====================================================
name    ``(dx, dy)``       direction on screen for ``s > 0``
======  =================  ====================================================
S0      ``(s, 0)``         right
S45     ``(s, s)``         right and down
S90     ``(0, s)``         down
S135    ``(s, -s)``        right and up
======  =================  ====================================================

AR-CNN's scripts measure ``y`` upwards: their shift ``(dx, dy)`` is ``(dx, -dy)`` here, so their
``dx = dy`` diagonal is the S135 line of this table and their ``dx = -dy`` diagonal is S45; the S0
and S90 lines are the same (S90 with ``s > 0`` moves down here, up there).

Outputs in ``out_dir``:

* ``misalignment.csv``: columns ``detector, perturbation, value, dx, dy, all, day, night``, one
  row per (detector, perturbation) appended as soon as it is computed; ``perturbation`` is the
  text form of the perturbation (pairs joined by ``+``), MR columns are percent (empty when the
  period has no frames or no positives). Re-running with the same ``out_dir`` skips the pairs
  already there, so an interrupted sweep resumes where it stopped.
* ``misalignment.json``: the same rows as a list of objects (rewritten atomically after each row).
* ``misalignment_run.json``: the evaluation setup, the frame list's fingerprint and each detector
  name's fingerprint; a resumed run with a different setup or frame list, or with a name that now
  means another detector (a different checkpoint file called ``last.pt`` too), is refused instead of
  mixing rows. Rows of a name without a recorded fingerprint (written before rgbt recorded them)
  are not resumed under a detector that has one: that is refused too.
* ``misalignment.png``: MR (all) against the perturbation value, one curve per detector, one panel
  per shift pattern, rotation and scale, and a bar panel for the blackout cases.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.errors import DataFormatError
from rgbt.data.perturbation import Perturbation, apply_perturbation, finite_float
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource
from rgbt.evaluation.missrate import MissRateCurve, MissRateSetup

log = logging.getLogger(__name__)

#: Shift pattern name -> unit direction ``(ux, uy)``; a magnitude ``s`` gives ``(dx, dy) = (s ux, s uy)``.
PATTERNS: dict[str, tuple[int, int]] = {"S0": (1, 0), "S45": (1, 1), "S90": (0, 1), "S135": (1, -1)}

#: The blackout cases: label -> perturbations applied together.
BLACKOUT_CASES: dict[str, tuple[Perturbation, ...]] = {
    "rgb off": (Perturbation("blackout", "rgb", region="all"),),
    "thermal off": (Perturbation("blackout", "thermal", region="all"),),
    "rgb left + thermal right cut": (
        Perturbation("blackout", "rgb", region="left"),
        Perturbation("blackout", "thermal", region="right"),
    ),
    "thermal border cut": (Perturbation("blackout", "thermal", region="border"),),
}

#: Columns of ``misalignment.csv``, in order.
COLUMNS: tuple[str, ...] = ("detector", "perturbation", "value", "dx", "dy", "all", "day", "night")
#: Miss-rate columns (percent, or ``None`` when the period has no frames or no positives).
PERIODS: tuple[str, ...] = ("all", "day", "night")

CSV_NAME = "misalignment.csv"
JSON_NAME = "misalignment.json"
RUN_NAME = "misalignment_run.json"
PLOT_NAME = "misalignment.png"


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep.

    Attributes:
        perturbation: a :class:`Perturbation`, or a tuple of them applied in order (the
            opposite-side cut blacks out the left of RGB and the right of thermal).
        name: the panel it belongs to: a shift pattern (``S0`` ...), ``rotate``, ``scale`` or
            ``blackout``.
        value: the magnitude: ``s`` for shifts (pixels), degrees, scale factor; 0 for blackouts.
        dx, dy: the shift in pixels (0 for the other kinds).
        label: short name of a blackout case (bar label); empty otherwise.
    """

    perturbation: Perturbation | tuple[Perturbation, ...]
    name: str
    value: float
    dx: float = 0.0
    dy: float = 0.0
    label: str = ""

    @property
    def perturbations(self) -> tuple[Perturbation, ...]:
        """The perturbations as a tuple (one element for single perturbations)."""
        p = self.perturbation
        return p if isinstance(p, tuple) else (p,)

    @property
    def key(self) -> str:
        """The ``perturbation`` column: text forms joined by ``+`` (``shift:4,0:rgb``)."""
        return "+".join(str(p) for p in self.perturbations)

    def apply(self, sample: PairSample) -> PairSample:
        """The perturbed sample."""
        for p in self.perturbations:
            sample = apply_perturbation(sample, p)
        return sample

    def changes(self, modalities: Sequence[str] | None) -> bool:
        """Whether this point changes an input of a detector reading ``modalities`` (``None``: a
        detector that does not say what it reads, whose input every point may change)."""
        if modalities is None:
            return True
        touched = set()
        for p in self.perturbations:
            touched.add(p.modality)
            if p.modality == "thermal":
                touched.add("fake_rgb")  # fake RGB is computed from thermal and moves with it
        return bool(touched & set(modalities))


def parse_range(spec: str | float | Sequence[float]) -> list[float]:
    """Values of a sweep specification.

    Accepts ``START:STOP:STEP`` (inclusive of ``STOP`` when it is on the grid; integer or
    fractional, ``-10:10:2``, ``0.9:1.1:0.05``), ``START:STOP`` (step 1), a comma list
    (``-2,0,2``), a single number, or a sequence of numbers.

    Raises:
        ValueError: naming the spec (not a number, zero step, step pointing away from STOP).
    """
    if isinstance(spec, (int, float)):
        return [float(spec)]
    if not isinstance(spec, str):
        return [float(v) for v in spec]
    text = spec.strip()

    def number(item: str) -> float:
        return finite_float(item, f"invalid range {spec!r}")

    if ":" not in text:
        values = [number(item.strip()) for item in text.split(",") if item.strip()]
        if not values:
            raise ValueError(f"invalid range {spec!r}: expected START:STOP:STEP, a number or a comma list")
        return values
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"invalid range {spec!r}: expected START:STOP:STEP")
    start, stop = number(parts[0]), number(parts[1])
    step = number(parts[2]) if len(parts) == 3 else 1.0
    if step == 0:
        raise ValueError(f"invalid range {spec!r}: the step is 0")
    if (stop - start) * step < 0:
        raise ValueError(f"invalid range {spec!r}: the step {step:g} points away from {stop:g}")
    # A small tolerance keeps STOP when float division lands just under an integer (0.2 / 0.05).
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    # Rounding removes float noise (0.9 + 3 * 0.05 = 1.0500000000000003) so values print and key cleanly.
    return [round(start + i * step, 10) + 0.0 for i in range(count)]


def build_sweep(
    patterns: Sequence[str] = ("S0", "S45", "S90", "S135"),
    shifts: str | Sequence[float] | None = "-10:10:2",
    rotations: str | Sequence[float] | None = None,
    scales: str | Sequence[float] | None = None,
    blackout: bool = False,
    modality: str = "rgb",
) -> list[SweepPoint]:
    """The sweep points, in plotting order: shift patterns, then rotations, scales, blackout cases.

    Args:
        patterns: names in :data:`PATTERNS`.
        shifts: magnitudes ``s`` (see :func:`parse_range`), pixels; ``None`` or empty: no shifts.
        rotations: angles in degrees about the image centre; ``None``: none.
        scales: content scale factors about the image centre; ``None``: none.
        blackout: add the :data:`BLACKOUT_CASES` (their modalities are fixed by the case).
        modality: the modality moved by shifts, rotations and scales (``rgb``, ``thermal`` or
            ``fake_rgb``; moving ``thermal`` also moves ``fake_rgb``).

    Returns:
        the points; a value shared by several patterns (``s = 0``) gives equal keys, which a
        sweep measures once (see :func:`pending_points`).
    """
    points: list[SweepPoint] = []
    magnitudes = parse_range(shifts) if shifts not in (None, "") else []
    for name in patterns:
        if name not in PATTERNS:
            raise ValueError(f"unknown shift pattern {name!r}; expected one of {tuple(PATTERNS)}")
        ux, uy = PATTERNS[name]
        for s in magnitudes:
            dx, dy = s * ux + 0.0, s * uy + 0.0
            points.append(SweepPoint(Perturbation("shift", modality, dx=dx, dy=dy), name, s, dx, dy))
    if rotations not in (None, ""):
        for angle in parse_range(rotations):
            points.append(SweepPoint(Perturbation("rotate", modality, angle=angle), "rotate", angle))
    if scales not in (None, ""):
        for factor in parse_range(scales):
            points.append(SweepPoint(Perturbation("scale", modality, scale=factor), "scale", factor))
    if blackout:
        for label, perturbations in BLACKOUT_CASES.items():
            single = perturbations[0] if len(perturbations) == 1 else perturbations
            points.append(SweepPoint(single, "blackout", 0.0, label=label))
    if not points:
        raise ValueError("the sweep is empty: give shift patterns with shifts, rotations, scales or blackout")
    return points


# --------------------------------------------------------------------------------------------
# reference detectors
# --------------------------------------------------------------------------------------------


class GroundTruthDetector:
    """A detector that returns a frame's ground truth with score 1: the reference curves.

    ``modality='thermal'`` returns ``sample.boxes`` (the thermal reference frame, never moved by
    a perturbation): its miss rate is 0 at every point. ``modality='rgb'`` returns
    ``sample.boxes_rgb``, which :func:`apply_perturbation` moves with the RGB image: an oracle
    that sees only the (misaligned) RGB camera. For a ``w x h`` box shifted by ``dx`` its IoU
    with the thermal box is ``(w - |dx|) / (w + |dx|)``, below the 0.5 match threshold once
    ``|dx| > w / 3`` (``|dy| > h / 3`` vertically). Every object is returned, including
    ``people`` / ``cyclist`` / ``person?`` (the evaluator treats them as ignore regions).
    """

    def __init__(self, modality: str = "thermal") -> None:
        if modality not in ("thermal", "rgb"):
            raise ValueError(f"GroundTruthDetector modality must be 'thermal' or 'rgb', not {modality!r}")
        self.modality = modality

    def __call__(self, samples: list[PairSample]) -> list[np.ndarray]:
        out = []
        for sample in samples:
            boxes = sample.boxes if self.modality == "thermal" else sample.boxes_rgb
            if boxes is None:
                raise ValueError(
                    f"frame {sample.frame_id!r} has no RGB-frame boxes (boxes_rgb): the 'rgb' reference needs "
                    "KAIST-Paired annotations (annotations_paired/)"
                )
            scores = np.ones((len(boxes), 1), dtype=np.float32)
            out.append(np.concatenate([np.asarray(boxes, dtype=np.float32).reshape(-1, 4), scores], axis=1))
        return out

    @property
    def fingerprint(self) -> str:
        """``reference:<modality>``: what the sweep keys this detector's rows on."""
        return f"reference:{self.modality}"

    def __repr__(self) -> str:
        return f"GroundTruthDetector(modality={self.modality!r})"


def detector_fingerprint(detector: Any) -> str | None:
    """The detector's ``fingerprint`` attribute (``None`` when it declares none)."""
    fingerprint = getattr(detector, "fingerprint", None)
    return None if fingerprint is None else str(fingerprint)


# --------------------------------------------------------------------------------------------
# rows and resume keys
# --------------------------------------------------------------------------------------------


def _point_columns(point: SweepPoint) -> dict[str, Any]:
    return {"perturbation": point.key, "value": float(point.value), "dx": float(point.dx), "dy": float(point.dy)}


def measured_row(name: str, point: SweepPoint, curves: Mapping[str, MissRateCurve]) -> dict[str, Any]:
    """The row of detector ``name`` at ``point`` from its :func:`~rgbt.evaluation.missrate.evaluate_periods`
    curves: the :data:`COLUMNS`, miss rates in percent."""
    row: dict[str, Any] = {"detector": name, **_point_columns(point)}
    for period in PERIODS:
        # No frame of the period, or no positive in it (mr is nan): no miss rate.
        mr = float(curves[period].mr) if period in curves else math.nan
        row[period] = None if math.isnan(mr) else mr * 100.0
    return row


def moved_row(row: Mapping[str, Any], point: SweepPoint) -> dict[str, Any]:
    """``row``'s detector and miss rates at ``point``: for a detector whose input ``point`` does not change."""
    return {**row, **_point_columns(point)}


def pending_points(
    points: Sequence[SweepPoint], names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, SweepPoint], list[tuple[SweepPoint, list[str]]]]:
    """What is left to measure, resuming from ``rows``.

    Returns:
        the distinct points by key (the first of equal keys; equal keys are measured once), and in
        sweep order each distinct point with the detector ``names`` that have no row at it yet
        (points where every detector has one are left out).
    """
    done = {(row["detector"], row["perturbation"]) for row in rows}
    unique: dict[str, SweepPoint] = {}
    for point in points:
        unique.setdefault(point.key, point)
    tasks = [(point, [name for name in names if (name, key) not in done]) for key, point in unique.items()]
    return unique, [(point, missing) for point, missing in tasks if missing]


def sweep_rows(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], keys: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The row of every (detector, point key), detectors in ``names`` order, points in ``keys`` order."""
    by_key = {(row["detector"], row["perturbation"]): row for row in rows}
    return [by_key[(name, key)] for name in names for key in keys]


# --------------------------------------------------------------------------------------------
# result files
# --------------------------------------------------------------------------------------------


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _csv_line(row: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([row["detector"], row["perturbation"], *(_number_text(row[c]) for c in COLUMNS[2:])])
    return buffer.getvalue()


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``misalignment.csv`` back into row dicts (numbers as floats, empty MR as ``None``).

    A row counts only once its line ends with a newline: a last line without one (cut short by an
    interruption) is dropped with a warning and recomputed. Any other malformed line raises
    :class:`DataFormatError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        return []
    if tuple(cell.strip() for cell in lines[0]) != COLUMNS:
        raise DataFormatError(path, 1, f"expected the header {','.join(COLUMNS)}, got {','.join(lines[0])}")
    if len(lines) > 1 and not text.endswith("\n"):
        log.warning("%s:%d: dropping a row cut short by an interruption: %s", path, len(lines), lines[-1])
        lines.pop()
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        try:
            if len(cells) != len(COLUMNS):
                raise ValueError(f"expected {len(COLUMNS)} fields, got {len(cells)}")
            row: dict[str, Any] = {"detector": cells[0], "perturbation": cells[1]}
            for column, cell in zip(COLUMNS[2:], cells[2:]):
                row[column] = float(cell) if cell.strip() else None
            for column in ("value", "dx", "dy"):
                if row[column] is None:
                    raise ValueError(f"empty {column}")
        except ValueError as err:
            raise DataFormatError(path, number, f"{err}: {','.join(cells)}") from None
        rows.append(row)
    return rows


def write_rows(out_dir: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``misalignment.csv`` and ``misalignment.json`` atomically with exactly ``rows``."""
    out_dir = Path(out_dir)
    header = ",".join(COLUMNS) + "\n"
    atomic_write_text(out_dir / CSV_NAME, header + "".join(_csv_line(row) for row in rows))
    _write_json(out_dir, rows)


def _write_json(out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    payload = [{column: row[column] for column in COLUMNS} for row in rows]
    atomic_write_text(out_dir / JSON_NAME, json.dumps(payload, indent=1) + "\n")


def append_row(out_dir: str | os.PathLike[str], row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``row`` to ``misalignment.csv`` (flushed to disk) and rewrite ``misalignment.json`` with
    ``rows`` (which already end with ``row``)."""
    out_dir = Path(out_dir)
    with open(out_dir / CSV_NAME, "a", encoding="utf-8") as handle:
        handle.write(_csv_line(row))
        handle.flush()
        os.fsync(handle.fileno())
    _write_json(out_dir, rows)


def _read_run(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        line = getattr(err, "lineno", None)
        raise DataFormatError(path, line, f"invalid json: {getattr(err, 'msg', err)}") from None
    if not isinstance(previous, dict) or not isinstance(previous.get("detectors", {}), dict):
        raise DataFormatError(path, None, "not a sweep description (expected an object with a 'detectors' object)")
    return previous


def _check_detectors(out_dir: Path, recorded: Mapping[str, str | None], fingerprints: Mapping[str, str | None],
                     rows: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a name whose rows in ``out_dir`` were measured on another detector than it means now."""
    measured = {row["detector"] for row in rows}
    for name, fingerprint in fingerprints.items():
        if name not in measured:
            continue  # nothing of this name to resume: whatever it meant before does not matter
        if name not in recorded:
            if fingerprint is None:
                continue  # neither side says what the detector is: resumed by name, the caller's promise
            raise ValueError(
                f"{out_dir} holds rows of detector {name!r} that do not record which detector they were measured "
                f"on (written by an earlier rgbt), so they cannot be resumed for {name!r} = {fingerprint}; use "
                f"another --out, or give this detector another name with --names"
            )
        if recorded[name] != fingerprint:
            before, now = (value or "a detector without a fingerprint" for value in (recorded[name], fingerprint))
            raise ValueError(
                f"{out_dir} holds rows of detector {name!r} = {before}, but {name!r} is now {now}: a different "
                f"detector under the same name; give it another name with --names, or use another --out"
            )


def open_sweep_dir(
    out_dir: str | os.PathLike[str], setup: str | MissRateSetup, source: FrameSource,
    fingerprints: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Prepare ``out_dir`` for a sweep of ``source`` under ``setup`` and return the rows already in it.

    Creates the folder, writes ``misalignment_run.json`` (or checks that it describes the same setup
    and frame list, and that each name of ``fingerprints`` with rows in the folder still has the
    fingerprint recorded for it) and rewrites the result files with exactly the rows read back, so
    new rows can be appended (a cut-short last line is dropped, a missing header is written).

    Args:
        fingerprints: detector name -> :func:`detector_fingerprint` (``None``: the detector declares
            none) of the detectors about to be measured; recorded in ``misalignment_run.json``.

    Raises:
        ValueError: ``out_dir`` holds a sweep of another setup or frame list, or rows of a name that
            now means another detector (the message names both fingerprints).
        DataFormatError: a malformed ``misalignment.csv`` or ``misalignment_run.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = hashlib.sha1("\n".join(map(str, source.frame_ids)).encode("utf-8")).hexdigest()
    described = setup if isinstance(setup, str) else {"height": list(setup.height), "occlusion": list(setup.occlusion)}
    info: dict[str, Any] = {"setup": described, "dataset": str(source.name), "frames": len(source),
                            "frame_list_sha1": frames}
    path = out_dir / RUN_NAME
    previous = _read_run(path)
    if previous is not None:
        changed = {k: (previous.get(k), v) for k, v in info.items() if k != "dataset" and previous.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out_dir} holds a sweep of a different evaluation ({details}); use another output folder"
            )
    rows = read_rows(out_dir / CSV_NAME)
    recorded = dict((previous or {}).get("detectors", {}))
    _check_detectors(out_dir, recorded, dict(fingerprints or {}), rows)
    # Recorded before any row of these detectors is appended: every row's detector is known.
    atomic_write_text(path, json.dumps({**info, "detectors": {**recorded, **(fingerprints or {})}}, indent=1) + "\n")
    write_rows(out_dir, rows)
    return rows


def plot_sweep(rows: Sequence[Mapping[str, Any]], points: Sequence[SweepPoint], path: str | os.PathLike[str]) -> Path:
    """Draw MR (all) against each point's value: one panel per point name, one curve per detector.

    The blackout panel is a bar chart; it starts with an ``aligned`` bar (the zero-shift row) when
    the sweep has one, the miss rate the blackout cases are compared against.
    """
    from rgbt.evaluation.plots import plot_misalignment

    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["perturbation"], []).append(row)
    xlabels = {"rotate": "rotation (degrees)", "scale": "scale factor"}
    xlabels.update({name: f"s (px), (dx, dy) = s * {direction}" for name, direction in PATTERNS.items()})

    def entry(row: Mapping[str, Any], point: SweepPoint, label: str) -> dict[str, Any]:
        return {"detector": row["detector"], "panel": point.name, "value": point.value, "mr": row["all"],
                "label": label, "xlabel": xlabels.get(point.name, "")}

    series = []
    baseline = next((point for point in points if point.dx == 0 and point.dy == 0 and point.name in PATTERNS), None)
    for point in points:
        if point.name == "blackout" and baseline is not None:
            series.extend(entry(row, replace(point, value=0.0), "aligned") for row in by_key.get(baseline.key, []))
            baseline = None
        series.extend(entry(row, point, point.label) for row in by_key.get(point.key, []))
    return plot_misalignment(series, path)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as an aligned text table (MR with two decimals, ``-`` for a missing period)."""
    header = list(COLUMNS)
    body = [
        [str(row["detector"]), str(row["perturbation"]), *(_number_text(row[c]) for c in ("value", "dx", "dy")),
         *("-" if row[p] is None else f"{row[p]:.2f}" for p in PERIODS)]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [header, *body]]
    return "\n".join(lines)
