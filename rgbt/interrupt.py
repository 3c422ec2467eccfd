"""SIGTERM handled like Ctrl-C.

``timeout``, job schedulers (Slurm, Kubernetes) and ``docker stop`` end a job with SIGTERM. Inside
:func:`terminate_as_interrupt` that signal raises :class:`Terminated`, a ``KeyboardInterrupt``, so
every long job's interruption path runs for it too: trainers save ``RUN/last.pt``, the translate
job and the sweep keep their finished shards and rows, and the command exits non-zero.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: Exit status of a command ended by SIGTERM (128 + signal number, the shell convention).
TERMINATED_EXIT = 128 + signal.SIGTERM
#: Exit status of a command ended by Ctrl-C (SIGINT).
INTERRUPTED_EXIT = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler is restored after.

    Outside the main thread (where Python cannot install signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
