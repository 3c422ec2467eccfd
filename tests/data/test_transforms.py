"""Paired augmentation: boxes follow pixels, modalities stay independent where they should."""

from __future__ import annotations

import dataclasses

import albumentations as A
import numpy as np
import pytest

from rgbt.config import AugmentConfig
from rgbt.data import transforms as transforms_module
from rgbt.data.perturbation import shift_image
from rgbt.data.sample import PairSample
from rgbt.data.transforms import PairedTransform, build_train_transform, random_crop_pair

H, W = 64, 80
BOXES = np.array([[10, 8, 22, 38], [40, 20, 52, 50], [60, 30, 72, 58]], np.float32)
RGB_OFFSET = np.array([3, -2, 3, -2], np.float32)


def _paint(boxes: np.ndarray, channels: int) -> np.ndarray:
    """Channel ``c`` holds a filled rectangle (255) at box ``c``."""
    image = np.zeros((H, W, channels), np.uint8)
    for c, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        image[y1:y2, x1:x2, c] = 255
    return image


def make_sample(paired: bool = True) -> PairSample:
    """Thermal holds object 0; fake_rgb channel c holds object c (thermal frame); rgb channel c
    holds object c at its RGB-frame box."""
    boxes_rgb = BOXES + RGB_OFFSET
    return PairSample(
        rgb=_paint(boxes_rgb if paired else BOXES, 3),
        thermal=_paint(BOXES[:1], 1)[..., 0],
        fake_rgb=_paint(BOXES, 3),
        boxes=BOXES,
        labels=["person", "people", "cyclist"],
        ignore=[False, True, False],
        occlusion=[0, 1, 2],
        boxes_rgb=boxes_rgb if paired else None,
        meta={"frame_id": "set00/V000/I00000", "period": "day"},
    )


def _pixel_box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


GEOMETRIC = {
    "hflip": [A.HorizontalFlip(p=1.0)],
    "scale": [A.RandomScale(scale_limit=(-0.4, 0.4), p=1.0)],
    "crop": [A.RandomCrop(height=48, width=56, p=1.0)],
    "resize": [A.Resize(height=50, width=120)],
    "affine": [A.Affine(rotate=(-6, 6), translate_percent=(-0.05, 0.05), scale=(0.9, 1.1), p=1.0)],
    "pad": [A.PadIfNeeded(min_height=96, min_width=96, border_mode=0, fill=0)],
    "train": build_train_transform(hflip=0.5, scale=(0.7, 1.3), crop=(56, 64)).geometric.transforms,
}


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_follow_pixels(name: str, seed: int) -> None:
    transform = PairedTransform(geometric=GEOMETRIC[name], seed=seed)
    out = transform(make_sample())
    tolerance = 2.0 if name == "affine" else 1.0
    assert out.rgb.shape[:2] == out.thermal.shape == out.fake_rgb.shape[:2]
    kept = {label: i for i, label in enumerate(out.labels)}
    for c, label in enumerate(["person", "people", "cyclist"]):
        thermal_pixels = _pixel_box(out.fake_rgb[..., c] > 127)
        if label not in kept:  # dropped objects have (almost) nothing left in the frame
            assert thermal_pixels is None or min(thermal_pixels[2:] - thermal_pixels[:2]) <= 3
            continue
        i = kept[label]
        np.testing.assert_allclose(out.boxes[i], thermal_pixels, atol=tolerance, err_msg=f"{name} thermal box {label}")
        rgb_pixels = _pixel_box(out.rgb[..., c] > 127)
        if rgb_pixels is not None:
            np.testing.assert_allclose(out.boxes_rgb[i], rgb_pixels, atol=tolerance, err_msg=f"{name} rgb box {label}")
    np.testing.assert_allclose(out.boxes[kept["person"]], _pixel_box(out.thermal > 127), atol=tolerance)


def test_objects_leaving_the_frame_are_dropped_in_sync() -> None:
    # Crop x in [30, 80): object 0 (x 10-22) leaves, objects 1 and 2 stay.
    out = PairedTransform(geometric=[A.Crop(x_min=30, y_min=0, x_max=80, y_max=64)])(make_sample())
    assert out.labels == ["people", "cyclist"]
    np.testing.assert_array_equal(out.ignore, [True, False])
    np.testing.assert_array_equal(out.occlusion, [1, 2])
    # albumentations works in normalised coordinates: exact up to float32 rounding.
    np.testing.assert_allclose(out.boxes, BOXES[1:] - np.array([30, 0, 30, 0]), atol=1e-4)
    np.testing.assert_allclose(out.boxes_rgb, BOXES[1:] + RGB_OFFSET - np.array([30, 0, 30, 0]), atol=1e-4)


def test_slivers_below_min_size_are_dropped_and_boxes_clipped() -> None:
    # Crop x in [21, 80): object 0 keeps a 1 px sliver (dropped), object 1 is whole.
    out = PairedTransform(geometric=[A.Crop(x_min=21, y_min=0, x_max=80, y_max=40)], min_size=2.0)(make_sample())
    assert out.labels == ["people", "cyclist"]
    np.testing.assert_allclose(out.boxes[0], [19, 20, 31, 40], atol=1e-4)  # clipped at the new bottom edge
    assert out.boxes[:, 3].max() <= 40


def test_photometric_ops_leave_the_other_modality_untouched() -> None:
    sample = make_sample()
    sample = sample.with_images(rgb=np.full((H, W, 3), 100, np.uint8), thermal=np.full((H, W), 100, np.uint8))
    rgb_only = PairedTransform(rgb_photometric=[A.ColorJitter(brightness=(1.5, 1.5), p=1.0),
                                                A.GaussNoise(std_range=(0.1, 0.1), p=1.0)], seed=0)(sample)
    np.testing.assert_array_equal(rgb_only.thermal, sample.thermal)
    assert not np.array_equal(rgb_only.rgb, sample.rgb)
    assert not np.array_equal(rgb_only.fake_rgb, sample.fake_rgb)  # the RGB list also runs on fake RGB
    thermal_only = PairedTransform(thermal_photometric=[A.RandomBrightnessContrast((0.3, 0.3), (0, 0), p=1.0)],
                                   seed=0)(sample)
    np.testing.assert_array_equal(thermal_only.rgb, sample.rgb)
    np.testing.assert_array_equal(thermal_only.fake_rgb, sample.fake_rgb)
    assert thermal_only.thermal.mean() > sample.thermal.mean() + 10
    for out in (rgb_only, thermal_only):
        np.testing.assert_array_equal(out.boxes, sample.boxes)
        np.testing.assert_array_equal(out.boxes_rgb, sample.boxes_rgb)


@pytest.mark.parametrize("paired", [True, False])
def test_shift_rgb_moves_only_rgb(paired: bool) -> None:
    sample = make_sample(paired)
    seen = set()
    transform = PairedTransform(shift_rgb=4.0, seed=3)
    for _ in range(6):
        out = transform(sample)
        dx, dy = out.meta["augment"]["shift_rgb"]
        seen.add((dx, dy))
        assert abs(dx) <= 4 and abs(dy) <= 4
        np.testing.assert_array_equal(out.thermal, sample.thermal)
        np.testing.assert_array_equal(out.fake_rgb, sample.fake_rgb)
        np.testing.assert_array_equal(out.boxes, sample.boxes)
        np.testing.assert_array_equal(out.rgb, shift_image(sample.rgb, dx, dy))
        base = sample.boxes_rgb if paired else sample.boxes
        np.testing.assert_array_equal(out.boxes_rgb, base + np.array([dx, dy, dx, dy], np.float32))
    assert len(seen) > 1
    assert "augment" not in sample.meta


def test_shift_rgb_prob_leaves_the_other_samples_aligned() -> None:
    sample = make_sample()
    transform = PairedTransform(shift_rgb=4.0, shift_rgb_prob=0.5, seed=2)
    shifted = 0
    for _ in range(400):
        out = transform(sample)
        if "augment" in out.meta:
            shifted += 1
            dx, dy = out.meta["augment"]["shift_rgb"]
            np.testing.assert_array_equal(out.rgb, shift_image(sample.rgb, dx, dy))
        else:  # not drawn: the pair passes through aligned
            np.testing.assert_array_equal(out.rgb, sample.rgb)
            np.testing.assert_array_equal(out.boxes_rgb, sample.boxes_rgb)
    assert 160 <= shifted <= 240  # binomial(400, 0.5): 5 SD either side
    assert all("augment" not in PairedTransform(shift_rgb=4.0, shift_rgb_prob=0.0, seed=0)(sample).meta
               for _ in range(20))
    # At probability 1 no extra draw is taken: the shifts are those of the plain transform.
    always, plain = PairedTransform(shift_rgb=4.0, shift_rgb_prob=1.0, seed=7), PairedTransform(shift_rgb=4.0, seed=7)
    assert [always(sample).meta["augment"] for _ in range(6)] == [plain(sample).meta["augment"] for _ in range(6)]
    with pytest.raises(ValueError, match="shift_rgb_prob is a probability"):
        PairedTransform(shift_rgb=4.0, shift_rgb_prob=1.5)


def test_seeded_transforms_repeat_and_workers_get_their_own_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(transform: PairedTransform) -> list[np.ndarray]:
        return [transform(make_sample()).boxes for _ in range(8)]

    def build() -> PairedTransform:
        return build_train_transform(hflip=0.5, scale=(0.8, 1.2), shift_rgb=2, seed=11)

    first, second = run(build()), run(build())
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    monkeypatch.setattr(transforms_module, "_worker_seed", lambda: 1)
    worker_1, worker_1_again = run(build()), run(build())
    monkeypatch.setattr(transforms_module, "_worker_seed", lambda: 2)
    worker_2 = run(build())
    assert all(np.array_equal(a, b) for a, b in zip(worker_1, worker_1_again))
    assert not all(np.array_equal(a, b) for a, b in zip(worker_1, worker_2))


def test_builder_accepts_the_augment_config_fields() -> None:
    config = AugmentConfig(hflip=1.0, scale=[1.0, 1.0], color=0.0, shift_rgb=0.0)
    transform = build_train_transform(**dataclasses.asdict(config))
    out = transform(make_sample())
    np.testing.assert_array_equal(out.thermal, make_sample().thermal[:, ::-1])
    np.testing.assert_allclose(out.boxes[0], [W - 22, 8, W - 10, 38], atol=1e-4)
    assert transform.rgb_photometric is None and transform.thermal_photometric is None
    full = build_train_transform(hflip=0.5, scale=(0.8, 1.2), color=0.8, shift_rgb=3, crop=(48, 48),
                                 thermal_jitter=0.5, seed=0)
    out = full(make_sample())
    assert out.thermal.shape == (48, 48) and out.rgb.shape == (48, 48, 3)
    with pytest.raises(ValueError, match="scale"):
        build_train_transform(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="probability"):
        build_train_transform(hflip=1.5)


def test_thermal_only_and_empty_samples() -> None:
    sample = PairSample(rgb=None, thermal=np.zeros((H, W), np.uint8), meta={"frame_id": "x"})
    out = build_train_transform(hflip=1.0, shift_rgb=2, scale=(0.5, 0.5), seed=0)(sample)
    assert out.rgb is None and out.thermal.shape == (H // 2, W // 2)
    assert out.boxes.shape == (0, 4) and out.labels == []


def test_random_crop_pair_crops_every_modality_at_one_window() -> None:
    sample = make_sample()
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = random_crop_pair(sample, 40, 48, rng)
        assert out.thermal.shape == (40, 48) and out.rgb.shape == (40, 48, 3) and out.fake_rgb.shape == (40, 48, 3)
        matches = [(y, x) for y in range(H - 40 + 1) for x in range(W - 48 + 1)
                   if np.array_equal(sample.fake_rgb[y:y + 40, x:x + 48], out.fake_rgb)
                   and np.array_equal(sample.rgb[y:y + 40, x:x + 48], out.rgb)
                   and np.array_equal(sample.thermal[y:y + 40, x:x + 48], out.thermal)]
        assert matches
        for c, label in enumerate(sample.labels):
            pixels = _pixel_box(out.fake_rgb[..., c] > 127)
            if label in out.labels:
                np.testing.assert_array_equal(out.boxes[out.labels.index(label)], pixels)
            else:
                assert pixels is None
    with pytest.raises(ValueError, match="smaller than"):
        random_crop_pair(sample, 100, 48, rng)


def test_modality_dropout_blanks_one_modality_of_a_pair_at_its_rate() -> None:
    from dataclasses import replace

    transform = PairedTransform(modality_dropout=0.5, seed=3)
    pair = replace(make_sample(), fake_rgb=None)
    blanked = {"rgb": 0, "thermal": 0, "none": 0}
    for _ in range(400):
        out = transform(pair)
        rgb_off, thermal_off = not out.rgb.any(), not out.thermal.any()
        assert not (rgb_off and thermal_off)  # never both
        blanked["rgb" if rgb_off else "thermal" if thermal_off else "none"] += 1
        np.testing.assert_array_equal(out.boxes, pair.boxes)  # boxes are kept
        if not rgb_off:
            np.testing.assert_array_equal(out.rgb, pair.rgb)
    assert 160 <= blanked["none"] <= 240 and 60 <= blanked["rgb"] <= 140 and 60 <= blanked["thermal"] <= 140
    # A single modality is never blanked; the other draws (here the RGB shift) do not change with it.
    single = replace(pair, rgb=None, boxes_rgb=None)
    assert all(PairedTransform(modality_dropout=1.0, seed=0)(single).thermal.any() for _ in range(5))
    with_dropout = PairedTransform(shift_rgb=3, modality_dropout=1.0, seed=5)
    without = PairedTransform(shift_rgb=3, seed=5)
    for _ in range(5):
        assert with_dropout(pair).meta["augment"] == without(pair).meta["augment"]
    with pytest.raises(ValueError, match="modality_dropout is a probability"):
        PairedTransform(modality_dropout=1.5)
