"""The exception raised for malformed dataset files, and the number check every text reader shares."""

from __future__ import annotations

import math
from os import PathLike


class DataFormatError(ValueError):
    """A dataset file is malformed.

    The message always names the file, the line (when there is one) and the offending value, in
    the ``file:line: message`` form editors and ``rgbt inspect`` understand.
    """

    def __init__(self, path: str | PathLike[str], line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def parse_number(token: str, path: str | PathLike[str], line: int | None, name: str) -> float:
    """``float(token)``, or a :class:`DataFormatError` naming the file, line, field and value.

    NaN and infinities are rejected: no annotation or detection field may hold them.
    """
    try:
        value = float(token)
    except ValueError:
        raise DataFormatError(path, line, f"field {name!r} is not a number: {token!r}") from None
    if not math.isfinite(value):
        raise DataFormatError(path, line, f"field {name!r} is not finite: {token!r}")
    return value
