"""Ignore-aware torchvision detection heads and the target contract they share.

KAIST marks crowds (``people``), unsure people (``person?``), cyclists and out-of-range heights as
*ignore regions*: a detection there is neither a hit nor a false alarm, so training must not teach the
model that those pixels are background. Targets therefore carry, per image::

    boxes:  (N, 4) float, xyxy in pixels of the (thermal-frame) input image, x2 > x1 and y2 > y1
    labels: (N,) int64, 1..num_classes-1 (0 is background and never a ground-truth label)
    ignore: (N,) bool, optional (all False when absent); True rows are ignore regions

Ignore rows never become positives (they are removed before matching, so no anchor, proposal or
location regresses to them or is classified as their class). Their effect on negatives is:

* a candidate (anchor, proposal, or the stride-sized square of an FCOS location) that would be a
  negative is *discarded* instead when its intersection-over-candidate-area with some ignore box is
  at least ``ignore_thresh`` (default 0.5): a candidate fully inside an ignore region is never a
  negative. Intersection over the candidate's own area (not IoU) is used because ignore regions are
  often much larger than one person (a crowd), where the IoU of a person-sized anchor is small;
* Faster R-CNN: discarded anchors get RPN label -1 and discarded proposals RoI label -1, which the
  balanced samplers skip (see :class:`IgnoreAwareRPN`, :class:`IgnoreAwareRoIHeads`);
* RetinaNet / FCOS: discarded anchors / locations are left out of the focal classification loss
  (see :class:`IgnoreAwareRetinaNet`, :class:`IgnoreAwareFCOS`).

Candidates that are positives for a real box stay positives even when they overlap an ignore region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.fcos import FCOSClassificationHead, FCOSHead, FCOSRegressionHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import box_iou, generalized_box_iou_loss, sigmoid_focal_loss
from torchvision.ops import boxes as box_ops

#: ``(pooled (R, C, S, S), proposals, image_shapes, matched_idxs | None, labels | None) -> (pooled, losses)``:
#: what :meth:`IgnoreAwareRoIHeads.forward` calls between RoI pooling and the box head.
RegionHook = Callable[
    [Tensor, list[Tensor], list[tuple[int, int]], list[Tensor] | None, list[Tensor] | None],
    tuple[Tensor, dict[str, Tensor]],
]


def intersection_over_area(boxes: Tensor, regions: Tensor) -> Tensor:
    """Pairwise intersection area divided by the area of each box of ``boxes``.

    Args:
        boxes: ``(N, 4)`` xyxy pixels (anchors, proposals).
        regions: ``(K, 4)`` xyxy pixels (ignore regions).

    Returns:
        ``(N, K)`` in ``[0, 1]``; 0 for degenerate (zero-area) boxes.
    """
    top_left = torch.max(boxes[:, None, :2], regions[None, :, :2])
    bottom_right = torch.min(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    area = box_ops.box_area(boxes)
    return inter / area.clamp(min=torch.finfo(boxes.dtype).eps)[:, None]


def in_ignore_region(boxes: Tensor, ignore_boxes: Tensor, thresh: float) -> Tensor:
    """``(N,)`` bool: the box's intersection over its own area with some ignore box is >= ``thresh``.

    Args:
        boxes: ``(N, 4)`` xyxy pixels.
        ignore_boxes: ``(K, 4)`` xyxy pixels; ``K = 0`` gives all False.
        thresh: in ``(0, 1]``.
    """
    if ignore_boxes.numel() == 0 or boxes.numel() == 0:
        return torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    return intersection_over_area(boxes, ignore_boxes.to(boxes.dtype)).max(dim=1).values >= thresh


def discard_ignored_negatives(
    labels: Tensor,
    boxes: Tensor,
    ignore_boxes: Tensor,
    thresh: float,
    negative: float = 0,
    discard: float = -1,
) -> Tensor:
    """Relabel negatives that lie in an ignore region so the samplers and losses skip them.

    Args:
        labels: ``(N,)`` per-candidate labels (RPN: float 1/0/-1; RoI: int64 class/0/-1; RetinaNet/FCOS
            matched indices: >=0 matched, -1 background, -2 between thresholds).
        boxes: ``(N, 4)`` candidate boxes, xyxy pixels.
        ignore_boxes: ``(K, 4)`` ignore regions, xyxy pixels.
        thresh: intersection-over-candidate-area threshold.
        negative: the label value meaning "negative".
        discard: the label value the sampler/loss skips.

    Returns:
        A copy of ``labels`` where ``labels == negative`` and :func:`in_ignore_region` is True are set
        to ``discard``. Positives and already-discarded candidates are unchanged.
    """
    out = labels.clone()
    hit = (labels == negative) & in_ignore_region(boxes, ignore_boxes, thresh)
    out[hit] = discard
    return out


def split_target(target: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
    """Split one target into the regular ground truth and the ignore boxes.

    Returns:
        ``({'boxes': (M, 4), 'labels': (M,)}, ignore_boxes (K, 4))`` with ``M + K = N``.
    """
    boxes, labels = target["boxes"], target["labels"]
    ignore = target.get("ignore")
    if ignore is None:
        return {"boxes": boxes, "labels": labels}, boxes.new_zeros((0, 4))
    keep = ~ignore
    return {"boxes": boxes[keep], "labels": labels[keep]}, boxes[ignore]


def check_detection_inputs(
    images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None, in_channels: int, training: bool
) -> None:
    """Validate the image/target contract of every :mod:`rgbt.detect` detector.

    Args:
        images: list of ``(C, H, W)`` float tensors in ``[0, 1]`` with ``C = in_channels`` (the
            stacked modality channels).
        targets: list of dicts (see the module docstring); required when ``training``.
        in_channels: expected ``C``.
        training: whether the model is in training mode.

    Raises:
        ValueError / TypeError: naming the offending image or target index, key and shape.
    """
    if isinstance(images, Tensor) or not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError("images must be a non-empty list of (C, H, W) tensors")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != in_channels:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"images[{i}] must be a ({in_channels}, H, W) tensor, got {shape}")
        if not image.is_floating_point():
            raise TypeError(f"images[{i}] must be float in [0, 1], got {image.dtype}")
    if targets is None:
        if training:
            raise ValueError("targets are required in training mode")
        return
    if len(targets) != len(images):
        raise ValueError(f"got {len(images)} images but {len(targets)} targets")
    for i, target in enumerate(targets):
        for key in ("boxes", "labels"):
            if key not in target:
                raise ValueError(f"targets[{i}] has no {key!r} key (keys: {sorted(target)})")
        boxes, labels = target["boxes"], target["labels"]
        if boxes.dim() != 2 or boxes.shape[1] != 4 or not boxes.is_floating_point():
            raise ValueError(
                f"targets[{i}]['boxes'] must be float (N, 4), got {boxes.dtype} {tuple(boxes.shape)}"
            )
        n = boxes.shape[0]
        if labels.dtype != torch.int64 or labels.shape != (n,):
            raise ValueError(
                f"targets[{i}]['labels'] must be int64 ({n},), got {labels.dtype} {tuple(labels.shape)}"
            )
        ignore = target.get("ignore")
        if ignore is not None and (ignore.dtype != torch.bool or ignore.shape != (n,)):
            raise ValueError(
                f"targets[{i}]['ignore'] must be bool ({n},), got {ignore.dtype} {tuple(ignore.shape)}"
            )
        if n and bool((boxes[:, 2:] <= boxes[:, :2]).any()):
            bad = boxes[(boxes[:, 2:] <= boxes[:, :2]).any(dim=1)][0].tolist()
            raise ValueError(f"targets[{i}] has a box with non-positive width or height: {bad}")


def _check_ignore_thresh(ignore_thresh: float) -> None:
    """Every head's ignore threshold is an intersection-over-area fraction in ``(0, 1]``."""
    if not 0 < ignore_thresh <= 1:
        raise ValueError(f"ignore_thresh must be in (0, 1], got {ignore_thresh}")


class IgnoreAwareRPN(RegionProposalNetwork):
    """torchvision's RPN whose anchor labelling respects ignore regions.

    :meth:`assign_targets_to_anchors` matches anchors to the non-ignore boxes only (IoU matcher with
    ``fg_iou_thresh`` / ``bg_iou_thresh``), then relabels negative anchors (label 0) whose
    intersection-over-anchor-area with an ignore box is >= ``ignore_thresh`` to -1, which the balanced
    sampler never draws. An image with no boxes contributes only negatives and no box loss.

    Args:
        *args, **kwargs: as :class:`torchvision.models.detection.rpn.RegionProposalNetwork`.
        ignore_thresh: intersection-over-anchor-area threshold, in ``(0, 1]``.
    """

    def __init__(self, *args, ignore_thresh: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_ignore_thresh(ignore_thresh)
        self.ignore_thresh = ignore_thresh

    def assign_targets_to_anchors(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        split = [split_target(t) for t in targets]
        labels, matched_gt_boxes = super().assign_targets_to_anchors(anchors, [kept for kept, _ in split])
        labels = [
            discard_ignored_negatives(lab, anc, ign, self.ignore_thresh)
            for lab, anc, (_, ign) in zip(labels, anchors, split)
        ]
        return labels, matched_gt_boxes

    def compute_loss(
        self,
        objectness: Tensor,
        pred_bbox_deltas: Tensor,
        labels: list[Tensor],
        regression_targets: list[Tensor],
    ) -> tuple[Tensor, Tensor]:
        # When ignore regions swallow every anchor nothing can be sampled; torchvision would divide by
        # zero, so return graph-connected zeros instead.
        if not any(bool((lab >= 0).any()) for lab in labels):
            zero = objectness.sum() * 0.0 + pred_bbox_deltas.sum() * 0.0
            return zero, zero.clone()
        return super().compute_loss(objectness, pred_bbox_deltas, labels, regression_targets)


class IgnoreAwareRoIHeads(RoIHeads):
    """torchvision's box-only RoI heads whose proposal sampling respects ignore regions.

    :meth:`select_training_samples` appends only the non-ignore ground truth to the proposals, matches
    proposals to it (IoU, ``fg_iou_thresh`` / ``bg_iou_thresh``), relabels background proposals whose
    intersection-over-proposal-area with an ignore box is >= ``ignore_thresh`` to -1 (never sampled),
    then samples and encodes regression targets as torchvision does. :meth:`forward` is the box branch
    of torchvision's (no masks or keypoints) with a guard for an empty sample.

    Args:
        box_roi_pool, box_head, box_predictor, fg_iou_thresh, bg_iou_thresh, batch_size_per_image,
        positive_fraction, bbox_reg_weights, score_thresh, nms_thresh, detections_per_img: as
            :class:`torchvision.models.detection.roi_heads.RoIHeads`.
        ignore_thresh: intersection-over-proposal-area threshold, in ``(0, 1]``.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        fg_iou_thresh: float,
        bg_iou_thresh: float,
        batch_size_per_image: int,
        positive_fraction: float,
        bbox_reg_weights: tuple[float, float, float, float] | None,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
        ignore_thresh: float = 0.5,
    ) -> None:
        super().__init__(
            box_roi_pool,
            box_head,
            box_predictor,
            fg_iou_thresh,
            bg_iou_thresh,
            batch_size_per_image,
            positive_fraction,
            bbox_reg_weights,
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        _check_ignore_thresh(ignore_thresh)
        self.ignore_thresh = ignore_thresh

    def select_training_samples(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]] | None
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        self.check_targets(targets)
        dtype, device = proposals[0].dtype, proposals[0].device
        split = [split_target(t) for t in targets]
        gt_boxes = [kept["boxes"].to(dtype) for kept, _ in split]
        gt_labels = [kept["labels"] for kept, _ in split]
        proposals = self.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        labels = [
            discard_ignored_negatives(lab, props, ign, self.ignore_thresh)
            for lab, props, (_, ign) in zip(labels, proposals, split)
        ]
        sampled = self.subsample(labels)
        matched_gt_boxes = []
        for i, inds in enumerate(sampled):
            proposals[i] = proposals[i][inds]
            labels[i] = labels[i][inds]
            matched_idxs[i] = matched_idxs[i][inds]
            # Negatives carry a clamped index 0; an empty image still needs one row to index into.
            boxes = gt_boxes[i] if gt_boxes[i].numel() else torch.zeros((1, 4), dtype=dtype, device=device)
            matched_gt_boxes.append(boxes[matched_idxs[i]])
        regression_targets = self.box_coder.encode(matched_gt_boxes, proposals)
        return proposals, matched_idxs, labels, regression_targets

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
        region_hook: RegionHook | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Box branch: training returns ``([], {'loss_classifier', 'loss_box_reg'})``, evaluation
        returns ``([{'boxes' (D, 4) xyxy, 'labels' (D,), 'scores' (D,)}], {})`` per image.

        ``region_hook(pooled, proposals, image_shapes, matched_idxs, labels)`` (e.g. region feature
        alignment, :mod:`rgbt.detect.rfa`) may replace the pooled ``(R, C, 7, 7)`` RoI features before
        the box head and add losses (``matched_idxs`` / ``labels`` of the sampled proposals in
        training, ``None`` in evaluation)."""
        matched_idxs = labels = None
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        pooled = self.box_roi_pool(features, proposals, image_shapes)
        extra: dict[str, Tensor] = {}
        if region_hook is not None:
            pooled, extra = region_hook(pooled, proposals, image_shapes, matched_idxs, labels)
        box_features = self.box_head(pooled)
        class_logits, box_regression = self.box_predictor(box_features)
        if self.training:
            if sum(lab.numel() for lab in labels) == 0:
                # Every proposal fell in an ignore region: nothing to learn from, but keep the graph.
                zero = class_logits.sum() * 0.0 + box_regression.sum() * 0.0
                return [], {"loss_classifier": zero, "loss_box_reg": zero.clone(),
                            **{name: value * 0.0 for name, value in extra.items()}}
            loss_classifier, loss_box_reg = fastrcnn_loss(
                class_logits, box_regression, labels, regression_targets
            )
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg, **extra}
        boxes, scores, labels = self.postprocess_detections(
            class_logits, box_regression, proposals, image_shapes
        )
        return [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels)], {}


class FusionFasterRCNN(GeneralizedRCNN):
    """Faster R-CNN over a fusion backbone with ignore-aware RPN and RoI heads.

    Args:
        backbone: module with ``out_channels`` and ``in_channels`` mapping ``(B, C, H, W)`` to an ordered
            dict of pyramid levels (e.g. :class:`rgbt.detect.backbone.MultiStreamBackbone`).
        rpn: :class:`IgnoreAwareRPN`.
        roi_heads: :class:`IgnoreAwareRoIHeads`.
        transform: :class:`torchvision.models.detection.transform.GeneralizedRCNNTransform` with one mean
            and std per stacked channel.

    Forward: ``images`` list of ``(C, H, W)`` float in ``[0, 1]``; ``targets`` as in the module
    docstring. Training returns the loss dict (``loss_objectness``, ``loss_rpn_box_reg``,
    ``loss_classifier``, ``loss_box_reg``); evaluation returns per image ``{'boxes': (D, 4) float xyxy
    pixels of the input image, 'scores': (D,) in [0, 1], 'labels': (D,) int64}``.
    """

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        check_detection_inputs(images, targets, self.backbone.in_channels, self.training)
        return super().forward(images, targets)


def _match_iou(matcher: det_utils.Matcher, boxes: Tensor, anchors: Tensor) -> Tensor:
    if boxes.numel() == 0:
        return torch.full(
            (anchors.shape[0],), matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=anchors.device
        )
    return matcher(box_iou(boxes, anchors))


class IgnoreAwareRetinaNet(RetinaNet):
    """torchvision's RetinaNet whose focal loss skips anchors in ignore regions.

    :meth:`compute_loss` matches anchors to the non-ignore boxes only (IoU >= ``fg_iou_thresh`` positive,
    < ``bg_iou_thresh`` negative, in between skipped, as torchvision), then marks negative anchors whose
    intersection-over-anchor-area with an ignore box is >= ``ignore_thresh`` as "between thresholds",
    which torchvision's classification loss leaves out. Regression uses positives only, so an image with
    no boxes has zero box loss.

    Args:
        *args, **kwargs: as :class:`torchvision.models.detection.RetinaNet`.
        ignore_thresh: in ``(0, 1]``.
    """

    def __init__(self, *args, ignore_thresh: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_ignore_thresh(ignore_thresh)
        self.ignore_thresh = ignore_thresh

    def match_anchors(
        self, targets: list[dict[str, Tensor]], anchors: list[Tensor]
    ) -> tuple[list[dict[str, Tensor]], list[Tensor]]:
        """Per image: the non-ignore target and ``(A,)`` matched indices (>=0 box, -1 negative, -2 skip).

        Args:
            targets: per image ``boxes`` / ``labels`` / optional ``ignore`` (see the module docstring).
            anchors: per image ``(A, 4)`` anchors, xyxy pixels.
        """
        kept_targets, matched = [], []
        for target, anchors_per_image in zip(targets, anchors):
            kept, ignore_boxes = split_target(target)
            idxs = _match_iou(self.proposal_matcher, kept["boxes"], anchors_per_image)
            matched.append(
                discard_ignored_negatives(
                    idxs,
                    anchors_per_image,
                    ignore_boxes,
                    self.ignore_thresh,
                    negative=self.proposal_matcher.BELOW_LOW_THRESHOLD,
                    discard=self.proposal_matcher.BETWEEN_THRESHOLDS,
                )
            )
            kept_targets.append(kept)
        return kept_targets, matched

    def compute_loss(
        self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor], anchors: list[Tensor]
    ) -> dict[str, Tensor]:
        kept_targets, matched = self.match_anchors(targets, anchors)
        return self.head.compute_loss(kept_targets, head_outputs, anchors, matched)

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        """As :class:`FusionFasterRCNN`; training returns ``{'classification', 'bbox_regression'}``."""
        check_detection_inputs(images, targets, self.backbone.in_channels, self.training)
        return super().forward(images, targets)


class IgnoreAwareFCOSHead(FCOSHead):
    """FCOS head with a configurable norm layer whose focal loss skips locations in ignore regions.

    The sub-heads are torchvision's :class:`FCOSClassificationHead` / :class:`FCOSRegressionHead`;
    ``FCOSHead.__init__`` is bypassed only because it hard-codes ``GroupNorm(32, C)``, which fails for
    widths not divisible by 32.

    :meth:`compute_loss` expects targets holding the non-ignore ``boxes``/``labels`` plus
    ``ignore_boxes`` (as :class:`IgnoreAwareFCOS` passes them). Per location: matched (>= 0) locations
    are positives; unmatched ones are negatives unless the stride-sized square around the location
    has intersection-over-its-area >= ``ignore_thresh`` with an ignore box, in which case the location
    is left out of the focal loss. Regression (GIoU) and centerness (BCE) losses use positives only and
    are normalised, like the classification loss, by ``max(1, number of positives)``.

    Args:
        in_channels: pyramid width.
        num_anchors: locations per pixel (1 for FCOS).
        num_classes: classifier outputs (2: background slot + person).
        num_convs: convolutions in each tower.
        norm_layer: callable ``channels -> module`` for the towers; ``None`` is ``GroupNorm(32, C)``.
        ignore_thresh: in ``(0, 1]``.
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        num_convs: int = 4,
        norm_layer: Callable[[int], nn.Module] | None = None,
        ignore_thresh: float = 0.5,
    ) -> None:
        nn.Module.__init__(self)
        _check_ignore_thresh(ignore_thresh)
        self.box_coder = det_utils.BoxLinearCoder(normalize_by_size=True)
        self.classification_head = FCOSClassificationHead(
            in_channels, num_anchors, num_classes, num_convs, norm_layer=norm_layer
        )
        self.regression_head = FCOSRegressionHead(in_channels, num_anchors, num_convs, norm_layer=norm_layer)
        self.ignore_thresh = ignore_thresh

    def compute_loss(
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        anchors: list[Tensor],
        matched_idxs: list[Tensor],
    ) -> dict[str, Tensor]:
        # Losses in float32: under fp16 autocast, box areas of a 512x640 frame overflow half precision.
        cls_logits = head_outputs["cls_logits"].float()  # (B, A, K)
        bbox_regression = head_outputs["bbox_regression"].float()  # (B, A, 4)
        bbox_ctrness = head_outputs["bbox_ctrness"].float()  # (B, A, 1)
        class_targets = torch.zeros_like(cls_logits)
        box_targets, valid = [], []
        for i, (target, idxs, anchors_per_image) in enumerate(zip(targets, matched_idxs, anchors)):
            positive = idxs >= 0
            boxes = target["boxes"]
            if boxes.numel():
                class_targets[i, positive, target["labels"][idxs[positive]]] = 1.0
                box_targets.append(boxes[idxs.clamp(min=0)])
            else:
                box_targets.append(anchors_per_image.new_zeros(anchors_per_image.shape))
            ignored = ~positive & in_ignore_region(
                anchors_per_image, target.get("ignore_boxes", boxes.new_zeros((0, 4))), self.ignore_thresh
            )
            valid.append(~ignored)
        positive = torch.stack(matched_idxs) >= 0
        valid_mask = torch.stack(valid)
        num_pos = max(1, int(positive.sum()))
        gt_boxes = torch.stack(box_targets)
        all_anchors = torch.stack(anchors)

        loss_cls = sigmoid_focal_loss(cls_logits[valid_mask], class_targets[valid_mask], reduction="sum")
        pred_boxes = self.box_coder.decode(bbox_regression, all_anchors)
        loss_reg = generalized_box_iou_loss(pred_boxes[positive], gt_boxes[positive], reduction="sum")
        # Centerness target: sqrt of (min/max of left-right distances) * (min/max of top-bottom).
        ltrb = self.box_coder.encode(all_anchors[positive], gt_boxes[positive])
        left_right, top_bottom = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
        ctr_target = torch.sqrt(
            (left_right.min(dim=-1).values / left_right.max(dim=-1).values)
            * (top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values)
        )
        loss_ctr = F.binary_cross_entropy_with_logits(
            bbox_ctrness[..., 0][positive], ctr_target, reduction="sum"
        )
        return {
            "classification": loss_cls / num_pos,
            "bbox_regression": loss_reg / num_pos,
            "bbox_ctrness": loss_ctr / num_pos,
        }


class IgnoreAwareFCOS(FCOS):
    """torchvision's FCOS with ignore regions (use with :class:`IgnoreAwareFCOSHead`).

    :meth:`compute_loss` runs torchvision's location assignment (centre sampling, per-level size
    ranges, smallest box wins) on the non-ignore boxes only and hands the head the ignore boxes under
    ``ignore_boxes``; the head leaves unmatched locations inside ignore regions out of the focal loss.

    Args:
        *args, **kwargs: as :class:`torchvision.models.detection.FCOS`; ``head`` must be an
            :class:`IgnoreAwareFCOSHead`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.head, IgnoreAwareFCOSHead):
            raise TypeError(f"IgnoreAwareFCOS needs an IgnoreAwareFCOSHead, got {type(self.head).__name__}")

    def compute_loss(
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        anchors: list[Tensor],
        num_anchors_per_level: list[int],
    ) -> dict[str, Tensor]:
        kept_targets = []
        for target in targets:
            kept, ignore_boxes = split_target(target)
            kept_targets.append({**kept, "ignore_boxes": ignore_boxes})
        return super().compute_loss(kept_targets, head_outputs, anchors, num_anchors_per_level)

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        """As :class:`FusionFasterRCNN`; training returns ``{'classification', 'bbox_regression',
        'bbox_ctrness'}``."""
        check_detection_inputs(images, targets, self.backbone.in_channels, self.training)
        return super().forward(images, targets)
