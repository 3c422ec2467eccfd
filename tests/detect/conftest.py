"""Tiny detectors and a synthetic RGB+thermal batch for the detect tests (64x80 frames, narrow trunks)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from detect_helpers import HEIGHT, WIDTH, make_target, tiny_detector_kwargs
from torch import nn

from rgbt.detect import build_fusion_detector


@pytest.fixture
def tiny_detector() -> Callable[..., nn.Module]:
    """Factory ``(arch, fusion='concat', seed=0, **overrides) -> detector`` on rgb+thermal 64x80 frames."""

    def build(arch: str, fusion: str = "concat", seed: int = 0, **overrides) -> nn.Module:
        torch.manual_seed(seed)
        return build_fusion_detector(arch, fusion=fusion, **{**tiny_detector_kwargs(arch), **overrides})

    return build


@pytest.fixture
def synthetic_batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Two stacked [r, g, b, t] frames: bright upright rectangles (people) on a dark noisy background."""
    generator = torch.Generator().manual_seed(0)
    images, targets = [], []
    for boxes in ([[10, 8, 22, 38], [46, 20, 60, 56]], [[30, 12, 44, 50]]):
        image = torch.rand(4, HEIGHT, WIDTH, generator=generator) * 0.1
        for x1, y1, x2, y2 in boxes:
            image[:3, y1:y2, x1:x2] += 0.6  # RGB: moderately bright
            image[3, y1:y2, x1:x2] += 0.85  # thermal: people are warm
        images.append(image.clamp(0, 1))
        targets.append(make_target(boxes))
    return images, targets
