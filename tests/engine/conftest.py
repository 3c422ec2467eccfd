"""Fixtures shared by the engine tests: a KAIST-size synthetic root and a two-process torchrun."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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
