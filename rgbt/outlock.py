"""One writer per output folder.

Two processes writing the same ``--out`` (two ``rgbt translate``, a training run started twice)
would both pass the "same settings?" checks and then overwrite each other's files. Every command
that writes an output folder holds an exclusive lock on ``OUT/.rgbt.lock`` while it runs; a second
writer is refused at once with the holder's pid and command. The lock is an ``flock``: the kernel
releases it when the holder exits in any way (kill -9 included), so a stale lock file never blocks
a later run.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".rgbt.lock"


class OutputLockedError(OSError):
    """Another process holds the output folder's lock."""


@contextmanager
def lock_output(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the exclusive writer lock of folder ``out`` (created when missing) within the block.

    Raises:
        OutputLockedError: another process holds it (the message names the folder and that process).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise OutputLockedError(
                f"{out} is being written by another rgbt process ({holder}); wait for it to finish or use "
                "another output folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n")
        handle.flush()
        yield out
    finally:
        # Closing the descriptor releases the flock; the file stays (harmless, reused by the next run).
        handle.close()
