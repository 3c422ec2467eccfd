"""A torch ``DataLoader`` whose worker processes report an error as the error itself.

torch re-raises an exception from a worker process in the main process by calling its type with
one argument, the worker's whole formatted traceback ("Caught DataFormatError in DataLoader worker
process 0. Original Traceback ..."), and falls back to a ``RuntimeError`` when the type takes other
arguments (``DataFormatError(path, line, message)``). Either way a corrupt image read with
``workers > 0`` reached the user as a traceback, where ``workers = 0`` gave the reader's one-line
message. :class:`ReportingDataLoader` catches the error inside the worker, hands it to the main
process as a value and raises it there: the same type and message with any number of workers.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

log = logging.getLogger(__name__)


class _Failure:
    """An exception raised in a worker process, carried to the main process as a value.

    The exception travels pickled when it survives pickling with its type and message; otherwise
    (a type whose ``__init__`` takes more than the message, whose pickled form cannot call it) as its
    type, ``args`` and, with ``attributes``, its attributes, rebuilt in the main process without
    calling ``__init__``.
    """

    def __init__(self, error: Exception, attributes: bool = True) -> None:
        self.message = str(error)
        self.trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.error: Exception | None = error if attributes and _survives_pickling(error) else None
        self.kind = type(error)
        self.args = error.args
        self.state = dict(vars(error)) if attributes else {}

    def exception(self) -> Exception:
        """The worker's exception, or a ``RuntimeError`` with its type and message when it cannot be rebuilt."""
        if self.error is not None:
            return self.error
        try:
            error = self.kind.__new__(self.kind)
            error.args = self.args
            error.__dict__.update(self.state)
            if str(error) == self.message:
                return error
        except Exception:  # a type that cannot be made this way: keep its name and message
            pass
        return RuntimeError(f"{self.kind.__name__}: {self.message}")


def _survives_pickling(error: Exception) -> bool:
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return type(copy) is type(error) and str(copy) == str(error)


def _carried(error: Exception) -> _Failure:
    """``error`` as a :class:`_Failure` that pickles: whole, else without its attributes, else as a
    ``RuntimeError`` with its type name and message."""
    for failure in (_Failure(error), _Failure(error, attributes=False)):
        try:
            pickle.dumps(failure)
            return failure
        except Exception:
            continue
    return _Failure(RuntimeError(f"{type(error).__name__}: {error}"))


class _Guarded(Dataset):
    """``dataset[i]``, or in a worker process the :class:`_Failure` of the error it raised."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as err:
            if get_worker_info() is None:
                raise  # loading in the calling process: the error is already where it is reported
            return _carried(err)


class _GuardedCollate:
    """``collate_fn(items)``, or the first :class:`_Failure` among the items (or of collating, in a worker)."""

    def __init__(self, collate_fn: Callable[[list[Any]], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, items: list[Any]) -> Any:
        for item in items:
            if isinstance(item, _Failure):
                return item
        try:
            return self.collate_fn(items)
        except Exception as err:
            if get_worker_info() is None:
                raise
            return _carried(err)


class ReportingDataLoader(DataLoader):
    """A ``torch.utils.data.DataLoader`` (same keyword arguments) that raises a worker's error as itself.

    With ``num_workers=0`` nothing changes. With workers, an exception raised by ``dataset[i]`` or
    by ``collate_fn`` in a worker is raised by the iteration in the calling process with its own type
    and message (a type that cannot be rebuilt there becomes a ``RuntimeError`` naming it, with its
    message); the worker's traceback goes to the debug log.
    """

    def __init__(self, dataset: Dataset, *, collate_fn: Callable[[list[Any]], Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(_Guarded(dataset), collate_fn=_GuardedCollate(collate_fn or default_collate), **kwargs)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if isinstance(batch, _Failure):
                log.debug("a data loading worker failed:\n%s", batch.trace)
                raise batch.exception()
            yield batch
