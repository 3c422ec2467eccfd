"""Region feature alignment: shapes, zero offset = halfway fusion, gradients, a learned constant shift."""

from __future__ import annotations

import pytest
import torch
from detect_helpers import HEIGHT, WIDTH, make_target, tiny_detector_kwargs

from rgbt.detect import build_fusion_detector
from rgbt.detect.rfa import RegionFeatureAlignment, RFAFasterRCNN, add_region_alignment, offset_targets


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: on a busy machine, torch's thread pool costs more than it gives (5x here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _paired(batch, dx: float, dy: float):
    """The batch with its RGB channels moved by (dx, dy) px and ``boxes_rgb`` = boxes + (dx, dy)."""
    images, targets = batch
    moved = []
    for image, target in zip(images, targets):
        image = image.clone()
        image[:3] = torch.roll(image[:3], shifts=(dy, dx), dims=(1, 2))
        moved.append(image)
        target["boxes_rgb"] = target["boxes"] + torch.tensor([dx, dy, dx, dy], dtype=torch.float32)
    return moved, targets


def test_alignment_module_shapes_and_bounds():
    torch.manual_seed(0)
    align = RegionFeatureAlignment([8, 16], [8, 16], ["p2", "p3"], channels=12, hidden=16, max_offset=0.4)
    torch.nn.init.normal_(align.offset_out.weight, std=5.0)  # large outputs: the bound must hold
    sensed = [torch.rand(2, 8, 16, 20), torch.rand(2, 16, 8, 10)]
    reference = [torch.rand(2, 8, 16, 20), torch.rand(2, 16, 8, 10)]
    boxes = [torch.tensor([[4.0, 4, 20, 40], [30, 10, 50, 60]]), torch.tensor([[10.0, 5, 30, 45]])]
    fused = torch.rand(3, 12, 7, 7)
    out, t = align(fused, sensed, reference, boxes, [(64, 80), (64, 80)])
    assert out.shape == (3, 12, 7, 7) and t.shape == (3, 2)
    assert float(t.detach().abs().max()) <= 0.4 and not torch.equal(out, fused)
    assert align.context_boxes(boxes[1]).tolist() == [[0.0, -15.0, 40.0, 65.0]]
    with pytest.raises(ValueError, match="max_offset"):
        RegionFeatureAlignment([8], [8], ["p2"], channels=4, context=2.0, max_offset=0.6)


def test_zero_offset_is_exactly_halfway_fusion(synthetic_batch):
    torch.manual_seed(0)
    halfway = build_fusion_detector("fasterrcnn", **tiny_detector_kwargs("fasterrcnn")).eval()
    rfa = add_region_alignment(halfway).eval()  # shares the halfway parts; the offset head starts at 0
    images, _ = synthetic_batch
    with torch.no_grad():
        plain, aligned = halfway(images), rfa(images)
    for a, b in zip(plain, aligned):
        assert len(a["boxes"]) > 0
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
    # A non-zero offset changes the region features, hence the detections.
    torch.nn.init.constant_(rfa.align.offset_out.bias, 0.3)
    with torch.no_grad():
        shifted = rfa(images)
    assert not all(torch.equal(a["scores"], b["scores"]) for a, b in zip(plain, shifted))


def test_builder_switch_and_refusals():
    kwargs = tiny_detector_kwargs("fasterrcnn")
    model = build_fusion_detector("fasterrcnn", align="rfa", **kwargs)
    assert isinstance(model, RFAFasterRCNN) and model.sensed == 0 and model.reference == 1
    with pytest.raises(ValueError, match="unknown align"):
        build_fusion_detector("fasterrcnn", align="arcnn", **kwargs)
    with pytest.raises(ValueError, match="per-stage fusion"):
        build_fusion_detector("fasterrcnn", fusion="early", align="rfa", **kwargs)
    with pytest.raises(ValueError, match="arch fasterrcnn"):
        build_fusion_detector("retinanet", align="rfa", **tiny_detector_kwargs("retinanet"))
    with pytest.raises(ValueError, match="two streams"):
        build_fusion_detector("fasterrcnn", modalities=("rgb", "fake_rgb"), align="rfa", **kwargs)


def test_gradients_reach_every_parameter(synthetic_batch):
    torch.manual_seed(0)
    model = build_fusion_detector("fasterrcnn", align="rfa", **tiny_detector_kwargs("fasterrcnn")).train()
    # The zero start of the offset layer blocks the gradient into the layers before it; any other start passes it.
    torch.nn.init.normal_(model.align.offset_out.weight, std=0.01)
    images, targets = _paired(synthetic_batch, 3, -2)
    losses = model(images, targets)
    assert {"loss_offset", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    sum(losses.values()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    # 64x80 frames put every region on the finest level: its projections and the offset head learn.
    used = [(name, p) for name, p in model.align.named_parameters() if "proj." not in name or "proj.0." in name]
    zero = [name for name, p in used if not bool(p.grad.abs().sum() > 0)]
    assert not zero and len(used) == 4 + 2 + 2 + 4
    # Without paired boxes there is no offset supervision, and still a loss to sum.
    model.zero_grad()
    plain_targets = [make_target(t["boxes"].tolist()) for t in targets]
    assert float(model(images, plain_targets)["loss_offset"].detach()) == 0.0


def test_the_offset_head_learns_a_constant_shift():
    """Sensed features are the reference features moved by (+3, -2) px: after a short training on the
    offset loss alone, every region predicts that shift."""
    torch.manual_seed(0)
    dx, dy = 3, -2
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 4, 72, 88), 5, stride=1, padding=2)
    reference = smooth[..., 4:68, 4:84]
    sensed = smooth[..., 4 - dy:68 - dy, 4 - dx:84 - dx]  # content moved right by dx, down by dy
    align = RegionFeatureAlignment([4], [4], ["p2"], channels=8, hidden=16, max_offset=0.5)
    optimiser = torch.optim.Adam(align.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)

    def boxes(n: int) -> torch.Tensor:
        corner = torch.rand(n, 2, generator=generator) * torch.tensor([WIDTH - 28.0, HEIGHT - 28.0]) + 6
        return torch.cat([corner, corner + 16], dim=1)

    shift = torch.tensor([dx, dy, dx, dy], dtype=torch.float32)
    fused = torch.zeros(16, 8, 7, 7)
    for _ in range(60):
        rois = boxes(16)
        _, t = align(fused, [sensed], [reference], [rois], [(HEIGHT, WIDTH)])
        loss = torch.nn.functional.smooth_l1_loss(t, offset_targets(rois, rois, rois + shift), beta=1 / 9)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    rois = boxes(64)
    with torch.no_grad():
        _, t = align(torch.zeros(64, 8, 7, 7), [sensed], [reference], [rois], [(HEIGHT, WIDTH)])
    pixels = t * 16
    assert torch.allclose(pixels.mean(dim=0), torch.tensor([float(dx), float(dy)]), atol=0.25), pixels.mean(dim=0)
    assert float((pixels - torch.tensor([dx, dy])).abs().max()) < 0.5


def test_region_offsets_in_input_pixels(synthetic_batch):
    torch.manual_seed(0)
    model = build_fusion_detector("fasterrcnn", align="rfa", **tiny_detector_kwargs("fasterrcnn"))
    torch.nn.init.constant_(model.align.offset_out.bias, 0.2)  # t = 0.5 tanh(0.2) everywhere
    images, targets = synthetic_batch
    model.train()
    offsets = model.region_offsets(images, [t["boxes"] for t in targets])
    assert model.training  # the mode is restored
    expected = 0.5 * torch.tanh(torch.tensor(0.2))
    for found, target in zip(offsets, targets):
        size = target["boxes"][:, 2:] - target["boxes"][:, :2]
        assert torch.allclose(found, expected * size, atol=1e-5)


def test_paired_boxes_follow_a_resize():
    """The transform resizes ``boxes``; the RGB boxes must follow, or the offset targets would be off."""
    torch.manual_seed(0)
    kwargs = {**tiny_detector_kwargs("fasterrcnn"), "image_size": (2 * HEIGHT, 2 * WIDTH)}
    model = build_fusion_detector("fasterrcnn", align="rfa", **kwargs)
    target = make_target([[10, 8, 22, 38]])
    target["boxes_rgb"] = target["boxes"] + 2
    image = torch.rand(4, HEIGHT, WIDTH)
    _original, batch, scaled, _streams = model._prepare([image], [target])
    assert batch.image_sizes == [(2 * HEIGHT, 2 * WIDTH)]
    assert torch.allclose(scaled[0]["boxes_rgb"], scaled[0]["boxes"] + 4)


def test_sample_reads_the_bin_centres_of_the_moved_box():
    """On a map whose value is its own x coordinate, the reading at each bin centre is that centre in
    feature pixels (bilinear is exact on a linear ramp), on the level the box's size selects."""
    align = RegionFeatureAlignment([4, 4], [4, 4], ["p2", "p3"], channels=2, hidden=8)
    fine = torch.arange(20.0).view(1, 1, 1, 20).expand(1, 2, 16, 20).clone()  # stride 4 over 64x80
    coarse = torch.full((1, 2, 8, 10), -7.0)  # stride 8: a big box would read -7
    rois = torch.tensor([[8.0, 8.0, 36.0, 36.0]])
    assert align.levels(rois, [0.25, 0.125]).tolist() == [0]
    assert align.levels(torch.tensor([[0.0, 0.0, 200.0, 200.0]]), [0.25, 0.125]).tolist() == [1]
    here, moved = align.sample([fine, coarse], [rois], [(64, 80)], [torch.zeros(1, 2), torch.tensor([[0.25, 0.0]])])
    centres = 8 + (torch.arange(7.0) + 0.5) * 4  # batch pixels
    expected = centres / 4 - 0.5  # feature pixel i holds the value i at its centre i + 0.5
    assert here.shape == (1, 2, 7, 7)
    assert torch.allclose(here[0, 0], expected.expand(7, 7), atol=1e-5)
    assert torch.allclose(moved[0, 1], (expected + 7 / 4).expand(7, 7), atol=1e-5)  # 0.25 x 28 px = 7 px right
    far = align.sample([torch.zeros(1, 2, 16, 20), coarse], [torch.tensor([[0.0, 0.0, 200.0, 200.0]])],
                       [(64, 80)], [torch.zeros(1, 2)])[0]
    # Bin centres inside the map read -7; those beyond it fade to zero.
    assert float(far[0, 0, 0, 0]) == pytest.approx(-7.0) and float(far[0, 0, -1, -1]) == 0.0


def test_offset_features_equal_convolving_the_pooled_patches():
    """Running the head's 1x1 convolution before RoI Align gives what convolving the pooled patches does."""
    torch.manual_seed(0)
    align = RegionFeatureAlignment([8, 16], [8, 16], ["p2", "p3"], channels=12, hidden=16)
    sensed, reference = align.project([torch.rand(2, 8, 16, 20), torch.rand(2, 16, 8, 10)],
                                      [torch.rand(2, 8, 16, 20), torch.rand(2, 16, 8, 10)])
    boxes = [torch.tensor([[-6.0, 4, 20, 40], [30, 10, 79, 63]]), torch.tensor([[10.0, 5, 30, 45]])]
    from collections import OrderedDict

    context = [align.context_boxes(b) for b in boxes]
    patches = [align.pool(OrderedDict(zip(align.level_names, maps)), context, [(64, 80)] * 2)
               for maps in (reference, sensed)]
    direct = torch.relu(align.offset_convs[0](torch.cat(patches, dim=1)))
    folded = align.offset_features(sensed, reference, boxes, [(64, 80)] * 2)
    assert torch.allclose(folded, direct, atol=1e-5)


def test_region_level_fusion_reads_rgb_only_at_the_regions(synthetic_batch):
    """``rfa_region``: the image-level pyramid (hence the proposals) is thermal's alone, RGB reaches the
    box head through the aligned region term, and every parameter receives a gradient."""
    torch.manual_seed(0)
    model = build_fusion_detector("fasterrcnn", align="rfa_region", align_max_offset=1.0,
                                  **tiny_detector_kwargs("fasterrcnn"))
    assert model.align.region and model.align.max_offset == 1.0 and model.align.context == 3.0
    assert model.backbone.fusion == "region" and not list(model.backbone.fusions.parameters())
    images, targets = _paired(synthetic_batch, 3, -2)
    model.eval()
    other = [torch.cat([torch.rand(3, HEIGHT, WIDTH), image[3:]]) for image in images]
    with torch.no_grad():
        pyramid, pyramid_other = model.backbone(torch.stack(images)), model.backbone(torch.stack(other))
        start, start_other = model(images), model(other)
    assert all(torch.equal(pyramid[k], pyramid_other[k]) for k in pyramid)
    # The RGB term starts at zero: other RGB, the same detections.
    assert all(torch.equal(a["scores"], b["scores"]) for a, b in zip(start, start_other))
    torch.nn.init.normal_(model.align.mix.weight, std=0.5)
    with torch.no_grad():
        mixed, mixed_other = model(images), model(other)
    assert not all(torch.equal(a["scores"], b["scores"]) for a, b in zip(mixed, mixed_other))
    model.train()
    torch.nn.init.normal_(model.align.offset_out.weight, std=0.01)
    losses = model(images, targets)
    assert float(losses["loss_offset"].detach()) > 0
    sum(losses.values()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    # 64x80 frames put every region on p2: the RGB pyramid's p2 branch, the mix and the offset head learn.
    used = ["sensed_fpn.inner_blocks.0.0.weight", "sensed_fpn.layer_blocks.0.0.weight", "mix.weight",
            "offset_convs.0.weight", "offset_fc.weight", "offset_out.weight"]
    grads = dict(model.align.named_parameters())
    assert all(bool(grads[name].grad.abs().sum() > 0) for name in used)
    with pytest.raises(ValueError, match="align_max_offset"):
        build_fusion_detector("fasterrcnn", align="rfa_region", align_max_offset=0.0,
                              **tiny_detector_kwargs("fasterrcnn"))
    with pytest.raises(ValueError, match="keeps stream 1"):
        model.backbone.fusions[0].pass_through(0)


def _textured_pair(dx: int, dy: int, height: int = 128, width: int = 160) -> torch.Tensor:
    """A stacked [r, g, b, t] frame of smooth random structure whose RGB content is the thermal content
    moved right by ``dx`` and down by ``dy`` px."""
    generator = torch.Generator().manual_seed(3)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 1, height + 40, width + 40, generator=generator), 7,
                                          stride=1, padding=3)[0, 0]
    base = (base - base.min()) / (base.max() - base.min())
    thermal = base[20:20 + height, 20:20 + width]
    rgb = base[20 - dy:20 - dy + height, 20 - dx:20 - dx + width]
    return torch.stack([rgb, rgb, rgb, thermal])


def test_the_registration_prior_finds_the_frame_offset_and_starts_every_region_there():
    from rgbt.detect.rfa import frame_priors

    image = _textured_pair(5, -3)
    found = frame_priors([image[:3], torch.zeros(3, 128, 160)], [image[3:], image[3:]])
    assert torch.allclose(found[0], torch.tensor([5.0, -3.0]), atol=0.3), found[0]
    assert found[1].tolist() == [0.0, 0.0]  # RGB blacked out: nothing to register, no prior
    torch.manual_seed(0)
    kwargs = {**tiny_detector_kwargs("fasterrcnn"), "image_size": (128, 160)}
    model = build_fusion_detector("fasterrcnn", align="rfa_region", align_prior="registration", **kwargs)
    boxes = torch.tensor([[20.0, 20, 36, 60], [90, 30, 110, 80]])
    (offsets,) = model.region_offsets([image], [boxes])  # the head starts at 0: the offsets are the prior's
    assert torch.allclose(offsets, found[0].expand(2, 2), atol=1e-4)
    # Training reads the prior too, and its losses stay finite.
    model.train()
    target = make_target(boxes.tolist())
    target["boxes_rgb"] = boxes + torch.tensor([5.0, -3, 5, -3])
    losses = model([image], [target])
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    with pytest.raises(ValueError, match="needs region feature alignment"):
        build_fusion_detector("fasterrcnn", align_prior="registration", **kwargs)
    with pytest.raises(ValueError, match="unknown align prior"):
        build_fusion_detector("fasterrcnn", align="rfa", align_prior="flow", **kwargs)
