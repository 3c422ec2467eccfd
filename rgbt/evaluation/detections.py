"""Detection result files: read them into per-frame arrays, write them for other tools.

Every reader returns one ``(M, 5)`` float64 array ``[x1, y1, x2, y2, score]`` per frame of the
ground-truth frame list, in list order (``M`` may be 0), in the pixel coordinates of the
ground-truth annotations (thermal frame). Three formats:

* **aggregated txt** (the KAIST/Caltech ``bbGt`` form, what published KAIST results ship as):
  one detection per line, ``idx,x,y,w,h,score`` with ``idx`` 1-based into the image list and
  ``x y w h`` the top-left corner and size; whitespace instead of commas is accepted;
* **per-frame folder** (what the KAIST matlab wrapper ``kaist_eval_full.m`` aggregates): one file
  per frame named ``setXX_VYYY_IZZZZZ.txt`` or ``setXX/VYYY/IZZZZZ.txt``, lines
  ``person x1 y1 x2 y2 score`` (the label is optional) in 0-based pixel coordinates; like the
  wrapper (which writes ``x1 + 1, y1 + 1, x2 - x1, y2 - y1``) the reader adds ``offset = 1`` to
  move them into the 1-based annotation frame. A frame without a file has no detection; files
  of frames outside the list are not read (so a subset of a full result folder can be evaluated);
  a file named after no frame is an error (its detections would be lost without a word);
* **COCO results json**: a list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``;
  ``image_id`` is a ground-truth json image id when those are known (``KAIST_annotation.json``
  numbers its images 0..N-1 in list order), else the 0-based position in the frame list. The
  miss rate reads the ``person`` entries only (:func:`read_detections`).

Malformed input raises :class:`~rgbt.data.errors.DataFormatError` naming the file, the line (the
entry for json) and the value: unreadable lines, wrong field counts, NaN/inf, boxes outside
float32 or with negative sizes (:mod:`rgbt.data.domains`), detections of images that are not in
the list (the message names the ground truth's list too, when known).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.domains import xywh_in_domain, xywh_problem, xyxy_problem
from rgbt.data.errors import DataFormatError, number_problem, parse_number, read_text, split_lines
from rgbt.data.jsonfields import as_int, as_object, get, load_json
from rgbt.data.kaist import parse_frame_id

log = logging.getLogger(__name__)

#: Added to per-frame-folder coordinates (0-based, py-faster-rcnn style) to reach the annotation frame.
FRAME_FOLDER_OFFSET = 1.0


def _split_by_image(image: np.ndarray, rows: np.ndarray, n_images: int) -> list[np.ndarray]:
    """Group ``(D, 5)`` xyxy+score rows by 0-based image index, keeping file order inside a frame."""
    order = np.argsort(image, kind="stable")
    rows = rows[order]
    bounds = np.searchsorted(image[order], np.arange(n_images + 1)).tolist()
    # Plain slicing: np.split's per-piece overhead dominates with thousands of frames.
    return [rows[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]


def _xywh_to_xyxy(xywh_score: np.ndarray) -> np.ndarray:
    out = np.array(xywh_score, dtype=np.float64).reshape(-1, 5)
    out[:, 2] += out[:, 0]
    out[:, 3] += out[:, 1]
    return out


def _list_note(n_images: int, ground_truth: str | None) -> str:
    """What to say when a results file refers to frames the ground truth does not have: the file
    may be fine and the frame list the wrong one, so the message names both."""
    if ground_truth is None:
        return ""
    return f"; the ground truth {ground_truth} has {n_images} frames: are these results for another frame list?"


# --------------------------------------------------------------------------------------------
# aggregated txt
# --------------------------------------------------------------------------------------------

_TXT_FIELDS = ("idx", "x", "y", "w", "h", "score")


def _txt_fields(path: Path, number: int, line: str) -> list[str]:
    """The six fields of one aggregated-txt line (see :func:`read_aggregated_txt`)."""
    if "," in line:
        fields = [field.strip() for field in line.split(",")]
        for k, field in enumerate(fields, start=1):
            if not field:
                raise DataFormatError(path, number, f"field {k} is empty (a trailing or doubled comma): {line!r}")
            if len(field.split()) > 1:
                raise DataFormatError(path, number, f"mixes commas and spaces between fields ({field!r}): {line!r}")
    else:
        fields = line.split()
    if len(fields) != 6:
        raise DataFormatError(path, number, f"expected 6 fields 'idx,x,y,w,h,score', got {len(fields)}: {line!r}")
    return fields


def _parse_txt_line(path: Path, number: int, line: str, n_images: int, ground_truth: str | None) -> list[float]:
    """One aggregated-txt line as ``[idx, x, y, w, h, score]``, or the precise :class:`DataFormatError`."""
    tokens = _txt_fields(path, number, line)
    idx, x, y, w, h, score = (parse_number(token, path, number, name) for token, name in zip(tokens, _TXT_FIELDS))
    if idx != int(idx) or not 1 <= idx <= n_images:
        raise DataFormatError(
            path, number,
            f"image index {tokens[0]!r} is not an image of the list (expected 1..{n_images})"
            + _list_note(n_images, ground_truth),
        )
    problem = xywh_problem((x, y, w, h))
    if problem is not None:
        raise DataFormatError(path, number, problem)
    return [idx, x, y, w, h, score]


def _parse_txt(path: Path, text: str, n_images: int, ground_truth: str | None) -> np.ndarray:
    """The exact (slow) reader: every non-blank line parsed, or the first bad one located."""
    rows = [
        _parse_txt_line(path, number, line, n_images, ground_truth)
        for number, line in enumerate(split_lines(text), start=1)
        if line.strip()
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def _fast_txt(text: str, n_images: int) -> np.ndarray | None:
    """What :func:`_parse_txt` returns, through numpy's C reader, or ``None`` when the text needs the
    exact reader (a line numpy cannot read, or a value outside its domain).

    Where ``np.loadtxt`` reads a line it reads the same numbers the exact grammar does, except the
    non-finite ones, which the domain check sends to the exact reader (checked by the tests).
    """
    delimiter = "," if "," in text else None
    try:
        data = np.loadtxt(io.StringIO(text), delimiter=delimiter, comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        return None
    if data.shape[1] != 6:
        return None
    idx = data[:, 0]
    with np.errstate(invalid="ignore"):
        valid = (
            (idx == np.round(idx)).all()
            and ((idx >= 1) & (idx <= n_images)).all()
            and xywh_in_domain(data[:, 1:5]).all()
            and np.isfinite(data[:, 5]).all()
        )
    return data if valid else None


def read_aggregated_txt(
    path: str | os.PathLike[str], n_images: int, ground_truth: str | None = None
) -> list[np.ndarray]:
    """Read ``idx,x,y,w,h,score`` lines (``idx`` 1-based) into ``n_images`` ``(M, 5)`` xyxy+score arrays.

    Grammar: one detection per line, six plain decimal numbers (no ``nan``, ``inf``, ``1_000``)
    separated by commas (spaces around a comma are fine) or by whitespace; blank and whitespace-only
    lines are skipped; an empty file means no detection at all. ``idx`` is an integer in
    ``1..n_images``; the box is finite float32 with ``w, h >= 0``.

    Args:
        ground_truth: the frame list's file, named in the message when an index is out of range.

    Raises:
        DataFormatError: not UTF-8 text, or a malformed line (file, line and value in the message).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        return [np.zeros((0, 5)) for _ in range(n_images)]
    data = _fast_txt(text, n_images)
    if data is None:
        data = _parse_txt(path, text, n_images, ground_truth)
    return _split_by_image(data[:, 0].astype(np.int64) - 1, _xywh_to_xyxy(data[:, 1:]), n_images)


def format_aggregated_txt(detections: Sequence[np.ndarray], precision: int | None = None) -> str:
    """Aggregated-txt text of per-frame ``(M, 5)`` xyxy+score arrays (``idx`` 1-based, list order).

    Args:
        precision: decimals for the box (scores get ``precision + 4``); ``None`` writes every
            float exactly (``%.17g``) so reading back gives the same evaluation.
    """
    rows = []
    for i, dets in enumerate(detections, start=1):
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
        xywh = dets.copy()
        xywh[:, 2:4] -= xywh[:, 0:2]
        rows.append(np.column_stack([np.full(len(dets), i), xywh]))
    data = np.concatenate(rows) if rows else np.zeros((0, 6))
    if precision is None:
        box, score = "%.17g", "%.17g"
    else:
        box, score = f"%.{precision}f", f"%.{precision + 4}f"
    out = io.StringIO()
    np.savetxt(out, data, fmt=["%d", box, box, box, box, score], delimiter=",")
    return out.getvalue()


def write_aggregated_txt(
    path: str | os.PathLike[str], detections: Sequence[np.ndarray], precision: int | None = None
) -> Path:
    """Write per-frame detections as an aggregated txt (atomically); see :func:`format_aggregated_txt`."""
    return atomic_write_text(path, format_aggregated_txt(detections, precision))


# --------------------------------------------------------------------------------------------
# per-frame folder
# --------------------------------------------------------------------------------------------


#: Label a per-frame line may start with: the miss rate scores persons only.
FRAME_FILE_LABEL = "person"

#: How many offending file names an error message lists.
_SHOWN = 5


def _read_frame_file(path: Path, offset: float) -> np.ndarray:
    """One per-frame file's ``[label] x1 y1 x2 y2 score`` lines as ``(M, 5)`` rows, ``offset`` added."""
    rows = []
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 6:
            if tokens[0] != FRAME_FILE_LABEL:
                raise DataFormatError(path, number, f"label {tokens[0]!r} is not {FRAME_FILE_LABEL!r} "
                                      "(the miss rate scores persons; write only person detections)")
            tokens = tokens[1:]
        elif len(tokens) != 5 or number_problem(tokens[0]) is not None:
            raise DataFormatError(path, number, f"expected 'person x1 y1 x2 y2 score', got {line.strip()!r}")
        values = [parse_number(token, path, number, name)
                  for name, token in zip(("x1", "y1", "x2", "y2", "score"), tokens)]
        problem = xyxy_problem([v + offset for v in values[:4]])
        if problem is not None:
            raise DataFormatError(path, number, problem)
        rows.append(values)
    out = np.array(rows, dtype=np.float64).reshape(-1, 5)
    out[:, :4] += offset
    return out


def _frame_files(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Every file under ``folder`` by the frame it names, and the files that name no frame.

    Hidden files (``.DS_Store``) are not results and are left out. A file of the result folder
    whose name is not ``setXX_VYYY_IZZZZZ.txt`` / ``setXX/VYYY/IZZZZZ.txt`` is an error, not skipped:
    a misnamed file would otherwise take its detections out of the evaluation without a word.

    Raises:
        DataFormatError: two files for the same frame.
    """
    named: dict[str, Path] = {}
    misnamed: list[Path] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        try:
            frame = str(parse_frame_id(relative.as_posix())) if path.suffix == ".txt" else None
        except ValueError:
            frame = None
        if frame is None:
            misnamed.append(path)
        elif frame in named:
            raise DataFormatError(path, None, f"second detection file for frame {frame} (first: {named[frame]})")
        else:
            named[frame] = path
    return named, misnamed


def read_frame_folder(
    folder: str | os.PathLike[str],
    frame_ids: Sequence[str],
    offset: float = FRAME_FOLDER_OFFSET,
    ground_truth: str | None = None,
) -> list[np.ndarray]:
    """Read a KAIST per-frame result folder (see the module docstring) for the given frames.

    Every (non-hidden) file must be named after a frame; files of frames outside ``frame_ids`` are
    not read, so a subset of a full result folder can be evaluated. Lines are ``[person] x1 y1 x2 y2
    score`` (plain decimals; the label, when present, is ``person``); blank lines are skipped.

    Args:
        folder: holds ``setXX_VYYY_IZZZZZ.txt`` files, or ``setXX/VYYY/IZZZZZ.txt``, or both.
        frame_ids: the ground-truth frame list (``setXX/VYYY/IZZZZZ``).
        offset: added to every coordinate (1 = the KAIST wrapper's 0-based -> 1-based shift).
        ground_truth: the frame list's file, named when no file belongs to a listed frame.

    Raises:
        DataFormatError: a file named after no frame (a few are listed), a malformed line, or two
            files for the same frame.
        FileNotFoundError: the folder does not exist or no file in it belongs to a listed frame.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"detection folder not found: {folder}")
    named, misnamed = _frame_files(folder)
    if misnamed:
        shown = ", ".join(str(p.relative_to(folder)) for p in misnamed[:_SHOWN])
        more = f" and {len(misnamed) - _SHOWN} more" if len(misnamed) > _SHOWN else ""
        raise DataFormatError(
            folder, None,
            f"{len(misnamed)} files are not named after a KAIST frame (expected setXX_VYYY_IZZZZZ.txt or "
            f"setXX/VYYY/IZZZZZ.txt): {shown}{more}",
        )
    wanted = [str(parse_frame_id(f)) for f in frame_ids]
    files = {i: named[frame] for i, frame in enumerate(wanted) if frame in named}
    if frame_ids and not files:
        listed = f" of {ground_truth}" if ground_truth else ""
        raise FileNotFoundError(
            f"{folder}: no detection file for any of the {len(frame_ids)} frames{listed} "
            f"({len(named)} files of other frames; expected setXX_VYYY_IZZZZZ.txt or setXX/VYYY/IZZZZZ.txt)"
        )
    empty = np.zeros((0, 5))
    return [_read_frame_file(files[i], offset) if i in files else empty.copy() for i in range(len(frame_ids))]


# --------------------------------------------------------------------------------------------
# COCO results json
# --------------------------------------------------------------------------------------------

#: The KAIST ``person`` category id (``KAIST_annotation.json``, ``rgbt detect --format coco``).
PERSON_CATEGORY = 1

_NUMBER_TYPES = (int, float)


def _check_coco_entry(
    path: Path, k: int, entry: object, index: dict[int, int], n_images: int, ground_truth: str | None
) -> None:
    """Validate one results entry, raising the precise :class:`DataFormatError`."""
    where = f"entry {k}"
    record = as_object(entry, path, where)
    for key in ("image_id", "bbox", "score"):
        if key not in record:
            raise DataFormatError(path, None, f"{where}: missing key {key!r}: {json.dumps(record)[:200]}")
    image_id = record["image_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, _NUMBER_TYPES) or not math.isfinite(image_id) \
            or image_id != int(image_id):
        raise DataFormatError(path, None, f"{where}: image_id is not an integer: {image_id!r}")
    if int(image_id) not in index:
        raise DataFormatError(path, None, f"{where}: image_id {image_id!r} is not an image of the ground truth"
                              + _list_note(n_images, ground_truth))
    bbox = record["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DataFormatError(path, None, f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
    for name, value in zip(("x", "y", "w", "h", "score"), (*bbox, record["score"])):
        if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES) or not math.isfinite(value):
            raise DataFormatError(path, None, f"{where}: {name} is not a finite number: {value!r}")
    problem = xywh_problem(bbox)
    if problem is not None:
        raise DataFormatError(path, None, f"{where}: {problem}")


def _fast_coco(
    entries: list, index: dict[int, int], category_id: int | None
) -> tuple[np.ndarray, np.ndarray, Counter[int]] | None:
    """For well-formed entries: the frame positions ``(D,)`` and ``[x, y, w, h, score]`` rows ``(D, 5)``
    of those of ``category_id`` (all when ``None``) and the count of the others by category; ``None``
    when some entry needs the precise checks (a plain loop: numpy would turn ``true`` and ``"5"`` into
    numbers)."""
    numbers = _NUMBER_TYPES
    images, rows = [], []
    others: Counter[int] = Counter()
    for entry in entries:
        if type(entry) is not dict:
            return None
        if category_id is not None:
            category = entry.get("category_id")
            if type(category) not in numbers or not math.isfinite(category) or category != int(category):
                return None
            if category != category_id:
                others[int(category)] += 1
                continue
        image_id, bbox, score = entry.get("image_id"), entry.get("bbox"), entry.get("score")
        if type(bbox) is not list or len(bbox) != 4:
            return None
        x, y, w, h = bbox
        if not (type(image_id) in numbers and type(score) in numbers and type(x) in numbers and type(y) in numbers
                and type(w) in numbers and type(h) in numbers):
            return None
        position = index.get(image_id)
        if position is None:
            return None
        images.append(position)
        rows.append([x, y, w, h, score])
    data = np.array(rows, dtype=np.float64).reshape(-1, 5)
    if not (xywh_in_domain(data[:, :4]).all() and np.isfinite(data[:, 4]).all()):
        return None
    return np.array(images, dtype=np.int64), data, others


def _locate_coco_error(
    path: Path, entries: list, index: dict[int, int], category_id: int | None, n_images: int,
    ground_truth: str | None,
) -> None:
    """Raise the precise :class:`DataFormatError` of the first bad entry (numbered as in the file)."""
    for k, entry in enumerate(entries):
        if category_id is not None:
            record = as_object(entry, path, f"entry {k}")
            category = as_int(get(record, "category_id", path, f"entry {k}"), path, f"entry {k}: category_id")
            if category != category_id:
                continue
        _check_coco_entry(path, k, entry, index, n_images, ground_truth)


def _report_categories(path: Path, kept: int, others: Counter[int], category_id: int) -> None:
    """Log how many entries of other categories were left out; none of ``category_id`` at all means
    the file numbers its categories otherwise, which is an error (nothing is guessed)."""
    if not others:
        return
    found = dict(sorted(others.items()))
    if not kept:
        raise DataFormatError(
            path, None, f"none of the {sum(others.values())} entries has category_id {category_id} (person); "
            f"categories found (category_id: count): {found}. Write person detections with category_id "
            f"{category_id}",
        )
    log.warning("%s: scoring the %d detections of category_id %d (person); left out %d of other categories "
                "(category_id: count) %s", path, kept, category_id, sum(others.values()), found)


def read_coco_results(
    path: str | os.PathLike[str],
    n_images: int,
    image_ids: Sequence[int] | None = None,
    category_id: int | None = None,
    ground_truth: str | None = None,
) -> list[np.ndarray]:
    """Read a COCO results json into ``n_images`` ``(M, 5)`` xyxy+score arrays.

    Args:
        n_images: length of the ground-truth frame list.
        image_ids: json image id of each frame (ground truth given as json); ``None``: an
            ``image_id`` is the 0-based frame position. Image id 0 is a valid id.
        category_id: keep only entries of this category, logging how many others were left out
            (an entry without an integer ``category_id`` is then an error, and so is a file in which
            no entry has it); ``None`` keeps every entry.
        ground_truth: the frame list's file, named when an image id is not in it.

    Raises:
        DataFormatError: invalid json, a malformed entry, or an image id not in the ground truth.
    """
    path = Path(path)
    data = load_json(path)
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise DataFormatError(path, None, "expected a json list of {image_id, category_id, bbox, score}")
    ids = list(range(n_images)) if image_ids is None else [int(i) for i in image_ids]
    index = {image_id: position for position, image_id in enumerate(ids)}
    parsed = _fast_coco(data, index, category_id)
    if parsed is None:
        _locate_coco_error(path, data, index, category_id, n_images, ground_truth)
        raise DataFormatError(path, None, "inconsistent results file")
    image, rows, others = parsed
    if category_id is not None:
        _report_categories(path, len(rows), others, category_id)
    return _split_by_image(image, _xywh_to_xyxy(rows), n_images)


def coco_results(
    detections: Sequence[np.ndarray], image_ids: Sequence[int] | None = None, category_id: int = 1
) -> list[dict]:
    """COCO results entries of per-frame ``(M, 5)`` xyxy+score arrays (``bbox`` as ``[x, y, w, h]``).

    Args:
        image_ids: json image id of each frame; ``None`` numbers the frames 0..N-1.
        category_id: the category written on every entry (KAIST ``person`` is 1).
    """
    ids = list(range(len(detections))) if image_ids is None else list(image_ids)
    if len(ids) != len(detections):
        raise ValueError(f"{len(ids)} image ids for {len(detections)} detection arrays")
    out = []
    for image_id, dets in zip(ids, detections):
        for x1, y1, x2, y2, score in np.asarray(dets, dtype=np.float64).reshape(-1, 5).tolist():
            out.append({
                "image_id": int(image_id), "category_id": category_id,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score,
            })
    return out


def write_coco_results(
    path: str | os.PathLike[str],
    detections: Sequence[np.ndarray],
    image_ids: Sequence[int] | None = None,
    category_id: int | None = 1,
) -> Path:
    """Write per-frame detections as a COCO results json (atomically); see :func:`coco_results`.

    Args:
        detections: per frame ``(M, 5)`` xyxy+score rows, all of ``category_id``; with
            ``category_id=None``, ``(M, 6)`` rows ``[x1, y1, x2, y2, score, label]`` whose label is
            the category id (what :meth:`rgbt.engine.inference.FusionDetector.predict` returns, 1-based
            class indices), written category by category in ascending id, frames in order.
        image_ids: json image id of each frame; ``None`` numbers the frames 0..N-1.
        category_id: the category of every row, or ``None`` (see ``detections``).

    Raises:
        ValueError: with ``category_id=None``, a frame whose rows are not ``(M, 6)``.
    """
    if category_id is not None:
        entries = coco_results(detections, image_ids, category_id)
    else:
        labelled = [np.asarray(rows, dtype=np.float64) for rows in detections]
        for i, rows in enumerate(labelled):
            if rows.ndim != 2 or rows.shape[1] != 6:
                raise ValueError(f"frame {i}: expected (M, 6) [x1, y1, x2, y2, score, label] rows, got {rows.shape}")
        labels = np.unique(np.concatenate([rows[:, 5] for rows in labelled])) if labelled else []
        entries = []
        for label in labels:
            per_class = [rows[rows[:, 5] == label, :5] for rows in labelled]
            entries += coco_results(per_class, image_ids, category_id=int(label))
    return atomic_write_text(path, json.dumps(entries) + "\n")


# --------------------------------------------------------------------------------------------
# any of the above
# --------------------------------------------------------------------------------------------


def read_detections(
    path: str | os.PathLike[str],
    frame_ids: Sequence[str],
    image_ids: Sequence[int] | None = None,
    frame_offset: float = FRAME_FOLDER_OFFSET,
    ground_truth: str | None = None,
    person_category: int = PERSON_CATEGORY,
) -> list[np.ndarray]:
    """Read the person detections of a results file in any supported form: a folder (per-frame
    files), ``*.json`` (COCO results) or anything else (aggregated txt).

    Args:
        frame_ids: the ground-truth frame list the results refer to.
        image_ids: json image ids of those frames when the ground truth is a json.
        frame_offset: coordinate offset of per-frame folders (see :func:`read_frame_folder`).
        ground_truth: the frame list's file, named in the message when results refer to frames it lacks.
        person_category: the ``category_id`` of persons in a COCO results json: only those entries
            are scored, and how many others were left out is logged (see :func:`read_coco_results`).
    """
    path = Path(path)
    if path.is_dir():
        return read_frame_folder(path, frame_ids, frame_offset, ground_truth)
    if not path.is_file():
        raise FileNotFoundError(f"detection results not found: {path}")
    if path.suffix.lower() == ".json":
        return read_coco_results(path, len(frame_ids), image_ids, person_category, ground_truth)
    return read_aggregated_txt(path, len(frame_ids), ground_truth)
