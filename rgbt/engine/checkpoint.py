"""Checkpoints: written atomically, loaded onto any device, enough state to resume exactly."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from rgbt.atomic import atomic_write_bytes


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Save ``state`` (model/optimiser/scheduler state dicts, epoch, step, config, RNG) atomically.

    The file is serialised in memory first, so a kill during ``torch.save`` cannot truncate an
    existing checkpoint.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (or a plain state dict file).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a readable torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch RNG states, so a resumed run draws the same numbers."""
    import random

    import numpy as np

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
