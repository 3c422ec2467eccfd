"""Run directories: the resolved config, a log file and a machine-readable result per run."""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rgbt.atomic import atomic_write_text
from rgbt.config import save_config


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def prepare_run_dir(out: str | os.PathLike[str], config: Any | None = None, log_name: str = "log.txt") -> Path:
    """Create ``out``, write ``config.yaml`` there and mirror the ``rgbt`` log into ``out/log.txt``."""
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        save_config(config, run_dir)
    logger = logging.getLogger("rgbt")
    log_path = (run_dir / log_name).resolve()
    if not any(getattr(h, "baseFilename", None) == str(log_path) for h in logger.handlers):
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return run_dir


def write_result(run_dir: str | os.PathLike[str], result: dict[str, Any], name: str = "result.json") -> Path:
    """Write the run's machine-readable result atomically."""
    return atomic_write_text(Path(run_dir) / name, json.dumps(result, indent=2, sort_keys=True) + "\n")
