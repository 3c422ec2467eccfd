"""Task-aware translator training: a frozen detector's loss on the fake RGB (HalluciDet / ModTr style).

A translator trained only to look like RGB may paint warm pedestrians in the colours of their
surroundings: the content is kept (the flow is invertible) but a detector no longer sees it. Adding
the detection loss of a fixed, already trained detector, run on the fake RGB of the training step
against the ground-truth boxes, makes the translator keep what that detector needs.

:class:`DetectorLoss` holds the detector frozen:

* its parameters never receive gradients (``requires_grad`` off) and are never in the translator's
  optimiser or checkpoint (the detector is not a submodule of the translator);
* it runs in training mode, which is what makes a torchvision detector return its losses, but
  every BatchNorm layer is kept in evaluation mode, so its running statistics never move;
* the gradient flows through the detector's input only, back into the translator.

Inputs of the detector are stacked in its ``modalities`` order: ``rgb`` and ``fake_rgb`` take the
fake RGB, ``thermal`` the thermal crop (a fusion detector sees the pair a user would deploy).

Crops are seen at the scale of their frames. A torchvision detector resizes every input so that its
short side reaches ``min_size`` (long side at most ``max_size``): a 96x128 crop of a 256x320 frame
would be magnified 2.5x for a detector trained on whole 256x320 frames (resize factor 1), and its
pedestrians would look 2.5 times taller than any it was trained on. Given ``frame_size``, each crop
is resized by the factor the detector applies to a whole frame of that size instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from rgbt.translate.base import ExtraLoss

__all__ = ["DetectorLoss", "DETECTOR_INPUTS", "resize_factor"]

#: Modalities a frozen detector may take: the two RGB names get the fake RGB, ``thermal`` the thermal frame.
DETECTOR_INPUTS = ("rgb", "fake_rgb", "thermal")


def resize_factor(detector: nn.Module, size: tuple[int, int]) -> float:
    """The factor by which ``detector`` (torchvision ``GeneralizedRCNNTransform`` as ``.transform``)
    resizes an image of ``size = (height, width)`` at inference: ``min(min_size / short side,
    max_size / long side)`` with the last of its ``min_size`` values (the one inference uses).

    Raises:
        ValueError: a non-positive size, or a detector without such a transform.
    """
    transform = getattr(detector, "transform", None)
    if transform is None or not hasattr(transform, "min_size") or not hasattr(transform, "max_size"):
        raise ValueError(f"{type(detector).__name__} has no torchvision resize transform (.transform.min_size)")
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive (height, width), got {tuple(size)}")
    return min(float(transform.min_size[-1]) / min(height, width), float(transform.max_size) / max(height, width))


class DetectorLoss:
    """The weighted detection loss of a frozen detector on fake RGB.

    Args:
        detector: an :mod:`rgbt.detect` detector (torchvision contract: ``detector(images, targets)``
            returns a dict of 0-dim losses in training mode), on the translator's device. It is
            frozen in place: ``requires_grad`` is switched off for every parameter.
        modalities: the detector's input modalities in stacking order (see the module docstring).
        weight: the factor of the summed detection losses in the translator's objective (> 0).
        frame_size: ``(height, width)`` of the frames the crops are cut from: every crop is resized
            by the factor the detector's transform applies to such a frame (see the module
            docstring). ``None``: the detector's own resize rule on the crop itself.

    Raises:
        ValueError: a non-positive weight, no modality, an unknown modality, or a detector without
            an RGB input (the term would not depend on the translation).
    """

    def __init__(self, detector: nn.Module, modalities: Sequence[str], weight: float,
                 frame_size: tuple[int, int] | None = None) -> None:
        if not weight > 0:
            raise ValueError(f"the detector loss weight must be > 0, got {weight!r}")
        modalities = tuple(modalities)
        unknown = [m for m in modalities if m not in DETECTOR_INPUTS]
        if not modalities or unknown:
            raise ValueError(f"detector modalities must be some of {DETECTOR_INPUTS}, got {list(modalities)}")
        if not any(m in ("rgb", "fake_rgb") for m in modalities):
            raise ValueError(f"the frozen detector takes {list(modalities)}: without an RGB input its loss does "
                             "not depend on the translation")
        self.detector = detector
        self.modalities = modalities
        self.weight = float(weight)
        self.frame_scale = None if frame_size is None else resize_factor(detector, frame_size)
        for parameter in detector.parameters():
            parameter.requires_grad_(False)

    def _frozen_train_mode(self) -> None:
        self.detector.train()
        for module in self.detector.modules():
            if isinstance(module, _BatchNorm):
                module.eval()

    def __call__(self, fake: Tensor, thermal: Tensor, targets: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """``{'detector': summed detection losses, 'total': weight * detector}`` (0-dim tensors).

        Args:
            fake: (B, 3, H, W) fake RGB in [0, 1], with the translator's graph.
            thermal: (B, 1, H, W) the thermal crops, same size.
            targets: per image ``{'boxes': (N, 4) float xyxy pixels of the crop, 'labels': (N,)
                int64, 'ignore': (N,) bool}`` on the detector's device (N may be 0).
        """
        if fake.dim() != 4 or thermal.dim() != 4 or fake.shape[0] != thermal.shape[0] or len(targets) != fake.shape[0]:
            raise ValueError(f"fake {tuple(fake.shape)}, thermal {tuple(thermal.shape)} and {len(targets)} targets "
                             "are not one batch")
        parts = [thermal.to(fake.dtype) if m == "thermal" else fake for m in self.modalities]
        images = list(torch.cat(parts, dim=1).unbind(0))
        was_training = self.detector.training
        self._frozen_train_mode()
        transform = self.detector.transform if self.frame_scale is not None else None
        sizes = (transform.min_size, transform.max_size) if transform is not None else None
        try:
            if transform is not None:
                # The short / long side the crop must reach to be resized by the frame's factor.
                height, width = fake.shape[-2:]
                transform.min_size = (self.frame_scale * min(height, width),)
                transform.max_size = self.frame_scale * max(height, width)
            losses: dict[str, Any] = self.detector(images, list(targets))
        finally:
            if transform is not None and sizes is not None:
                transform.min_size, transform.max_size = sizes
            self.detector.train(was_training)
        total = torch.stack([value.float() for value in losses.values()]).sum()
        return {"detector": total, "total": self.weight * total}

    def extra_loss(self, thermal: Tensor, targets: Sequence[dict[str, Tensor]],
                   base: ExtraLoss | None = None) -> ExtraLoss:
        """An :data:`~rgbt.translate.base.ExtraLoss` for one training batch: this term on the
        translation (clamped to [0, 1] as it is stored), plus ``base`` when given."""

        def combined(pred: Tensor, content: Tensor, rgb: Tensor) -> dict[str, Tensor]:
            parts = dict(base(pred, content, rgb)) if base is not None else {}
            term = self(pred.clamp(0.0, 1.0), thermal, targets)
            total = term.pop("total")
            parts["total"] = parts["total"] + total if "total" in parts else total
            return {**parts, **term}

        return combined
