"""PeriodicSave: the record is rewritten every N finished items and once more at the end."""

from __future__ import annotations

import pytest

from rgbt.engine.periodic_save import PeriodicSave


class _Bar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, count: int) -> None:
        self.n += count


def test_saves_every_n_items_and_what_is_left_at_the_end() -> None:
    saved, bar = [], _Bar()
    finished = []
    saver = PeriodicSave(lambda: saved.append(len(finished)), 3, bar)
    for item in range(7):
        finished.append(item)
        saver.done()
    assert saved == [3, 6] and bar.n == 7
    saver.final(always=False)
    assert saved == [3, 6, 7]
    saver.final(always=False)  # nothing left: no rewrite
    assert saved == [3, 6, 7]
    saver.final()  # always: the record exists even when nothing finished
    assert saved == [3, 6, 7, 7]


def test_an_interruption_keeps_what_finished() -> None:
    saved: list[int] = []
    finished: list[int] = []
    saver = PeriodicSave(lambda: saved.append(len(finished)), 4)
    with pytest.raises(KeyboardInterrupt):
        try:
            for item in range(10):
                if item == 6:
                    raise KeyboardInterrupt
                finished.append(item)
                saver.done()
        finally:
            saver.final(always=False)
    assert saved == [4, 6]


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every must be >= 1"):
        PeriodicSave(lambda: None, 0)
