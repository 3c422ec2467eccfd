"""Fixtures shared by the engine tests: a KAIST-size synthetic root, a two-process torchrun and a
video writer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.data.synthetic import generate_synthetic


@pytest.fixture(scope="session")
def kaist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train + 6 test synthetic frames at KAIST's 640x512 (so 'reasonable' persons exist); the
    tiny detector config runs the network at 64x80."""
    return generate_synthetic(tmp_path_factory.getbasetemp() / "kaist_synth_8_6", 8, 6, seed=0, width=640,
                              height=512, progress=False)


@pytest.fixture
def torchrun_two() -> Callable[[list[str]], subprocess.CompletedProcess]:
    """Run ``rgbt ARGS`` as two CPU processes under torchrun (gloo), on a free local port.

    Skipped with ``RGBT_SKIP_DDP=1`` (e.g. where local sockets are not allowed).
    """
    if os.environ.get("RGBT_SKIP_DDP") == "1":
        pytest.skip("RGBT_SKIP_DDP=1")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not found")

    def run(args: list[str]) -> subprocess.CompletedProcess:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [torchrun, "--nproc_per_node=2", f"--master_port={port}", "-m", "rgbt.cli", *args]
        env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    return run


@pytest.fixture
def write_video() -> Callable[[Path, list[np.ndarray], float], Path]:
    """``write(path, frames, fps) -> path``: a video of uint8 frames (BGR ``(H, W, 3)`` or grey ``(H, W)``,
    stored as 3 channels) with OpenCV: ``mp4v`` for ``.mp4``, ``MJPG`` for ``.avi``."""

    def write(path: Path, frames: list[np.ndarray], fps: float) -> Path:
        height, width = frames[0].shape[:2]
        codec = "mp4v" if path.suffix == ".mp4" else "MJPG"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        assert writer.isOpened()
        for frame in frames:
            writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        writer.release()
        return path

    return write
