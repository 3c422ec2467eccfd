"""The exception raised for malformed dataset files, and what every text reader shares: decoding a
file, splitting it into numbered lines and reading a number field.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path


class DataFormatError(ValueError):
    """A dataset file is malformed.

    The message always names the file, the line (when there is one) and the offending value, in
    the ``file:line: message`` form editors and ``rgbt inspect`` understand.
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


#: A decimal number as every released text format writes it: ASCII digits, an optional sign,
#: fraction and exponent. Python's ``float()`` also takes ``1_000``, ``infinity`` and non-ASCII
#: digits; a dataset field holding those is a corrupt file, not a number.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def number_problem(token: str) -> str | None:
    """``'not a number'`` or ``'not finite'`` when ``token`` is not a finite decimal number (see
    :data:`_NUMBER`; ``1e999`` overflows to infinity), else ``None``."""
    if _NUMBER.fullmatch(token) is None:
        return "not finite" if _NON_FINITE.fullmatch(token) is not None else "not a number"
    return None if math.isfinite(float(token)) else "not finite"


def parse_number(token: str, path: str | os.PathLike[str], line: int | None, name: str) -> float:
    """A finite decimal number field, or a :class:`DataFormatError` naming the file, line, field and
    value (see :func:`number_problem`): no annotation or detection field may hold NaN or infinity.
    """
    problem = number_problem(token)
    if problem is not None:
        raise DataFormatError(path, line, f"field {name!r} is {problem}: {token!r}")
    return float(token)


def read_text(path: str | os.PathLike[str]) -> str:
    """The content of a UTF-8 text file (a leading byte-order mark is dropped).

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: the file is not UTF-8 text (naming the file and the byte offset).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        message = f"not a text file (invalid UTF-8 at byte {err.start}: {err.reason})"
        raise DataFormatError(path, None, message) from None


def split_lines(text: str) -> list[str]:
    """The lines of a text file, numbered as editors number them (``lines[0]`` is line 1).

    Only ``\\n`` ends a line (``\\r\\n`` too; the ``\\r`` is dropped): ``str.splitlines`` also splits
    at form feeds and Unicode separators, which would shift every later line number.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
