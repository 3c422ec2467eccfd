"""Fusion backbones: shapes, channel layout, gradients, local weights and first-layer adaptation."""

from __future__ import annotations

import pytest
import torch
import torchvision
from detect_helpers import HEIGHT, TINY_BACKBONE, WIDTH

from rgbt.data.dataset import stack_modalities
from rgbt.data.sample import MODALITIES, MODALITY_CHANNELS
from rgbt.detect.backbone import build_backbone, split_modalities
from rgbt.detect.trunk import adapt_first_conv_weight, build_trunk


def test_modality_table_covers_the_data_modalities():
    assert set(MODALITY_CHANNELS) == set(MODALITIES)
    assert MODALITY_CHANNELS == {"rgb": 3, "thermal": 1, "fake_rgb": 3, "aligned_rgb": 3}


@pytest.mark.parametrize("fusion", ["concat", "sum", "gate", "early"])
def test_pyramid_shapes_and_attributes(fusion):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", ("rgb", "thermal"), fusion, **TINY_BACKBONE)
    assert backbone.in_channels == 4
    assert backbone.modalities == ("rgb", "thermal")
    assert backbone.fusion == fusion
    assert backbone.out_channels == 16
    assert backbone.level_names == ["p2", "p3", "p4", "p5", "pool"]
    assert backbone.strides == [4, 8, 16, 32, 64]
    expected_trunks = ["rgb+thermal"] if fusion == "early" else ["rgb", "thermal"]
    assert list(backbone.trunks) == expected_trunks
    features = backbone(torch.rand(2, 4, HEIGHT, WIDTH))
    assert list(features) == backbone.level_names
    for stride, feature in zip(backbone.strides, features.values()):
        assert feature.shape == (2, 16, -(-HEIGHT // stride), -(-WIDTH // stride))


@pytest.mark.parametrize("trunk", ["mobilenet_v3_small", "mobilenet_v3_large"])
def test_mobilenet_trunks_give_stride_4_to_32_stages(trunk):
    stages = build_trunk(trunk, [1], width_mult=0.25)
    assert stages.strides == [4, 8, 16, 32]
    outputs = stages(torch.rand(1, 1, HEIGHT, WIDTH))
    assert [o.shape[1] for o in outputs] == stages.out_channels
    assert [o.shape[-2:] for o in outputs] == [(16, 20), (8, 10), (4, 5), (2, 3)]


def test_p6p7_and_stage_subset():
    backbone = build_backbone(
        "resnet18", ("thermal",), stages=(3, 4, 5), extra_blocks="p6p7", **TINY_BACKBONE
    )
    assert backbone.fusion == "single"
    assert backbone.level_names == ["p3", "p4", "p5", "p6", "p7"]
    assert backbone.strides == [8, 16, 32, 64, 128]
    assert len(backbone(torch.rand(1, 1, HEIGHT, WIDTH))) == 5


def test_stacked_layout_and_dict_input_agree():
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", ("thermal", "rgb"), "gate", **TINY_BACKBONE).eval()
    thermal, rgb = torch.rand(1, 1, HEIGHT, WIDTH), torch.rand(1, 3, HEIGHT, WIDTH)
    stacked = torch.cat([thermal, rgb], dim=1)  # modality order: thermal first -> [t, r, g, b]
    assert torch.equal(
        stack_modalities({"rgb": rgb, "thermal": thermal}, backbone.modality_channels), stacked
    )
    parts = split_modalities(stacked, backbone.modality_channels)
    assert torch.equal(parts["thermal"], thermal) and torch.equal(parts["rgb"], rgb)
    with torch.no_grad():
        a, b = backbone(stacked), backbone({"thermal": thermal, "rgb": rgb})
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_streams_read_their_own_channels():
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", ("rgb", "thermal"), "concat", **TINY_BACKBONE).eval()
    x = torch.rand(1, 4, HEIGHT, WIDTH)
    seen = {}
    for name, trunk in backbone.trunks.items():
        trunk.register_forward_hook(lambda module, args, out, name=name: seen.__setitem__(name, args[0]))
    with torch.no_grad():
        backbone(x)
    assert torch.equal(seen["rgb"], x[:, :3]) and torch.equal(seen["thermal"], x[:, 3:])


@pytest.mark.parametrize("fusion", ["concat", "sum", "gate", "early"])
def test_every_parameter_gets_a_gradient(fusion):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", ("rgb", "thermal"), fusion, **TINY_BACKBONE)
    features = backbone(torch.rand(2, 4, HEIGHT, WIDTH))
    sum(f.square().mean() for f in features.values()).backward()
    missing = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert not missing
    for trunk in backbone.trunks.values():
        assert all(p.grad.abs().sum() > 0 for p in trunk.parameters())


def test_bad_inputs_raise():
    backbone = build_backbone("resnet18", ("rgb", "thermal"), **TINY_BACKBONE)
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\).*rgb:3, thermal:1"):
        backbone(torch.rand(1, 3, HEIGHT, WIDTH))
    with pytest.raises(ValueError, match="missing modality 'thermal'"):
        backbone({"rgb": torch.rand(1, 3, HEIGHT, WIDTH)})
    with pytest.raises(ValueError, match="unknown modality 'ir'"):
        build_backbone(modalities=("rgb", "ir"))
    with pytest.raises(ValueError, match="unknown fusion 'late'"):
        build_backbone(fusion="late")
    with pytest.raises(ValueError, match="unknown trunk 'vgg16'"):
        build_trunk("vgg16")
    with pytest.raises(ValueError, match="trainable_layers"):
        build_trunk("resnet18", trainable_layers=6)
    with pytest.raises(ValueError, match="weights given for unknown trunk 'rgb'; trunk names: rgb\\+thermal"):
        build_backbone(fusion="early", weights={"rgb": "x.pth"}, **TINY_BACKBONE)


def test_trainable_layers_freeze_from_the_bottom():
    trunk = build_trunk("resnet18", [3], width_mult=0.125, trainable_layers=2)
    frozen = {n.split(".")[1] for n, p in trunk.named_parameters() if not p.requires_grad}
    trainable = {n.split(".")[1] for n, p in trunk.named_parameters() if p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1", "layer2"}
    assert trainable == {"layer3", "layer4"}


def test_narrow_resnet_keeps_torchvision_names():
    full = build_trunk("resnet18", [3]).state_dict()
    narrow = build_trunk("resnet18", [3], width_mult=0.125).state_dict()
    assert list(full) == list(narrow)
    assert full["body.layer4.1.bn2.weight"].shape == (512,) and narrow["body.layer4.1.bn2.weight"].shape == (
        64,
    )


def test_adapt_first_conv_weight_numbers():
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)  # [[0,1,2],[3,4,5]]
    thermal = adapt_first_conv_weight(weight, [1])
    assert thermal.flatten().tolist() == [3.0, 12.0]
    early = adapt_first_conv_weight(weight, [3, 1])
    assert early[:, :, 0, 0].tolist() == [[0.0, 0.5, 1.0, 1.5], [1.5, 2.0, 2.5, 6.0]]
    # On a grey image replicated to RGB the thermal kernel gives the RGB kernel's response.
    grey = torch.rand(1, 1, 5, 5)
    rgb_kernel = torch.randn(4, 3, 3, 3)
    expected = torch.nn.functional.conv2d(grey.expand(1, 3, 5, 5), rgb_kernel)
    got = torch.nn.functional.conv2d(grey, adapt_first_conv_weight(rgb_kernel, [1]))
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="1 or 3"):
        adapt_first_conv_weight(weight, [2])


def test_thermal_trunk_loads_a_three_channel_torchvision_file(tmp_path):
    torch.manual_seed(1)
    classifier = torchvision.models.resnet18(weights=None)
    classifier.bn1.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "resnet18.pth"
    torch.save(classifier.state_dict(), path)
    trunk = build_trunk("resnet18", [1], weights=path)
    state = trunk.state_dict()
    assert state["body.conv1.weight"].shape == (64, 1, 7, 7)
    torch.testing.assert_close(state["body.conv1.weight"], classifier.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(state["body.layer3.1.conv2.weight"], classifier.layer3[1].conv2.weight)
    torch.testing.assert_close(state["body.bn1.running_var"], classifier.bn1.running_var)


def test_backbone_weights_per_trunk_and_early_adaptation(tmp_path):
    torch.manual_seed(2)
    classifier = torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.25)
    path = tmp_path / "mnv3.pth"
    torch.save({"state_dict": classifier.state_dict()}, path)
    kernel = classifier.features[0][0].weight
    common = {"trunk": "mobilenet_v3_small", "width_mult": 0.25, "fpn_channels": 16}

    two_stream = build_backbone(modalities=("rgb", "thermal"), weights={"thermal": path}, **common)
    loaded = two_stream.trunks["thermal"].state_dict()["body.0.0.weight"]
    torch.testing.assert_close(loaded, kernel.sum(dim=1, keepdim=True))
    assert not torch.equal(two_stream.trunks["rgb"].state_dict()["body.0.0.weight"], kernel)

    early = build_backbone(
        modalities=("rgb", "thermal"), fusion="early", weights={"rgb+thermal": path}, **common
    )
    loaded = early.trunks["rgb+thermal"].state_dict()["body.0.0.weight"]
    torch.testing.assert_close(loaded, torch.cat([kernel, kernel.sum(dim=1, keepdim=True)], dim=1) / 2)


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_trunk("resnet18", [1], width_mult=0.125, weights=tmp_path / "missing.pth")
    path = tmp_path / "wide.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(
        ValueError, match=r"conv1.weight has shape \(64, 3, 7, 7\), the resnet18 trunk expects \(8, 1, 7, 7\)"
    ):
        build_trunk("resnet18", [1], width_mult=0.125, weights=path)
    with pytest.raises(ValueError, match="does not match a resnet34 trunk"):
        build_trunk("resnet34", [3], weights=path)


@pytest.mark.parametrize("fusion", ["concat", "sum", "gate"])
def test_a_stream_computed_once_gives_the_same_pyramid(fusion):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", ("rgb", "thermal"), fusion, **TINY_BACKBONE).eval()
    assert backbone.separable_streams == ("rgb", "thermal")
    x = torch.rand(3, 4, HEIGHT, WIDTH)
    x[:, 3:] = x[:1, 3:]  # one thermal image under three RGB images
    with torch.no_grad():
        full = backbone(x)
        thermal = backbone.stream_features(x[:1], "thermal")
        given = backbone(x, streams={"thermal": thermal})
        with backbone.reusing({"thermal": thermal}):
            reused = backbone(torch.cat([x[:, :3], torch.zeros(3, 1, HEIGHT, WIDTH)], dim=1))
    for name in full:
        torch.testing.assert_close(given[name], full[name], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(reused[name], full[name], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(backbone(x)["p2"], backbone(x, streams={"thermal": [f * 2 for f in thermal]})["p2"])


def test_streams_that_cannot_be_reused_are_refused():
    early = build_backbone("resnet18", ("rgb", "thermal"), "early", **TINY_BACKBONE)
    assert early.separable_streams == ()
    with pytest.raises(ValueError, match="not a separate stream of this early backbone"):
        early.stream_features(torch.rand(1, 4, HEIGHT, WIDTH), "thermal")
    backbone = build_backbone("resnet18", ("rgb", "thermal"), "concat", **TINY_BACKBONE).eval()
    with torch.no_grad():
        thermal = backbone.stream_features(torch.rand(2, 4, HEIGHT, WIDTH), "thermal")
        with pytest.raises(ValueError, match="features of batch \\[2, 2, 2, 2\\] given for a batch of 3"):
            backbone(torch.rand(3, 4, HEIGHT, WIDTH), streams={"thermal": thermal})
    with pytest.raises(ValueError, match="1 stage features given, the trunk has 4"):
        with backbone.reusing({"thermal": thermal[:1]}):
            pass
