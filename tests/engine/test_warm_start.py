"""model.init_from: a fusion detector started from trained single-modality detectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rgbt.config import DetectorConfig, load_config
from rgbt.engine.checkpoint import save_checkpoint
from rgbt.engine.detector_builder import build_detector_from_config

TINY = ["model.width_mult=0.25", "model.fpn_channels=16", "model.representation_size=32", "model.min_size=64",
        "model.max_size=80"]


def _saved(tmp_path: Path, name: str, modalities: list[str], seed: int) -> Path:
    torch.manual_seed(seed)
    model = build_detector_from_config(load_config(DetectorConfig, None, TINY).model, modalities, 2)
    return save_checkpoint(tmp_path / f"{name}.pt", {"model": model.state_dict()})


def test_each_trunk_comes_from_the_detector_that_trained_it(tmp_path: Path) -> None:
    thermal = _saved(tmp_path, "thermal", ["thermal"], seed=1)
    rgb = _saved(tmp_path, "rgb", ["rgb"], seed=2)
    config = load_config(DetectorConfig, None, TINY + [f"model.init_from=[{thermal}, {rgb}]"])
    torch.manual_seed(3)
    fusion = build_detector_from_config(config.model, ["rgb", "thermal"], 2).state_dict()
    thermal_state = torch.load(thermal, weights_only=True)["model"]
    rgb_state = torch.load(rgb, weights_only=True)["model"]
    for key, value in fusion.items():
        if key.startswith("backbone.trunks.thermal."):
            assert torch.equal(value, thermal_state[key]), key
        elif key.startswith("backbone.trunks.rgb."):
            assert torch.equal(value, rgb_state[key]), key
        elif key in rgb_state:  # pyramid and heads: the last checkpoint wins
            assert torch.equal(value, rgb_state[key]), key
    # Without init_from the same seed gives other weights: the copy above is what made them equal.
    torch.manual_seed(3)
    fresh = build_detector_from_config(load_config(DetectorConfig, None, TINY).model, ["rgb", "thermal"], 2)
    key = "backbone.trunks.thermal.body.conv1.weight"
    assert not torch.equal(fresh.state_dict()[key], fusion[key])
    # Inference rebuilds from the checkpoint alone: the warm-start files are not read again.
    build_detector_from_config(config.model, ["rgb", "thermal"], 2, load_weights=False)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    foreign = save_checkpoint(tmp_path / "foreign.pt", {"model": {"classifier.weight": torch.zeros(3, 3)}})
    config = load_config(DetectorConfig, None, TINY + [f"model.init_from=[{foreign}]"])
    with pytest.raises(ValueError, match="none of its 1 tensors matches"):
        build_detector_from_config(config.model, ["thermal"], 2)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        build_detector_from_config(load_config(DetectorConfig, None, TINY + [f"model.init_from=[{tmp_path}/x.pt]"])
                                   .model, ["thermal"], 2)


def test_fusion_started_as_the_thermal_detector_detects_exactly_like_it(tmp_path: Path) -> None:
    thermal = _saved(tmp_path, "thermal", ["thermal"], seed=1)
    rgb = _saved(tmp_path, "rgb", ["rgb"], seed=2)
    config = load_config(DetectorConfig, None, TINY + [f"model.init_from=[{rgb}, {thermal}]",
                                                       "model.fusion_init=thermal", "model.score_thresh=0.0"])
    fusion = build_detector_from_config(config.model, ["rgb", "thermal"], 2).eval()
    single = build_detector_from_config(load_config(DetectorConfig, None, TINY + ["model.score_thresh=0.0"]).model,
                                        ["thermal"], 2).eval()
    single.load_state_dict(torch.load(thermal, weights_only=True)["model"])
    torch.manual_seed(0)
    rgb_image, thermal_image = torch.rand(3, 64, 80), torch.rand(1, 64, 80)
    with torch.no_grad():
        fused = fusion([torch.cat([rgb_image, thermal_image])])[0]
        alone = single([thermal_image])[0]
    assert len(alone["boxes"]) > 0
    torch.testing.assert_close(fused["boxes"], alone["boxes"])
    torch.testing.assert_close(fused["scores"], alone["scores"])
    # RGB has no say yet: another RGB image gives the same detections.
    with torch.no_grad():
        other = fusion([torch.cat([torch.rand(3, 64, 80), thermal_image])])[0]
    torch.testing.assert_close(other["scores"], alone["scores"])
    with pytest.raises(ValueError, match="streams are rgb, thermal"):
        build_detector_from_config(load_config(DetectorConfig, None, TINY + ["model.fusion_init=lidar"]).model,
                                   ["rgb", "thermal"], 2)
    with pytest.raises(ValueError, match="needs halfway concat fusion"):
        build_detector_from_config(load_config(DetectorConfig, None, TINY + ["model.fusion_init=thermal"]).model,
                                   ["thermal"], 2)


def test_region_level_rfa_starts_as_the_thermal_detector_with_the_rgb_pyramid(tmp_path: Path) -> None:
    """``model.align=rfa_region`` from an RGB-only and a thermal-only detector: the RGB stream's own
    pyramid is the RGB detector's, and the model detects exactly like the thermal detector, whatever
    the RGB image, until training gives the RGB term a say."""
    thermal = _saved(tmp_path, "thermal", ["thermal"], seed=1)
    rgb = _saved(tmp_path, "rgb", ["rgb"], seed=2)
    config = load_config(DetectorConfig, None, TINY + [f"model.init_from=[{rgb}, {thermal}]", "model.align=rfa_region",
                                                       "model.fusion_init=thermal", "model.score_thresh=0.0"])
    model = build_detector_from_config(config.model, ["rgb", "thermal"], 2).eval()
    rgb_state = torch.load(rgb, weights_only=True)["model"]
    state = model.state_dict()
    copied = [k for k in state if k.startswith("align.sensed_fpn.")]
    assert copied and all(torch.equal(state[k], rgb_state["backbone.fpn." + k[len("align.sensed_fpn."):]])
                          for k in copied)
    single = build_detector_from_config(load_config(DetectorConfig, None, TINY + ["model.score_thresh=0.0"]).model,
                                        ["thermal"], 2).eval()
    single.load_state_dict(torch.load(thermal, weights_only=True)["model"])
    torch.manual_seed(0)
    thermal_image = torch.rand(1, 64, 80)
    with torch.no_grad():
        alone = single([thermal_image])[0]
        for rgb_image in (torch.rand(3, 64, 80), torch.zeros(3, 64, 80)):
            fused = model([torch.cat([rgb_image, thermal_image])])[0]
            assert torch.equal(fused["boxes"], alone["boxes"]) and torch.equal(fused["scores"], alone["scores"])
    assert len(alone["boxes"]) > 0
    # The thermal detector's checkpoint names no RGB pyramid: nothing more is taken from it.
    assert model.warm_start_aliases(torch.load(thermal, weights_only=True)["model"]) == {}
