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
* **COCO results json**: a list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``;
  ``image_id`` is a ground-truth json image id when those are known (``KAIST_annotation.json``
  numbers its images 0..N-1 in list order), else the 0-based position in the frame list.

Malformed input raises :class:`~rgbt.data.errors.DataFormatError` naming the file, the line (the
entry for json) and the value: unreadable lines, wrong field counts, NaN/inf, negative sizes,
detections of images that are not in the list.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.errors import DataFormatError, parse_number
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


# --------------------------------------------------------------------------------------------
# aggregated txt
# --------------------------------------------------------------------------------------------


def _check_txt_line(path: Path, number: int, line: str, n_images: int) -> None:
    """Validate one aggregated-txt line, raising the precise :class:`DataFormatError`."""
    tokens = line.replace(",", " ").split()
    if len(tokens) != 6:
        raise DataFormatError(path, number, f"expected 6 fields 'idx,x,y,w,h,score', got {len(tokens)}: {line!r}")
    values = []
    for name, token in zip(("idx", "x", "y", "w", "h", "score"), tokens):
        values.append(parse_number(token, path, number, name))
    idx, _x, _y, w, h, _score = values
    if idx != int(idx) or not 1 <= idx <= n_images:
        raise DataFormatError(
            path, number, f"image index {tokens[0]!r} is not an image of the list (expected 1..{n_images})"
        )
    if w < 0 or h < 0:
        raise DataFormatError(path, number, f"negative box size w={tokens[3]} h={tokens[4]}")


def _locate_txt_error(path: Path, text: str, n_images: int) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            _check_txt_line(path, number, line, n_images)


def read_aggregated_txt(path: str | os.PathLike[str], n_images: int) -> list[np.ndarray]:
    """Read ``idx,x,y,w,h,score`` lines (``idx`` 1-based) into ``n_images`` ``(M, 5)`` xyxy+score arrays.

    Blank lines are skipped; an empty file means no detection at all.

    Raises:
        DataFormatError: a malformed line (file, line and value in the message).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        return [np.zeros((0, 5)) for _ in range(n_images)]
    first = stripped.split("\n", 1)[0]
    delimiter = "," if "," in first else None
    try:
        # numpy's C reader is the fastest exact parser at hand; errors are re-located line by line.
        data = np.loadtxt(io.StringIO(text), delimiter=delimiter, comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        _locate_txt_error(path, text, n_images)
        raise DataFormatError(path, None, "unreadable detection file") from None
    idx = data[:, 0] if data.shape[1] == 6 else None
    valid = (
        idx is not None
        and np.isfinite(data).all()
        and (idx == np.round(idx)).all()
        and ((idx >= 1) & (idx <= n_images)).all()
        and (data[:, 3:5] >= 0).all()
    )
    if not valid:
        _locate_txt_error(path, text, n_images)
        raise DataFormatError(path, None, "inconsistent detection file")
    return _split_by_image(idx.astype(np.int64) - 1, _xywh_to_xyxy(data[:, 1:]), n_images)


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


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_frame_file(path: Path, offset: float) -> np.ndarray:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 6:
            tokens = tokens[1:]
        elif len(tokens) == 5 and not _is_number(tokens[0]):
            tokens = []
        if len(tokens) != 5:
            raise DataFormatError(path, number, f"expected 'person x1 y1 x2 y2 score', got {line.strip()!r}")
        values = []
        for name, token in zip(("x1", "y1", "x2", "y2", "score"), tokens):
            values.append(parse_number(token, path, number, name))
        if values[2] < values[0] or values[3] < values[1]:
            raise DataFormatError(path, number, f"negative box size: x1={tokens[0]} y1={tokens[1]} x2={tokens[2]} "
                                  f"y2={tokens[3]}")
        rows.append(values)
    out = np.array(rows, dtype=np.float64).reshape(-1, 5)
    out[:, :4] += offset
    return out


def read_frame_folder(
    folder: str | os.PathLike[str], frame_ids: Sequence[str], offset: float = FRAME_FOLDER_OFFSET
) -> list[np.ndarray]:
    """Read a KAIST per-frame result folder (see the module docstring) for the given frames.

    Args:
        folder: holds ``setXX_VYYY_IZZZZZ.txt`` files, or ``setXX/VYYY/IZZZZZ.txt``, or both.
        frame_ids: the ground-truth frame list (``setXX/VYYY/IZZZZZ``).
        offset: added to every coordinate (1 = the KAIST wrapper's 0-based -> 1-based shift).

    Raises:
        DataFormatError: a malformed line, or two files for the same frame.
        FileNotFoundError: the folder does not exist or no file in it belongs to a listed frame.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"detection folder not found: {folder}")
    wanted = {str(parse_frame_id(f)): i for i, f in enumerate(frame_ids)}
    files: dict[int, Path] = {}
    for path in sorted(folder.rglob("*.txt")):
        try:
            frame = str(parse_frame_id(path.relative_to(folder).as_posix()))
        except ValueError:
            log.debug("skipping %s: not a KAIST frame name", path)
            continue
        index = wanted.get(frame)
        if index is None:
            continue
        if index in files:
            raise DataFormatError(path, None, f"second detection file for frame {frame} (first: {files[index]})")
        files[index] = path
    if frame_ids and not files:
        raise FileNotFoundError(
            f"{folder}: no detection file for any of the {len(frame_ids)} frames "
            "(expected setXX_VYYY_IZZZZZ.txt or setXX/VYYY/IZZZZZ.txt)"
        )
    empty = np.zeros((0, 5))
    return [_read_frame_file(files[i], offset) if i in files else empty.copy() for i in range(len(frame_ids))]


# --------------------------------------------------------------------------------------------
# COCO results json
# --------------------------------------------------------------------------------------------


def _check_coco_entry(path: Path, k: int, entry: object, index: dict[int, int]) -> None:
    """Validate one results entry, raising the precise :class:`DataFormatError`."""
    where = f"entry {k}"
    if not isinstance(entry, dict):
        raise DataFormatError(path, None, f"{where}: expected an object, got {json.dumps(entry)[:100]}")
    for key in ("image_id", "bbox", "score"):
        if key not in entry:
            raise DataFormatError(path, None, f"{where}: missing key {key!r}: {json.dumps(entry)[:200]}")
    image_id = entry["image_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, float)) or image_id != int(image_id):
        raise DataFormatError(path, None, f"{where}: image_id is not an integer: {image_id!r}")
    if int(image_id) not in index:
        raise DataFormatError(path, None, f"{where}: image_id {image_id!r} is not an image of the ground truth")
    bbox = entry["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DataFormatError(path, None, f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
    for name, value in zip(("x", "y", "w", "h", "score"), (*bbox, entry["score"])):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataFormatError(path, None, f"{where}: {name} is not a finite number: {value!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise DataFormatError(path, None, f"{where}: negative box size w={bbox[2]} h={bbox[3]}")


def _same_category(value: object, category_id: int) -> bool:
    try:
        return float(value) == category_id  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def read_coco_results(
    path: str | os.PathLike[str],
    n_images: int,
    image_ids: Sequence[int] | None = None,
    category_id: int | None = None,
) -> list[np.ndarray]:
    """Read a COCO results json into ``n_images`` ``(M, 5)`` xyxy+score arrays.

    Args:
        n_images: length of the ground-truth frame list.
        image_ids: json image id of each frame (ground truth given as json); ``None``: an
            ``image_id`` is the 0-based frame position. Image id 0 is a valid id.
        category_id: keep only entries of this category; ``None`` keeps all (KAIST results hold
            only ``person``).

    Raises:
        DataFormatError: invalid json, a malformed entry, or an image id not in the ground truth.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid json: {err.msg}") from None
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise DataFormatError(path, None, "expected a json list of {image_id, category_id, bbox, score}")
    ids = list(range(n_images)) if image_ids is None else [int(i) for i in image_ids]
    index = {image_id: position for position, image_id in enumerate(ids)}
    if category_id is not None:
        data = [e for e in data if not isinstance(e, dict) or _same_category(e.get("category_id"), category_id)]
    try:
        image = np.array([index[int(e["image_id"])] for e in data], dtype=np.int64)
        rows = np.array([[*e["bbox"], e["score"]] for e in data], dtype=np.float64).reshape(-1, 5)
        ok = (
            np.isfinite(rows).all()
            and (rows[:, 2:4] >= 0).all()
            and all(float(e["image_id"]) == int(e["image_id"]) for e in data)
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        for k, entry in enumerate(data):
            _check_coco_entry(path, k, entry, index)
        raise DataFormatError(path, None, "inconsistent results file")
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
) -> list[np.ndarray]:
    """Read detections in any supported form: a folder (per-frame files), ``*.json`` (COCO
    results) or anything else (aggregated txt).

    Args:
        frame_ids: the ground-truth frame list the results refer to.
        image_ids: json image ids of those frames when the ground truth is a json.
        frame_offset: coordinate offset of per-frame folders (see :func:`read_frame_folder`).
    """
    path = Path(path)
    if path.is_dir():
        return read_frame_folder(path, frame_ids, frame_offset)
    if not path.is_file():
        raise FileNotFoundError(f"detection results not found: {path}")
    if path.suffix.lower() == ".json":
        return read_coco_results(path, len(frame_ids), image_ids)
    return read_aggregated_txt(path, len(frame_ids))
