"""Ignore regions: never negatives when a candidate lies inside them, never positives, for every head."""

from __future__ import annotations

import pytest
import torch
from detect_helpers import make_target
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

from rgbt.detect.heads import (
    IgnoreAwareFCOSHead,
    IgnoreAwareRoIHeads,
    IgnoreAwareRPN,
    check_detection_inputs,
    discard_ignored_negatives,
    intersection_over_area,
)

REAL = [0.0, 0.0, 10.0, 20.0]
IGNORE = [45.0, 40.0, 80.0, 90.0]
# Candidates: 0 equals the real box; 1 lies fully inside the ignore box; 2 equals the ignore box;
# 3 overlaps it by intersection-over-own-area 0.4 (< 0.5: stays a negative); 4 is far away.
CANDIDATES = torch.tensor(
    [REAL, [50.0, 50.0, 60.0, 70.0], IGNORE, [72.0, 40.0, 92.0, 90.0], [100.0, 100.0, 110.0, 120.0]]
)
TARGET = make_target([REAL, IGNORE], ignore=[False, True])


def test_intersection_over_area_hand_worked():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 25.0], [30.0, 30.0, 31.0, 31.0]])
    regions = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    # box 0 fully inside; box 1: 5x15 = 75 of its 200 px; box 2 disjoint.
    assert intersection_over_area(boxes, regions).flatten().tolist() == [1.0, 0.375, 0.0]


def test_discard_ignored_negatives_only_touches_negatives():
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, -1.0])
    boxes = CANDIDATES.clone()
    boxes[4] = torch.tensor([50.0, 50.0, 52.0, 52.0])  # inside the ignore box but already discarded
    boxes[0] = torch.tensor([50.0, 50.0, 55.0, 55.0])  # inside the ignore box but a positive
    out = discard_ignored_negatives(labels, boxes, torch.tensor([IGNORE]), 0.5)
    assert out.tolist() == [1.0, -1.0, -1.0, 0.0, -1.0]
    assert torch.equal(discard_ignored_negatives(labels, boxes, torch.zeros(0, 4), 0.5), labels)


def _rpn(batch_size_per_image: int) -> IgnoreAwareRPN:
    return IgnoreAwareRPN(
        AnchorGenerator(((16,),), ((1.0,),)),
        RPNHead(8, 1),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": 10, "testing": 10},
        post_nms_top_n={"training": 10, "testing": 10},
        nms_thresh=0.7,
        ignore_thresh=0.5,
    )


def test_rpn_anchor_inside_ignore_region_is_never_sampled_as_negative():
    rpn = _rpn(batch_size_per_image=2)
    labels, matched = rpn.assign_targets_to_anchors([CANDIDATES], [TARGET])
    # The anchor equal to the ignore box is not a positive either: ignore boxes are not matched.
    assert labels[0].tolist() == [1.0, -1.0, -1.0, 0.0, 0.0]
    assert torch.equal(matched[0][0], torch.tensor(REAL))
    torch.manual_seed(0)
    sampled_negatives = torch.zeros(len(CANDIDATES), dtype=torch.int64)
    for _ in range(200):
        _, negatives = rpn.fg_bg_sampler(labels)
        sampled_negatives += negatives[0].long()
    assert sampled_negatives[1] == 0 and sampled_negatives[2] == 0
    assert sampled_negatives[3] > 0 and sampled_negatives[4] > 0


def test_roi_proposal_inside_ignore_region_is_never_sampled_as_negative():
    heads = IgnoreAwareRoIHeads(
        MultiScaleRoIAlign(["p2"], 7, 2),
        TwoMLPHead(8 * 49, 16),
        FastRCNNPredictor(16, 2),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=4,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=0.01,
        nms_thresh=0.5,
        detections_per_img=100,
        ignore_thresh=0.5,
    )
    torch.manual_seed(0)
    seen = []
    for _ in range(100):
        proposals, _, labels, targets = heads.select_training_samples([CANDIDATES[1:].clone()], [TARGET])
        for box, label, reg in zip(proposals[0].tolist(), labels[0].tolist(), targets[0]):
            seen.append(box)
            assert box not in (CANDIDATES[1].tolist(), IGNORE)  # inside the ignore region / the region
            if label == 1:
                assert box == REAL and torch.allclose(reg, torch.zeros(4))  # only real gt is a positive
    assert CANDIDATES[3].tolist() in seen and CANDIDATES[4].tolist() in seen and REAL in seen


def test_retinanet_skips_ignored_anchors_in_the_focal_loss(tiny_detector):
    model = tiny_detector("retinanet")
    kept, matched = model.match_anchors([TARGET], [CANDIDATES])
    assert matched[0].tolist() == [0, -2, -2, -1, -1]
    assert kept[0]["boxes"].tolist() == [REAL]
    num_classes = 2
    logits = torch.zeros(1, len(CANDIDATES), num_classes, requires_grad=True)
    model.head.classification_head.compute_loss(kept, {"cls_logits": logits}, matched).backward()
    has_grad = logits.grad[0].abs().sum(dim=1) > 0
    assert has_grad.tolist() == [True, False, False, True, True]


def test_fcos_head_skips_ignored_locations_and_has_no_positive_there():
    head = IgnoreAwareFCOSHead(8, 1, 2, num_convs=1, norm_layer=lambda c: torch.nn.GroupNorm(1, c))
    # Stride-8 locations: squares around x = 4, 12, ..., on one row at y = 52.
    centres = torch.arange(4.0, 100.0, 8.0)
    anchors = torch.stack(
        [centres - 4, torch.full_like(centres, 48), centres + 4, torch.full_like(centres, 56)], 1
    )
    n = len(anchors)
    outputs = {
        "cls_logits": torch.zeros(1, n, 2, requires_grad=True),
        "bbox_regression": torch.zeros(1, n, 4, requires_grad=True),
        "bbox_ctrness": torch.zeros(1, n, 1, requires_grad=True),
    }
    target = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "ignore_boxes": torch.tensor([IGNORE]),
    }
    losses = head.compute_loss([target], outputs, [anchors], [torch.full((n,), -1)])
    assert losses["bbox_regression"].item() == 0.0 and losses["bbox_ctrness"].item() == 0.0
    losses["classification"].backward()
    has_grad = outputs["cls_logits"].grad[0].abs().sum(dim=1) > 0
    overlap = (anchors[:, 2].clamp(max=80) - anchors[:, 0].clamp(min=45)).clamp(min=0) / 8
    assert (overlap == 1).any() and ((overlap > 0) & (overlap < 0.5)).any()
    assert torch.equal(has_grad, overlap < 0.5)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"boxes": torch.zeros(1, 4)}, "no 'labels' key"),
        (
            {"boxes": torch.zeros(2, 4), "labels": torch.ones(2, dtype=torch.int32)},
            r"'labels'\] must be int64",
        ),
        (
            {"boxes": torch.zeros(1, 5), "labels": torch.ones(1, dtype=torch.int64)},
            r"'boxes'\] must be float \(N, 4\)",
        ),
        (
            {
                "boxes": torch.tensor([[0.0, 0, 5, 5]]),
                "labels": torch.ones(1, dtype=torch.int64),
                "ignore": torch.ones(1),
            },
            r"'ignore'\] must be bool",
        ),
        (
            {"boxes": torch.tensor([[5.0, 0, 5, 9]]), "labels": torch.ones(1, dtype=torch.int64)},
            "non-positive width",
        ),
    ],
)
def test_bad_targets_raise(target, message):
    with pytest.raises(ValueError, match=message):
        check_detection_inputs([torch.rand(4, 8, 8)], [target], 4, training=True)


def test_bad_images_raise():
    with pytest.raises(ValueError, match=r"images\[1\] must be a \(4, H, W\) tensor, got \(3, 8, 8\)"):
        check_detection_inputs([torch.rand(4, 8, 8), torch.rand(3, 8, 8)], None, 4, training=False)
    with pytest.raises(TypeError, match="float"):
        check_detection_inputs([torch.zeros(4, 8, 8, dtype=torch.uint8)], None, 4, training=False)
    with pytest.raises(ValueError, match="targets are required"):
        check_detection_inputs([torch.rand(4, 8, 8)], None, 4, training=True)
