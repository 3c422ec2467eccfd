"""Reproducible model construction without side effects on the caller's random state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def build_seeded(make: Callable[[], T], seed: int | None) -> T:
    """``make()`` with torch's CPU RNG seeded by ``seed`` inside a fork, so the same seed gives the
    same initial weights and the global RNG is left as it was; ``None``: ``make()`` on the global RNG."""
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()
