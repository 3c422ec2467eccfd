"""Fusion modules: several streams' features at one pyramid level -> one fused feature map.

Every module takes a list of ``(B, C_m, H, W)`` tensors (one per modality, in stacking order, all of
the same spatial size) and returns one ``(B, C, H, W)`` tensor; :func:`build_stage_fusions` makes one
module per pyramid level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: Per-stage fusion modes of :func:`build_stage_fusions`.
STAGE_FUSIONS: tuple[str, ...] = ("concat", "sum", "gate")


class ConcatFusion(nn.Module):
    """Halfway fusion: concatenate the streams, then a 1x1 convolution (network-in-network) + ReLU.

    Args:
        in_channels: channels of each stream at this level.
        out_channels: channels of the fused map.

    Forward: list of ``(B, in_channels[m], H, W)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        self.reduce = nn.Conv2d(sum(in_channels), out_channels, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, streams: Sequence[Tensor]) -> Tensor:
        return self.relu(self.reduce(torch.cat(list(streams), dim=1)))

    @torch.no_grad()
    def pass_through(self, stream: int) -> None:
        """Set the weights so the output is stream ``stream``'s features unchanged (the others weigh
        0): trunk features are non-negative (they end in a ReLU), so the ReLU keeps them. Training
        then learns how much of the other streams to add.

        Raises:
            ValueError: ``stream`` out of range, or its width differs from the output's.
        """
        if not 0 <= stream < len(self.in_channels):
            raise ValueError(f"stream {stream} out of range for {len(self.in_channels)} streams")
        width = self.in_channels[stream]
        if width != self.reduce.out_channels:
            raise ValueError(f"stream {stream} has {width} channels, the fused map {self.reduce.out_channels}: "
                             "it cannot pass through unchanged")
        start = sum(self.in_channels[:stream])
        self.reduce.weight.zero_()
        self.reduce.bias.zero_()
        self.reduce.weight[:, start:start + width, 0, 0] = torch.eye(width)


class SumFusion(nn.Module):
    """Element-wise sum of the streams (no parameters); every stream must have the same width.

    Forward: list of ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    def forward(self, streams: Sequence[Tensor]) -> Tensor:
        return torch.stack(list(streams), dim=0).sum(dim=0)


class GateFusion(nn.Module):
    """Learned per-pixel softmax gate over the streams.

    A 1x1 convolution reads the concatenated streams and predicts one logit per stream and pixel; the
    softmax over streams weights their sum, so the model can lean on thermal at night and on RGB by
    day, location by location. The gate starts at zero (equal weights: the mean of the streams).

    Args:
        num_streams: number of modalities ``M``.
        channels: width ``C`` of every stream at this level.

    Forward: ``M`` tensors ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, num_streams: int, channels: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(num_streams * channels, num_streams, kernel_size=1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, streams: Sequence[Tensor]) -> Tensor:
        weights = torch.softmax(self.gate(torch.cat(list(streams), dim=1)), dim=1)
        return sum(weights[:, i : i + 1] * s for i, s in enumerate(streams))


def build_stage_fusions(
    fusion: str, stream_widths: Sequence[Sequence[int]], out_channels: Sequence[int]
) -> list[nn.Module]:
    """One fusion module per pyramid level.

    Args:
        fusion: one of :data:`STAGE_FUSIONS`.
        stream_widths: per stream, the width of each of its levels (a trunk's ``out_channels``).
        out_channels: width of each fused level (used by ``concat``; ``sum`` and ``gate`` keep the
            streams' common width).

    Raises:
        ValueError: an unknown mode, or ``sum`` / ``gate`` over streams of different widths.
    """
    if fusion not in STAGE_FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r} for several trunks; known: {', '.join(STAGE_FUSIONS)}")
    widths = [list(w) for w in stream_widths]
    if fusion == "concat":
        return [ConcatFusion([w[i] for w in widths], c) for i, c in enumerate(out_channels)]
    if any(w != widths[0] for w in widths):
        raise ValueError(f"{fusion} fusion needs equal stream widths, got {widths}")
    if fusion == "sum":
        return [SumFusion() for _ in out_channels]
    return [GateFusion(len(widths), c) for c in out_channels]
