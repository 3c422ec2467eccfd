"""Atomic file writes: a reader (or a resumed job) never sees a half-written file.

Data goes to a temporary file in the destination folder, is flushed to disk, then renamed over
the destination; rename is atomic on POSIX file systems, so an interruption at any moment leaves
either the old file or the complete new one. :func:`file_sha256` is how a resumed job tells a
finished file from one it has to redo. The new file gets the permissions a plain ``open``
would give it (``0o666`` less the process umask), not the ``0o600`` of a temporary file. A write
that fails (a full disk, a read-only folder) leaves the old file as it was and names the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def _umask() -> int:
    """The process umask: from ``/proc/self/status`` on Linux (reading it there changes nothing, so
    threads writing at the same time are not affected), else set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would create: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file, then rename it to ``path``.

    Raises:
        OSError: the file could not be written (its message names ``path`` and says that a previous
            version, if any, is unchanged).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, f"{path}: could not be written ({err.strerror or err})") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), _file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        kept = "the previous version is unchanged" if path.exists() else "nothing was written"
        raise OSError(err.errno, f"{path}: could not be written ({err.strerror or err}); {kept}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
