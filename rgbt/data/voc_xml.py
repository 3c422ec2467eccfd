"""Pascal VOC annotation files (FLIR-aligned ``Annotations/FLIR_xxxxx_PreviewData.xml``).

One file per frame::

    <annotation><object><name>person</name><difficult>0</difficult>
      <bndbox><xmin>..</xmin><ymin>..</ymin><xmax>..</xmax><ymax>..</ymax></bndbox></object>...</annotation>

Boxes are ``xmin ymin xmax ymax`` pixels, read as written (already ``xyxy``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from rgbt.data.errors import DataFormatError
from rgbt.data.labels import LabelledObject, canonical_label


def read_voc_xml(path: str | os.PathLike[str]) -> list[LabelledObject]:
    """Read one Pascal VOC annotation file; ``difficult`` = 1 marks an ignore object.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not XML, or an object without a name or with a bad ``bndbox``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file missing")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DataFormatError(path, err.position[0], f"invalid XML: {err}") from None
    out = []
    for number, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DataFormatError(path, None, f"object {number} has no <name>")
        box = obj.find("bndbox")
        if box is None:
            raise DataFormatError(path, None, f"object {number} ({name}) has no <bndbox>")
        values = []
        for key in ("xmin", "ymin", "xmax", "ymax"):
            text = box.findtext(key)
            try:
                values.append(float(text))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise DataFormatError(path, None, f"object {number} ({name}): <{key}> not a number: {text!r}") from None
        x1, y1, x2, y2 = values
        if x2 < x1 or y2 < y1 or not np.isfinite(values).all():
            raise DataFormatError(path, None, f"object {number} ({name}): bad box {x1=} {y1=} {x2=} {y2=}")
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        out.append(LabelledObject(canonical_label(name), (x1, y1, x2, y2), difficult))
    return out
