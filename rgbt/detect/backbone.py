"""Multi-stream fusion backbones: one torchvision trunk per modality, fused at every pyramid level.

Input layout (one convention for every detector in :mod:`rgbt.detect`): the modalities of a frame are
stacked along the channel axis in a fixed *modality order*, each taking its
:data:`~rgbt.data.sample.MODALITY_CHANNELS` channels. ``('rgb', 'thermal')`` gives a ``(B, 4, H, W)``
tensor with channels ``[r, g, b, t]``; ``('thermal', 'fake_rgb')`` gives ``[t, r', g', b']``. Values
are float in ``[0, 1]`` before the detector's normalisation (``image_mean`` / ``image_std`` per stacked
channel). A single stacked tensor is what torchvision's ``GeneralizedRCNNTransform`` hands a backbone,
so every torchvision head plugs in unchanged; the backbone splits it again by the known channel
counts. The stacking itself is :func:`rgbt.data.dataset.stack_modalities` (the dataset owns the
per-modality tensors), its inverse :func:`split_modalities`.

Pyramid levels: a trunk yields the stage features ``C2..C5`` (strides 4, 8, 16, 32); the streams are
fused per stage, a :class:`torchvision.ops.FeaturePyramidNetwork` turns them into ``p2..p5`` with
``fpn_channels`` channels each, and an extra block adds ``pool`` (stride 64, max-pooled ``p5``) or
``p6``/``p7`` (strided convolutions, RetinaNet style).

The parts are trunks (:mod:`rgbt.detect.trunk`, built without downloading weights; a local classifier
``state_dict`` can be loaded per trunk), per-level fusion modules (:mod:`rgbt.detect.fusion`) and
torchvision's feature pyramid.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool, LastLevelP6P7

from rgbt.data.dataset import stack_modalities
from rgbt.data.sample import MODALITY_CHANNELS
from rgbt.detect.fusion import STAGE_FUSIONS, build_stage_fusions
from rgbt.detect.trunk import StageTrunk, build_trunk

#: Fusion modes of :func:`build_backbone` (``late`` fusion lives in :mod:`rgbt.detect.late_fusion`).
FUSIONS: tuple[str, ...] = (*STAGE_FUSIONS, "early")

#: Extra pyramid levels above ``p5``.
EXTRA_BLOCKS: tuple[str, ...] = ("maxpool", "p6p7", "none")


def modality_channels(modalities: Sequence[str]) -> dict[str, int]:
    """Channel count of each modality, in stacking order.

    Raises:
        ValueError: on an empty sequence, an unknown name or a repeated name.
    """
    if isinstance(modalities, str) or len(modalities) == 0:
        raise ValueError(f"modalities must be a non-empty sequence of names, got {modalities!r}")
    unknown = [m for m in modalities if m not in MODALITY_CHANNELS]
    if unknown:
        raise ValueError(f"unknown modality {unknown[0]!r}; known: {', '.join(MODALITY_CHANNELS)}")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must not repeat, got {list(modalities)}")
    return {m: MODALITY_CHANNELS[m] for m in modalities}


def split_modalities(images: Tensor, channels: Mapping[str, int]) -> dict[str, Tensor]:
    """Inverse of :func:`stack_modalities`: ``(..., sum C_m, H, W)`` -> name -> ``(..., C_m, H, W)``."""
    total = sum(channels.values())
    if images.dim() not in (3, 4) or images.shape[-3] != total:
        raise ValueError(
            f"stacked images must have {total} channels "
            f"({', '.join(f'{m}:{c}' for m, c in channels.items())}), got shape {tuple(images.shape)}"
        )
    return dict(zip(channels, torch.split(images, list(channels.values()), dim=-3)))


class MultiStreamBackbone(nn.Module):
    """Per-modality trunks, per-level fusion, then a feature pyramid.

    Args:
        trunks: stream name -> :class:`~rgbt.detect.trunk.StageTrunk`, in stacking order. With several trunks each one
            reads its own modality's channels; with one trunk that trunk reads every stacked channel
            (single-modality model, or early fusion when ``modality_channels`` lists several).
        fusion: ``concat``, ``sum`` or ``gate`` (see :mod:`rgbt.detect.fusion`); only used with several
            trunks.
        fpn_channels: width of every pyramid level (``out_channels``).
        extra_blocks: one of :data:`EXTRA_BLOCKS`.
        modality_channels: modality name -> channels, in stacking order; defaults to the trunk names
            and their ``in_channels`` (one trunk per modality).

    Forward:
        ``x``: ``(B, sum C_m, H, W)`` float stacked in ``modalities`` order (see the module docstring),
        or a mapping modality -> ``(B, C_m, H, W)``.

        ``streams`` (optional): modality -> that stream's stage features computed before (by
        :meth:`stream_features`, batch ``B`` or 1 for one set shared by the whole batch); those
        streams' trunks are not run and their channels of ``x`` are not read. Streams given through
        :meth:`reusing` count the same way (how a torchvision detector, which calls
        ``backbone(images)``, gets them).

        Returns an ordered dict ``level name -> (B, fpn_channels, H / stride, W / stride)`` with the
        names :attr:`level_names` (``p2..p5`` then ``pool`` or ``p6, p7``) and strides :attr:`strides`.

    Attributes:
        out_channels: ``fpn_channels`` (what torchvision detection heads read).
        in_channels: total stacked input channels.
        modalities: modality names in stacking order.
        modality_channels: modality name -> channels, in stacking order.
        fusion: the fusion mode, ``early`` for one trunk over several modalities, ``single`` for one.
        level_names, strides: name and stride of every output level, finest first.
        stage_level_names: the levels computed from trunk stages (``p2..p5``), without the extra ones;
            Faster R-CNN pools RoIs from these.
    """

    def __init__(
        self,
        trunks: Mapping[str, StageTrunk],
        fusion: str = "concat",
        fpn_channels: int = 128,
        extra_blocks: str = "maxpool",
        modality_channels: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        if not trunks:
            raise ValueError("at least one trunk is required")
        if extra_blocks not in EXTRA_BLOCKS:
            raise ValueError(f"unknown extra_blocks {extra_blocks!r}; known: {', '.join(EXTRA_BLOCKS)}")
        if fpn_channels <= 0:
            raise ValueError(f"fpn_channels must be positive, got {fpn_channels}")
        names = list(trunks)
        if modality_channels is None:
            modality_channels = {name: trunks[name].in_channels for name in names}
        self.modality_channels = dict(modality_channels)
        self.modalities = tuple(self.modality_channels)
        self.in_channels = sum(self.modality_channels.values())
        if self.in_channels != sum(t.in_channels for t in trunks.values()):
            raise ValueError(
                f"modality channels {self.modality_channels} do not add up to the trunks' inputs "
                f"{ {n: t.in_channels for n, t in trunks.items()} }"
            )
        first = trunks[names[0]]
        for name in names[1:]:
            if trunks[name].strides != first.strides:
                raise ValueError(
                    f"trunk {name!r} has strides {trunks[name].strides}, {names[0]!r} {first.strides}"
                )
        self.trunks = nn.ModuleDict(trunks)
        self._split = [t.in_channels for t in trunks.values()]
        self._reused: dict[str, list[Tensor]] = {}

        stage_channels = list(first.out_channels)
        if len(names) == 1:
            self.fusion = "early" if len(self.modality_channels) > 1 else "single"
            self.fusions = nn.ModuleList()
        else:
            self.fusion = fusion
            widths = [t.out_channels for t in trunks.values()]
            self.fusions = nn.ModuleList(build_stage_fusions(fusion, widths, stage_channels))

        self.stage_level_names = [f"p{int(math.log2(s))}" for s in first.strides]
        extra: ExtraFPNBlock | None
        if extra_blocks == "maxpool":
            extra, extra_names, extra_strides = LastLevelMaxPool(), ["pool"], [2 * first.strides[-1]]
        elif extra_blocks == "p6p7":
            extra = LastLevelP6P7(fpn_channels, fpn_channels)
            extra_names, extra_strides = ["p6", "p7"], [2 * first.strides[-1], 4 * first.strides[-1]]
        else:
            extra, extra_names, extra_strides = None, [], []
        self.fpn = FeaturePyramidNetwork(stage_channels, fpn_channels, extra_blocks=extra)
        self.level_names = self.stage_level_names + extra_names
        self.strides = list(first.strides) + extra_strides
        self.out_channels = fpn_channels

    @property
    def separable_streams(self) -> tuple[str, ...]:
        """The modalities whose trunk reads only their own channels (every stream of a multi-trunk
        model; none for early fusion or a single stream): their features can be computed once and
        reused (:meth:`stream_features`, :meth:`reusing`) while the other modalities change."""
        return tuple(self.trunks) if len(self.trunks) > 1 else ()

    def _stacked(self, x: Tensor | Mapping[str, Tensor]) -> Tensor:
        if isinstance(x, Mapping):
            for name, count in self.modality_channels.items():
                if name in x and (x[name].dim() not in (3, 4) or x[name].shape[-3] != count):
                    raise ValueError(
                        f"modality {name!r} must have {count} channels, got shape {tuple(x[name].shape)}"
                    )
            x = stack_modalities(x, self.modalities)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            layout = ", ".join(f"{m}:{c}" for m, c in self.modality_channels.items())
            raise ValueError(
                f"expected a (B, {self.in_channels}, H, W) tensor stacked as [{layout}], got {tuple(x.shape)}"
            )
        return x

    def _check_stream(self, modality: str) -> None:
        if modality not in self.separable_streams:
            raise ValueError(
                f"{modality!r} is not a separate stream of this {self.fusion} backbone "
                f"(separate streams: {list(self.separable_streams) or 'none'})"
            )

    def stream_features(self, x: Tensor | Mapping[str, Tensor], modality: str) -> list[Tensor]:
        """The stage features of one stream's trunk: what :meth:`forward` fuses for ``modality``.

        Args:
            x: the stacked input (as for :meth:`forward`); only ``modality``'s channels are read.
            modality: one of :attr:`separable_streams`.

        Returns:
            one ``(B, C_i, H / stride_i, W / stride_i)`` tensor per trunk stage.

        Raises:
            ValueError: ``modality`` is not a separate stream (early fusion, single stream, unknown).
        """
        self._check_stream(modality)
        x = self._stacked(x)
        index = list(self.trunks).index(modality)
        return self.trunks[modality](torch.split(x, self._split, dim=1)[index])

    @contextmanager
    def reusing(self, streams: Mapping[str, Sequence[Tensor]]) -> Iterator[None]:
        """Within the block every :meth:`forward` takes ``streams`` (modality -> stage features of
        batch 1 or the forward's batch) instead of running those trunks.

        Raises:
            ValueError: a modality that is not a separate stream, or the wrong number of stages.
        """
        for modality, features in streams.items():
            self._check_stream(modality)
            if len(features) != len(self.stage_level_names):
                raise ValueError(
                    f"stream {modality!r}: {len(features)} stage features given, the trunk has "
                    f"{len(self.stage_level_names)}"
                )
        previous, self._reused = self._reused, {m: list(f) for m, f in streams.items()}
        try:
            yield
        finally:
            self._reused = previous

    def forward(
        self, x: Tensor | Mapping[str, Tensor], streams: Mapping[str, Sequence[Tensor]] | None = None
    ) -> OrderedDict[str, Tensor]:
        x = self._stacked(x)
        given = {**self._reused, **(streams or {})}
        for modality in given:
            self._check_stream(modality)
        parts = torch.split(x, self._split, dim=1)
        batch = x.shape[0]
        for modality, features in given.items():
            if any(f.shape[0] not in (1, batch) for f in features):
                raise ValueError(
                    f"stream {modality!r}: features of batch {[f.shape[0] for f in features]} given for a "
                    f"batch of {batch} (expected {batch} or 1)"
                )
        # A stream computed once for the whole batch is broadcast (a view, no copy) to every image.
        streams_out = [
            [f.expand(batch, *f.shape[1:]) for f in given[name]] if name in given else trunk(part)
            for (name, trunk), part in zip(self.trunks.items(), parts)
        ]
        return self.fuse_streams(streams_out)

    def all_stream_features(self, x: Tensor | Mapping[str, Tensor]) -> list[list[Tensor]]:
        """Each trunk's stage features before fusion: per trunk (stacking order), ``C2..C5`` as
        ``(B, trunk.out_channels[i], H / stride_i, W / stride_i)`` (region-level fusion reads them)."""
        x = self._stacked(x)
        return [trunk(part) for trunk, part in zip(self.trunks.values(), torch.split(x, self._split, dim=1))]

    def fuse_streams(self, streams: Sequence[Sequence[Tensor]]) -> OrderedDict[str, Tensor]:
        """The pyramid levels (see ``forward``) from every trunk's stage features (:meth:`all_stream_features`)."""
        if len(streams) == 1:
            fused = streams[0]
        else:
            fused = [fuse([s[level] for s in streams]) for level, fuse in enumerate(self.fusions)]
        return self.fpn(OrderedDict(zip(self.stage_level_names, fused)))


def build_backbone(
    trunk: str = "resnet18",
    modalities: Sequence[str] = ("rgb", "thermal"),
    fusion: str = "concat",
    fpn_channels: int = 128,
    trainable_layers: int = 5,
    weights: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    width_mult: float = 1.0,
    norm: str = "batch",
    stages: Sequence[int] = (2, 3, 4, 5),
    extra_blocks: str = "maxpool",
) -> MultiStreamBackbone:
    """Wire a fusion backbone with pedestrian-friendly defaults.

    Args:
        trunk: one of :data:`rgbt.detect.trunk.TRUNKS`, used for every stream.
        modalities: stacking order of the input channels, e.g. ``('rgb', 'thermal')`` -> ``[r, g, b, t]``.
            A single modality gives a single-stream model.
        fusion: one of :data:`FUSIONS`. ``early`` stacks every channel into one trunk whose first
            convolution takes them all; the others run one trunk per modality and fuse per stage.
        fpn_channels: pyramid width.
        trainable_layers: see :func:`~rgbt.detect.trunk.build_trunk`.
        weights: optional trunk name -> local classifier ``state_dict`` file. Trunk names are the
            modality names, or ``'+'.join(modalities)`` (e.g. ``'rgb+thermal'``) for early fusion.
        width_mult: trunk channel multiplier (below 1 for tests).
        norm: one of :data:`rgbt.detect.trunk.NORMS`.
        stages: which of ``C2..C5`` feed the pyramid; C2 (stride 4) matters for small pedestrians.
        extra_blocks: one of :data:`EXTRA_BLOCKS`.
    """
    channels = modality_channels(modalities)
    if fusion not in FUSIONS:
        raise ValueError(
            f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)} (late: build_late_fusion_detector)"
        )
    if fusion == "early" or len(channels) == 1:
        layout = {"+".join(channels): list(channels.values())}
    else:
        layout = {name: [count] for name, count in channels.items()}
    weights = dict(weights or {})
    unknown = [k for k in weights if k not in layout]
    if unknown:
        raise ValueError(f"weights given for unknown trunk {unknown[0]!r}; trunk names: {', '.join(layout)}")
    trunks = {
        name: build_trunk(
            trunk,
            group,
            stages=stages,
            width_mult=width_mult,
            norm=norm,
            trainable_layers=trainable_layers,
            weights=weights.get(name),
        )
        for name, group in layout.items()
    }
    return MultiStreamBackbone(
        trunks,
        fusion=fusion,
        fpn_channels=fpn_channels,
        extra_blocks=extra_blocks,
        modality_channels=channels,
    )
