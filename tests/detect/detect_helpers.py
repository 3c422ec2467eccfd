"""Shared constants and helpers of the detect tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import torch

HEIGHT, WIDTH = 64, 80

#: Narrow trunks (ResNet stem width 8) and a 16-channel pyramid keep every step well under a second.
TINY_BACKBONE = {"width_mult": 0.125, "fpn_channels": 16}


def tiny_detector_kwargs(arch: str) -> dict:
    kwargs = {**TINY_BACKBONE, "image_size": (HEIGHT, WIDTH)}
    if arch == "fasterrcnn":
        kwargs.update(representation_size=32, rpn_batch_size_per_image=64, box_batch_size_per_image=64)
    return kwargs


def make_target(boxes: list[list[float]], ignore: list[bool] | None = None) -> dict[str, torch.Tensor]:
    """A target dict: float xyxy boxes, label 1 (person), and the ignore flags (default all False)."""
    tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    flags = [False] * len(boxes) if ignore is None else ignore
    return {
        "boxes": tensor,
        "labels": torch.ones(len(tensor), dtype=torch.int64),
        "ignore": torch.tensor(flags, dtype=torch.bool).reshape(-1),
    }
