"""Builders of fusion pedestrian detectors over torchvision's Faster R-CNN, RetinaNet and FCOS.

Contract shared by every model built here (see :mod:`rgbt.detect.heads` for the details):

* images: list of ``(C, H, W)`` float tensors in ``[0, 1]``, modalities stacked along the channels in
  the backbone's ``modalities`` order (``('rgb', 'thermal')`` -> ``[r, g, b, t]``);
* targets (training): list of ``{'boxes': (N, 4) float xyxy pixels, 'labels': (N,) int64 (1 = person),
  'ignore': (N,) bool}``; ignore rows are ignore regions, never positives and never negatives;
* output (evaluation): list of ``{'boxes': (D, 4) float xyxy pixels, 'scores': (D,) in [0, 1],
  'labels': (D,) int64}``, at most ``detections_per_img`` per image, scores above ``score_thresh``.

Pedestrian defaults: native resolution (``image_size`` sets torchvision's ``min_size``/``max_size`` so a
512x640 KAIST frame is processed at 512x640, not upscaled to 800), tall anchors (height / width 2 and
2.5, heights from 16 px), a low score threshold (0.01) and 100 detections per image so miss-rate curves
reach high false-positive rates, and normalisation statistics per stacked channel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from rgbt.detect.anchors import PedestrianAnchorGenerator, pedestrian_anchor_heights
from rgbt.detect.backbone import MultiStreamBackbone, build_backbone, modality_channels
from rgbt.detect.heads import (
    FusionFasterRCNN,
    IgnoreAwareFCOS,
    IgnoreAwareFCOSHead,
    IgnoreAwareRetinaNet,
    IgnoreAwareRoIHeads,
    IgnoreAwareRPN,
)
from rgbt.detect.late_fusion import LateFusionDetector, fuse_detections
from rgbt.detect.rfa import ALIGNS, add_region_alignment
from rgbt.detect.trunk import group_norm

__all__ = [
    "ARCHS",
    "DEFAULT_MEAN",
    "DEFAULT_STD",
    "LateFusionDetector",
    "build_detector",
    "build_fusion_detector",
    "build_late_fusion_detector",
    "fuse_detections",
]

#: Detection heads of :func:`build_detector`.
ARCHS: tuple[str, ...] = ("fasterrcnn", "retinanet", "fcos")

#: Default per-channel normalisation (inputs in [0, 1]); models train from scratch, so a neutral
#: centring is enough. Pass dataset statistics for better-conditioned inputs.
DEFAULT_MEAN: float = 0.5
DEFAULT_STD: float = 0.25


def _normalisation(
    channels: int, image_mean: Sequence[float] | None, image_std: Sequence[float] | None
) -> tuple[list[float], list[float]]:
    mean = [DEFAULT_MEAN] * channels if image_mean is None else [float(v) for v in image_mean]
    std = [DEFAULT_STD] * channels if image_std is None else [float(v) for v in image_std]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"image_mean and image_std need {channels} values (one per stacked channel), got {mean}, {std}"
        )
    if min(std) <= 0:
        raise ValueError(f"image_std must be positive, got {std}")
    return mean, std


def build_detector(
    arch: str = "fasterrcnn",
    backbone: MultiStreamBackbone | None = None,
    num_classes: int = 2,
    *,
    image_size: tuple[int, int] = (512, 640),
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    anchor_sizes: Sequence[float] | None = None,
    aspect_ratios: Sequence[float] = (2.0, 2.5),
    scales_per_octave: int = 2,
    score_thresh: float = 0.01,
    nms_thresh: float | None = None,
    detections_per_img: int = 100,
    ignore_thresh: float = 0.5,
    representation_size: int = 1024,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    proposals: tuple[int, int] = (2000, 1000),
) -> nn.Module:
    """Build a fusion detector: a backbone plus an ignore-aware torchvision head.

    Args:
        arch: one of :data:`ARCHS`.
        backbone: a :class:`MultiStreamBackbone` (default: ``build_backbone()``: resnet18, rgb+thermal,
            concat fusion). Its ``modalities`` fix the stacked input channels.
        num_classes: classifier outputs including the background slot 0 (2: background + person).
            RetinaNet/FCOS use torchvision's sigmoid heads with the same label indices (slot 0 unused).
        image_size: ``(height, width)`` of the dataset frames; the transform's ``min_size`` /
            ``max_size`` are its short / long side, so such frames keep their native resolution.
        image_mean, image_std: one value per stacked channel, for inputs in ``[0, 1]``; default
            :data:`DEFAULT_MEAN` / :data:`DEFAULT_STD` everywhere.
        anchor_sizes: smallest anchor height in pixels per pyramid level (Faster R-CNN, RetinaNet);
            default ``4 * stride`` (16, 32, 64, 128, 256 for the default pyramid). FCOS places one
            stride-sized location per pixel and ignores this.
        aspect_ratios: anchor height / width ratios (torchvision's convention).
        scales_per_octave: anchor heights per level, ``size * 2 ** (k / scales_per_octave)``.
        score_thresh: minimum score of a returned detection (low: miss-rate curves need the tail).
        nms_thresh: final NMS IoU; default 0.5 (Faster R-CNN, RetinaNet), 0.6 (FCOS).
        detections_per_img: maximum detections per image.
        ignore_thresh: intersection-over-candidate-area with an ignore box above which a negative is
            discarded (see :mod:`rgbt.detect.heads`).
        representation_size: width of Faster R-CNN's two-layer box head.
        rpn_batch_size_per_image, box_batch_size_per_image: sampled anchors / proposals per image.
        proposals: Faster R-CNN proposals kept per image ``(training, testing)`` before and after the
            RPN's NMS (fewer proposals make RoI pooling, the dominant CPU cost, cheaper).

    Returns:
        A :class:`FusionFasterRCNN`, :class:`IgnoreAwareRetinaNet` or :class:`IgnoreAwareFCOS`.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background slot and must be >= 2, got {num_classes}")
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}")
    if not 0 <= score_thresh < 1:
        raise ValueError(f"score_thresh must be in [0, 1), got {score_thresh}")
    if detections_per_img < 1:
        raise ValueError(f"detections_per_img must be >= 1, got {detections_per_img}")
    if backbone is None:
        backbone = build_backbone()
    for attribute in ("out_channels", "in_channels", "strides", "level_names"):
        if not hasattr(backbone, attribute):
            raise ValueError(f"backbone lacks the attribute {attribute!r} (use build_backbone)")
    mean, std = _normalisation(backbone.in_channels, image_mean, image_std)
    min_size, max_size = min(image_size), max(image_size)
    channels = backbone.out_channels

    # GroupNorm in the dense heads (torchvision's v2 recipe) trains stably from scratch.
    if arch == "fcos":
        anchors = AnchorGenerator(tuple((s,) for s in backbone.strides), ((1.0,),) * len(backbone.strides))
        head = IgnoreAwareFCOSHead(
            channels, 1, num_classes, norm_layer=group_norm, ignore_thresh=ignore_thresh
        )
        return IgnoreAwareFCOS(
            backbone,
            num_classes,
            min_size=min_size,
            max_size=max_size,
            image_mean=mean,
            image_std=std,
            anchor_generator=anchors,
            head=head,
            score_thresh=score_thresh,
            nms_thresh=0.6 if nms_thresh is None else nms_thresh,
            detections_per_img=detections_per_img,
        )

    heights = pedestrian_anchor_heights(backbone.strides, anchor_sizes, scales_per_octave)
    anchors = PedestrianAnchorGenerator(heights, aspect_ratios)
    num_anchors = anchors.num_anchors_per_location()[0]
    nms = 0.5 if nms_thresh is None else nms_thresh
    if arch == "retinanet":
        head = RetinaNetHead(channels, num_anchors, num_classes, norm_layer=group_norm)
        return IgnoreAwareRetinaNet(
            backbone,
            num_classes,
            min_size=min_size,
            max_size=max_size,
            image_mean=mean,
            image_std=std,
            anchor_generator=anchors,
            head=head,
            score_thresh=score_thresh,
            nms_thresh=nms,
            detections_per_img=detections_per_img,
            ignore_thresh=ignore_thresh,
        )

    rpn = IgnoreAwareRPN(
        anchors,
        RPNHead(channels, num_anchors),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=rpn_batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": proposals[0], "testing": proposals[1]},
        post_nms_top_n={"training": proposals[0], "testing": proposals[1]},
        nms_thresh=0.7,
        ignore_thresh=ignore_thresh,
    )
    pool = MultiScaleRoIAlign(featmap_names=list(backbone.stage_level_names), output_size=7, sampling_ratio=2)
    roi_heads = IgnoreAwareRoIHeads(
        pool,
        TwoMLPHead(channels * 7 * 7, representation_size),
        FastRCNNPredictor(representation_size, num_classes),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=score_thresh,
        nms_thresh=nms,
        detections_per_img=detections_per_img,
        ignore_thresh=ignore_thresh,
    )
    transform = GeneralizedRCNNTransform(min_size, max_size, mean, std)
    return FusionFasterRCNN(backbone, rpn, roi_heads, transform)


def build_late_fusion_detector(
    arch: str = "fasterrcnn",
    trunk: str = "resnet18",
    modalities: Sequence[str] = ("rgb", "thermal"),
    num_classes: int = 2,
    *,
    fpn_channels: int = 128,
    trainable_layers: int = 5,
    weights: Mapping[str, str | os.PathLike[str]] | None = None,
    width_mult: float = 1.0,
    norm: str = "batch",
    iou_thresh: float = 0.55,
    method: str = "vote",
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    detections_per_img: int = 100,
    **detector_kwargs,
) -> LateFusionDetector:
    """Late fusion baseline: one single-modality ``arch`` detector per modality (own trunk and head).

    Args:
        arch, num_classes, detections_per_img, **detector_kwargs: passed to :func:`build_detector`.
        trunk, fpn_channels, trainable_layers, width_mult, norm: passed to :func:`build_backbone`.
        modalities: stacking order of the input channels (two or more).
        weights: optional modality -> local trunk weights file.
        iou_thresh, method: see :func:`rgbt.detect.late_fusion.fuse_detections`.
        image_mean, image_std: one value per *stacked* channel; split per modality.
    """
    channels = modality_channels(modalities)
    mean, std = _normalisation(sum(channels.values()), image_mean, image_std)
    weights = dict(weights or {})
    unknown = [k for k in weights if k not in channels]
    if unknown:
        raise ValueError(
            f"weights given for unknown modality {unknown[0]!r}; modalities: {', '.join(channels)}"
        )
    detectors, start = {}, 0
    for name, count in channels.items():
        backbone = build_backbone(
            trunk,
            (name,),
            fpn_channels=fpn_channels,
            trainable_layers=trainable_layers,
            weights={name: weights[name]} if name in weights else None,
            width_mult=width_mult,
            norm=norm,
        )
        detectors[name] = build_detector(
            arch,
            backbone,
            num_classes,
            image_mean=mean[start : start + count],
            image_std=std[start : start + count],
            detections_per_img=detections_per_img,
            **detector_kwargs,
        )
        start += count
    return LateFusionDetector(
        detectors, iou_thresh=iou_thresh, method=method, detections_per_img=detections_per_img
    )


def build_fusion_detector(
    arch: str = "fasterrcnn",
    trunk: str = "resnet18",
    modalities: Sequence[str] = ("rgb", "thermal"),
    fusion: str = "concat",
    num_classes: int = 2,
    *,
    fpn_channels: int = 128,
    trainable_layers: int = 5,
    weights: Mapping[str, str | os.PathLike[str]] | None = None,
    width_mult: float = 1.0,
    norm: str = "batch",
    align: str = "none",
    align_loss_weight: float = 1.0,
    align_max_offset: float = 0.5,
    align_prior: str = "none",
    **detector_kwargs,
) -> nn.Module:
    """One entry point for every fusion mode: ``concat``, ``sum``, ``gate``, ``early`` or ``late``.

    ``late`` goes to :func:`build_late_fusion_detector` (``iou_thresh`` / ``method`` may be passed in
    ``detector_kwargs``); the others build a backbone with :func:`build_backbone` and a head with
    :func:`build_detector`, which receive the remaining keyword arguments. ``align='rfa'`` adds region
    feature alignment (:mod:`rgbt.detect.rfa`; Faster R-CNN over two streams, one of them thermal, with
    per-stage fusion), its offset loss weighted by ``align_loss_weight``, its offsets bounded by
    ``align_max_offset`` (a fraction of the region's width / height; the context box, ``max(2, 1 + 2 *
    align_max_offset)`` times the region, grows with it); ``align='rfa_region'`` fuses the streams only
    at the regions (the image-level pyramid is thermal's); ``align_prior='registration'`` adds each
    frame's registered offset to the regions' (:mod:`rgbt.detect.rfa`).
    """
    if align not in ALIGNS:
        raise ValueError(f"unknown align {align!r}; known: {', '.join(ALIGNS)}")
    if align != "none" and (arch != "fasterrcnn" or fusion in ("early", "late")):
        raise ValueError(f"align {align!r} needs arch fasterrcnn and per-stage fusion (concat, sum, gate), got arch "
                         f"{arch!r}, fusion {fusion!r}")
    if not align_max_offset > 0:
        raise ValueError(f"align_max_offset must be positive, got {align_max_offset}")
    if align == "none" and align_prior != "none":
        raise ValueError(f"align_prior {align_prior!r} needs region feature alignment (align rfa or rfa_region)")
    backbone_kwargs = {
        "fpn_channels": fpn_channels,
        "trainable_layers": trainable_layers,
        "weights": weights,
        "width_mult": width_mult,
        "norm": norm,
    }
    if fusion == "late":
        return build_late_fusion_detector(
            arch, trunk, modalities, num_classes, **backbone_kwargs, **detector_kwargs
        )
    backbone = build_backbone(trunk, modalities, fusion, **backbone_kwargs)
    detector = build_detector(arch, backbone, num_classes, **detector_kwargs)
    if align == "none":
        return detector
    return add_region_alignment(detector, offset_loss_weight=align_loss_weight, max_offset=align_max_offset,
                                context=max(2.0, 1.0 + 2.0 * align_max_offset), region=align == "rfa_region",
                                prior=align_prior)
