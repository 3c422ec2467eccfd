"""COCO average precision (AP, AP50, AP75, per class) through pycocotools, for FLIR.

Categories are matched by *name* (:func:`rgbt.data.labels.canonical_label`: lower case, ``bike`` ->
``bicycle``), never by id, so results whose class numbering differs from the ground-truth file's
are still scored against the right category.

Inputs:

* ground truth: a COCO json path, an already loaded COCO dict, or a list of
  :class:`~rgbt.data.sample.PairSample` (``labels`` are category names, ``ignore`` becomes
  ``iscrowd``; images are numbered 0..N-1 in list order);
* results: a COCO results json path or list of entries (``category_id`` in the ground truth's ids,
  or in ``results_classes`` order when given), or one ``(M, 6)`` array
  ``[x1, y1, x2, y2, score, label]`` per ground-truth image (json ``images`` order) with ``label``
  the 1-based index into ``classes`` (the detector's class numbering: 1 = first class).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rgbt.data.coco_json import check_coco_annotations
from rgbt.data.errors import DataFormatError
from rgbt.data.jsonfields import as_int, as_number, as_object, as_xywh, get, load_json
from rgbt.data.labels import canonical_label
from rgbt.data.sample import PairSample

GroundTruthInput = str | os.PathLike | Mapping[str, Any] | Sequence[PairSample]
ResultsInput = str | os.PathLike | Sequence[Mapping[str, Any]] | Sequence[np.ndarray]

log = logging.getLogger(__name__)


def _samples_to_coco(samples: Sequence[PairSample]) -> dict[str, Any]:
    """A COCO ground-truth dict from annotation records (category ids by first appearance)."""
    names = sorted({canonical_label(label) for s in samples for label in s.labels})
    ids = {name: i + 1 for i, name in enumerate(names)}
    images, annotations = [], []
    for image_id, sample in enumerate(samples):
        entry: dict[str, Any] = {"id": image_id, "file_name": sample.frame_id or str(image_id)}
        if sample.thermal is not None or sample.rgb is not None:
            entry["height"], entry["width"] = sample.size
        images.append(entry)
        for box, label, ignore in zip(sample.boxes.tolist(), sample.labels, sample.ignore.tolist()):
            x1, y1, x2, y2 = box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": ids[canonical_label(label)],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": int(ignore),
            })
    categories = [{"id": i, "name": name} for name, i in ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def _ground_truth_dict(ground_truth: GroundTruthInput) -> tuple[dict[str, Any], str]:
    if isinstance(ground_truth, (str, os.PathLike)):
        data = load_json(ground_truth)
        where = str(ground_truth)
    elif isinstance(ground_truth, Mapping):
        data, where = copy.deepcopy(dict(ground_truth)), "<ground truth>"
    else:
        data, where = _samples_to_coco(list(ground_truth)), "<samples>"
    if not isinstance(data, dict) or "images" not in data or "categories" not in data:
        raise DataFormatError(where, None, "expected a COCO json object with 'images', 'annotations', 'categories'")
    # The same checks as the FLIR reader: pycocotools would take a NaN box, a null id or a repeated
    # image id without a word (or fail with a KeyError).
    check_coco_annotations(data, where)
    data.setdefault("annotations", [])
    for number, ann in enumerate(data["annotations"], start=1):
        # pycocotools indexes annotations by id: a missing or repeated id would fail or merge two
        # objects. The ids mean nothing to the score, so they are renumbered.
        ann["id"] = number
        # pycocotools needs an area and an iscrowd flag; KAIST-style files only say "ignore".
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        ann["iscrowd"] = max(int(ann.get("iscrowd", 0)), int(ann.get("ignore", 0)))
    return data, where


def _results_entries(
    results: ResultsInput,
    image_ids: list[int],
    class_ids: list[int],
    results_classes: Sequence[str] | None,
    name_to_id: dict[str, int],
) -> list[dict[str, Any]]:
    """COCO results entries with category ids of the ground truth."""
    if isinstance(results, (str, os.PathLike)):
        where_file = str(results)
        entries = load_json(results)
        if not isinstance(entries, list):
            raise DataFormatError(where_file, None, "expected a json list of {image_id, category_id, bbox, score}")
    else:
        items = list(results)
        if items and not isinstance(items[0], Mapping):
            return _array_entries(items, image_ids, class_ids)
        where_file, entries = "<results>", [dict(item) for item in items]
    remap: dict[int, int] | None = None
    if results_classes is not None:
        remap = {}
        for k, name in enumerate(results_classes, start=1):
            if canonical_label(name) in name_to_id:
                remap[k] = name_to_id[canonical_label(name)]
    known = set(image_ids)
    out = []
    left_out: Counter[int] = Counter()
    for k, item in enumerate(entries):
        where = f"entry {k}"
        entry = as_object(item, where_file, where)
        image_id = as_int(get(entry, "image_id", where_file, where), where_file, f"{where}: image_id")
        category = as_int(get(entry, "category_id", where_file, where), where_file, f"{where}: category_id")
        bbox = list(as_xywh(get(entry, "bbox", where_file, where), where_file, f"{where}: bbox"))
        score = as_number(get(entry, "score", where_file, where), where_file, f"{where}: score")
        if image_id not in known:
            raise DataFormatError(where_file, None, f"{where}: image_id {image_id} is not an image of the ground truth "
                                  f"({len(known)} images)")
        if remap is not None:
            if category not in remap:
                left_out[category] += 1
                continue
            category = remap[category]
        out.append({"image_id": image_id, "category_id": category, "bbox": bbox, "score": score})
    if left_out:
        log.warning("%s: left out %d entries whose category_id is not in the results classes: %s",
                    where_file, sum(left_out.values()), dict(sorted(left_out.items())))
    return out


def _array_entries(arrays: list, image_ids: list[int], class_ids: list[int]) -> list[dict[str, Any]]:
    if len(arrays) != len(image_ids):
        raise ValueError(f"{len(arrays)} detection arrays for {len(image_ids)} ground-truth images")
    out = []
    for i, (image_id, dets) in enumerate(zip(image_ids, arrays)):
        dets = np.asarray(dets, dtype=np.float64)
        if dets.size == 0:
            continue
        if dets.ndim != 2 or dets.shape[1] != 6:
            raise ValueError(f"detections of image {i} must be (M, 6) [x1, y1, x2, y2, score, label], got {dets.shape}")
        if not np.isfinite(dets).all():
            raise ValueError(f"detections of image {i} hold a NaN or infinite value")
        for x1, y1, x2, y2, score, label in dets.tolist():
            k = int(label)
            if k != label or not 1 <= k <= len(class_ids):
                raise ValueError(f"detections of image {i}: label {label:g} is not in 1..{len(class_ids)}")
            out.append({
                "image_id": image_id, "category_id": class_ids[k - 1],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score,
            })
    return out


def evaluate_coco(
    ground_truth: GroundTruthInput,
    results: ResultsInput,
    classes: Sequence[str] | None = None,
    results_classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """COCO box AP of results against ground truth, over the given classes.

    Args:
        ground_truth: COCO json path/dict, or annotation records (see the module docstring).
        results: results json path/entries, or per-image ``(M, 6)`` arrays (label = 1-based index
            into ``classes``).
        classes: category names to evaluate (e.g. ``['person', 'car', 'bicycle']``); ``None``: every
            ground-truth category. A name absent from the ground truth is an error.
        results_classes: when the results json numbers its categories itself, the name of each
            (``category_id`` k is ``results_classes[k - 1]``); ``None``: ids are the ground truth's.

    Returns:
        ``{'AP', 'AP50', 'AP75'}`` (floats in [0, 1], means over the classes), ``'per_class'``
        ``{name: AP}`` (``nan`` for a class without ground truth), ``'classes'`` and ``'n_images'``.

    Raises:
        DataFormatError: malformed files; ValueError: unknown class names or bad arrays.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data, where = _ground_truth_dict(ground_truth)
    name_to_id = {canonical_label(c["name"]): int(c["id"]) for c in data["categories"]}
    names = [canonical_label(c) for c in classes] if classes is not None else sorted(name_to_id, key=name_to_id.get)
    unknown = [c for c in names if c not in name_to_id]
    if unknown:
        raise ValueError(f"{where}: classes {unknown} are not categories of the ground truth ({sorted(name_to_id)})")
    class_ids = [name_to_id[c] for c in names]
    image_ids = [int(image["id"]) for image in data["images"]]
    entries = _results_entries(results, image_ids, class_ids, results_classes, name_to_id)
    evaluated = [e for e in entries if e["category_id"] in class_ids]
    if len(evaluated) < len(entries):
        # Not an error: a detector may know more classes than are scored (or the ground truth has).
        others = Counter(e["category_id"] for e in entries if e["category_id"] not in class_ids)
        log.info("left out %d detections of categories not evaluated (category_id: count) %s",
                 len(entries) - len(evaluated), dict(sorted(others.items())))
    entries = evaluated

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
        if not entries:
            return _no_detections(gt, names, class_ids, len(image_ids))
        dt = gt.loadRes(entries)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.catIds = class_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # precision: [iou thresholds, recall points, classes, area ranges, max dets]; area 'all', 100 dets.
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    evaluated = list(evaluator.params.catIds)  # pycocotools sorts the ids
    for name, cid in zip(names, class_ids):
        p = precision[:, :, evaluated.index(cid)]
        per_class[name] = float(p[p > -1].mean()) if (p > -1).any() else math.nan
    return {
        "AP": float(evaluator.stats[0]),
        "AP50": float(evaluator.stats[1]),
        "AP75": float(evaluator.stats[2]),
        "per_class": per_class,
        "classes": names,
        "n_images": len(image_ids),
    }


def _no_detections(gt: Any, names: list[str], class_ids: list[int], n_images: int) -> dict[str, Any]:
    """AP 0 for every class with ground truth (pycocotools cannot load an empty result list)."""
    per_class = {}
    for name, cid in zip(names, class_ids):
        has_gt = any(not a.get("iscrowd", 0) for a in gt.loadAnns(gt.getAnnIds(catIds=[cid])))
        per_class[name] = 0.0 if has_gt else math.nan
    valid = [v for v in per_class.values() if not math.isnan(v)]
    ap = 0.0 if valid else -1.0
    return {"AP": ap, "AP50": ap, "AP75": ap, "per_class": per_class, "classes": names, "n_images": n_images}


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of ``{'results': name, **evaluate_coco(...)}`` rows (AP in percent)."""

    def cell(value: float) -> str:
        return "-" if value is None or math.isnan(value) or value < 0 else f"{value * 100:.2f}"

    classes = list(dict.fromkeys(c for row in rows for c in row["classes"]))
    header = ["results", "AP", "AP50", "AP75", *(f"AP {c}" for c in classes)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        cells = [str(row["results"]), cell(row["AP"]), cell(row["AP50"]), cell(row["AP75"])]
        cells += [cell(row["per_class"].get(c, math.nan)) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
