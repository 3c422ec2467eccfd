"""Save a long job's record every few finished items, and once more at the end.

``rgbt translate``, ``rgbt align`` and ``rgbt align --write-aligned`` keep a record of what they
finished (a checksummed manifest, a registration cache) so that an interrupted run redoes only the
rest. Rewriting the record after every item costs more than the item; never rewriting it loses
everything on a kill. :class:`PeriodicSave` rewrites it after every ``every`` finished items and
once more when the job stops, however it stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class PeriodicSave:
    """Count finished items; call ``save()`` after every ``every`` of them (and tick ``bar``, a tqdm
    bar, once per item). Call :meth:`final` when the job stops (in a ``finally``)."""

    def __init__(self, save: Callable[[], None], every: int, bar: Any = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.save = save
        self.every = every
        self.bar = bar
        self.unsaved = 0

    def done(self, count: int = 1) -> None:
        """``count`` more items finished."""
        self.unsaved += count
        if self.bar is not None:
            self.bar.update(count)
        if self.unsaved >= self.every:
            self.save()
            self.unsaved = 0

    def final(self, always: bool = True) -> None:
        """Save what is left (``always``: even when nothing is, so the record exists)."""
        if always or self.unsaved:
            self.save()
        self.unsaved = 0
