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

from rgbt.data.domains import xyxy_problem
from rgbt.data.errors import DataFormatError, number_problem
from rgbt.data.labels import LabelledObject, canonical_label


def read_voc_xml(path: str | os.PathLike[str]) -> list[LabelledObject]:
    """Read one Pascal VOC annotation file; ``difficult`` = 1 marks an ignore object.

    Every ``<object>`` needs a non-empty ``<name>`` and a ``<bndbox>`` whose ``xmin ymin xmax ymax``
    are plain decimal numbers (no ``nan``, ``inf``, ``1_0``), finite float32, with ``xmax >= xmin``
    and ``ymax >= ymin``; ``<difficult>`` (optional) is 0 or 1.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not XML (naming the line), or an object breaking a rule above (naming the
            object, the element and the value).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file missing")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DataFormatError(path, err.position[0], f"invalid XML: {err}") from None
    except (ValueError, LookupError) as err:
        # expat reports an unknown or impossible encoding declaration this way
        raise DataFormatError(path, None, f"invalid XML: {err}") from None
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
            if text is None:
                raise DataFormatError(path, None, f"object {number} ({name}): <bndbox> has no <{key}>")
            problem = number_problem(text.strip())
            if problem is not None:
                raise DataFormatError(path, None, f"object {number} ({name}): <{key}> {problem}: {text!r}")
            values.append(float(text))
        problem = xyxy_problem(values, ("xmin", "ymin", "xmax", "ymax"))
        if problem is not None:
            raise DataFormatError(path, None, f"object {number} ({name}): <bndbox> {problem}")
        difficult = (obj.findtext("difficult") or "0").strip()
        if difficult not in ("0", "1"):
            raise DataFormatError(path, None, f"object {number} ({name}): <difficult> must be 0 or 1, "
                                  f"got {difficult!r}")
        x1, y1, x2, y2 = values
        out.append(LabelledObject(canonical_label(name), (x1, y1, x2, y2), difficult == "1"))
    return out
