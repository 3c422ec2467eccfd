"""Which dataset layout a root folder holds, told from its folder names alone (no file is read).

The names returned are the ``format`` values :func:`rgbt.data.source.open_source` accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Every layout name :func:`detect_format` returns.
FORMATS: tuple[str, ...] = ("kaist", "flir-v1", "flir-v2", "flir-aligned", "pairs")


def detect_format(root: str | os.PathLike[str]) -> str:
    """Guess the layout of a dataset root: ``kaist``, ``flir-v1``, ``flir-v2``, ``flir-aligned`` or ``pairs``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no known layout matches (the message lists what was looked for).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    if (root / "images").is_dir() and any((root / "images").glob("set[0-9][0-9]")):
        return "kaist"
    if (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():
        return "flir-aligned"
    if any(root.glob("images_thermal_*")) or any(root.glob("video_thermal_*")):
        return "flir-v2"
    if any((root / split / "thermal_8_bit").is_dir() for split in ("train", "val", "video")):
        return "flir-v1"
    if (root / "thermal_8_bit").is_dir():
        return "flir-v1"
    if (root / "lwir").is_dir() or (root / "visible").is_dir() or (root / "thermal").is_dir():
        return "pairs"
    raise ValueError(
        f"{root}: unknown dataset layout; expected a KAIST root (images/setXX), FLIR ADAS v1.3 "
        "({train,val,video}/thermal_8_bit), FLIR ADAS v2 (images_thermal_*), FLIR-aligned "
        "(JPEGImages + Annotations) or a folder of pairs (visible/ + lwir/ or thermal/)"
    )
