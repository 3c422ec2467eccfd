"""Optional ArtFlow-parity objective: content and style losses on VGG-19 features.

ArtFlow trains its flow with a content loss at ``relu4_1`` and a style loss on the channel means
and standard deviations at ``relu1_1 .. relu4_1`` of an ImageNet VGG-19. Nothing can be downloaded
on our machines, so the network is built with random weights (``weights=None``) and its state is
read from a local file: a torchvision ``vgg19`` state dict (``features.N.weight`` / ``.bias`` keys;
classifier keys, if present, are ignored; keys without the ``features.`` prefix are accepted too).
The default translator objective (:mod:`rgbt.translate.losses`) needs none of this.

Images are (B, 3, H, W) floats in [0, 1] (the translation may stray outside during training);
they are normalised with the ImageNet mean and standard deviation VGG was trained with.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.vgg import cfgs, make_layers

__all__ = ["VGG_LAYERS", "VGGEncoder", "PerceptualLoss", "load_vgg_encoder"]

log = logging.getLogger(__name__)

#: ``relu1_1 .. relu4_1`` as indices into torchvision's ``vgg19().features`` (the encoder stops at 20).
VGG_LAYERS: dict[str, int] = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGEncoder(nn.Module):
    """VGG-19 ``features[:last + 1]`` (default: up to ``relu4_1``), frozen, returning the four ``reluN_1`` maps.

    Args:
        weights: a local torchvision ``vgg19`` state dict file (see the module docstring); ``None``
            or ``""``: randomly initialised fixed features (torchvision's VGG initialisation; a
            warning is logged: random-feature content/style losses are a known, weaker substitute).
        last: index of the last ``vgg19().features`` layer kept (e.g. 29 for ``relu5_1``).

    Raises:
        FileNotFoundError: ``weights`` does not exist (it is never downloaded).
        ValueError: the file is not a readable state dict, or lacks / mis-shapes a layer.
    """

    def __init__(self, weights: str | os.PathLike[str] | None, last: int = VGG_LAYERS["relu4_1"]) -> None:
        super().__init__()
        # make_layers(cfgs["E"]) is torchvision's vgg19().features with the same indices, without
        # allocating the 400 MB classifier this loss never uses.
        features = make_layers(cfgs["E"], batch_norm=False)
        if not 0 <= last < len(features):
            raise ValueError(f"last must index a vgg19().features layer (0..{len(features) - 1}), got {last!r}")
        self.features = features[: last + 1]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.features.requires_grad_(False)
        self.eval()
        if weights is None or not str(weights):
            log.warning("no VGG-19 weights file given: using randomly initialised fixed VGG features (a known, "
                        "weaker substitute for ImageNet features in content/style losses)")
            for module in self.features.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
            return
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG-19 weights not found: {path} (loss.vgg_weights must name a local torchvision vgg19 "
                "state dict; weights are never downloaded)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several unrelated types for unreadable files
            raise ValueError(f"{path}: not a readable VGG-19 state dict ({type(err).__name__}: {err})") from None
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
        own = self.features.state_dict()
        picked = {}
        for key in own:
            for candidate in (f"features.{key}", key):
                if candidate in state:
                    picked[key] = state[candidate]
                    break
            else:
                raise ValueError(f"{path}: VGG-19 state dict lacks features.{key} (is it a torchvision vgg19?)")
            if tuple(picked[key].shape) != tuple(own[key].shape):
                raise ValueError(
                    f"{path}: features.{key} has shape {tuple(picked[key].shape)}, expected {tuple(own[key].shape)}"
                )
        self.features.load_state_dict(picked)

    def train(self, mode: bool = True) -> VGGEncoder:
        # A fixed feature extractor: never leaves eval mode (it has no dropout or batch norm anyway).
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> ``[relu1_1, relu2_1, relu3_1, relu4_1]`` maps (B, C_k, H/2^k, W/2^k)."""
        return self.taps(x, sorted(VGG_LAYERS.values()))

    def taps(self, x: Tensor, indices: list[int]) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> the outputs of ``features[i]`` for the increasing ``indices``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGEncoder: expected (B, 3, H, W), got shape {tuple(x.shape)}")
        if list(indices) != sorted(set(indices)) or not indices or indices[-1] >= len(self.features):
            raise ValueError(f"VGGEncoder: indices must increase within 0..{len(self.features) - 1}, got {indices}")
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outputs = []
        stops = set(indices)
        for index, layer in enumerate(self.features[: indices[-1] + 1]):
            h = layer(h)
            if index in stops:
                outputs.append(h)
        return outputs


def _mean_std(feature: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    var, mean = torch.var_mean(feature.float(), dim=(2, 3), correction=0)
    return mean, (var + eps).sqrt()


def _normalise(feature: Tensor) -> Tensor:
    mean, std = _mean_std(feature)
    return (feature.float() - mean[:, :, None, None]) / std[:, :, None, None]


class PerceptualLoss(nn.Module):
    """ArtFlow's content + style losses, usable as :data:`rgbt.translate.base.ExtraLoss`.

    * content: MSE between the per-channel normalised ``relu4_1`` maps of the translation and of
      the content image (the thermal input): normalised because thermal and RGB differ in their
      feature statistics while the structure should agree;
    * style: sum over ``relu1_1 .. relu4_1`` of the MSE between channel means plus the MSE between
      channel standard deviations of the translation and of the style image (the paired RGB).

    Args:
        encoder: the frozen VGG-19 encoder.
        content_weight, style_weight: weights (>= 0) of the two terms in ``total``.

    ``forward(pred, content, style)`` takes three (B, 3, H, W) images (``style`` may have another
    size) and returns ``{"content", "style", "total"}`` 0-dim tensors (unweighted terms, weighted sum).
    """

    def __init__(self, encoder: VGGEncoder, content_weight: float = 1.0, style_weight: float = 1.0) -> None:
        super().__init__()
        for name, weight in (("content_weight", content_weight), ("style_weight", style_weight)):
            if not weight >= 0:
                raise ValueError(f"{name} must be >= 0, got {weight!r}")
        self.encoder = encoder
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)

    def forward(self, pred: Tensor, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        pred_feats = self.encoder(pred)
        with torch.no_grad():
            content_feat = self.encoder(content)[-1]
            style_feats = self.encoder(style)
        content_loss = F.mse_loss(_normalise(pred_feats[-1]), _normalise(content_feat))
        style_terms = []
        for mine, theirs in zip(pred_feats, style_feats):
            mean, std = _mean_std(mine)
            target_mean, target_std = _mean_std(theirs)
            style_terms.append(F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std))
        style_loss = torch.stack(style_terms).sum()
        total = self.content_weight * content_loss + self.style_weight * style_loss
        return {"content": content_loss, "style": style_loss, "total": total}


def load_vgg_encoder(weights: str | os.PathLike[str], device: torch.device | str = "cpu") -> VGGEncoder:
    """:class:`VGGEncoder` from a local weights file, on ``device``; a clear error when ``weights`` is empty."""
    if not str(weights):
        raise ValueError(
            "the VGG content/style losses need loss.vgg_weights: a local torchvision vgg19 state dict "
            "(never downloaded); set loss.content=0 and loss.style=0 to train without them"
        )
    return VGGEncoder(weights).to(device)
