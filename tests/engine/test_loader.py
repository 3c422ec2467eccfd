"""ReportingDataLoader: an error in a worker process reaches the caller as itself."""

from __future__ import annotations

import pytest
from torch.utils.data import Dataset

from rgbt.data.errors import DataFormatError
from rgbt.engine.loader import ReportingDataLoader


class _Broken(Dataset):
    """Items ``0..7``; item 5 raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> int:
        if index == 5:
            raise self.error
        return index


class _Unpicklable(ValueError):
    """Holds a lambda: neither it nor its attributes survive pickling."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.callback = lambda: None


@pytest.mark.parametrize("workers", [0, 2])
def test_a_worker_error_keeps_its_type_message_and_attributes(workers: int) -> None:
    # DataFormatError(path, line, message) cannot be rebuilt from its message alone, which made torch raise a
    # RuntimeError holding the worker's traceback.
    loader = ReportingDataLoader(_Broken(DataFormatError("a/b.txt", 3, "field 'h' is not a number: 'x'")),
                                 batch_size=2, num_workers=workers, collate_fn=list)
    batches = []
    with pytest.raises(DataFormatError) as raised:
        for batch in loader:
            batches.append(batch)
    assert batches == [[0, 1], [2, 3]]
    assert str(raised.value) == "a/b.txt:3: field 'h' is not a number: 'x'"
    assert (raised.value.path, raised.value.line) == ("a/b.txt", 3)


def test_plain_errors_and_unpicklable_ones_from_workers() -> None:
    loader = ReportingDataLoader(_Broken(FileNotFoundError("image not found: x.jpg")), batch_size=4, num_workers=2)
    with pytest.raises(FileNotFoundError, match=r"^image not found: x\.jpg$"):
        list(loader)
    loader = ReportingDataLoader(_Broken(_Unpicklable("bad frame 5")), batch_size=4, num_workers=2)
    with pytest.raises(ValueError, match=r"^bad frame 5$"):
        list(loader)

    class Local(Exception):
        """Not importable by name, so not even its type can be sent back."""

    loader = ReportingDataLoader(_Broken(Local("odd frame")), batch_size=4, num_workers=2)
    with pytest.raises(RuntimeError, match=r"^Local: odd frame$"):
        list(loader)


def test_a_collate_error_in_a_worker_is_reported_too() -> None:
    def collate(items: list[int]) -> list[int]:
        if 6 in items:
            raise DataFormatError("frames.txt", None, "frames of different sizes")
        return items

    loader = ReportingDataLoader(_Broken(ValueError("unused")), batch_size=2, num_workers=2, collate_fn=collate,
                                 sampler=[0, 1, 6, 7])
    with pytest.raises(DataFormatError, match="^frames.txt: frames of different sizes$"):
        list(loader)
