"""The misalignment robustness harness: miss rate of detectors under shifted, rotated, scaled or
blacked-out modalities (the AR-CNN protocol, extended).

A *detector* is any callable ``detect(samples: list[PairSample]) -> list[np.ndarray]`` returning,
per sample, an ``(M, 5)`` float array ``[x1, y1, x2, y2, score]`` in thermal-frame pixels; the
harness knows nothing else about it. For every sweep point, each test frame is perturbed with
:func:`rgbt.data.perturbation.apply_perturbation`, the detectors run in batches, and the
log-average miss rate (percent, all / day / night) is computed by
:func:`rgbt.evaluation.missrate.evaluate_periods` against the unchanged thermal-frame ground truth.

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
* ``misalignment_run.json``: the evaluation setup and the frame list's fingerprint; a resumed run
  with a different setup or frame list is refused instead of mixing rows.
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
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rgbt.atomic import atomic_write_text
from rgbt.data.errors import DataFormatError
from rgbt.data.perturbation import Perturbation, apply_perturbation, finite_float
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource
from rgbt.evaluation.missrate import MissRateSetup, evaluate_periods

log = logging.getLogger(__name__)

#: ``detect(samples) -> per-sample (M, 5) [x1, y1, x2, y2, score]`` in thermal-frame pixels.
Detector = Callable[[list[PairSample]], list[np.ndarray]]

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
        the points; a value shared by several patterns (``s = 0``) gives equal keys, which
        :func:`run_sweep` computes once.
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

    def __repr__(self) -> str:
        return f"GroundTruthDetector(modality={self.modality!r})"


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


def _append_row(out_dir: Path, row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    with open(out_dir / CSV_NAME, "a", encoding="utf-8") as handle:
        handle.write(_csv_line(row))
        handle.flush()
        os.fsync(handle.fileno())
    _write_json(out_dir, rows)


def _check_run(out_dir: Path, setup: str | MissRateSetup, source: FrameSource) -> None:
    """Write (or compare against) the sidecar describing what the rows in ``out_dir`` measure."""
    frames = hashlib.sha1("\n".join(map(str, source.frame_ids)).encode("utf-8")).hexdigest()
    described = setup if isinstance(setup, str) else {"height": list(setup.height), "occlusion": list(setup.occlusion)}
    info = {"setup": described, "dataset": str(source.name), "frames": len(source), "frame_list_sha1": frames}
    path = out_dir / RUN_NAME
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(path, err.lineno, f"invalid json: {err.msg}") from None
        changed = {k: (previous.get(k), v) for k, v in info.items() if k != "dataset" and previous.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out_dir} holds a sweep of a different evaluation ({details}); use another output folder"
            )
    else:
        atomic_write_text(path, json.dumps(info, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------


def _perturbed_batches(
    source: FrameSource, point: SweepPoint, batch_size: int, workers: int
) -> Iterator[list[PairSample]]:
    """Perturbed samples in batches; with ``workers > 0`` the next batches load in threads
    (decoding and warping release the GIL) while the detectors run on the current one."""
    batches = [range(start, min(start + batch_size, len(source))) for start in range(0, len(source), batch_size)]

    def load(indices: range) -> list[PairSample]:
        return [point.apply(source[i]) for i in indices]

    if workers <= 0:
        for indices in batches:
            yield load(indices)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[list[PairSample]]] = deque()
        upcoming = iter(batches)
        for indices in upcoming:
            pending.append(pool.submit(load, indices))
            if len(pending) >= workers:
                break
        while pending:
            batch = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(load, following))
            yield batch


def _check_detections(name: str, samples: list[PairSample], output: Any) -> list[np.ndarray]:
    try:
        output = list(output)
    except TypeError:
        raise ValueError(f"detector {name!r} returned {type(output).__name__}, expected a list of arrays") from None
    if len(output) != len(samples):
        raise ValueError(f"detector {name!r} returned {len(output)} results for {len(samples)} samples")
    checked = []
    for sample, dets in zip(samples, output):
        dets = np.asarray(dets, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, 5)
        if dets.ndim != 2 or dets.shape[1] != 5:
            raise ValueError(
                f"detector {name!r} returned shape {dets.shape} for frame {sample.frame_id!r}; "
                "expected (M, 5) [x1, y1, x2, y2, score]"
            )
        checked.append(dets)
    return checked


def _reads_perturbed(detector: Detector, point: SweepPoint) -> bool:
    """Whether ``point`` changes an input of ``detector`` (True when the detector does not say what it reads)."""
    modalities = getattr(detector, "modalities", None)
    if modalities is None:
        return True
    touched = set()
    for p in point.perturbations:
        touched.add(p.modality)
        if p.modality == "thermal":
            touched.add("fake_rgb")  # fake RGB is computed from thermal and moves with it
    return bool(touched & set(modalities))


def run_sweep(
    detectors: Mapping[str, Detector],
    source: FrameSource,
    points: Sequence[SweepPoint],
    out_dir: str | os.PathLike[str],
    batch_size: int = 8,
    setup: str | MissRateSetup = "reasonable",
    *,
    workers: int = 0,
    progress: bool = True,
    plot: bool = True,
) -> list[dict[str, Any]]:
    """Measure every detector at every sweep point; resumable.

    Args:
        detectors: name -> detector callable (see :data:`Detector`). Names are the ``detector``
            column and must be unique strings.
        source: the test frames (``source[i]`` with images; ``source.annotations(i)`` is the
            ground truth).
        points: from :func:`build_sweep`; points with equal keys are computed once. A detector
            with a ``modalities`` attribute is run once for all the points that perturb none of
            the modalities it reads (its input, hence its miss rate, is the same for all of them).
        out_dir: created if needed; rows already in its ``misalignment.csv`` are not recomputed.
        batch_size: frames per detector call.
        setup: evaluation setup passed to ``evaluate_periods`` (a name such as ``reasonable``, or a
            :class:`~rgbt.evaluation.missrate.MissRateSetup`).
        workers: threads loading and perturbing the next batches while the detectors run (the
            source must then tolerate concurrent ``source[i]`` calls); 0 loads in the calling thread.
        progress: show a tqdm bar (batches over the remaining points).
        plot: write ``misalignment.png`` at the end.

    Returns:
        one row per (detector, distinct point key), detectors in the given order, points in sweep
        order: ``detector, perturbation, value, dx, dy`` and MR percent ``all, day, night``
        (``None`` for a period without frames or positives).
    """
    if not detectors:
        raise ValueError("no detectors to evaluate")
    if not points:
        raise ValueError("no sweep points")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(source) == 0:
        raise ValueError(f"the frame source {source.name!r} at {source.root} has no frames")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run(out_dir, setup, source)

    rows = read_rows(out_dir / CSV_NAME)
    # Rewriting normalises the files (drops a cut-short last line, creates the header) before appending.
    write_rows(out_dir, rows)
    done = {(row["detector"], row["perturbation"]) for row in rows}
    unique: dict[str, SweepPoint] = {}
    for point in points:
        unique.setdefault(point.key, point)
    tasks = [
        (point, [name for name in detectors if (name, key) not in done]) for key, point in unique.items()
    ]
    tasks = [(point, names) for point, names in tasks if names]
    if len(tasks) < len(unique):
        log.info("resuming in %s: %d of %d points already done", out_dir, len(unique) - len(tasks), len(unique))

    if tasks:
        # name -> a row measured on inputs no perturbation had touched, reusable for the others.
        unaffected: dict[str, dict[str, Any]] = {}
        ground_truth = [source.annotations(i) for i in range(len(source))]
        n_batches = math.ceil(len(source) / batch_size)
        bar = tqdm(total=len(tasks) * n_batches, unit="batch", desc="misalignment", disable=not progress)
        try:
            for point, names in tasks:
                bar.set_postfix_str(point.key, refresh=False)
                reused = {name: unaffected[name] for name in names
                          if name in unaffected and not _reads_perturbed(detectors[name], point)}
                running = [name for name in names if name not in reused]
                detections: dict[str, list[np.ndarray]] = {name: [] for name in running}
                position = 0
                if not running:
                    bar.update(n_batches)
                for batch in _perturbed_batches(source, point, batch_size, workers) if running else ():
                    for sample in batch:
                        # Perturbations keep the frame size: it tells the evaluator's border rule the
                        # size of frames whose annotation records carry neither images nor meta['size'].
                        record = ground_truth[position]
                        bare = record.thermal is None and record.rgb is None and "size" not in record.meta
                        if bare and (sample.thermal is not None or sample.rgb is not None):
                            ground_truth[position] = replace(record, meta={**record.meta, "size": sample.size})
                        position += 1
                    for name in running:
                        detections[name].extend(_check_detections(name, batch, detectors[name](batch)))
                    bar.update(1)
                for name in names:
                    if name in reused:
                        rows.append({**reused[name], "perturbation": point.key, "value": float(point.value),
                                     "dx": float(point.dx), "dy": float(point.dy)})
                        _append_row(out_dir, rows[-1], rows)
                        continue
                    curves = evaluate_periods(ground_truth, detections[name], setup)
                    row: dict[str, Any] = {
                        "detector": name, "perturbation": point.key,
                        "value": float(point.value), "dx": float(point.dx), "dy": float(point.dy),
                    }
                    for period in PERIODS:
                        # No frame of the period, or no positive in it (mr is nan): no miss rate.
                        mr = float(curves[period].mr) if period in curves else math.nan
                        row[period] = None if math.isnan(mr) else mr * 100.0
                    rows.append(row)
                    _append_row(out_dir, row, rows)
                    if not _reads_perturbed(detectors[name], point):
                        unaffected[name] = row
        finally:
            bar.close()

    by_key = {(row["detector"], row["perturbation"]): row for row in rows}
    result = [by_key[(name, key)] for name in detectors for key in unique]
    if plot:
        plot_sweep(result, points, out_dir / PLOT_NAME)
    return result


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
