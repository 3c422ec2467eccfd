"""Atomic writes keep the umask and the previous file on failure; one writer per output folder."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rgbt.atomic import atomic_write, atomic_write_text
from rgbt.cli import main
from rgbt.outlock import LOCK_NAME, OutputLockedError, lock_output


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_files_get_the_mode_of_a_plain_open(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_names_the_file_and_keeps_the_previous_version(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def full_disk(handle):  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"last.pt: could not be written \(No space left on device\); the previous"):
        atomic_write(target, full_disk)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind
    with pytest.raises(OSError, match=r"new.txt: could not be written .*nothing was written"):
        atomic_write(tmp_path / "new.txt", full_disk)


def test_a_second_writer_of_an_output_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from rgbt.outlock import lock_output\n"
         "with lock_output(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=rf"{out} is being written by another rgbt process \(pid "
                                                    rf"{holder.pid}"):
            with lock_output(out):
                pass
        code = main(["synth", "--out", str(out), "--train", "1", "--test", "1"])
        assert code == 1
    finally:
        holder.kill()
        holder.wait()
    # kill -9 released the lock: the next writer proceeds (the lock file itself stays).
    with lock_output(out):
        pass
    assert (out / LOCK_NAME).is_file()
