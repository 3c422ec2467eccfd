"""A cache of parsed KAIST bbGt ground truth, so repeated evaluations of one test set skip the parsing.

Reading the 2,252 bbGt files of KAIST's ``test-all-20`` and turning them into annotation samples is
most of what one in-process ``rgbt evaluate`` costs (about 65 ms of 85 on a 2-core machine); a
researcher scoring many result files, or a sweep re-scoring every point, pays it each time. The
cache keeps the parsed samples of one ``(root, image set)`` in one file and trusts it only while
every annotation file and the list itself have the size, modification time (ns) and inode they
had when it was written (one ``stat`` per file, a few ms for the test set); anything else
(a changed, added or removed file, another list, another frame size) parses the files again and
rewrites the entry. Files modified less than :data:`RACY_SECONDS` before the parse are not cached
(a file rewritten again within the file system's timestamp granularity could keep its time).

Where: ``$RGBT_CACHE_DIR`` when set (``off``, ``0`` or empty: no cache), else
``$XDG_CACHE_HOME/rgbt`` or ``~/.cache/rgbt``, in ``ground_truth/``. A cache file that cannot be
read (truncated, from another rgbt version) is ignored and rewritten; one that cannot be written
(read-only home) is skipped. Errors in the ground truth itself are raised by the parse, never
cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rgbt.atomic import atomic_write
from rgbt.data.kaist import annotation_files
from rgbt.data.sample import PairSample

#: Environment variable naming the cache folder (``off``, ``0`` or empty turns the cache off).
CACHE_ENV = "RGBT_CACHE_DIR"
#: Bumped when what a cache entry holds changes.
VERSION = 2
#: Files modified this recently are not cached (their timestamps could still repeat).
RACY_SECONDS = 2.0


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when :data:`CACHE_ENV` turns the cache off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rgbt"


def _stats(paths: Sequence[str]) -> list[tuple[int, int, int]] | None:
    try:
        return [(s.st_size, s.st_mtime_ns, s.st_ino) for s in map(os.stat, paths)]
    except OSError:
        return None  # a missing file: the parse raises the reader's own error


def cached_samples(root: str | os.PathLike[str], list_path: str | os.PathLike[str], frame_ids: Sequence[str],
                   size: tuple[int, int] | None, parse: Callable[[], list[PairSample]]) -> list[PairSample]:
    """The annotation samples of ``frame_ids`` under ``root``: from the cache when every file is as it
    was, else ``parse()`` (whose result is cached when the files are not too fresh).

    Args:
        root: the KAIST root (its ``annotations/`` hold the bbGt files).
        list_path: the image-set list the frames came from.
        frame_ids: the frames, in list order.
        size: the frames' ``(height, width)`` the samples carry (part of the key).
        parse: reads and converts the files (raises on malformed input).
    """
    folder = cache_dir()
    if folder is None:
        return parse()
    paths = [os.fspath(list_path), *annotation_files(root, frame_ids)]
    stats = _stats(paths)
    if stats is None:
        return parse()
    where = [os.path.abspath(os.fspath(root)), os.path.abspath(os.fspath(list_path))]
    entry = folder / "ground_truth" / (hashlib.sha1(json.dumps(where).encode()).hexdigest()[:20] + ".pkl")
    key = hashlib.sha1(json.dumps([VERSION, where, list(frame_ids), size, stats]).encode()).hexdigest()
    cached = _read(entry, key, len(frame_ids))
    if cached is not None:
        return cached
    samples = parse()
    newest = max(mtime for _, mtime, _ in stats)
    if time.time_ns() - newest >= RACY_SECONDS * 1e9:
        _write(entry, {"key": key, **_pack(samples)})
    return samples


def _read(entry: Path, key: str, count: int) -> list[PairSample] | None:
    try:
        with open(entry, "rb") as handle:
            payload: Any = pickle.load(handle)
    except Exception:  # noqa: BLE001 - a missing or broken entry of any kind is only a cache miss
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    try:
        samples = _unpack(payload)
    except Exception:  # noqa: BLE001 - an entry of another layout is only a cache miss
        return None
    if not isinstance(samples, list) or len(samples) != count or not all(isinstance(s, PairSample) for s in samples):
        return None
    return samples


def _pack(samples: list[PairSample]) -> dict[str, Any]:
    """The samples as a few flat arrays (one per field, all frames concatenated; unpickling 2,252
    frames' small arrays one by one costs more than the rest of a cached load), or as they are when
    one carries more than annotations (images, RGB-frame boxes)."""
    if any(s.rgb is not None or s.thermal is not None or s.fake_rgb is not None or s.aligned_rgb is not None
           or s.boxes_rgb is not None for s in samples) or not samples:
        return {"samples": samples}
    counts = [len(s.boxes) for s in samples]
    return {"flat": {
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "boxes": np.concatenate([s.boxes for s in samples]).astype(np.float32, copy=False),
        "ignore": np.concatenate([s.ignore for s in samples]),
        "occlusion": np.concatenate([s.occlusion for s in samples]),
        "labels": [label for s in samples for label in s.labels],
        "meta": [s.meta for s in samples],
    }}


def _unpack(payload: dict[str, Any]) -> list[PairSample]:
    """:func:`_pack` undone: the samples, each frame's arrays views into the flat ones."""
    if "flat" not in payload:
        return payload["samples"]
    flat = payload["flat"]
    bounds = flat["offsets"].tolist()
    boxes, ignore, occlusion, labels = flat["boxes"], flat["ignore"], flat["occlusion"], flat["labels"]
    n = len(boxes)
    if (len(bounds) != len(flat["meta"]) + 1 or bounds[-1] != n or boxes.dtype != np.float32 or boxes.ndim != 2
            or boxes.shape[1] != 4 or ignore.dtype != bool or occlusion.dtype != np.int8
            or not len(labels) == len(ignore) == len(occlusion) == n):
        raise ValueError("inconsistent cache entry")
    # The arrays were checked when the samples were first built: no need to check every frame again.
    return [PairSample.checked_before(boxes[a:b], labels[a:b], ignore[a:b], occlusion[a:b], meta)
            for a, b, meta in zip(bounds[:-1], bounds[1:], flat["meta"])]


def _write(entry: Path, payload: dict[str, Any]) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(entry, lambda handle: pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass  # no cache where it cannot be written; the parse result stands
