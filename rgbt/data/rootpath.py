"""File names read from inside a dataset (a COCO ``file_name``), joined under their folder.

An annotation file names the images it describes relative to a folder of the release
(``thermal_8_bit/FLIR_00001.jpeg``, ``data/video-...jpg``). A name that leaves that folder
(``../../home/user/.ssh/id_rsa``, ``/etc/passwd``) is refused where it is read, so no reader, and no
command built on them (``inspect``, ``show``, training, ``translate``), ever opens a file outside
the dataset because a file said so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from rgbt.data.errors import DataFormatError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def file_under(base: Path, name: str, path: str | os.PathLike[str], where: str) -> Path:
    """``base / name``, for a relative file name ``name`` read from the file ``path`` at ``where``.

    Raises:
        DataFormatError: ``name`` is empty, absolute (``/x``, ``C:\\x``, ``\\\\server\\x``), holds a ``..``
            part or a control character (a NUL would cut the name short at the operating system).
    """
    if not name or _CONTROL.search(name):
        raise DataFormatError(path, None, f"{where}: {name!r} is not a usable file name")
    parts = re.split(r"[/\\]", name)
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive or name.startswith(("/", "\\")) \
            or ".." in parts:
        raise DataFormatError(path, None, f"{where}: {name!r} points outside {base}; file names must be relative "
                              "to it, without '..'")
    return base / name
