"""COCO detection json files (FLIR ADAS ``thermal_annotations.json`` / ``coco.json``, a pairs root's
``annotations.json``), read by category name.

A file is ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "category_id",
"bbox": [x, y, w, h], "iscrowd"?, "ignore"?}], "categories": [{"id", "name"}]}``; boxes are
``[x, y, w, h]`` with ``(x, y)`` the top-left corner in pixels and are converted to ``xyxy`` here.
"""

from __future__ import annotations

import os
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rgbt.data.errors import DataFormatError
from rgbt.data.jsonfields import (
    as_flag,
    as_int,
    as_list,
    as_number,
    as_object,
    as_str,
    as_xywh,
    check_unique,
    get,
    load_json,
)
from rgbt.data.labels import LabelledObject, canonical_label


@dataclass
class CocoGroundTruth:
    """A COCO detection file, read by category name.

    ``images`` are the raw image entries in file order; ``objects[image_id]`` the objects of one
    image (boxes converted to ``xyxy``); ``categories`` the canonical category names.
    """

    images: list[dict[str, Any]]
    objects: dict[int, list[LabelledObject]]
    categories: list[str]


def annotation_entry(entry: Any, k: int, path: str | os.PathLike[str], image_ids: Container[int],
                     names: Container[int]) -> tuple[dict[str, Any], str, int, int]:
    """Entry ``k`` of a COCO-style ``annotations`` list (COCO, FLIR, ``KAIST_annotation.json``), checked.

    Returns:
        ``(annotation, where, image_id, category_id)``: ``where`` names the entry in messages
        (``annotations[3] (id 7)``).

    Raises:
        DataFormatError: not an object, ids that are not integers, an image id not in
            ``image_ids`` or a category id not in ``names``.
    """
    where = f"annotations[{k}]"
    ann = as_object(entry, path, where)
    if isinstance(ann.get("id"), int):
        where += f" (id {ann['id']})"
    image_id = as_int(get(ann, "image_id", path, where), path, f"{where}.image_id")
    if image_id not in image_ids:
        raise DataFormatError(path, None, f"{where} refers to unknown image_id {image_id}")
    category = as_int(get(ann, "category_id", path, where), path, f"{where}.category_id")
    if category not in names:
        raise DataFormatError(path, None, f"{where} has category_id {category}, not in 'categories'")
    return ann, where, image_id, category


def read_coco_annotations(path: str | os.PathLike[str]) -> CocoGroundTruth:
    """Read a COCO detection json (``thermal_annotations.json``, ``coco.json``, ``annotations.json``).

    See :func:`check_coco_annotations` for what is read and refused.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: invalid json or a malformed entry (see :func:`check_coco_annotations`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file missing")
    return check_coco_annotations(load_json(path), path)


def check_coco_annotations(data: Any, path: str | os.PathLike[str]) -> CocoGroundTruth:
    """Check the parsed content of a COCO detection json and read it by category name.

    ``iscrowd`` (or an ``ignore`` key) set to 1 marks an object as ignore. Labels come from the
    ``categories`` names (see :func:`~rgbt.data.labels.canonical_label`), never from the ids.

    Raises:
        DataFormatError: naming the key (``annotations[4].bbox``) and the value: a missing key, a
            wrong type or ``null``; a repeated image or category id; an annotation of an unknown
            image or category; a box outside its domain (:mod:`rgbt.data.domains`); a flag not 0/1.
    """
    top = as_object(data, path, "the top level")
    if "images" not in top:
        raise DataFormatError(path, None, "expected a COCO json object with 'images', 'annotations', 'categories'")
    images = as_list(top["images"], path, "images")
    annotations = as_list(get(top, "annotations", path, "the top level", []), path, "annotations")
    categories = as_list(get(top, "categories", path, "the top level", []), path, "categories")
    if not categories and annotations:
        raise DataFormatError(path, None, "no 'categories': labels are matched by category name, so names are needed")
    names: dict[int, str] = {}
    for k, entry in enumerate(categories):
        where = f"categories[{k}]"
        cat = as_object(entry, path, where)
        cid = as_int(get(cat, "id", path, where), path, f"{where}.id")
        if cid in names:
            raise DataFormatError(path, None, f"{where}.id {cid} is used by another category too")
        names[cid] = canonical_label(as_str(get(cat, "name", path, where), path, f"{where}.name"))
    image_ids = []
    for k, entry in enumerate(images):
        where = f"images[{k}]"
        image = as_object(entry, path, where)
        image_ids.append(as_int(get(image, "id", path, where), path, f"{where}.id"))
        as_str(get(image, "file_name", path, where), path, f"{where}.file_name")
    check_unique(image_ids, path, "images", "id")
    objects: dict[int, list[LabelledObject]] = {image_id: [] for image_id in image_ids}
    for k, entry in enumerate(annotations):
        ann, where, image_id, category = annotation_entry(entry, k, path, objects, names)
        x, y, w, h = as_xywh(get(ann, "bbox", path, where), path, f"{where}.bbox")
        if "area" in ann and as_number(ann["area"], path, f"{where}.area") < 0:
            raise DataFormatError(path, None, f"{where}.area is negative: {ann['area']}")
        ignore = as_flag(get(ann, "iscrowd", path, where, 0), path, f"{where}.iscrowd")
        ignore |= as_flag(get(ann, "ignore", path, where, 0), path, f"{where}.ignore")
        objects[image_id].append(LabelledObject(names[category], (x, y, x + w, y + h), bool(ignore)))
    return CocoGroundTruth([dict(image) for image in images], objects, sorted(set(names.values())))
