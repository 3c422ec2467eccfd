"""`rgbt inspect` (report keys, collecting every error) and `rgbt show` (panel layout, output file)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.imageio import read_image, write_image
from rgbt.data.inspect import REPORT_KEYS, format_report, inspect_root
from rgbt.data.kaist import annotation_path, image_path, paired_annotation_path
from rgbt.data.sample import PairSample
from rgbt.data.show import find_frame, render_frame
from rgbt.data.source import open_source

H, W = 16, 20
FRAMES = ("set00/V000/I00001", "set01/V000/I00002", "set03/V000/I00003")
PERSON = "person 1 2 5 10 0 0 0 0 0 0 0"


def _bbgt(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("% bbGt version=3\n" + "".join(line + "\n" for line in lines))
    return path


def make_root(root: Path) -> Path:
    """Three KAIST frames (two day, one night) with images and annotations."""
    rng = np.random.default_rng(0)
    for frame in FRAMES:
        write_image(image_path(root, frame, "rgb"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        write_image(image_path(root, frame, "thermal"), rng.integers(0, 256, (H, W), dtype=np.uint8))
        _bbgt(annotation_path(root, frame), PERSON, "people 8 1 6 7 1 0 0 0 0 0 0")
    (root / "imageSets").mkdir()
    (root / "imageSets" / "all.txt").write_text("\n".join(FRAMES) + "\n")
    return root


def test_report_keys_and_counts(tmp_path: Path) -> None:
    root = make_root(tmp_path / "kaist")
    image_path(root, FRAMES[2], "rgb").unlink()
    report = inspect_root(root, image_set="all")
    assert tuple(report) == REPORT_KEYS == (
        "format", "frames", "missing_images", "labels", "day_frames", "night_frames", "errors",
    )
    assert report == {
        "format": "kaist", "frames": 3, "missing_images": {"rgb": 1, "thermal": 0},
        "labels": {"person": 3, "people": 3}, "day_frames": 2, "night_frames": 1, "errors": [],
    }
    json.dumps(report)  # json-ready


def test_every_error_is_collected(tmp_path: Path) -> None:
    root = make_root(tmp_path / "kaist")
    bad_a = _bbgt(annotation_path(root, FRAMES[0]), PERSON, "person 1 2 x 4 0 0 0 0 0 0 0")
    bad_b = _bbgt(annotation_path(root, FRAMES[2]), PERSON, PERSON, "person 1 2 3")
    report = inspect_root(root, image_set="all")
    assert report["errors"] == [
        f"{bad_a}:3: field 'w' is not a number: 'x'",
        f"{bad_b}:4: bbGt version 3 needs 12 fields, got 4: 'person 1 2 3'",
    ]
    assert report["frames"] == 3 and report["labels"] == {"person": 1, "people": 1}
    assert (report["day_frames"], report["night_frames"]) == (2, 1)  # broken frames still counted


def test_missing_annotation_and_paired_mismatch_are_reported(tmp_path: Path) -> None:
    root = make_root(tmp_path / "kaist")
    missing = annotation_path(root, FRAMES[1])
    missing.unlink()
    lwir = _bbgt(paired_annotation_path(root, FRAMES[0], "thermal"), PERSON)
    visible = _bbgt(paired_annotation_path(root, FRAMES[0], "rgb"), PERSON, PERSON)
    errors = inspect_root(root, image_set="all")["errors"]
    assert len(errors) == 2
    assert errors[0].startswith(f"{lwir}: paired annotations disagree") and str(visible) in errors[0]
    assert errors[1].startswith(f"{missing}: annotation file missing")


def test_images_are_decoded_only_on_request(tmp_path: Path) -> None:
    root = make_root(tmp_path / "kaist")
    corrupt = image_path(root, FRAMES[1], "thermal")
    corrupt.write_bytes(b"garbage")
    write_image(image_path(root, FRAMES[2], "rgb"), np.zeros((H + 2, W, 3), np.uint8))
    assert inspect_root(root)["errors"] == []
    errors = inspect_root(root, decode=True)["errors"]
    assert len(errors) == 2
    assert errors[0].startswith(f"{corrupt}: cannot decode image")
    assert errors[1].startswith(f"{image_path(root, FRAMES[2], 'rgb')}: image is {W}x{H + 2}")


def test_cli_inspect_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "kaist")
    out = tmp_path / "report.json"
    assert main(["inspect", str(root), "--image-set", "all", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "frames          3 (day 2, night 1)" in printed and "errors          0" in printed
    assert json.loads(out.read_text())["frames"] == 3
    _bbgt(annotation_path(root, FRAMES[0]), "person 1")
    _bbgt(annotation_path(root, FRAMES[1]), "person -1 2 3 -4 0 0 0 0 0 0 0")
    assert main(["inspect", str(root), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "errors          2" in printed and "needs 12 fields" in printed
    assert len(json.loads(out.read_text())["errors"]) == 2
    assert main(["inspect", str(tmp_path / "nowhere")]) == 1
    assert "dataset root not found" in capsys.readouterr().err


def test_format_report_truncates_long_error_lists() -> None:
    report = {"format": "pairs", "frames": 5, "missing_images": {"rgb": 0, "thermal": 1}, "labels": {},
              "day_frames": 0, "night_frames": 0, "errors": [f"f{i}: bad" for i in range(30)]}
    text = format_report(report, "ROOT", max_errors=3)
    assert "unknown 5" in text and "f2: bad" in text and "f3: bad" not in text and "27 more" in text


def test_inspect_real_kaist_test_set(shared_data: Path) -> None:
    assert inspect_root(shared_data / "kaist", image_set="fixture-test")["errors"] == []
    # The fixture holds the images of 9 of the 2,252 frames: each other frame lacks its thermal image.
    report = inspect_root(shared_data / "kaist", image_set="test-all-20")
    assert report["frames"] == 2252 and len(report["errors"]) == 2252 - 9
    assert all("/lwir/I" in e and e.endswith(".jpg: thermal image missing (the reference modality)")
               for e in report["errors"])
    assert report["labels"] == {"person": 3390, "people": 597, "person?": 177, "cyclist": 90}
    assert (report["day_frames"], report["night_frames"]) == (1455, 797)
    assert report["missing_images"] == {"rgb": 2252 - 9, "thermal": 2252 - 9}


def test_inspect_flir_and_pairs(tmp_path: Path) -> None:
    train = tmp_path / "flir" / "train"
    for stem in ("FLIR_00001", "FLIR_00002"):
        write_image(train / "thermal_8_bit" / f"{stem}.jpeg", np.zeros((8, 10), np.uint8))
    write_image(train / "RGB" / "FLIR_00001.jpg", np.zeros((12, 16, 3), np.uint8))
    (train / "thermal_annotations.json").write_text(json.dumps({
        "images": [{"id": 0, "file_name": "thermal_8_bit/FLIR_00001.jpeg"},
                   {"id": 1, "file_name": "thermal_8_bit/FLIR_00002.jpeg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 3, "name": "person"}],
    }))
    report = inspect_root(tmp_path / "flir")
    assert report["format"] == "flir-v1" and report["missing_images"] == {"rgb": 1, "thermal": 0}
    assert report["labels"] == {"person": 1} and report["errors"] == []
    pairs = tmp_path / "pairs"
    write_image(pairs / "lwir" / "a.png", np.zeros((8, 10), np.uint8))
    (pairs / "annotations.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "b.png"}],
                                                        "annotations": [], "categories": []}))
    report = inspect_root(pairs)
    assert report["missing_images"] == {"rgb": 1, "thermal": 0}
    assert report["errors"] == [f"{pairs / 'annotations.json'}: image 'b.png' has no file in visible/ or lwir/"]


# --------------------------------------------------------------------------------------------
# show
# --------------------------------------------------------------------------------------------


def _sample(**images: np.ndarray | None) -> PairSample:
    return PairSample(
        rgb=images.get("rgb"), thermal=images.get("thermal"), fake_rgb=images.get("fake_rgb"),
        boxes=[[1, 2, 6, 12], [8, 1, 14, 8]], labels=["person", "people"], ignore=[False, False],
        occlusion=[0, 0], meta={"frame_id": "x"},
    )


def test_render_frame_panels() -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    thermal = np.zeros((H, W), np.uint8)
    two = render_frame(_sample(rgb=rgb, thermal=thermal))
    assert two.shape == (H, 2 * W, 3) and two.dtype == np.uint8
    assert tuple(two[2, 1]) == (0, 230, 0)  # person box corner, solid green, on the RGB panel
    assert tuple(two[2, W + 1]) == (0, 230, 0)  # and on the thermal panel
    three = render_frame(_sample(rgb=rgb, thermal=thermal, fake_rgb=rgb))
    assert three.shape == (H, 3 * W, 3)
    assert render_frame(_sample(rgb=None, thermal=thermal)).shape == (H, 2 * W, 3)  # placeholder panel
    big = render_frame(_sample(rgb=np.zeros((2 * H, 3 * W, 3), np.uint8), thermal=thermal))
    assert big.shape == (H, 3 * W // 2 + W, 3)  # unregistered RGB scaled to the thermal height


def test_render_uses_rgb_frame_boxes_and_dashes_ignore_regions() -> None:
    thermal = np.zeros((H, W), np.uint8)
    sample = _sample(rgb=np.zeros((H, W, 3), np.uint8), thermal=thermal)
    sample.boxes_rgb = np.asarray([[3, 3, 9, 13], [8, 1, 14, 8]], np.float32)
    canvas = render_frame(sample)
    assert tuple(canvas[3, 3]) == (0, 230, 0) and tuple(canvas[2, 1]) != (0, 230, 0)
    large = PairSample(rgb=None, thermal=np.zeros((64, 80), np.uint8), boxes=[[20, 20, 60, 50], [2, 20, 12, 50]],
                       labels=["people", "person"], ignore=[False, True], occlusion=[0, 0])
    canvas = render_frame(large)
    for row, columns in ((50, slice(80 + 20, 80 + 61)), (50, slice(80 + 2, 80 + 13))):
        edge = canvas[row, columns]  # bottom edges: both ignore regions are dashed (gaps stay black)
        drawn = (edge == (255, 160, 0)).all(axis=1).mean()
        assert 0.3 < drawn < 0.9


def test_cli_show_writes_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    root = make_root(tmp_path / "kaist")
    monkeypatch.chdir(tmp_path)
    assert main(["show", str(root), "set01/V000/I00002"]) == 0
    path = tmp_path / "set01_V000_I00002.png"
    assert capsys.readouterr().out.strip() == str(path)
    assert read_image(path).shape == (H, 2 * W, 3)
    fake = tmp_path / "fake"
    write_image(image_path(fake, FRAMES[0], "fake_rgb").with_suffix(".png"), np.zeros((H, W, 3), np.uint8))
    out = tmp_path / "out" / "three.png"
    assert main(["show", str(root), "set00_V000_I00001", "--fake-rgb", str(fake), "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (H, 3 * W, 3)
    assert main(["show", str(root), "set09/V000/I00001"]) == 1
    assert "not found" in capsys.readouterr().err


def test_find_frame_spellings(tmp_path: Path) -> None:
    source = open_source(make_root(tmp_path / "kaist"))
    assert find_frame(source, "set01/V000/I00002") == 1
    assert find_frame(source, "images/set01/V000/lwir/I00002.jpg") == 1
    with pytest.raises(ValueError, match="not found"):
        find_frame(source, "FLIR_00001")
