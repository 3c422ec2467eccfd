"""Trunks: one torchvision classification network cut into the stage features ``C2..C5``.

A trunk reads one stacked group of modality channels (``[1]`` thermal, ``[3]`` rgb, ``[3, 1]`` rgb+thermal
for early fusion) and returns the stage features at strides 4, 8, 16 and 32, which
:class:`rgbt.detect.backbone.MultiStreamBackbone` fuses across streams and feeds to its pyramid.

Nothing here downloads weights: trunks are built with ``weights=None`` and a local ``state_dict`` file
of the matching torchvision classifier can be loaded per trunk (:func:`load_trunk_weights`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet34, resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops.misc import FrozenBatchNorm2d

#: Trunk names accepted by :func:`build_trunk`.
TRUNKS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "mobilenet_v3_small")

#: Normalisation layers of the trunks: trainable BatchNorm (the default: we train from scratch),
#: GroupNorm (small batches), frozen BatchNorm (fine-tuning from a local weights file).
NORMS: tuple[str, ...] = ("batch", "group", "frozen")

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


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, or the largest count below that divides ``num_channels``.

    The divisor keeps GroupNorm valid for the narrow trunks and heads of tests and ablations.
    """
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
    return group_norm


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
