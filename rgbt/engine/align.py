"""Registering a whole dataset: ``rgbt align`` as a library call, :func:`align_dataset`.

Every frame of a dataset root (KAIST layout, FLIR, pairs) is registered with
:func:`rgbt.align.estimate` (in ``workers`` processes), optionally pooled per sequence
(:func:`rgbt.align.pool_registrations`), and written to ``OUT``:

* ``alignment.json``: one object per frame, in frame-list order: ``frame`` (the id ``rgbt show``
  takes), ``H`` (3x3, thermal pixel -> RGB pixel; ``null`` without a transform), ``dx``, ``dy``
  (where the thermal centre lands in RGB minus the centre; ``null`` without a transform),
  ``score`` (confidence in [0, 1]), ``status`` (``ok`` or why not, see
  :data:`rgbt.align.STATUSES`), ``sequence``, ``period``; with ``pool="sequence"`` also the frame's
  own estimate (``frame_dx``, ``frame_dy``, ``frame_score``, ``frame_status``) and ``outlier``
  (it disagrees with its sequence); with known offsets, ``error`` (px);
* ``alignment.csv``: ``frame,dx,dy,score,status``;
* ``alignment_error.json`` when the root knows its true offsets (a synthetic root's
  ``synthetic.json``): the error of ``(dx, dy)`` against them, overall / day / night;
* ``registrations.json``: the per-frame estimates as they are made (flushed every few frames),
  so an interrupted run re-estimates only the frames it had not finished;
* with ``write_aligned``, the RGB frames warped into the thermal frame, in the dataset's own layout
  (KAIST: ``OUT/images/setXX/VYYY/aligned_visible/IZZZZZ.jpg``; FLIR and pairs:
  ``OUT/aligned_visible/<frame>.jpg``), and for KAIST-Paired roots their RGB boxes moved into the
  thermal frame (``OUT/annotations_paired/setXX/VYYY/aligned_visible/IZZZZZ.txt``, bbGt v3). They
  are listed with their checksums and transforms in ``OUT/manifest.json``
  (:mod:`rgbt.engine.manifest`): a re-run skips the files whose checksum and transform still
  match and redoes the rest.

:class:`RegisteredInput` registers one sample in flight instead (the ``--align`` remedy of
``rgbt misalign``): the perturbed RGB image is warped into the thermal frame before a detector
sees it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rgbt.align import Registration, estimate, pool_registrations, sequence_of
from rgbt.align.transform import MODELS
from rgbt.align.warp import boxes_to_thermal, warp_to_thermal
from rgbt.atomic import atomic_write_text
from rgbt.data.bbgt import BbGtObject, read_bbgt, write_bbgt
from rgbt.data.errors import DataFormatError
from rgbt.data.formats import detect_format
from rgbt.data.imageio import read_image
from rgbt.data.kaist import parse_frame_id
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.engine.manifest import (
    IMAGE_FORMATS,
    MANIFEST_NAME,
    check_settings,
    consolidate,
    is_finished,
    read_manifest,
    write_and_hash,
    write_manifest,
)
from rgbt.engine.periodic_save import PeriodicSave

log = logging.getLogger(__name__)

#: Folder of the aligned RGB frames (inside ``images/setXX/VYYY/`` for KAIST-layout roots).
ALIGNED_FOLDER = "aligned_visible"
#: Output files.
ALIGNMENT_JSON = "alignment.json"
ALIGNMENT_CSV = "alignment.csv"
ERROR_JSON = "alignment_error.json"
CACHE_JSON = "registrations.json"
#: Frames scoring below this are reported as low-confidence.
LOW_CONFIDENCE = 0.3
#: What a folder of aligned images must share with a run that adds to it (``manifest.json`` keys).
ALIGNED_SETTING_KEYS = ("source_root", "data_format", "settings")
#: Pooling modes.
POOLS = ("frame", "sequence")
#: Bumped when the estimates change for the same input (invalidates ``registrations.json``).
ESTIMATOR_VERSION = 2
#: Thresholds (px) of the "within" fractions of the error report.
WITHIN = (0.5, 1.0, 2.0)
_CACHE_FLUSH = 32
_MANIFEST_FLUSH = 16


# --------------------------------------------------------------------------------------------
# one frame
# --------------------------------------------------------------------------------------------


def _read(path: Path | None, mode: str, modality: str) -> tuple[np.ndarray | None, str | None]:
    """An image, or ``None`` and the status saying why not (``missing_rgb``, ``unreadable_thermal`` ...)."""
    if path is None or not Path(path).is_file():
        return None, f"missing_{modality}"
    try:
        return read_image(path, mode), None
    except DataFormatError as err:
        log.warning("%s", err)
        return None, f"unreadable_{modality}"


def register_frame(task: tuple[Path | None, Path | None, str, float | None]) -> Registration:
    """Read one pair and register it (a worker's unit of work).

    ``task = (rgb_path, thermal_path, model, max_shift)``. A missing or undecodable image gives a
    failed :class:`Registration` naming it, never an exception; the frame size is ``(0, 0)`` when
    the thermal image cannot be read.
    """
    rgb_path, thermal_path, model, max_shift = task
    thermal, thermal_status = _read(thermal_path, "gray", "thermal")
    if thermal is None:
        return Registration.failed(thermal_status or "missing_thermal", (0, 0), model)
    size = (int(thermal.shape[0]), int(thermal.shape[1]))
    rgb, rgb_status = _read(rgb_path, "rgb", "rgb")
    if rgb is None:
        return Registration.failed(rgb_status or "missing_rgb", size, model)
    return estimate(rgb, thermal, model, max_shift=max_shift)


def _init_worker() -> None:
    # One OpenCV thread per process: the pool already uses every core.
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole process group; the main process alone handles it (and ends the workers),
    # so a worker is never interrupted half-way through sending a result.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _registration_to_cache(reg: Registration) -> dict[str, Any]:
    return {"H": None if reg.H is None else reg.H.tolist(), "size": list(reg.size), "score": reg.score,
            "status": reg.status, "model": reg.model, "details": reg.details}


def _registration_from_cache(entry: dict[str, Any]) -> Registration:
    matrix = None if entry["H"] is None else np.asarray(entry["H"], np.float64)
    return Registration(matrix, tuple(entry["size"]), float(entry["score"]), str(entry["status"]),
                        str(entry["model"]), dict(entry.get("details", {})))


# --------------------------------------------------------------------------------------------
# ground truth of synthetic roots
# --------------------------------------------------------------------------------------------


def load_truth(root: str | os.PathLike[str]) -> dict[str, tuple[float, float]] | None:
    """``frame id -> (dx, dy)`` from a synthetic root's ``synthetic.json``; ``None`` for other roots.

    Raises:
        DataFormatError: a manifest without per-frame ``frame_id``, ``dx``, ``dy``.
    """
    from rgbt.data.synthetic import MANIFEST_NAME as SYNTHETIC_MANIFEST
    from rgbt.data.synthetic import read_manifest

    path = Path(root) / SYNTHETIC_MANIFEST
    if not path.is_file():
        return None
    truth = {}
    for number, frame in enumerate(read_manifest(root)["frames"]):
        try:
            truth[str(frame["frame_id"])] = (float(frame["dx"]), float(frame["dy"]))
        except (KeyError, TypeError, ValueError):
            raise DataFormatError(path, None, f"frames[{number}] lacks a frame_id / dx / dy: {frame!r}") from None
    return truth


def error_stats(errors: Sequence[float | None]) -> dict[str, Any]:
    """Summary of registration errors (px; ``None`` for a frame without a transform).

    ``median``, ``p95``, ``max`` are over the registered frames; the ``within_*`` fractions are over
    all frames (a frame without a transform is not within any distance).
    """
    values = np.array([e for e in errors if e is not None], dtype=np.float64)
    out: dict[str, Any] = {"frames": len(errors), "registered": int(len(values))}
    for key, fn in (("median", np.median), ("p95", lambda v: np.percentile(v, 95)), ("max", np.max)):
        out[key] = round(float(fn(values)), 4) if len(values) else None
    for limit in WITHIN:
        out[f"within_{limit:g}px"] = round(float(np.sum(values <= limit)) / len(errors), 4) if errors else None
    return out


# --------------------------------------------------------------------------------------------
# output paths
# --------------------------------------------------------------------------------------------


def aligned_image_path(out: str | os.PathLike[str], kind: str, frame_id: str, image_format: str = "jpg") -> Path:
    """Where ``--write-aligned`` puts the aligned RGB image of a frame (see the module docstring)."""
    out = Path(out)
    if kind == "kaist":
        fid = parse_frame_id(frame_id)
        return (out / "images" / f"set{fid.set:02d}" / f"V{fid.video:03d}" / ALIGNED_FOLDER
                / f"I{fid.frame:05d}.{image_format}")
    return out / ALIGNED_FOLDER / f"{frame_id}.{image_format}"


def aligned_boxes_path(out: str | os.PathLike[str], frame_id: str) -> Path:
    """``OUT/annotations_paired/setXX/VYYY/aligned_visible/IZZZZZ.txt`` (KAIST-Paired roots)."""
    fid = parse_frame_id(frame_id)
    return (Path(out) / "annotations_paired" / f"set{fid.set:02d}" / f"V{fid.video:03d}" / ALIGNED_FOLDER
            / f"I{fid.frame:05d}.txt")


# --------------------------------------------------------------------------------------------
# the job
# --------------------------------------------------------------------------------------------


def _split_of(source: FrameSource, index: int) -> str:
    """The frame's split (the pooling unit of layouts without videos); ``all`` when unknown."""
    try:
        return str(source.annotations(index).meta.get("split", "all"))
    except (FileNotFoundError, ValueError):
        return "all"


def register_pair(task: tuple[np.ndarray, np.ndarray, str, float | None]) -> Registration:
    """Register one decoded pair (a worker's unit of work for videos): ``task = (rgb, thermal, model,
    max_shift)``, ``rgb`` ``(H', W', 3)`` and ``thermal`` ``(H, W)`` uint8."""
    rgb, thermal, model, max_shift = task
    return estimate(rgb, thermal, model, max_shift=max_shift)


def _estimates(tasks: Iterable[tuple], work: Callable[[tuple], Registration], count: int,
               workers: int) -> Iterator[Registration]:
    """``work(task)`` for each of ``count`` tasks, in order, in ``workers`` processes (0: here)."""
    if workers > 0 and count > 1:
        # spawn, not fork: a forked child inherits OpenCV's thread-pool state and can deadlock.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(workers, count), mp_context=context, initializer=_init_worker)
        pending: deque[Future[Registration]] = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(work, task))
                # A bounded queue: tasks holding decoded video frames are not all in memory at once.
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: the finished estimates are already kept by the
            # caller, the ones in flight are not worth waiting for. Ending the workers first means a
            # second Ctrl-C cannot leave the shutdown waiting on a worker that will never answer.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    else:
        for task in tasks:
            yield work(task)


def register_all(frame_ids: Sequence[str], tasks: Callable[[list[int]], Iterable[tuple]],
                 work: Callable[[tuple], Registration], settings: dict[str, Any], cache_path: Path, workers: int,
                 progress: bool) -> tuple[list[Registration], int, float]:
    """Register every frame, reusing the estimates ``cache_path`` holds for the same ``settings``.

    Args:
        frame_ids: the frames, in order.
        tasks: the indices still to register -> their tasks for ``work``, in that order.
        work: ``task -> Registration`` (:func:`register_frame`, :func:`register_pair`).
        settings: what the cached estimates depend on; a cache made with others is ignored.
        cache_path: ``registrations.json``, rewritten every few frames.

    Returns:
        the registrations in frame order, how many were estimated now, and the seconds it took.
    """
    started = time.perf_counter()
    cached = _read_cache(cache_path, settings)
    registrations: dict[int, Registration] = {}
    for index, frame_id in enumerate(frame_ids):
        if frame_id in cached:
            registrations[index] = _registration_from_cache(cached[frame_id])
    todo = [i for i in range(len(frame_ids)) if i not in registrations]
    log.info("registering %d of %d frames (%d from an earlier run)", len(todo), len(frame_ids),
             len(frame_ids) - len(todo))
    record = dict(cached)

    def flush_cache() -> None:
        atomic_write_text(cache_path, json.dumps({"settings": settings, "frames": record}) + "\n")

    bar = tqdm(total=len(todo), unit="frame", desc="align", disable=None if progress else True, leave=False)
    saver = PeriodicSave(flush_cache, _CACHE_FLUSH, bar)
    try:
        for index, reg in zip(todo, _estimates(tasks(todo), work, len(todo), workers)):
            registrations[index] = reg
            record[frame_ids[index]] = _registration_to_cache(reg)
            saver.done()
    finally:
        saver.final(always=False)
        bar.close()
    return [registrations[i] for i in range(len(frame_ids))], len(todo), time.perf_counter() - started


#: Frames that keep their own status when pooled: there is no image pair to apply a transform to.
_UNPOOLED = frozenset({"missing_rgb", "missing_thermal", "unreadable_rgb", "unreadable_thermal"})


def pooled_entries(frames: list[dict[str, Any]], registrations: list[Registration], model: str) -> list[int]:
    """Give each frame its sequence's pooled transform (in ``frames``, keeping the frame's own estimate
    as ``frame_*``); a sequence where no frame was registered keeps the frames' own statuses.

    Returns:
        indices of the frames that disagree with their sequence.
    """
    groups: dict[tuple[str, tuple[int, int], str], list[int]] = {}
    for i, (frame, reg) in enumerate(zip(frames, registrations)):
        own = reg.to_json()
        frame.update(frame_dx=own["dx"], frame_dy=own["dy"], frame_score=own["score"], frame_status=own["status"],
                     outlier=False)
        if reg.status not in _UNPOOLED:
            # RGB frames of another size pool with their own kind (the search started elsewhere).
            groups.setdefault((frame["sequence"], reg.size, json.dumps(reg.details.get("init"))), []).append(i)
    outliers: list[int] = []
    for indices in groups.values():
        pooled = pool_registrations([registrations[i] for i in indices], model)
        if pooled.registration.H is None:
            continue
        for k, i in enumerate(indices):
            frames[i].update(pooled.registration.to_json(), outlier=k in pooled.outliers)
            if k in pooled.outliers:
                outliers.append(i)
    return sorted(outliers)


def _csv_text(frames: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "dx", "dy", "score", "status"])
    for frame in frames:
        writer.writerow([frame["frame"], "" if frame["dx"] is None else frame["dx"],
                         "" if frame["dy"] is None else frame["dy"], frame["score"], frame["status"]])
    return buffer.getvalue()


def _read_cache(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s is not valid json: every frame is registered again", path)
        return {}
    if not isinstance(data, dict) or data.get("settings") != settings or not isinstance(data.get("frames"), dict):
        return {}
    return data["frames"]


def _xywh(box: np.ndarray) -> tuple[float, float, float, float]:
    """bbGt ``x y w h`` of an ``xyxy`` box, to 1/1000 px (float32 noise would fill the file)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)


def _mapped_objects(objects: list[BbGtObject], matrix: np.ndarray) -> list[BbGtObject]:
    """bbGt objects of the RGB frame moved into the thermal frame (box and non-empty visible box)."""
    out = []
    for obj in objects:
        x, y, w, h = obj.box
        box = _xywh(boxes_to_thermal(np.array([[x, y, x + w, y + h]]), matrix)[0])
        visible = obj.visible
        if visible[2] > 0 and visible[3] > 0:
            vx, vy, vw, vh = visible
            visible = _xywh(boxes_to_thermal(np.array([[vx, vy, vx + vw, vy + vh]]), matrix)[0])
        out.append(BbGtObject(obj.label, box, obj.occlusion, visible, obj.ignore, obj.angle))
    return out


def _write_aligned(source: FrameSource, kind: str, root: Path, out: Path, frames: list[dict[str, Any]],
                   header: dict[str, Any], image_format: str, workers: int, progress: bool) -> dict[str, int]:
    """Write the aligned RGB frames (and KAIST-Paired boxes) listed in a checksummed manifest."""
    manifest = consolidate(out, header, ALIGNED_SETTING_KEYS, "alignment",
                           merge_keys=("files", "transforms"))
    listed: dict[str, str] = manifest["files"]
    transforms: dict[str, Any] = manifest["transforms"]
    record, record_transforms = dict(listed), dict(transforms)
    paired = kind == "kaist" and (root / "annotations_paired").is_dir()
    from rgbt.data.kaist import paired_annotation_path

    jobs, skipped, untransformed = [], 0, 0
    for index, frame in enumerate(frames):
        if frame["H"] is None:
            untransformed += 1
            continue
        targets = [aligned_image_path(out, kind, frame["frame"], image_format)]
        rgb_boxes = paired_annotation_path(root, frame["frame"], "rgb") if paired else None
        if rgb_boxes is not None and rgb_boxes.is_file():
            targets.append(aligned_boxes_path(out, frame["frame"]))
        else:
            rgb_boxes = None
        rels = [t.relative_to(out).as_posix() for t in targets]
        if all(is_finished(out, t, listed) and transforms.get(r) == frame["H"] for t, r in zip(targets, rels)):
            skipped += 1
            continue
        jobs.append((index, frame, targets, rels, rgb_boxes))

    def work(job: tuple) -> list[tuple[str, str, Any]]:
        index, frame, targets, rels, rgb_boxes = job
        matrix = np.asarray(frame["H"], np.float64)
        rgb = read_image(source.image_paths(index)["rgb"], "rgb")
        thermal_size = tuple(frames[index]["size"])
        done = [(rels[0], write_and_hash(targets[0], warp_to_thermal(rgb, matrix, thermal_size), image_format),
                 frame["H"])]
        if rgb_boxes is not None:
            write_bbgt(targets[1], _mapped_objects(read_bbgt(rgb_boxes), matrix))
            from rgbt.atomic import file_sha256

            done.append((rels[1], file_sha256(targets[1]), frame["H"]))
        return done

    def flush() -> None:
        write_manifest(out / MANIFEST_NAME, {**manifest, "files": record, "transforms": record_transforms})

    written = 0
    bar = tqdm(total=len(jobs), unit="frame", desc="write aligned", disable=None if progress else True, leave=False)
    saver = PeriodicSave(flush, _MANIFEST_FLUSH, bar)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for results in pool.map(work, jobs):
                for rel, sha, matrix in results:
                    record[rel] = sha
                    record_transforms[rel] = matrix
                written += 1
                saver.done()
    finally:
        # Whatever finished is kept: an interruption loses no written file.
        saver.final()
        bar.close()
    return {"written": written, "skipped": skipped, "without_transform": untransformed}


def check_arguments(model: str, pool: str, workers: int) -> None:
    """Raise ``ValueError`` naming an unknown ``model`` or ``pool``, or ``workers`` below 0."""
    if model not in MODELS:
        raise ValueError(f"unknown --model {model!r}; expected one of {MODELS}")
    if pool not in POOLS:
        raise ValueError(f"unknown --pool {pool!r}; expected one of {POOLS}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")


def align_dataset(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    image_set: str | None = None,
    data_format: str = "auto",
    model: str = "shift",
    pool: str = "frame",
    write_aligned: bool = False,
    workers: int = 2,
    max_shift: float | None = None,
    image_format: str = "jpg",
    progress: bool = True,
) -> dict[str, Any]:
    """Register every frame of a dataset root into ``out`` (see the module docstring).

    Args:
        root: dataset root (KAIST layout, FLIR v1.3 / v2 / aligned, a folder of pairs).
        out: output folder (created).
        image_set: which frames (``open_source``'s ``image_set``); ``None``: every frame.
        data_format: layout of ``root`` (``auto``: detected).
        model: ``shift``, ``similarity``, ``affine`` or ``homography``.
        pool: ``frame`` (each frame its own estimate) or ``sequence`` (one pooled estimate per video).
        write_aligned: also write the RGB frames warped into the thermal frame.
        workers: processes registering frames (0: in this process).
        max_shift: search range in thermal pixels (``None``: :func:`rgbt.align.estimate`'s default).
        image_format: ``jpg`` (quality 95) or ``png`` for the aligned images.
        progress: show progress bars.

    Returns:
        the JSON-ready summary (also what :func:`format_summary` prints): ``frames``, ``registered``,
        ``statuses`` (counts), ``median_abs_shift`` (px, registered frames), ``low_confidence`` (frame
        ids scoring below :data:`LOW_CONFIDENCE`), ``outliers`` (pooled), ``error`` (when the truth is
        known), ``aligned`` (write counts), ``seconds``, ``frames_per_second``, and the output paths.

    Raises:
        ValueError: bad arguments; ``out`` holds aligned images made with other settings.
        FileNotFoundError: missing root or image set.
    """
    check_arguments(model, pool, workers)
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    root, out = Path(root), Path(out)
    kind = detect_format(root) if data_format == "auto" else data_format
    source = open_source(root, image_set, kind)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = {"version": ESTIMATOR_VERSION, "source_root": str(root.resolve()), "data_format": kind,
                "model": model, "max_shift": max_shift}
    frame_ids = source.frame_ids
    header = {"version": 1, "source_root": str(root.resolve()), "data_format": kind,
              "image_sets": [str(image_set) if image_set is not None else "all"],
              "settings": {"model": model, "pool": pool, "format": image_format, "max_shift": max_shift}}
    # Before any work: a folder of aligned images made otherwise is neither overwritten nor described
    # by an alignment.json of other settings.
    check_aligned_folder(out, header, write_aligned)

    def tasks(todo: list[int]) -> list[tuple]:
        return [(source.image_paths(i).get("rgb"), source.image_paths(i).get("thermal"), model, max_shift)
                for i in todo]

    log.info("registering the frames of %s (%s, model %s)", root, kind, model)
    ordered, estimated, seconds_estimating = register_all(frame_ids, tasks, register_frame, settings,
                                                          out / CACHE_JSON, workers, progress)
    frames: list[dict[str, Any]] = []
    for index, (frame_id, reg) in enumerate(zip(frame_ids, ordered)):
        split = "all" if kind == "kaist" else _split_of(source, index)
        frames.append(frame_entry(frame_id, reg, sequence_of(frame_id, split), source.period(index)))
    outliers = pooled_entries(frames, ordered, model) if pool == "sequence" else []
    truth = load_truth(root)
    error = None
    if truth is not None:
        by_period: dict[str, list[float | None]] = {"all": [], "day": [], "night": []}
        for frame in frames:
            if frame["frame"] not in truth:
                continue
            tdx, tdy = truth[frame["frame"]]
            err = None if frame["dx"] is None else round(math.hypot(frame["dx"] - tdx, frame["dy"] - tdy), 4)
            frame["error"] = err
            by_period["all"].append(err)
            if frame["period"] in ("day", "night"):
                by_period[frame["period"]].append(err)
        error = {period: error_stats(values) for period, values in by_period.items() if values}
    write_tables(out, frames)
    if error is not None:
        atomic_write_text(out / ERROR_JSON, json.dumps(error, indent=1) + "\n")
    aligned = None
    if write_aligned:
        aligned = _write_aligned(source, kind, root, out, frames, header, image_format, workers, progress)
    return {"root": str(root), "format": kind, "model": model, "pool": pool,
            **summarise(frames, outliers, error, aligned, time.perf_counter() - started, estimated, seconds_estimating),
            "alignment_json": str(out / ALIGNMENT_JSON), "alignment_csv": str(out / ALIGNMENT_CSV)}


def check_aligned_folder(out: Path, header: dict[str, Any], write_aligned: bool) -> None:
    """Refuse an ``out`` holding aligned images (``manifest.json``) made from another root, format or
    with other settings (the image format counts only when writing images): :func:`check_settings`.

    Raises:
        ValueError: naming each differing setting, old and new value.
    """
    existing = read_manifest(out / MANIFEST_NAME, "alignment")
    if existing and not write_aligned:
        header = {**header, "settings": {**header["settings"], "format": existing.get("settings", {}).get("format")}}
    check_settings(out, existing, header, ALIGNED_SETTING_KEYS, "alignment")


def frame_entry(frame_id: str, reg: Registration, sequence: str, period: str) -> dict[str, Any]:
    """One frame's object of ``alignment.json`` (plus the internal ``size``, ``(H, W)`` of thermal)."""
    return {"frame": frame_id, **reg.to_json(), "sequence": sequence, "period": period, "size": list(reg.size)}


def write_tables(out: Path, frames: list[dict[str, Any]]) -> None:
    """``OUT/alignment.json`` (one frame per line, without the internal ``size``) and ``OUT/alignment.csv``."""
    public = [{k: v for k, v in frame.items() if k != "size"} for frame in frames]
    # One frame per line: a 25,000-frame list stays readable and diffable.
    atomic_write_text(out / ALIGNMENT_JSON, "[\n" + ",\n".join(json.dumps(f) for f in public) + "\n]\n")
    atomic_write_text(out / ALIGNMENT_CSV, _csv_text(frames))


def summarise(frames: list[dict[str, Any]], outliers: list[int], error: dict[str, Any] | None,
              aligned: dict[str, int] | None, seconds: float, estimated: int,
              seconds_estimating: float) -> dict[str, Any]:
    """The counts of the summary :func:`format_summary` prints (see :func:`align_dataset`'s Returns)."""
    registered = [f for f in frames if f["H"] is not None]
    statuses: dict[str, int] = {}
    for frame in frames:
        statuses[frame["status"]] = statuses.get(frame["status"], 0) + 1
    shifts = [math.hypot(f["dx"], f["dy"]) for f in registered]
    return {
        "frames": len(frames), "registered": len(registered), "statuses": statuses,
        "median_abs_shift": round(float(np.median(shifts)), 4) if shifts else None,
        "low_confidence": [f["frame"] for f in registered if f["score"] < LOW_CONFIDENCE],
        "outliers": [frames[i]["frame"] for i in outliers],
        "error": error, "aligned": aligned,
        "seconds": round(seconds, 3),
        "frames_per_second": round(estimated / seconds_estimating, 3) if estimated and seconds_estimating > 0 else 0.0,
    }


def format_summary(summary: dict[str, Any], listed: int = 10) -> str:
    """The printed summary of :func:`align_dataset`: frames, statuses, median |d|, low-confidence frames,
    outliers, the error against known offsets and what was written."""
    lines = [f"frames          {summary['frames']} ({summary['format']}, model {summary['model']}, "
             f"pool {summary['pool']})",
             f"registered      {summary['registered']}"]
    others = {k: v for k, v in summary["statuses"].items() if k != "ok"}
    if others:
        lines.append("not ok          " + ", ".join(f"{k} {v}" for k, v in sorted(others.items())))
    median = summary["median_abs_shift"]
    lines.append(f"median |d|      {'-' if median is None else f'{median:.2f} px'}")
    low = summary["low_confidence"]
    shown = ", ".join(low[:listed]) + (" ..." if len(low) > listed else "")
    lines.append(f"low confidence  {len(low)} (score < {LOW_CONFIDENCE})" + (f": {shown}" if low else ""))
    if summary["pool"] == "sequence":
        outs = summary["outliers"]
        lines.append(f"outliers        {len(outs)}" + (f": {', '.join(outs[:listed])}" if outs else ""))
    if summary["error"]:
        for period, stats in summary["error"].items():
            within = " ".join(f"<={t:g}px {stats[f'within_{t:g}px']:.3f}" for t in WITHIN)
            median_e = "-" if stats["median"] is None else f"{stats['median']:.3f}"
            p95 = "-" if stats["p95"] is None else f"{stats['p95']:.2f}"
            max_e = "-" if stats["max"] is None else f"{stats['max']:.2f}"
            lines.append(f"error {period:<9} median {median_e} px, p95 {p95}, max {max_e}, {within} "
                         f"({stats['frames']} frames)")
    if summary["aligned"] is not None:
        a = summary["aligned"]
        lines.append(f"aligned images  wrote {a['written']}, kept {a['skipped']} finished, "
                     f"{a['without_transform']} frames without a transform")
    rate = (f"{summary['frames_per_second']:.1f} frames/s" if summary["frames_per_second"]
            else "every registration reused from an earlier run")
    lines.append(f"time            {summary['seconds']:.1f} s ({rate})")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# registration of one sample in flight
# --------------------------------------------------------------------------------------------


class RegisteredInput:
    """``PairSample -> PairSample``: the RGB image registered to the thermal one and warped into the
    thermal frame, as ``rgbt align --write-aligned`` would write it; a per-sample hook of
    :func:`rgbt.engine.inference.detect_source` (picklable, so DataLoader workers can run it).

    With a transform found (status ``ok`` or ``ecc_not_converged``), ``rgb`` becomes the warped image
    (thermal-frame size, zero where the RGB camera saw nothing) and ``boxes_rgb`` (KAIST-Paired), when
    present, are mapped into the thermal frame with it. Without one (a flat or structureless RGB
    frame ...) the sample is returned unchanged: the detector then sees the uncorrected pair, as it
    would without registration. Either way ``meta['registration']`` holds the estimate's
    ``dx, dy, score, status`` (:meth:`rgbt.align.Registration.to_json` without ``H``). A sample
    without an RGB or a thermal image passes through untouched.

    Args:
        model: ``shift`` (default), ``similarity``, ``affine`` or ``homography``.
        max_shift: search range in thermal pixels (``None``: :func:`rgbt.align.estimate`'s default,
            5 % of the frame); a sweep's largest shift must fit inside it to be corrected.
    """

    def __init__(self, model: str = "shift", max_shift: float | None = None) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown registration model {model!r}; expected one of {MODELS}")
        self.model = model
        self.max_shift = max_shift

    def __call__(self, sample: PairSample) -> PairSample:
        if sample.rgb is None or sample.thermal is None:
            return sample
        found = estimate(sample.rgb, sample.thermal, self.model, max_shift=self.max_shift)
        summary = {key: value for key, value in found.to_json().items() if key != "H"}
        meta = {**sample.meta, "registration": summary}
        if not found.ok:
            return replace(sample, meta=meta)
        boxes_rgb = None if sample.boxes_rgb is None else boxes_to_thermal(sample.boxes_rgb, found.H)
        return replace(sample, rgb=warp_to_thermal(sample.rgb, found.H, sample.thermal.shape), boxes_rgb=boxes_rgb,
                       meta=meta)

    @property
    def fingerprint(self) -> str:
        """``align:<model>[:<max_shift>]``: what registered sweep rows are keyed on, next to the detector's."""
        return f"align:{self.model}" + ("" if self.max_shift is None else f":{self.max_shift:g}")

    def __repr__(self) -> str:
        return f"RegisteredInput(model={self.model!r}, max_shift={self.max_shift!r})"
