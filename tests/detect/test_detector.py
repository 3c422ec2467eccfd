"""Detectors: every head x every fusion mode trains and predicts; defaults; empty images; round trips."""

from __future__ import annotations

import pytest
import torch
from detect_helpers import HEIGHT, WIDTH, make_target

from rgbt.detect import build_backbone, build_detector
from rgbt.detect.anchors import PedestrianAnchorGenerator
from rgbt.detect.late_fusion import LateFusionDetector

ARCHS = ["fasterrcnn", "retinanet", "fcos"]
FUSIONS = ["concat", "sum", "gate", "early", "late"]
BOX_LOSSES = {"fasterrcnn": ("loss_box_reg", "loss_rpn_box_reg"), "retinanet": ("bbox_regression",)}
BOX_LOSSES["fcos"] = ("bbox_regression", "bbox_ctrness")


def _trunks(model):
    if isinstance(model, LateFusionDetector):
        return [t for d in model.detectors.values() for t in d.backbone.trunks.values()]
    return list(model.backbone.trunks.values())


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("arch", ARCHS)
def test_train_step_and_inference(arch, fusion, tiny_detector, synthetic_batch):
    images, targets = synthetic_batch
    model = tiny_detector(arch, fusion).train()
    losses = model(images, targets)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trunks = _trunks(model)
    assert len(trunks) == (1 if fusion == "early" else 2)
    for trunk in trunks:
        missing = [n for n, p in trunk.named_parameters() if p.grad is None]
        assert not missing, missing[:5]
    assert all(p.grad is not None for p in model.parameters())

    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == len(images)
    for det in detections:
        boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
        assert boxes.shape[1] == 4 and scores.shape == labels.shape == boxes.shape[:1]
        assert len(boxes) <= 100 and labels.dtype == torch.int64
        if len(boxes):
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= WIDTH).all() and (boxes[:, 3] <= HEIGHT).all()
            assert (scores >= 0).all() and (scores <= 1).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_empty_and_ignore_only_images_give_zero_box_loss(arch, tiny_detector):
    model = tiny_detector(arch).train()
    images = [torch.rand(4, HEIGHT, WIDTH), torch.rand(4, HEIGHT, WIDTH)]
    empty = make_target([])
    ignore_only = make_target([[10.0, 8.0, 22.0, 38.0], [40.0, 10.0, 70.0, 60.0]], ignore=[True, True])
    for targets in ([empty, empty], [empty, ignore_only]):
        losses = model(images, targets)
        for name in BOX_LOSSES[arch]:
            assert losses[name].item() == 0.0, name
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()


def test_ignore_region_covering_the_whole_image_gives_finite_losses(tiny_detector):
    model = tiny_detector("fasterrcnn", box_batch_size_per_image=8).train()
    target = make_target([[0.0, 0.0, WIDTH, HEIGHT]], ignore=[True])
    losses = model([torch.rand(4, HEIGHT, WIDTH)], [target])
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("fusion", ["concat", "late"])
@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_round_trip_gives_identical_outputs(arch, fusion, tiny_detector, synthetic_batch):
    images, _ = synthetic_batch
    original = tiny_detector(arch, fusion, seed=0, score_thresh=0.0).eval()
    copy = tiny_detector(arch, fusion, seed=1, score_thresh=0.0).eval()
    copy.load_state_dict(original.state_dict())
    with torch.no_grad():
        expected, got = original(images), copy(images)
    assert any(len(d["boxes"]) for d in expected)
    for a, b in zip(expected, got):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(a[key], b[key])


def test_pedestrian_defaults():
    model = build_detector("fasterrcnn", build_backbone(width_mult=0.125, fpn_channels=16))
    transform = model.transform
    assert (transform.min_size, transform.max_size) == ((512,), 640)
    assert transform.image_mean == [0.5] * 4 and transform.image_std == [0.25] * 4
    assert model.roi_heads.score_thresh <= 0.01 and model.roi_heads.detections_per_img >= 100
    batch, _ = transform([torch.rand(4, 512, 640)])
    assert batch.image_sizes == [(512, 640)]  # native resolution: no upscaling to 800

    generator = model.rpn.anchor_generator
    assert isinstance(generator, PedestrianAnchorGenerator)
    finest = generator.cell_anchors[0]
    heights, widths = finest[:, 3] - finest[:, 1], finest[:, 2] - finest[:, 0]
    assert heights.min().item() == pytest.approx(16.0)
    assert sorted({round(r, 3) for r in (heights / widths).tolist()}) == [2.0, 2.5]  # tall: height / width


def test_builder_arguments_are_checked():
    backbone = build_backbone(width_mult=0.125, fpn_channels=16)
    with pytest.raises(ValueError, match="unknown arch 'ssd'"):
        build_detector("ssd", backbone)
    with pytest.raises(ValueError, match="4 values"):
        build_detector("fcos", backbone, image_mean=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="one anchor height per pyramid level"):
        build_detector("retinanet", backbone, anchor_sizes=[16, 32])


def test_wrong_channel_count_is_reported(tiny_detector):
    model = tiny_detector("fcos").eval()
    with pytest.raises(ValueError, match=r"images\[0\] must be a \(4, H, W\) tensor"):
        model([torch.rand(3, HEIGHT, WIDTH)])


@pytest.mark.parametrize(("arch", "steps"), [("fasterrcnn", 30), ("retinanet", 24), ("fcos", 24)])
def test_a_few_steps_lower_the_loss(arch, steps, tiny_detector, synthetic_batch):
    images, targets = synthetic_batch
    model = tiny_detector(arch).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(steps):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert sum(history[-3:]) / 3 < 0.7 * history[0], history
