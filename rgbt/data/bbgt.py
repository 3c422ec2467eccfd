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
from dataclasses import dataclass
from pathlib import Path

from rgbt.atomic import atomic_write_text
from rgbt.data.errors import DataFormatError, parse_number

#: Number of whitespace-separated fields per object line, by bbGt version.
FIELDS_PER_VERSION: dict[int, int] = {0: 10, 1: 10, 2: 11, 3: 12}

_HEADER = re.compile(r"^%\s*bbGt\s+version\s*=\s*(\d+)\s*$")


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


def parse_bbgt(text: str, path: str | os.PathLike[str] = "<string>") -> list[BbGtObject]:
    """Parse the content of a bbGt file.

    Args:
        text: the whole file content.
        path: the file name used in error messages.

    Returns:
        the objects in file order.

    Raises:
        DataFormatError: missing/unknown header, wrong field count, a non-number, a negative size.
    """
    lines = text.splitlines()
    if not lines:
        raise DataFormatError(path, 1, "empty file: expected the header '% bbGt version=3'")
    match = _HEADER.match(lines[0].strip())
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
        names = ("x", "y", "w", "h", "occ", "vx", "vy", "vw", "vh", "ign", "ang")
        values = [parse_number(tok, path, number, name) for tok, name in zip(tokens[1:], names)]
        if values[2] < 0 or values[3] < 0:
            raise DataFormatError(path, number, f"negative box size w={tokens[3]} h={tokens[4]}")
        occ = values[4]
        if occ != int(occ):
            raise DataFormatError(path, number, f"occlusion flag must be an integer, got {tokens[5]!r}")
        objects.append(
            BbGtObject(
                label=tokens[0],
                box=(values[0], values[1], values[2], values[3]),
                occlusion=int(occ),
                visible=(values[5], values[6], values[7], values[8]),
                ignore=int(values[9]) if version >= 2 else 0,
                angle=values[10] if version >= 3 else 0.0,
            )
        )
    return objects


def read_bbgt(path: str | os.PathLike[str]) -> list[BbGtObject]:
    """Read one bbGt annotation file (see :func:`parse_bbgt`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"not a text file ({err})") from None
    return parse_bbgt(text, path)


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
