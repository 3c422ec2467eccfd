"""Late fusion: hand-worked box voting and cross-modal NMS."""

from __future__ import annotations

import pytest
import torch

from rgbt.detect.late_fusion import fuse_detections


def _source(boxes, scores):
    return (
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(scores, dtype=torch.float32),
        torch.ones(len(scores), dtype=torch.int64),
    )


def test_vote_averages_boxes_by_score_and_scores_over_sources():
    rgb = _source([[0, 0, 10, 20], [50, 0, 60, 20]], [0.6, 0.8])
    thermal = _source([[2, 0, 12, 20]], [0.9])  # IoU with rgb[0]: 8 * 20 / (2 * 200 - 160) = 2/3
    boxes, scores, labels = fuse_detections([rgb, thermal], iou_thresh=0.55, method="vote")
    torch.testing.assert_close(scores, torch.tensor([0.75, 0.4]))  # (0.9 + 0.6) / 2, then 0.8 / 2
    x1 = (0.9 * 2 + 0.6 * 0) / 1.5
    torch.testing.assert_close(boxes, torch.tensor([[x1, 0, x1 + 10, 20], [50, 0, 60, 20]]))
    assert labels.tolist() == [1, 1]


def test_nms_keeps_the_top_box_of_each_cluster():
    rgb = _source([[0, 0, 10, 20], [50, 0, 60, 20]], [0.6, 0.8])
    thermal = _source([[2, 0, 12, 20]], [0.9])
    boxes, scores, _ = fuse_detections([rgb, thermal], method="nms")
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.8]))
    torch.testing.assert_close(boxes, torch.tensor([[2.0, 0, 12, 20], [50, 0, 60, 20]]))


def test_labels_are_not_mixed_and_clusters_use_each_source_once():
    a = _source([[0, 0, 10, 20], [0, 0, 10, 19]], [0.9, 0.5])  # two boxes of one source in one cluster
    b = (torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([0.7]), torch.tensor([2]))
    boxes, scores, labels = fuse_detections([a, b], iou_thresh=0.5)
    assert labels.tolist() == [1, 2]
    torch.testing.assert_close(scores, torch.tensor([0.45, 0.35]))  # best of source a only, / 2 sources


def test_empty_sources_and_cap():
    empty = _source([], [])
    boxes, scores, labels = fuse_detections([empty, empty])
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)
    many = _source([[10 * i, 0, 10 * i + 5, 10] for i in range(5)], [0.1, 0.2, 0.3, 0.4, 0.5])
    _, scores, _ = fuse_detections([many, empty], max_detections=2)
    torch.testing.assert_close(scores, torch.tensor([0.25, 0.2]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown fusion method 'wbf'"):
        fuse_detections([_source([], [])], method="wbf")
    with pytest.raises(ValueError, match="source 0"):
        fuse_detections([(torch.zeros(2, 4), torch.zeros(3), torch.zeros(2, dtype=torch.int64))])
