"""Run directories: the resolved config, a log file and a machine-readable result per run."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rgbt.atomic import atomic_write_text
from rgbt.engine import distributed

if TYPE_CHECKING:
    from rgbt.engine.trainer import TrainState

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: What :func:`resolve_device` accepts, for messages.
DEVICE_NAMES = "auto, cpu, cuda, cuda:N (N: a GPU index)"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else CPU; ``cpu``,
    ``cuda`` and ``cuda:N`` name a device.

    Raises:
        ValueError: any other name (the message lists the accepted ones), CUDA asked for where there
            is none, or a GPU index this machine does not have.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    found = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", str(name))
    if found is None or (found[1] == "cpu" and found[2] is not None):
        raise ValueError(f"unknown device {name!r}; expected one of {DEVICE_NAMES}")
    device = torch.device(str(name))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def prepare_run_dir(out: str | os.PathLike[str], log_name: str = "log.txt") -> Path:
    """Create ``out`` and mirror the ``rgbt`` log into ``out/log.txt``.

    The resolved config is written by the trainer once the run really starts (a resume refused for
    other settings leaves the run's ``config.yaml`` as it was).
    """
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("rgbt")
    log_path = (run_dir / log_name).resolve()
    if not any(getattr(h, "baseFilename", None) == str(log_path) for h in logger.handlers):
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return run_dir


#: The training commands, by config class name: (what their checkpoints hold, the command, the key that tells).
_RUN_KINDS: dict[str, tuple[str, str, str]] = {
    "DetectorConfig": ("detector", "rgbt train-detector", "model.arch"),
    "TranslatorConfig": ("translator", "rgbt train-translator", "model.model"),
}


def run_config_class(saved: Any) -> type | None:
    """Which run config a checkpoint's stored ``config`` dict is: ``DetectorConfig``,
    ``TranslatorConfig`` or ``None`` (neither, or no dict)."""
    from rgbt.config import ConfigError, DetectorConfig, TranslatorConfig, config_from_dict

    if not isinstance(saved, dict):
        return None
    for cls in (DetectorConfig, TranslatorConfig):
        try:
            config_from_dict(cls, saved)
        except ConfigError:
            continue
        return cls
    return None


def stored_config(cls: type, path: str | os.PathLike[str], state: Any) -> Any:
    """The run config inside the loaded checkpoint ``state`` (read from ``path``) as a ``cls`` instance.

    Raises:
        ValueError: ``state`` holds no run config, or the config of another training command (the
            message says which: ``PATH is a translator checkpoint (model.model=flow) ...``), or one
            that is no ``cls`` at all.
    """
    from rgbt.config import ConfigError, config_from_dict

    saved = state.get("config") if isinstance(state, dict) else None
    wanted, command, _key = _RUN_KINDS.get(cls.__name__, (cls.__name__, "rgbt", ""))
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: not a training checkpoint of rgbt (it holds no run config); "
                         f"expected a {wanted} checkpoint from {command}")
    try:
        return config_from_dict(cls, saved)
    except ConfigError as err:
        problem = err
    other = run_config_class(saved)
    if other is not None and other is not cls:
        kind, other_command, key = _RUN_KINDS[other.__name__]
        section, name = key.split(".")
        value = saved.get(section, {}).get(name, getattr(getattr(other(), section), name))
        raise ValueError(f"{path} is a {kind} checkpoint ({key}={value}, from {other_command}); "
                         f"this needs a {wanted} checkpoint from {command}")
    raise ValueError(f"{path}: its run config is not a {wanted} config ({problem}); expected a {wanted} checkpoint "
                     f"from {command}")


def checkpoint_config(cls: type, path: str | os.PathLike[str]) -> Any | None:
    """The config stored in training checkpoint ``path`` as a ``cls`` instance; None when the file is absent.

    Raises:
        ValueError: the file is not a training checkpoint, or its config is not a ``cls`` config
            (e.g. a translator run resumed with ``train-detector``), see :func:`stored_config`.
    """
    from rgbt.engine.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        return None
    return stored_config(cls, path, load_checkpoint(path))


def write_result(run_dir: str | os.PathLike[str], result: dict[str, Any], name: str = "result.json") -> Path:
    """Write the run's machine-readable result atomically."""
    return atomic_write_text(Path(run_dir) / name, json.dumps(result, indent=2, sort_keys=True) + "\n")


def read_log_rows(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The rows of a run's ``log.csv`` as numbers (empty cells dropped); ``[]`` when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def json_number(value: Any) -> Any:
    """Non-finite floats become ``None`` (strict JSON has no NaN or infinity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def finish_run(run_dir: str | os.PathLike[str], state: TrainState, started: float, device: Any,
               metric: str | None = None, **extra: Any) -> dict[str, Any]:
    """The ``result.json`` of a training run (written by the main process) and its content.

    Keys: ``steps``, ``epochs``, ``seconds`` (since ``started``, a ``time.perf_counter()`` value),
    ``metric``, ``best``, ``final`` (the last evaluation), ``first_log`` / ``last_log`` (rows of
    ``log.csv``), ``checkpoints``, ``device``, ``world_size``, plus ``extra``.
    """
    run_dir = Path(run_dir)
    rows = read_log_rows(run_dir / "log.csv")
    result = {
        "steps": state.step,
        "epochs": state.epoch,
        "seconds": round(time.perf_counter() - started, 3),
        "metric": metric,
        "best": json_number(state.best),
        "final": {k: json_number(v) for k, v in state.history[-1].items()} if state.history else {},
        "first_log": rows[0] if rows else {},
        "last_log": rows[-1] if rows else {},
        **extra,
        "checkpoints": sorted(p.name for p in run_dir.glob("*.pt")),
        "device": str(device),
        "world_size": distributed.world_size(),
    }
    if distributed.is_main_process():
        write_result(run_dir, result)
        log.info("finished %d steps in %.1f s; results in %s", state.step, result["seconds"], run_dir)
    return result
