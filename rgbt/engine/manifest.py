"""The manifest of a generated image folder: what was written, with which settings, and its checksums.

Jobs that write one image per frame of a dataset (``rgbt translate``: fake RGB; ``rgbt align
--write-aligned``: RGB warped into the thermal frame) keep ``OUT/manifest.json``: a header (the
settings that must agree for a later run to add to the folder) and ``files``, mapping each finished
file's path relative to ``OUT`` to its SHA-256. A re-run skips the listed files whose checksum
still matches and redoes everything else (missing, truncated, corrupted, written but not yet
listed), so a job killed at any moment resumes without a truncated or lost file: images are
written atomically and the manifest is rewritten atomically every few files.

Under ``torchrun`` each rank records its files in ``OUT/manifest.part<rank>.json``; rank 0 merges
the parts into ``manifest.json`` (:func:`consolidate`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rgbt.atomic import atomic_write_text, file_sha256
from rgbt.data.imageio import write_image

#: The manifest file written into the output folder.
MANIFEST_NAME = "manifest.json"
#: Output image formats.
IMAGE_FORMATS = ("jpg", "png")


def read_manifest(path: str | os.PathLike[str], what: str = "translation") -> dict[str, Any]:
    """A manifest (or a per-rank part) as a dict; ``{}`` when the file does not exist.

    Args:
        what: what the folder holds, for messages (``translation``, ``alignment``).

    Raises:
        ValueError: the file is not valid JSON or not a manifest.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid manifest ({err}); delete it to start the {what} over") from None
    if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
        raise ValueError(f"{path}: not a {what} manifest (no 'files' mapping)")
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write a manifest atomically (sorted keys, one line per entry)."""
    atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def part_paths(out: Path) -> list[Path]:
    """The per-rank manifest parts left in ``out``."""
    return sorted(out.glob("manifest.part*.json"))


def setting_differences(existing: dict[str, Any], header: dict[str, Any], setting_keys: Sequence[str]) -> list[str]:
    """``"key old -> new"`` for each of ``setting_keys`` whose value in ``header`` differs from the
    ``existing`` manifest's (a mapping value is compared entry by entry, as ``key.entry``)."""
    differing = []
    for key in setting_keys:
        old, new = existing.get(key), header[key]
        if isinstance(old, dict) and isinstance(new, dict):
            differing += [f"{key}.{k} {old.get(k)!r} -> {new.get(k)!r}" for k in dict.fromkeys([*new, *old])
                          if old.get(k) != new.get(k)]
        elif old != new:
            differing.append(f"{key} {old!r} -> {new!r}")
    return differing


def check_settings(out: Path, existing: dict[str, Any], header: dict[str, Any], setting_keys: Sequence[str],
                   what: str) -> None:
    """Refuse to add to ``out`` when its ``existing`` manifest (empty: none) was made with other settings.

    Raises:
        ValueError: naming each differing setting, old and new value.
    """
    differing = setting_differences(existing, header, setting_keys) if existing else []
    if differing:
        raise ValueError(f"{out} holds a {what} made with other settings ({'; '.join(differing)}); "
                         "choose another --out or delete that folder")


def consolidate(out: Path, header: dict[str, Any], setting_keys: Sequence[str], what: str = "translation",
                merge_keys: Sequence[str] = ("files",)) -> dict[str, Any]:
    """Merge ``manifest.json`` and leftover per-rank parts into one manifest under ``header`` (rank 0).

    ``header["image_sets"]`` is merged with the existing list; each of ``merge_keys`` (mappings keyed
    by output file) is merged entry by entry, parts winning; every other header key replaces the
    old value once the ``setting_keys`` have been checked to agree.

    Raises:
        ValueError: the folder holds a ``what`` made with other settings (:func:`check_settings`).
    """
    path = out / MANIFEST_NAME
    existing = read_manifest(path, what)
    check_settings(out, existing, header, setting_keys, what)
    merged = {key: dict(existing.get(key, {})) for key in merge_keys}
    parts = part_paths(out)
    for part in parts:
        content = read_manifest(part, what)
        for key in merge_keys:
            merged[key].update(content.get(key, {}))
    image_sets = list(existing.get("image_sets", []))
    for name in header["image_sets"]:
        if name not in image_sets:
            image_sets.append(name)
    manifest = {**header, "image_sets": image_sets, **merged}
    write_manifest(path, manifest)
    for part in parts:
        part.unlink(missing_ok=True)
    return manifest


def is_finished(out: Path, path: Path, listed: dict[str, str]) -> bool:
    """Whether ``path`` (inside ``out``) is listed in the manifest's ``files`` and still has that checksum."""
    rel = path.relative_to(out).as_posix()
    return rel in listed and path.is_file() and file_sha256(path) == listed[rel]


def write_and_hash(path: Path, image: np.ndarray, image_format: str) -> str:
    """Write ``image`` atomically at ``path`` (JPEG quality 95 or PNG) and return its SHA-256.

    A file of the same stem in the other format is removed: the readers prefer ``.jpg`` over
    ``.png``, so it would shadow this one.
    """
    write_image(path, image, jpeg_quality=95)
    for stale in (path.with_suffix(f".{ext}") for ext in IMAGE_FORMATS if ext != image_format):
        stale.unlink(missing_ok=True)
    return file_sha256(path)
