"""The exception raised for malformed dataset files."""

from __future__ import annotations

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
