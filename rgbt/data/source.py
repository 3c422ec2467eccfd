"""The common interface over every dataset layout, and the factory that opens a root.

A *frame source* is an indexable collection of :class:`~rgbt.data.sample.PairSample`:
``source[i]`` decodes the images of frame ``i``; ``source.annotations(i)`` returns the same
sample without images (cheap: evaluation and inspection use it); ``source.period(i)`` is the
frame's day/night without even that where the layout allows. Detectors, translators, the
evaluation harness and the CLI only ever talk to this interface, so a KAIST root, a FLIR release
and a user's folder of pairs are interchangeable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from rgbt.data.domains import KAIST_LABELS
from rgbt.data.flir import open_flir
from rgbt.data.formats import detect_format
from rgbt.data.kaist import KaistSource
from rgbt.data.labels import check_classes
from rgbt.data.pairs import PairsSource
from rgbt.data.sample import PairSample


@runtime_checkable
class FrameSource(Protocol):
    """What every dataset reader provides."""

    #: dataset name written into ``sample.meta['dataset']`` (``kaist``, ``flir-v1``, ``pairs`` ...)
    name: str
    #: the dataset root folder
    root: Path
    #: frame identifiers in list order (``setXX/VYYY/IZZZZZ`` for KAIST-layout roots)
    frame_ids: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> PairSample: ...

    def annotations(self, index: int) -> PairSample:
        """Frame ``index`` with annotations and meta but no decoded images."""
        ...

    def image_paths(self, index: int) -> dict[str, Path | None]:
        """Files of frame ``index`` per modality (``rgb``, ``thermal``, ``fake_rgb``, ``aligned_rgb``; None when
        absent)."""
        ...

    def period(self, index: int) -> str:
        """``day``, ``night`` or ``unknown`` for frame ``index``: what ``annotations(index).period`` says,
        without reading an annotation file where the layout tells it otherwise (KAIST frame ids)."""
        ...

    def frame_candidates(self, frame: str) -> list[str]:
        """The frame ids a user's spelling of one frame may stand for in this layout, most literal first
        (``set06_V001_I00459`` -> ``set06/V001/I00459``, ``FLIR_00002_RGB.jpg`` -> ``FLIR_00002``);
        not checked against ``frame_ids``."""
        ...


def open_source(
    root: str | os.PathLike[str],
    image_set: str | None = None,
    format: str = "auto",
    classes: Sequence[str] | None = None,
    fake_rgb_root: str | os.PathLike[str] | None = None,
    period: str = "all",
    aligned_rgb_root: str | os.PathLike[str] | None = None,
) -> FrameSource:
    """Open a dataset root as a :class:`FrameSource`.

    Args:
        root: the dataset folder.
        image_set: which frames: a KAIST image-set name or path; for FLIR the split
            (``train``/``val``/``video`` for v1.3 and v2, ``train``/``validation`` for FLIR-aligned);
            ``None`` takes everything the layout defines as its default.
        format: ``auto`` (see :func:`~rgbt.data.formats.detect_format`) or one of its names.
        classes: FLIR category names kept as objects (matched by name, never by id); ``None``
            keeps every category. KAIST labels are fixed and a pairs root keeps every object, but
            their names are checked too: every name must be a label of the dataset (KAIST:
            ``person``, ``people``, ``cyclist``, ``person?``; pairs: the ``annotations.json``
            categories), since training on a name that matches nothing sees zero positives.
        fake_rgb_root: folder written by ``rgbt translate``; when given, ``sample.fake_rgb`` is loaded.
        period: ``all``, ``day`` or ``night`` (KAIST-layout roots know the period of each frame).
        aligned_rgb_root: folder written by ``rgbt align --write-aligned``; when given, ``sample.aligned_rgb``
            is loaded.

    Raises:
        ValueError: an unknown format, or ``classes`` empty or naming a label the dataset lacks.
        FileNotFoundError: ``fake_rgb_root`` or ``aligned_rgb_root`` is not a folder.
    """
    for folder, what, written_by in ((fake_rgb_root, "fake RGB", "rgbt translate"),
                                     (aligned_rgb_root, "aligned RGB", "rgbt align --write-aligned")):
        if folder is not None and not Path(folder).is_dir():
            raise FileNotFoundError(f"{what} folder not found: {folder} (the --out folder of {written_by})")
    kind = detect_format(root) if format == "auto" else format
    if kind == "kaist":
        if classes is not None:
            check_classes(classes, KAIST_LABELS, f"kaist {root}")
        return KaistSource(root, image_set=image_set, fake_rgb_root=fake_rgb_root, period=period,
                           aligned_rgb_root=aligned_rgb_root)
    if kind.startswith("flir"):
        return open_flir(root, kind, split=image_set, classes=classes, fake_rgb_root=fake_rgb_root,
                         aligned_rgb_root=aligned_rgb_root)
    if kind == "pairs":
        source = PairsSource(root, fake_rgb_root=fake_rgb_root, aligned_rgb_root=aligned_rgb_root)
        if classes is not None and source.annotation_file is not None:
            check_classes(classes, source.categories, str(source.annotation_file))
        return source
    raise ValueError(f"unknown dataset format {format!r}; expected auto, kaist, flir-v1, flir-v2, flir-aligned, pairs")
