"""The synthetic KAIST-layout generator: determinism, layout, annotations, content statistics."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.bbgt import read_bbgt
from rgbt.data.kaist import annotation_path, image_path, paired_annotation_path, read_image_set
from rgbt.data.source import open_source
from rgbt.data.synthetic import (
    KAIST_WIDTH,
    MANIFEST_NAME,
    SyntheticParams,
    frame_plan,
    generate_synthetic,
    is_valid_synthetic_root,
    read_manifest,
    render_frame,
)
from rgbt.data.synthetic_effects import SyntheticEffects, parse_effects

WIDTH, HEIGHT = 160, 128


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame root: 24 train (12 day, 12 night) and 16 test (8 day, 8 night)."""
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "root", 24, 16, seed=7, width=WIDTH, height=HEIGHT,
                              progress=False)


def test_same_seed_identical_bytes_and_workers_do_not_matter(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a", 3, 3, seed=1, width=96, height=80, progress=False)
    b = generate_synthetic(tmp_path / "b", 3, 3, seed=1, width=96, height=80, workers=2, progress=False)
    c = generate_synthetic(tmp_path / "c", 3, 3, seed=2, width=96, height=80, progress=False)
    files_a, files_b, files_c = _files(a), _files(b), _files(c)
    assert len(files_a) == 6 * 5 + 3  # 5 files per frame, manifest, two image-set lists
    assert files_a == files_b
    jpgs = [name for name in files_a if name.endswith(".jpg")]
    assert all(files_a[name] != files_c[name] for name in jpgs)


def test_layout_image_sets_and_manifest(root: Path) -> None:
    train = read_image_set(root / "imageSets" / "train.txt")
    test = read_image_set(root / "imageSets" / "test.txt")
    assert len(train) == 24 and len(test) == 16
    assert Counter(f[:5] for f in train) == {"set00": 12, "set03": 12}
    assert Counter(f[:5] for f in test) == {"set06": 8, "set09": 8}
    manifest = read_manifest(root)
    assert manifest["seed"] == 7 and manifest["width"] == WIDTH and manifest["height"] == HEIGHT
    assert manifest["version"] >= 1
    max_shift = manifest["max_shift"]
    assert max_shift == pytest.approx(6.0 * WIDTH / KAIST_WIDTH)
    frames = manifest["frames"]
    assert [f["frame_id"] for f in frames] == train + test
    shifts = np.array([[f["dx"], f["dy"]] for f in frames])
    assert np.all(np.abs(shifts) <= max_shift)
    assert np.all(shifts * 4 == np.round(shifts * 4))  # quarter pixels
    assert np.abs(shifts).max() > 0
    assert {f["period"] for f in frames if f["frame_id"].startswith(("set00", "set06"))} == {"day"}
    assert {f["period"] for f in frames if f["frame_id"].startswith(("set03", "set09"))} == {"night"}
    assert is_valid_synthetic_root(root, SyntheticParams(24, 16, 7, WIDTH, HEIGHT, max_shift))
    assert not is_valid_synthetic_root(root, SyntheticParams(24, 16, 8, WIDTH, HEIGHT, max_shift))


def test_loader_round_trip_and_paired_boxes(root: Path) -> None:
    shifts = {f["frame_id"]: (f["dx"], f["dy"]) for f in read_manifest(root)["frames"]}
    for split in ("train", "test"):
        source = open_source(root, split)
        assert source.name == "kaist"
        for i in range(len(source)):
            sample = source[i]
            assert sample.rgb.shape == (HEIGHT, WIDTH, 3) and sample.thermal.shape == (HEIGHT, WIDTH)
            assert sample.meta["split"] == split
            objects = read_bbgt(annotation_path(root, sample.frame_id))
            assert sample.labels == [o.label for o in objects]
            boxes = np.array([[o.box[0], o.box[1], o.box[0] + o.box[2], o.box[1] + o.box[3]] for o in objects])
            np.testing.assert_array_equal(sample.boxes, boxes.reshape(-1, 4))
            dx, dy = shifts[sample.frame_id]
            np.testing.assert_array_equal(sample.boxes_rgb, sample.boxes + np.array([dx, dy, dx, dy], np.float32))


def test_paired_files_are_thermal_plus_offset(root: Path) -> None:
    for frame in read_manifest(root)["frames"]:
        fid, dx, dy = frame["frame_id"], frame["dx"], frame["dy"]
        thermal = read_bbgt(paired_annotation_path(root, fid, "thermal"))
        visible = read_bbgt(paired_annotation_path(root, fid, "rgb"))
        assert thermal == read_bbgt(annotation_path(root, fid))
        assert [o.label for o in visible] == [o.label for o in thermal]
        for v, t in zip(visible, thermal):
            assert v.box == (t.box[0] + dx, t.box[1] + dy, t.box[2], t.box[3])
            assert v.occlusion == t.occlusion


def test_labels_occlusion_and_heights(root: Path) -> None:
    objects = [o for fid, _split in frame_plan(24, 16) for o in read_bbgt(annotation_path(root, fid))]
    labels = Counter(o.label for o in objects)
    assert set(labels) == {"person", "people", "cyclist", "person?"}
    assert labels["person"] > labels["people"] + labels["cyclist"] + labels["person?"]
    assert set(o.occlusion for o in objects) == {0, 1, 2}
    for o in objects:
        x, y, w, h = o.box
        assert 0 <= x and x + w <= WIDTH and 0 <= y and y + h <= HEIGHT
        if o.occlusion:  # the visible part lies inside the box and is smaller
            vx, vy, vw, vh = o.visible
            assert x <= vx and y <= vy and vx + vw <= x + w and vy + vh <= y + h and vw * vh < w * h
        else:
            assert o.visible == (0, 0, 0, 0)
    threshold = 55 * WIDTH / KAIST_WIDTH
    heights = np.array([o.box[3] for o in objects if o.label == "person"])
    assert (heights >= threshold).mean() > 0.2 and (heights < threshold).mean() > 0.2


def _person_glow(root: Path, frame_ids: list[str]) -> list[bool]:
    """Per unoccluded person of 12 px and up: is its warmest tenth 20 grey levels above the surroundings?"""
    glows = []
    for fid in frame_ids:
        thermal = cv2.imread(str(image_path(root, fid, "thermal")), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        for o in read_bbgt(annotation_path(root, fid)):
            x, y, w, h = (int(v) for v in o.box)
            if o.label == "person" and o.occlusion == 0 and h >= 12:
                inside = thermal[y:y + h, x + w // 4:x + w - w // 4]
                ring = thermal[max(0, y - 3):y + h + 3, max(0, x - 4):x + w + 4]
                glows.append(np.percentile(inside, 90) > np.median(ring) + 20)
    return glows


def test_without_effects_people_glow_in_thermal_and_crossover_dims_them(root: Path, tmp_path: Path) -> None:
    plain = generate_synthetic(tmp_path / "plain", 24, 16, seed=7, width=WIDTH, height=HEIGHT, progress=False,
                               effects=SyntheticEffects.none())
    frame_ids = [fid for fid, _split in frame_plan(24, 16)]
    day = [fid for fid in frame_ids if fid.startswith(("set00", "set06"))]
    glow_plain, glow_day = _person_glow(plain, day), _person_glow(root, day)
    assert len(glow_plain) >= 10 and np.mean(glow_plain) > 0.9
    # Warm days: persons are barely warmer than roads and walls (the same persons, see the effect tests).
    assert len(glow_day) == len(glow_plain) and np.mean(glow_day) < np.mean(glow_plain) - 0.2


def test_night_rgb_dark_and_noisy_night_thermal_flatter(root: Path) -> None:
    def stats(frame_ids: list[str], modality: str) -> np.ndarray:
        rows = []
        for fid in frame_ids:
            image = cv2.imread(str(image_path(root, fid, modality)), cv2.IMREAD_GRAYSCALE).astype(np.float32)
            residual = image - cv2.GaussianBlur(image, (0, 0), 2.0)
            # Interquartile range as contrast: robust to the few bright lights of night scenes.
            contrast = np.subtract(*np.percentile(image, [75, 25]))
            rows.append((image.mean(), contrast, residual.std() / max(image.mean(), 1.0), np.median(image)))
        return np.array(rows).mean(axis=0)

    train = read_image_set(root / "imageSets" / "train.txt")
    day = [f for f in train if f.startswith("set00")]
    night = [f for f in train if f.startswith("set03")]
    rgb_day, rgb_night = stats(day, "rgb"), stats(night, "rgb")
    assert rgb_night[0] < 0.4 * rgb_day[0]  # darker
    assert rgb_night[1] < 0.5 * rgb_day[1]  # lower contrast
    assert rgb_night[2] > 2 * rgb_day[2]  # noisier relative to the signal
    # Thermal depends on the period, as in KAIST: night frames are darker and span fewer grey levels.
    t_day, t_night = stats(day, "thermal"), stats(night, "thermal")
    assert t_night[3] < t_day[3] - 8
    assert t_night[1] < t_day[1]


def test_rgb_content_moves_by_the_shift_and_thermal_does_not() -> None:
    fid = "set00/V000/I00003"
    base = render_frame(3, fid, 96, 80, max_shift=3.0, shift=(0.0, 0.0))
    moved = render_frame(3, fid, 96, 80, max_shift=3.0, shift=(2.0, -1.0))
    np.testing.assert_array_equal(base.thermal, moved.thermal)
    a, b = base.rgb.astype(np.float32), moved.rgb.astype(np.float32)
    errors = {}
    for dx in range(-3, 4):
        for dy in range(-3, 4):
            # moved[y, x] should show base[y - dy, x - dx]
            errors[dx, dy] = np.abs(b[4 + dy:-4 + dy, 4 + dx:-4 + dx] - a[4:-4, 4:-4]).mean()
    assert min(errors, key=errors.get) == (2, -1)
    assert [o.box for o in moved.rgb_objects()] == [(o.box[0] + 2, o.box[1] - 1, o.box[2], o.box[3])
                                                    for o in base.objects]


def test_rerun_is_noop_and_fills_missing_frames(tmp_path: Path) -> None:
    out = generate_synthetic(tmp_path / "r", 2, 2, seed=5, width=64, height=64, progress=False)
    before = _files(out)
    jpg = image_path(out, "set00/V000/I00000", "rgb")
    txt = annotation_path(out, "set06/V000/I00000")
    jpg.unlink()
    txt.unlink()
    params = SyntheticParams(2, 2, 5, 64, 64, 6.0 * 64 / KAIST_WIDTH)
    assert not is_valid_synthetic_root(out, params)
    generate_synthetic(out, 2, 2, seed=5, width=64, height=64, progress=False)
    assert _files(out) == before
    assert is_valid_synthetic_root(out, params)
    mtime = jpg.stat().st_mtime_ns
    generate_synthetic(out, 2, 2, seed=5, width=64, height=64, progress=False)
    assert jpg.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="other parameters"):
        generate_synthetic(out, 2, 2, seed=6, width=64, height=64, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        generate_synthetic(tmp_path / "other", 1, 1, progress=False)


def test_one_channel_lwir_loads(tmp_path: Path) -> None:
    three = generate_synthetic(tmp_path / "three", 2, 0, seed=4, width=64, height=64, progress=False)
    one = generate_synthetic(tmp_path / "one", 2, 0, seed=4, width=64, height=64, lwir_channels=1, progress=False)
    assert cv2.imread(str(image_path(one, "set00/V000/I00000", "thermal")), cv2.IMREAD_UNCHANGED).ndim == 2
    a, b = open_source(three, "train")[0], open_source(one, "train")[0]
    assert b.thermal.shape == a.thermal.shape == (64, 64)
    assert np.abs(a.thermal.astype(int) - b.thermal.astype(int)).mean() < 2.0
    assert json.loads((one / MANIFEST_NAME).read_text())["lwir_channels"] == 1


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        SyntheticParams(0, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        SyntheticParams(1, 1, -1)
    with pytest.raises(ValueError, match="max_shift"):
        SyntheticParams(1, 1, 0, 64, 64, 40.0)


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--train", "2", "--test", "1", "--width", "64", "--height", "48"]) == 0
    assert str(out) in capsys.readouterr().out
    assert len(open_source(out, "test")) == 1
    assert main(["synth", "--out", str(out), "--train", "3", "--test", "1", "--width", "64", "--height", "48"]) == 1
    assert "other parameters" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# effects: each switchable, deterministic, recorded, and doing what it says
# --------------------------------------------------------------------------------------------

#: Frames an effect shows in: day-only effects on day frames, night-only ones on night frames.
_EFFECT_FRAMES = {
    "crossover": ["set00/V000/I00001", "set00/V000/I00002", "set00/V000/I00003"],
    "night_thermal": ["set03/V000/I00001", "set03/V000/I00002"],
    "night_lighting": ["set03/V000/I00001", "set03/V000/I00002", "set03/V000/I00004"],
}


@pytest.mark.parametrize("name", SyntheticEffects.names())
def test_each_effect_switches_off_deterministically_and_keeps_the_objects(name: str) -> None:
    off = SyntheticEffects(**{name: 0.0})
    strong = SyntheticEffects(**{name: 1.0 if name not in ("warm_clutter", "cold_decoys") else 4.0})
    frame_ids = _EFFECT_FRAMES.get(name, [f"set0{s}/V000/I0000{k}" for s in (0, 3) for k in range(3)])
    changed = False
    for fid in frame_ids:
        a = render_frame(11, fid, 128, 96, effects=off)
        b = render_frame(11, fid, 128, 96, effects=off)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.thermal, b.thermal)
        c = render_frame(11, fid, 128, 96, effects=strong)
        assert c.objects == a.objects and c.shift == a.shift  # the same persons, boxes and misalignment
        changed |= not (np.array_equal(a.rgb, c.rgb) and np.array_equal(a.thermal, c.thermal))
    assert changed, f"effect {name} changes nothing"


def test_effects_are_recorded_validated_and_parsed(tmp_path: Path) -> None:
    out = generate_synthetic(tmp_path / "r", 1, 1, seed=2, width=64, height=64, progress=False,
                             effects=SyntheticEffects(crossover=0.5, warm_clutter=0.0))
    effects = read_manifest(out)["effects"]
    assert effects == {**{n: getattr(SyntheticEffects(), n) for n in SyntheticEffects.names()},
                       "crossover": 0.5, "warm_clutter": 0.0}
    with pytest.raises(ValueError, match="other parameters.*effects"):
        generate_synthetic(out, 1, 1, seed=2, width=64, height=64, progress=False)
    assert set(SyntheticEffects.none().__dict__.values()) == {0.0}
    with pytest.raises(ValueError, match=r"crossover must be in \[0, 1\], got 1.5"):
        SyntheticEffects(crossover=1.5)
    with pytest.raises(ValueError, match="warm_clutter must be a finite number"):
        SyntheticEffects(warm_clutter=float("nan"))
    assert parse_effects(["off", "cold_decoys=2"]) == SyntheticEffects(**{**SyntheticEffects.none().__dict__,
                                                                          "cold_decoys": 2.0})
    assert parse_effects(["crossover=0"]).night_lighting == SyntheticEffects().night_lighting
    with pytest.raises(ValueError, match="'glow=1': expected NAME=VALUE"):
        parse_effects(["glow=1"])
    with pytest.raises(ValueError, match="'crossover=hot': 'hot' is not a number"):
        parse_effects(["crossover=hot"])


def test_climate_crossover_and_night_thermal() -> None:
    from rgbt.data.synthetic_climate import COOL_DAY, Climate

    def draw(night: bool, crossover: float = 1.0, night_thermal: float = 1.0) -> Climate:
        return Climate.draw(np.random.default_rng(5), night, crossover, night_thermal)

    day, cool, night = draw(False), draw(False, crossover=0.0), draw(True)
    assert cool.ambient == COOL_DAY and cool.sun == 0.0 and cool.sunshine == day.sunshine
    assert 25.0 <= day.ambient <= 32.0 and day.sun > 0
    # Crossover: a warm sunny day brings clothing to within a few kelvin of sunlit asphalt.
    road = day.ground() + 0.9 * day.sun
    assert abs(day.garment(0.7) - road) < 6 and cool.garment(0.7) - cool.ground() > 6
    assert night.sun == 0.0 and night.retain > 0 and night.sky < night.ambient - 8
    same = draw(True, night_thermal=0.0)
    assert (same.ambient, same.sun, same.retain) == (day.ambient, day.sun, 0.0)


def _scene(seed: int = 0, night: bool = False):
    from rgbt.data.synthetic_canvas import Canvas
    from rgbt.data.synthetic_climate import Climate
    from rgbt.data.synthetic_scene import Scene, draw_background

    climate = Climate.draw(np.random.default_rng(seed), night, 1.0, 1.0)
    scene = Scene(Canvas(140, 180), climate, 2, 0.5, night)
    draw_background(scene, np.random.default_rng(seed))
    return scene


def test_warm_clutter_is_as_warm_as_a_person_and_decoys_are_cold() -> None:
    from rgbt.data.synthetic_objects import Distractor, draw_clutter, draw_decoy

    for kind in ("cabinet", "vending", "scooter", "dog", "meter"):
        scene = _scene(1)
        before = scene.canvas.temp.copy()
        draw_clutter(scene, np.random.default_rng(2), Distractor(kind, (60.0, 60.0, 90.0, 110.0)))
        warmed = scene.canvas.temp[60:110, 60:90] - before[60:110, 60:90]
        climate = scene.climate
        # Some part reaches half-way from air to skin temperature: a person-like blob in thermal.
        assert scene.canvas.temp[60:110, 60:90].max() > climate.ambient + 0.4 * (climate.skin - climate.ambient), kind
        assert np.abs(warmed).max() > 1.0, kind
    for kind in ("poster", "mannequin", "reflection"):
        scene = _scene(1)
        draw_decoy(scene, np.random.default_rng(3), Distractor(kind, (60.0, 40.0, 100.0, 110.0)), 1.0)
        inner_t = scene.canvas.temp[45:105, 65:95]
        inner_rgb = scene.canvas.rgb[45:105, 65:95].mean(axis=2)
        # A figure in RGB, a flat board or pane in thermal.
        assert inner_rgb.std() > 8, kind
        absorb = scene.canvas.absorb[45:105, 65:95]
        assert inner_t.std() < 0.2 and np.ptp(absorb) < 1e-6, kind


def test_glass_hides_a_person_from_thermal_and_smoke_from_rgb() -> None:
    from rgbt.data.synthetic_objects import Placed, draw_modal_occluder, draw_object

    box = (70.0, 50.0, 90.0, 100.0)
    for kind in ("glass", "smoke"):
        scene = _scene(4)
        draw_object(scene, np.random.default_rng(0), Placed("person", box), 1.0)
        rgb_before, t_before = scene.canvas.rgb.copy(), scene.canvas.temp.copy()
        draw_modal_occluder(scene, Placed("person", box, modal=(kind, 0.5, 0.5, 0.5, 0.2, 0.5)))
        core = (slice(55, 95), slice(76, 84))
        rgb_change = np.abs(scene.canvas.rgb[core] - rgb_before[core]).mean()
        if kind == "glass":
            assert scene.canvas.temp[core].std() < 1e-4 and t_before[core].std() > 0.5  # the pane, no person
            assert rgb_change < 0.25 * rgb_before[core].mean()  # tinted, still the person
            assert np.corrcoef(scene.canvas.rgb[core].ravel(), rgb_before[core].ravel())[0, 1] > 0.95
        else:
            np.testing.assert_array_equal(scene.canvas.temp, t_before)  # long-wave infrared passes smoke
            assert rgb_change > 20


def test_rgb_pedestrians_have_kaist_like_contrast_by_day(root: Path) -> None:
    from rgbt.evaluation.contrast import measure_contrast

    source = open_source(root, "train")
    summary = measure_contrast(source[i] for i in range(len(source)))
    assert summary["day"]["rgb"].persons >= 10
    assert summary["day"]["rgb"].median_abs_d >= 0.43
    assert summary["night"]["thermal"].median_d > summary["day"]["thermal"].median_d
