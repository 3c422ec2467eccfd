"""Category names of the name-labelled formats (COCO json, Pascal VOC xml) and the object they label.

Categories are always matched by *name*: ids differ between releases and files. A name is
normalised to lower case with single spaces, and release-specific short names are resolved
(FLIR ADAS v2 writes ``bike`` and ``motor``), so ``classes=['person', 'car', 'bicycle']`` means
the same thing in every file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

#: Category names of some releases -> the name used everywhere in rgbt.
NAME_ALIASES: dict[str, str] = {"bike": "bicycle", "motor": "motorcycle"}


class LabelledObject(NamedTuple):
    """One annotated object: canonical label, ``xyxy`` box in pixels of the annotated (thermal) frame, ignore flag."""

    label: str
    box: tuple[float, float, float, float]
    ignore: bool = False


def canonical_label(name: str) -> str:
    """Lower-case, single-spaced category name with release aliases resolved (``bike`` -> ``bicycle``)."""
    name = " ".join(str(name).strip().lower().split())
    return NAME_ALIASES.get(name, name)


def check_classes(classes: Iterable[str], available: Iterable[str], where: str) -> None:
    """Refuse class names that match no category of a dataset: training or scoring on them would see
    zero positives without a word.

    Args:
        classes: the names asked for (``data.classes``, ``--classes``), matched after :func:`canonical_label`.
        available: the dataset's canonical category names.
        where: the dataset (or file) named in the message.

    Raises:
        ValueError: ``classes`` is empty, or names a category ``available`` lacks (listing ``available``).
    """
    wanted = [canonical_label(c) for c in classes]
    known = sorted(set(available))
    if not wanted:
        raise ValueError(f"{where}: no class given; categories: {known}")
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"{where}: no category named {unknown}; categories: {known or 'none'}")
