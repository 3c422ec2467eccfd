"""Piotr Dollar's bbGt annotation text format (the KAIST ground-truth format).

A file starts with the header ``% bbGt version=V`` and holds one object per line::

    label x y w h occ vx vy vw vh [ign [ang]]

``x y w h`` is the box (top-left corner, width, height, pixels); ``occ`` is the occlusion flag
(KAIST: 0 none, 1 partial, 2 heavy); ``vx vy vw vh`` the visible part; ``ign`` an ignore flag and
``ang`` an orientation. Versions 0 and 1 have 10 fields, version 2 adds ``ign`` (11) and
version 3 adds ``ang`` (12). A file with the header and no objects is valid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rgbt.atomic import atomic_write_text
from rgbt.data.domains import FLAG_VALUES, KAIST_LABELS, OCCLUSION_LEVELS, xywh_problem
from rgbt.data.errors import DataFormatError, parse_number, read_text, split_lines

#: Number of whitespace-separated fields per object line, by bbGt version.
FIELDS_PER_VERSION: dict[int, int] = {0: 10, 1: 10, 2: 11, 3: 12}

_HEADER = re.compile(r"%[ \t]*bbGt[ \t]+version[ \t]*=[ \t]*([0-9]+)")


@dataclass(frozen=True)
class BbGtObject:
    """One annotated object, exactly as a bbGt line holds it.

    ``box`` and ``visible`` are ``(x, y, w, h)`` with ``(x, y)`` the top-left corner in pixels.
    """

    label: str
    box: tuple[float, float, float, float]
    occlusion: int = 0
    visible: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    ignore: int = 0
    angle: float = 0.0

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3]


#: Field names after the label, in file order.
FIELD_NAMES: tuple[str, ...] = ("x", "y", "w", "h", "occ", "vx", "vy", "vw", "vh", "ign", "ang")


def _flag(value: float, token: str, allowed: tuple[int, ...], what: str, path: str | os.PathLike[str],
          line: int) -> int:
    if value not in allowed:
        raise DataFormatError(path, line, f"{what} must be one of {list(allowed)}, got {token!r}")
    return int(value)


def parse_bbgt(
    text: str, path: str | os.PathLike[str] = "<string>", labels: Sequence[str] | None = KAIST_LABELS
) -> list[BbGtObject]:
    """Parse the content of a bbGt file.

    Rules (:mod:`rgbt.data.domains`): line 1 is the header ``% bbGt version=V`` with ``V`` in 0-3;
    later lines starting with ``%`` are comments and blank (or whitespace-only) lines are skipped;
    an object line has exactly the version's field count, separated by spaces or tabs; numbers are
    plain decimals (no ``1_000``, ``nan``, ``inf``); ``x y w h`` and ``vx vy vw vh`` are finite
    float32 boxes with non-negative sizes; ``occ`` is 0, 1 or 2; ``ign`` is 0 or 1; ``ang`` is finite;
    the label is one of ``labels``.

    Args:
        text: the whole file content.
        path: the file name used in error messages.
        labels: the labels an object may have (default: the KAIST ones); ``None`` accepts any.

    Returns:
        the objects in file order.

    Raises:
        DataFormatError: the first line breaking a rule, with its number and the offending value.
    """
    lines = split_lines(text)
    if not lines:
        raise DataFormatError(path, 1, "empty file: expected the header '% bbGt version=3'")
    match = _HEADER.fullmatch(lines[0].strip())
    if match is None:
        raise DataFormatError(path, 1, f"expected a header like '% bbGt version=3', got {lines[0]!r}")
    version = int(match.group(1))
    if version not in FIELDS_PER_VERSION:
        raise DataFormatError(path, 1, f"unsupported bbGt version {version} (known: 0-3)")
    n_fields = FIELDS_PER_VERSION[version]
    objects = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        tokens = line.split()
        if len(tokens) != n_fields:
            raise DataFormatError(
                path, number, f"bbGt version {version} needs {n_fields} fields, got {len(tokens)}: {line!r}"
            )
        if labels is not None and tokens[0] not in labels:
            raise DataFormatError(path, number, f"unknown label {tokens[0]!r} (expected one of {list(labels)})")
        values = [parse_number(tok, path, number, name) for tok, name in zip(tokens[1:], FIELD_NAMES)]
        for box, names in ((values[0:4], FIELD_NAMES[0:4]), (values[5:9], FIELD_NAMES[5:9])):
            problem = xywh_problem(box, names)
            if problem is not None:
                raise DataFormatError(path, number, problem)
        occlusion = _flag(values[4], tokens[5], OCCLUSION_LEVELS, "occlusion flag 'occ'", path, number)
        ignore = _flag(values[9], tokens[10], FLAG_VALUES, "ignore flag 'ign'", path, number) if version >= 2 else 0
        objects.append(
            BbGtObject(
                label=tokens[0],
                box=(values[0], values[1], values[2], values[3]),
                occlusion=occlusion,
                visible=(values[5], values[6], values[7], values[8]),
                ignore=ignore,
                angle=values[10] if version >= 3 else 0.0,
            )
        )
    return objects


def read_bbgt(path: str | os.PathLike[str], labels: Sequence[str] | None = KAIST_LABELS) -> list[BbGtObject]:
    """Read one bbGt annotation file (UTF-8; see :func:`parse_bbgt`).

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not UTF-8 text, or a line breaking a rule of :func:`parse_bbgt`.
    """
    return parse_bbgt(read_text(path), path, labels)


def _fmt(value: float) -> str:
    """Integers without a decimal point (as the KAIST release writes them), others in full."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_bbgt(objects: list[BbGtObject], version: int = 3) -> str:
    """Serialise objects as bbGt text of the given version (lossless for version 3)."""
    if version not in FIELDS_PER_VERSION:
        raise ValueError(f"unsupported bbGt version {version} (known: 0-3)")
    out = [f"% bbGt version={version}"]
    for obj in objects:
        if not obj.label or any(ch.isspace() for ch in obj.label):
            raise ValueError(f"bbGt labels cannot be empty or contain spaces: {obj.label!r}")
        fields = [obj.label, *map(_fmt, obj.box), str(int(obj.occlusion)), *map(_fmt, obj.visible)]
        if version >= 2:
            fields.append(str(int(obj.ignore)))
        if version >= 3:
            fields.append(_fmt(obj.angle))
        out.append(" ".join(fields))
    return "\n".join(out) + "\n"


def write_bbgt(path: str | os.PathLike[str], objects: list[BbGtObject], version: int = 3) -> None:
    """Write a bbGt file (UTF-8, see :func:`format_bbgt`), creating parent folders.

    The write is atomic: an interrupted writer (e.g. a killed synthetic-root generator) leaves the
    old file or the whole new one, never a truncated annotation.
    """
    atomic_write_text(path, format_bbgt(objects, version))
