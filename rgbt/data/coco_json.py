"""COCO detection json files (FLIR ADAS ``thermal_annotations.json`` / ``coco.json``, a pairs root's
``annotations.json``), read by category name.

A file is ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "category_id",
"bbox": [x, y, w, h], "iscrowd"?, "ignore"?}], "categories": [{"id", "name"}]}``; boxes are
``[x, y, w, h]`` with ``(x, y)`` the top-left corner in pixels and are converted to ``xyxy`` here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rgbt.data.errors import DataFormatError
from rgbt.data.labels import LabelledObject, canonical_label


def load_json(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a UTF-8 json file (every json file rgbt reads: COCO annotations and results,
    ``KAIST_annotation.json``, the synthetic-root manifest), with errors that name the file.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not UTF-8 text, or invalid json (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid json: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"not a UTF-8 text file ({err})") from None


@dataclass
class CocoGroundTruth:
    """A COCO detection file, read by category name.

    ``images`` are the raw image entries in file order; ``objects[image_id]`` the objects of one
    image (boxes converted to ``xyxy``); ``categories`` the canonical category names.
    """

    images: list[dict[str, Any]]
    objects: dict[int, list[LabelledObject]]
    categories: list[str]


def read_coco_annotations(path: str | os.PathLike[str]) -> CocoGroundTruth:
    """Read a COCO detection json (``thermal_annotations.json``, ``coco.json``, ``annotations.json``).

    ``iscrowd`` (or an ``ignore`` key) set to 1 marks an object as ignore. Labels come from the
    ``categories`` names (see :func:`~rgbt.data.labels.canonical_label`), never from the ids.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: invalid json, missing keys, unknown image or category id, a bad box.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file missing")
    data = load_json(path)
    if not isinstance(data, dict) or "images" not in data:
        raise DataFormatError(path, None, "expected a COCO json object with 'images', 'annotations', 'categories'")
    if not data.get("categories") and data.get("annotations"):
        raise DataFormatError(path, None, "no 'categories': labels are matched by category name, so names are needed")
    names: dict[int, str] = {}
    for cat in data.get("categories", []):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DataFormatError(path, None, f"a category lacks 'id' or 'name': {json.dumps(cat)[:200]}")
        names[int(cat["id"])] = canonical_label(cat["name"])
    images = []
    objects: dict[int, list[LabelledObject]] = {}
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataFormatError(path, None, f"an image entry lacks 'id' or 'file_name': {json.dumps(image)[:200]}")
        images.append(image)
        objects[int(image["id"])] = []
    for ann in data.get("annotations", []):
        where = f"annotation {ann.get('id')!r}" if isinstance(ann, dict) else "an annotation"
        if not isinstance(ann, dict) or any(key not in ann for key in ("image_id", "category_id", "bbox")):
            raise DataFormatError(path, None, f"{where} lacks 'image_id', 'category_id' or 'bbox'")
        image_id = int(ann["image_id"])
        if image_id not in objects:
            raise DataFormatError(path, None, f"{where} refers to unknown image_id {image_id}")
        category = int(ann["category_id"])
        if category not in names:
            raise DataFormatError(path, None, f"{where} has category_id {category}, not in 'categories'")
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (TypeError, ValueError):
            raise DataFormatError(path, None, f"{where} has a bad bbox {ann['bbox']!r}, not [x, y, w, h]") from None
        if w < 0 or h < 0 or not np.isfinite([x, y, w, h]).all():
            raise DataFormatError(path, None, f"{where} has a negative or non-finite size: {ann['bbox']}")
        ignore = bool(int(ann.get("iscrowd", 0) or 0)) or bool(int(ann.get("ignore", 0) or 0))
        objects[image_id].append(LabelledObject(names[category], (x, y, x + w, y + h), ignore))
    return CocoGroundTruth(images, objects, sorted(set(names.values())))
