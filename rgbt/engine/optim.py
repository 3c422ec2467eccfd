"""Optimiser and learning-rate schedule built from plain values (see ``OptimConfig``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """``adamw`` or ``sgd`` (with momentum) over the trainable parameters."""
    params = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected adamw or sgd")


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine") -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based).

    Linear warm-up from 1/100 to 1 over ``warmup_steps``, then ``cosine`` decay to 1/100,
    ``step`` decay (x0.1 at 2/3 and 8/9 of training) or ``constant``.
    """
    if schedule not in ("cosine", "step", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; expected cosine, step or constant")
    if warmup_steps > 0 and step < warmup_steps:
        return 0.01 + 0.99 * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if schedule == "cosine":
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return 1.0 if progress < 2 / 3 else (0.1 if progress < 8 / 9 else 0.01)
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine"
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler following :func:`lr_factor`."""
    lr_factor(0, total_steps, warmup_steps, schedule)  # validate the name before training starts
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, schedule)
    )
