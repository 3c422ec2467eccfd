"""Multi-stream fusion backbones: one torchvision trunk per modality, fused at every pyramid level.

Input layout (one convention for every detector in :mod:`rgbt.detect`): the modalities of a frame are
stacked along the channel axis in a fixed *modality order*, each taking :data:`MODALITY_CHANNELS`
channels. ``('rgb', 'thermal')`` gives a ``(B, 4, H, W)`` tensor with channels ``[r, g, b, t]``;
``('thermal', 'fake_rgb')`` gives ``[t, r', g', b']``. Values are float in ``[0, 1]`` before the
detector's normalisation (``image_mean`` / ``image_std`` per stacked channel). A single stacked tensor
is what torchvision's ``GeneralizedRCNNTransform`` hands a backbone, so every torchvision head plugs in
unchanged; the backbone splits it again by the known channel counts. The stacking itself is
:func:`rgbt.data.dataset.stack_modalities` (the dataset owns the per-modality tensors).

Pyramid levels: a trunk yields the stage features ``C2..C5`` (strides 4, 8, 16, 32); the streams are
fused per stage, a :class:`torchvision.ops.FeaturePyramidNetwork` turns them into ``p2..p5`` with
``fpn_channels`` channels each, and an extra block adds ``pool`` (stride 64, max-pooled ``p5``) or
``p6``/``p7`` (strided convolutions, RetinaNet style).

Nothing here downloads weights: trunks are built with ``weights=None`` and a local ``state_dict`` file
of the matching torchvision classifier can be loaded per trunk (:func:`load_trunk_weights`).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet34, resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool, LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from rgbt.data.dataset import stack_modalities

#: Input channels of each modality name (the names of :data:`rgbt.data.sample.MODALITIES`).
MODALITY_CHANNELS: dict[str, int] = {"rgb": 3, "thermal": 1, "fake_rgb": 3}

#: Trunk names accepted by :func:`build_trunk`.
TRUNKS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "mobilenet_v3_small")

#: Fusion modes of :func:`build_backbone` (``late`` fusion lives in :mod:`rgbt.detect.late_fusion`).
FUSIONS: tuple[str, ...] = ("concat", "sum", "gate", "early")

#: Normalisation layers of the trunks: trainable BatchNorm (the default: we train from scratch),
#: GroupNorm (small batches), frozen BatchNorm (fine-tuning from a local weights file).
NORMS: tuple[str, ...] = ("batch", "group", "frozen")

#: Extra pyramid levels above ``p5``.
EXTRA_BLOCKS: tuple[str, ...] = ("maxpool", "p6p7", "none")

_STAGE_STRIDES: dict[int, int] = {2: 4, 3: 8, 4: 16, 5: 32}

_RESNETS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int], Callable[..., ResNet]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], resnet18),
    "resnet34": (BasicBlock, [3, 4, 6, 3], resnet34),
    "resnet50": (Bottleneck, [3, 4, 6, 3], resnet50),
}

_MOBILENETS: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
}


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


def adapt_first_conv_weight(weight: Tensor, channels: Sequence[int]) -> Tensor:
    """Turn a 3-channel (RGB) first-convolution kernel into one for the stacked channel layout.

    Each 3-channel group gets the RGB kernel unchanged; each 1-channel group (thermal) gets the sum of
    the RGB kernels over their input channels, so that on a grey image ``g`` the response equals the
    RGB kernel's response to ``[g, g, g]`` (how KAIST stores thermal). With several groups (early
    fusion) the result is divided by the number of groups, so the response to modalities carrying the
    same image equals the original's and the next normalisation layer starts in range.

    Args:
        weight: ``(O, 3, kH, kW)`` kernel.
        channels: channel count of each stacked group, each 1 or 3, e.g. ``[3, 1]`` for rgb+thermal.

    Returns:
        ``(O, sum(channels), kH, kW)`` kernel.
    """
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected an (O, 3, kH, kW) kernel, got shape {tuple(weight.shape)}")
    if not channels or any(c not in (1, 3) for c in channels):
        raise ValueError(f"channel groups must each be 1 or 3, got {list(channels)}")
    parts = [weight if c == 3 else weight.sum(dim=1, keepdim=True) for c in channels]
    return torch.cat(parts, dim=1) / len(channels)


def _group_norm(num_channels: int) -> nn.GroupNorm:
    # The largest group count <= 32 that divides the width keeps GroupNorm valid for narrow test trunks.
    return nn.GroupNorm(math.gcd(32, num_channels), num_channels)


def _norm_factory(norm: str, trunk: str) -> Callable[[int], nn.Module] | None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")
    mobilenet = trunk.startswith("mobilenet")
    if norm == "batch":
        # None keeps torchvision's own choice (MobileNetV3 uses eps=1e-3, momentum=0.01).
        return None if mobilenet else nn.BatchNorm2d
    if norm == "frozen":
        return partial(FrozenBatchNorm2d, eps=1e-3) if mobilenet else FrozenBatchNorm2d
    return _group_norm


class _NarrowResNet(ResNet):
    """torchvision's ResNet with stage widths ``(w, 2w, 4w, 8w)`` instead of ``(64, 128, 256, 512)``.

    Only for reduced-width models (tests, ablations); module names equal torchvision's, so state dicts
    keep the same keys. ``ResNet.__init__`` hard-codes the width 64, hence the own constructor; the
    blocks come from torchvision's ``_make_layer``.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        width: int,
        norm_layer: Callable[[int], nn.Module],
    ) -> None:
        nn.Module.__init__(self)
        self._norm_layer = norm_layer
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, 1000)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class StageTrunk(nn.Module):
    """A classification trunk cut into stage features ``C2..C5`` (a subset, bottom to top).

    Args:
        body: module mapping ``(B, in_channels, H, W)`` to an ordered dict of stage features, e.g. a
            :class:`~torchvision.models._utils.IntermediateLayerGetter`.
        in_channels: input channels the first convolution takes.
        out_channels: channels of each returned stage.
        strides: stride of each returned stage w.r.t. the input (4, 8, 16, 32 for ``C2..C5``).

    Forward: ``(B, in_channels, H, W)`` float -> list of ``(B, out_channels[i], H / strides[i],
    W / strides[i])`` (sizes rounded up by the strided convolutions).
    """

    def __init__(
        self, body: nn.Module, in_channels: int, out_channels: Sequence[int], strides: Sequence[int]
    ) -> None:
        super().__init__()
        if len(out_channels) != len(strides):
            raise ValueError(
                f"out_channels {list(out_channels)} and strides {list(strides)} differ in length"
            )
        self.body = body
        self.in_channels = in_channels
        self.out_channels = list(out_channels)
        self.strides = list(strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.body(x).values())


def _first_conv_slot(model: nn.Module, trunk: str) -> tuple[nn.Module, str, str]:
    """(parent module, attribute name, state-dict key) of the trunk's first convolution."""
    if trunk in _RESNETS:
        return model, "conv1", "conv1.weight"
    return model.features[0], "0", "features.0.0.weight"


def _replace_first_conv(model: nn.Module, trunk: str, in_channels: int) -> None:
    parent, attr, _ = _first_conv_slot(model, trunk)
    old = getattr(parent, attr)
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        bias=old.bias is not None,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    setattr(parent, attr, new)


def _stage_groups(model: nn.Module, trunk: str) -> tuple[list[list[nn.Module]], dict[int, str]]:
    """The five trainable groups (stem, C2..C5 stages) and the child name that ends each stage."""
    if trunk in _RESNETS:
        groups = [[model.conv1, model.bn1], [model.layer1], [model.layer2], [model.layer3], [model.layer4]]
        return groups, {2: "layer1", 3: "layer2", 4: "layer3", 5: "layer4"}
    features = model.features
    # MobileNetV3 marks its stride-2 blocks with `_is_cn`; a stage ends just before the next one.
    starts = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    if len(starts) != 4:
        raise ValueError(f"{trunk}: expected 4 stride-2 blocks after the stem, found {len(starts)}")
    bounds = [0, *starts, len(features)]
    groups = [list(features[bounds[i] : bounds[i + 1]]) for i in range(5)]
    ends = {2: starts[1] - 1, 3: starts[2] - 1, 4: starts[3] - 1, 5: len(features) - 1}
    return groups, {stage: str(index) for stage, index in ends.items()}


def load_trunk_weights(
    model: nn.Module, path: str | os.PathLike[str], trunk: str, channels: Sequence[int]
) -> None:
    """Load a local torchvision classifier ``state_dict`` into a trunk's classification model.

    The file is what ``torch.save(torchvision.models.<trunk>().state_dict(), path)`` writes (a
    ``{'state_dict': ...}`` or ``{'model': ...}`` wrapper is unwrapped). Classifier keys (``fc.*``,
    ``classifier.*``) are dropped: the detector never uses them. A 3-channel first convolution is
    adapted to the model's stacked input (:func:`adapt_first_conv_weight`), e.g. summed for thermal.

    Args:
        model: the torchvision classification model whose first conv already takes ``sum(channels)``.
        path: ``.pth`` file on local disk.
        trunk: trunk name (one of :data:`TRUNKS`).
        channels: channel count of each stacked modality the first convolution sees.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a state dict, or a key is missing, unexpected or mis-shaped.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"trunk weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict of tensors, got {type(state).__name__}")
    head = "fc." if trunk in _RESNETS else "classifier."
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    own = model.state_dict()
    _, _, conv_key = _first_conv_slot(model, trunk)
    weight, expected = state.get(conv_key), own[conv_key]
    if (
        weight is not None
        and weight.dim() == 4
        and weight.shape[1] == 3
        and weight.shape != expected.shape
        and (weight.shape[0], *weight.shape[2:]) == (expected.shape[0], *expected.shape[2:])
    ):
        state[conv_key] = adapt_first_conv_weight(weight, channels)
    for key, value in state.items():
        if key in own and value.shape != own[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)}, "
                f"the {trunk} trunk expects {tuple(own[key].shape)}"
            )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: does not match a {trunk} trunk; missing keys {missing[:5]}, "
            f"unexpected keys {list(result.unexpected_keys)[:5]}"
        )


def build_trunk(
    name: str = "resnet18",
    channels: Sequence[int] = (3,),
    *,
    stages: Sequence[int] = (2, 3, 4, 5),
    width_mult: float = 1.0,
    norm: str = "batch",
    trainable_layers: int = 5,
    weights: str | os.PathLike[str] | None = None,
) -> StageTrunk:
    """Build one torchvision trunk (``weights=None``) returning stage features.

    Args:
        name: one of :data:`TRUNKS`.
        channels: channel count of each modality stacked into this trunk's input: ``[1]`` thermal,
            ``[3]`` rgb, ``[3, 1]`` early fusion of rgb+thermal. The first convolution takes the sum.
        stages: which of ``C2..C5`` (2, 3, 4, 5) to return, ascending.
        width_mult: channel multiplier (ResNet: stem width ``round(64 * width_mult)``; MobileNetV3:
            torchvision's ``width_mult``). Values below 1 are for tests and ablations.
        norm: one of :data:`NORMS`.
        trainable_layers: how many of the five groups (stem, C2, C3, C4, C5), counted from the top,
            keep ``requires_grad``; 5 trains everything (the default: we start from scratch).
        weights: optional local ``state_dict`` file of the torchvision classifier (see
            :func:`load_trunk_weights`); loaded before freezing.
    """
    if name not in TRUNKS:
        raise ValueError(f"unknown trunk {name!r}; known: {', '.join(TRUNKS)}")
    if not stages or list(stages) != sorted(set(stages)) or any(s not in _STAGE_STRIDES for s in stages):
        raise ValueError(f"stages must be ascending values from 2..5, got {list(stages)}")
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers must be in [0, 5], got {trainable_layers}")
    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive, got {width_mult}")
    norm_layer = _norm_factory(norm, name)
    if name in _RESNETS:
        block, layers, builder = _RESNETS[name]
        width = max(1, round(64 * width_mult))
        if width == 64:
            model = builder(weights=None, norm_layer=norm_layer)
        else:
            model = _NarrowResNet(block, layers, width, norm_layer)
    else:
        kwargs = {} if norm_layer is None else {"norm_layer": norm_layer}
        model = _MOBILENETS[name](weights=None, width_mult=width_mult, **kwargs)
    in_channels = sum(channels)
    _replace_first_conv(model, name, in_channels)
    if weights is not None:
        load_trunk_weights(model, weights, name, channels)
    groups, stage_ends = _stage_groups(model, name)
    for group in groups[: 5 - trainable_layers]:
        for module in group:
            module.requires_grad_(False)
    source = model if name in _RESNETS else model.features
    body = IntermediateLayerGetter(source, {stage_ends[s]: f"c{s}" for s in stages})
    out_channels = _probe_channels(body, in_channels)
    return StageTrunk(body, in_channels, out_channels, [_STAGE_STRIDES[s] for s in stages])


def _probe_channels(body: nn.Module, in_channels: int) -> list[int]:
    """Stage widths, read off one tiny forward pass (robust to every trunk's bookkeeping)."""
    was_training = body.training
    body.eval()
    with torch.no_grad():
        outputs = body(torch.zeros(1, in_channels, 64, 64))
    body.train(was_training)
    return [int(t.shape[1]) for t in outputs.values()]


class ConcatFusion(nn.Module):
    """Halfway fusion: concatenate the streams, then a 1x1 convolution (network-in-network) + ReLU.

    Args:
        in_channels: channels of each stream at this level.
        out_channels: channels of the fused map.

    Forward: list of ``(B, in_channels[m], H, W)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(sum(in_channels), out_channels, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, streams: Sequence[Tensor]) -> Tensor:
        return self.relu(self.reduce(torch.cat(list(streams), dim=1)))


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


class MultiStreamBackbone(nn.Module):
    """Per-modality trunks, per-level fusion, then a feature pyramid.

    Args:
        trunks: stream name -> :class:`StageTrunk`, in stacking order. With several trunks each one
            reads its own modality's channels; with one trunk that trunk reads every stacked channel
            (single-modality model, or early fusion when ``modality_channels`` lists several).
        fusion: ``concat``, ``sum`` or ``gate`` (see :class:`ConcatFusion`, :class:`SumFusion`,
            :class:`GateFusion`); only used with several trunks.
        fpn_channels: width of every pyramid level (``out_channels``).
        extra_blocks: one of :data:`EXTRA_BLOCKS`.
        modality_channels: modality name -> channels, in stacking order; defaults to the trunk names
            and their ``in_channels`` (one trunk per modality).

    Forward:
        ``x``: ``(B, sum C_m, H, W)`` float stacked in ``modalities`` order (see the module docstring),
        or a mapping modality -> ``(B, C_m, H, W)``.

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

        stage_channels = list(first.out_channels)
        if len(names) == 1:
            self.fusion = "early" if len(self.modality_channels) > 1 else "single"
            self.fusions = nn.ModuleList()
        else:
            self.fusion = fusion
            self.fusions = nn.ModuleList(self._fusion_modules(fusion, trunks, stage_channels))

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

    @staticmethod
    def _fusion_modules(
        fusion: str, trunks: Mapping[str, StageTrunk], stage_channels: list[int]
    ) -> list[nn.Module]:
        if fusion not in ("concat", "sum", "gate"):
            raise ValueError(f"unknown fusion {fusion!r} for several trunks; known: concat, sum, gate")
        widths = [t.out_channels for t in trunks.values()]
        if fusion == "concat":
            return [ConcatFusion([w[i] for w in widths], c) for i, c in enumerate(stage_channels)]
        if any(w != widths[0] for w in widths):
            raise ValueError(f"{fusion} fusion needs equal stream widths, got {widths}")
        if fusion == "sum":
            return [SumFusion() for _ in stage_channels]
        return [GateFusion(len(widths), c) for c in stage_channels]

    def forward(self, x: Tensor | Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
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
        streams = [
            trunk(part) for trunk, part in zip(self.trunks.values(), torch.split(x, self._split, dim=1))
        ]
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
        trunk: one of :data:`TRUNKS`, used for every stream.
        modalities: stacking order of the input channels, e.g. ``('rgb', 'thermal')`` -> ``[r, g, b, t]``.
            A single modality gives a single-stream model.
        fusion: one of :data:`FUSIONS`. ``early`` stacks every channel into one trunk whose first
            convolution takes them all; the others run one trunk per modality and fuse per stage.
        fpn_channels: pyramid width.
        trainable_layers: see :func:`build_trunk`.
        weights: optional trunk name -> local classifier ``state_dict`` file. Trunk names are the
            modality names, or ``'+'.join(modalities)`` (e.g. ``'rgb+thermal'``) for early fusion.
        width_mult: trunk channel multiplier (below 1 for tests).
        norm: one of :data:`NORMS`.
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
