"""Atomic writes and checkpoints."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rgbt.atomic import atomic_write, atomic_write_text
from rgbt.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path) -> None:
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")

    def fail(handle) -> None:
        handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind


def test_checkpoint_round_trip(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "epoch": 4})
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 4
    assert torch.equal(state["model"]["weight"], model.weight.detach())


def test_bad_checkpoints_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_rng_state_restores_every_generator() -> None:
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
