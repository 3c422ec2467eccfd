"""Check a dataset root and summarise it (``rgbt inspect``).

Every frame's annotations are parsed and its image files checked for existence (decoding every
image is slow, so it only happens with ``decode=True``). Problems are collected, not raised: a
report lists *all* malformed annotation lines, disagreeing paired files, missing annotation
files, frames without their thermal image (the reference modality: nothing can use such a frame;
a missing RGB image is only counted) and (with ``decode``) undecodable images, each as a
``file:line: message`` string. A malformed list or annotation file read when the root is opened (a
frame listed twice, a ``file_name`` leaving the root), a root without any frame and a synthetic
root whose generation did not finish are errors too.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from rgbt.data.errors import DataFormatError
from rgbt.data.formats import detect_format
from rgbt.data.imageio import check_same_size, read_image
from rgbt.data.source import open_source
from rgbt.data.synthetic import check_synthetic_root

#: The keys of an inspection report, in order.
REPORT_KEYS: tuple[str, ...] = (
    "format", "frames", "missing_images", "labels", "day_frames", "night_frames", "errors",
)

#: Formats whose two images must have the same size (registered pairs).
_ALIGNED_FORMATS = ("kaist", "flir-aligned")


def _error_text(err: Exception) -> str:
    """``file:line: message`` for our exceptions; OS errors as ``file: reason``."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def inspect_root(
    root: str | os.PathLike[str], image_set: str | None = None, decode: bool = False, format: str = "auto"
) -> dict[str, Any]:
    """Inspect a dataset root.

    Args:
        root: a KAIST, FLIR or pairs root (see :func:`rgbt.data.formats.detect_format`).
        image_set: KAIST image set or FLIR split (``None``: everything).
        decode: also decode every existing image (reports undecodable files and, for registered
            layouts, pairs of different sizes).
        format: ``auto`` or a format name.

    Returns:
        a json-ready dict with exactly the keys :data:`REPORT_KEYS`: ``format`` (str), ``frames``
        (int), ``missing_images`` (``{'rgb': n, 'thermal': n}``: frames without that image file),
        ``labels`` (label -> object count, most common first), ``day_frames`` / ``night_frames``
        (int; FLIR and pairs frames are mostly of unknown period), ``errors`` (list of str).

    Raises:
        FileNotFoundError: ``root`` or the image set does not exist.
        ValueError: unknown layout or format.
    """
    kind = detect_format(root) if format == "auto" else format
    errors: list[str] = []
    missing = {"rgb": 0, "thermal": 0}
    labels: Counter[str] = Counter()
    periods: Counter[str] = Counter()
    if kind == "kaist":
        try:
            check_synthetic_root(root)
        except DataFormatError as err:
            errors.append(str(err))
    try:
        source = open_source(root, image_set=image_set, format=kind)
    except DataFormatError as err:
        # A malformed list or annotation file read when opening: nothing more can be checked.
        return _report(kind, 0, missing, labels, periods, [*errors, str(err)])
    if len(source) == 0:
        errors.append(f"{root}: no frame" + (f" in image set {image_set!r}" if image_set else "")
                      + ": there is nothing to train or evaluate on")
    for index in range(len(source)):
        paths = source.image_paths(index)  # type: ignore[attr-defined]
        for modality in missing:
            if paths[modality] is None or not Path(paths[modality]).is_file():
                missing[modality] += 1
        if paths["thermal"] is None or not Path(paths["thermal"]).is_file():
            where = paths["thermal"] if paths["thermal"] is not None else f"{root}: frame {source.frame_ids[index]}"
            errors.append(f"{where}: thermal image missing (the reference modality)")
        # Counted apart from the annotations: a KAIST frame whose file is broken still has a period.
        periods[source.period(index)] += 1
        try:
            labels.update(source.annotations(index).labels)
        except (DataFormatError, OSError) as err:
            errors.append(_error_text(err))
        if decode:
            errors += _decode_errors(paths, kind in _ALIGNED_FORMATS)
    errors += [
        f"{getattr(source, 'annotation_file', '')}: image {name!r} has no file in visible/ or lwir/"
        for name in getattr(source, "unmatched_annotations", [])
    ]
    return _report(kind, len(source), missing, labels, periods, errors)


def _decode_errors(paths: dict[str, Path | None], same_size: bool) -> list[str]:
    errors = []
    images = {}
    for modality, mode in (("rgb", "rgb"), ("thermal", "gray")):
        path = paths.get(modality)
        if path is None or not Path(path).is_file():
            continue
        try:
            images[modality] = read_image(path, mode)
        except DataFormatError as err:
            errors.append(str(err))
    if same_size and len(images) == 2:
        try:
            check_same_size(paths["rgb"], images["rgb"], paths["thermal"], images["thermal"])  # type: ignore[arg-type]
        except DataFormatError as err:
            errors.append(str(err))
    return errors


def _report(
    kind: str, frames: int, missing: dict[str, int], labels: Counter[str], periods: Counter[str], errors: list[str]
) -> dict[str, Any]:
    return {
        "format": kind,
        "frames": frames,
        "missing_images": dict(missing),
        "labels": dict(labels.most_common()),
        "day_frames": periods.get("day", 0),
        "night_frames": periods.get("night", 0),
        "errors": errors,
    }


def format_report(report: dict[str, Any], root: str | os.PathLike[str] = "", max_errors: int = 20) -> str:
    """A readable summary table of an :func:`inspect_root` report (at most ``max_errors`` errors listed)."""
    frames = report["frames"]
    other = frames - report["day_frames"] - report["night_frames"]
    period = f"day {report['day_frames']}, night {report['night_frames']}" + (f", unknown {other}" if other else "")
    missing = ", ".join(f"{m} {n}" for m, n in report["missing_images"].items())
    rows = [
        ("root", str(root)),
        ("format", report["format"]),
        ("frames", f"{frames} ({period})"),
        ("missing images", missing),
        ("objects", str(sum(report["labels"].values()))),
    ]
    rows += [(f"  {label}", str(count)) for label, count in report["labels"].items()]
    rows.append(("errors", str(len(report["errors"]))))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    shown = report["errors"][:max_errors]
    lines += [f"  {error}" for error in shown]
    if len(report["errors"]) > len(shown):
        lines.append(f"  ... {len(report['errors']) - len(shown)} more (write them all with --json)")
    return "\n".join(lines)
