"""Anchors for upright pedestrians: defined by height and height/width ratio.

torchvision's :class:`~torchvision.models.detection.anchor_utils.AnchorGenerator` takes sizes as
``sqrt(area)`` and ``aspect_ratios`` as height / width (``h = size * sqrt(r)``, ``w = size / sqrt(r)``).
For pedestrians the natural unit is the *height* (KAIST's "reasonable" subset starts at 55 px, far
people are ~20 px), so :class:`PedestrianAnchorGenerator` takes heights and keeps torchvision's ratio
convention: an anchor of height ``h`` and ratio ``r`` is ``h / r`` wide. KAIST boxes average about
0.41 width / height, i.e. ``r`` ~ 2.4.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator


class PedestrianAnchorGenerator(AnchorGenerator):
    """Anchor generator whose per-level sizes are anchor heights in pixels.

    Args:
        heights: one sequence of anchor heights (pixels of the network input) per pyramid level.
        aspect_ratios: height / width ratios shared by every level (e.g. ``(2.0, 2.5)``).

    Each level has ``len(heights[l]) * len(aspect_ratios)`` anchors per location, centred on the
    location, ordered ratio-major like torchvision's. Anchors are ``(A, 4)`` float xyxy pixels.
    """

    def __init__(self, heights: Sequence[Sequence[float]], aspect_ratios: Sequence[float]) -> None:
        if not heights or any(len(h) == 0 or min(h) <= 0 for h in heights):
            raise ValueError(f"heights must be non-empty positive sequences per level, got {heights}")
        if not aspect_ratios or min(aspect_ratios) <= 0:
            raise ValueError(f"aspect_ratios must be positive, got {aspect_ratios}")
        sizes = tuple(tuple(float(v) for v in h) for h in heights)
        ratios = (tuple(float(r) for r in aspect_ratios),) * len(sizes)
        super().__init__(sizes, ratios)

    def generate_anchors(
        self,
        scales: list[int],
        aspect_ratios: list[float],
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> Tensor:
        """Zero-centred ``(len(aspect_ratios) * len(scales), 4)`` anchors; ``scales`` are heights."""
        heights = torch.as_tensor(scales, dtype=dtype, device=device)
        ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
        hs = heights[None, :].expand(len(ratios), -1).reshape(-1)
        ws = (heights[None, :] / ratios[:, None]).reshape(-1)
        return torch.stack([-ws, -hs, ws, hs], dim=1) / 2


def pedestrian_anchor_heights(
    strides: Sequence[int], base_heights: Sequence[float] | None = None, scales_per_octave: int = 2
) -> list[list[float]]:
    """Anchor heights per level: ``scales_per_octave`` heights per octave starting at each base.

    Args:
        strides: stride of each pyramid level (e.g. ``[4, 8, 16, 32, 64]``).
        base_heights: smallest anchor height per level; default ``4 * stride`` (16 px at stride 4).
        scales_per_octave: heights ``base * 2 ** (k / scales_per_octave)`` for ``k`` in ``0..S-1``.
    """
    if base_heights is None:
        base_heights = [4.0 * s for s in strides]
    if len(base_heights) != len(strides):
        raise ValueError(
            f"need one anchor height per pyramid level ({len(strides)} levels), got {list(base_heights)}"
        )
    if scales_per_octave < 1:
        raise ValueError(f"scales_per_octave must be >= 1, got {scales_per_octave}")
    return [[float(b) * 2 ** (k / scales_per_octave) for k in range(scales_per_octave)] for b in base_heights]
