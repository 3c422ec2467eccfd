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


def test_people_are_warm_in_thermal(root: Path) -> None:
    warmer = []
    for fid, _split in frame_plan(24, 16):
        thermal = cv2.imread(str(image_path(root, fid, "thermal")), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        for o in read_bbgt(annotation_path(root, fid)):
            x, y, w, h = (int(v) for v in o.box)
            if o.label == "person" and o.occlusion == 0 and h >= 12:
                inside = thermal[y:y + h, x + w // 4:x + w - w // 4]
                ring = thermal[max(0, y - 3):y + h + 3, max(0, x - 4):x + w + 4]
                warmer.append(np.percentile(inside, 90) > np.median(ring) + 20)
    assert len(warmer) >= 10 and np.mean(warmer) > 0.9


def test_night_rgb_dark_and_noisy_thermal_unchanged(root: Path) -> None:
    def stats(frame_ids: list[str], modality: str) -> np.ndarray:
        rows = []
        for fid in frame_ids:
            image = cv2.imread(str(image_path(root, fid, modality)), cv2.IMREAD_GRAYSCALE).astype(np.float32)
            residual = image - cv2.GaussianBlur(image, (0, 0), 2.0)
            # Interquartile range as contrast: robust to the few bright lights of night scenes.
            contrast = np.subtract(*np.percentile(image, [75, 25]))
            rows.append((image.mean(), contrast, residual.std() / max(image.mean(), 1.0)))
        return np.array(rows).mean(axis=0)

    train = read_image_set(root / "imageSets" / "train.txt")
    day = [f for f in train if f.startswith("set00")]
    night = [f for f in train if f.startswith("set03")]
    rgb_day, rgb_night = stats(day, "rgb"), stats(night, "rgb")
    assert rgb_night[0] < 0.4 * rgb_day[0]  # darker
    assert rgb_night[1] < 0.4 * rgb_day[1]  # lower contrast
    assert rgb_night[2] > 2 * rgb_day[2]  # noisier relative to the signal
    t_day, t_night = stats(day, "thermal"), stats(night, "thermal")
    assert t_night[0] == pytest.approx(t_day[0], rel=0.15)
    assert t_night[1] == pytest.approx(t_day[1], rel=0.3)


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
