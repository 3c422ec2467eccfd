"""Checkpoints: written atomically, loaded onto any device, enough state to resume exactly.

A checkpoint holds only tensors and plain Python values (dicts, lists, tuples, strings, numbers,
None), and is always read with ``torch.load(weights_only=True)``: loading a file can never run code
from it, whoever wrote it. The RNG states are stored in that form too (see :func:`rng_state`).
"""

from __future__ import annotations

import io
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
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
        ValueError: the file is not a readable torch checkpoint, or it holds Python objects other
            than tensors and plain values (a file that would need its pickled code run to load).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found is None:  # not a pickle at all (truncated, another format)
            raise ValueError(f"{path}: not a readable checkpoint ({_first_line(err)})") from None
        raise ValueError(
            f"{path}: refused: the file holds a Python object ({found.group(1)}) besides tensors and plain values, "
            "and rgbt never runs code from a checkpoint (it loads with weights_only=True). If the file is yours, "
            "load it once in a trusted session and re-save its state dicts"
        ) from None
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise ValueError(f"{path}: not a readable checkpoint ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-2] if len(lines) > 1 else (lines[0] if lines else '')}"


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch RNG states, so a resumed run draws the same numbers.

    Every value is a tensor or a plain value, so the state loads with ``weights_only=True``: numpy's
    MT19937 key (an ``ndarray``) travels as an int64 tensor.
    """
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(numpy_state["state"]["key"], dtype=np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    python = state["python"]
    # weights_only loading returns the tuples of random.getstate() as tuples or lists: setstate wants tuples.
    random.setstate((python[0], tuple(python[1]), python[2]))
    saved = state["numpy"]
    np.random.set_state({
        "bit_generator": saved["bit_generator"],
        "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
        "has_gauss": saved["has_gauss"],
        "gauss": saved["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
