"""KAIST layout: the real fixtures (skipped without ../shared/data) and tiny roots written in tmp_path."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.data.bbgt import format_bbgt, read_bbgt
from rgbt.data.errors import DataFormatError
from rgbt.data.formats import detect_format
from rgbt.data.kaist import (
    KaistSource,
    annotation_path,
    boxes_xyxy,
    discover_frames,
    first_image,
    image_path,
    paired_annotation_path,
    parse_frame_id,
    read_annotations,
    read_image_set,
    read_kaist_json,
    write_kaist_json,
)
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source

# --------------------------------------------------------------------------------------------
# real fixtures
# --------------------------------------------------------------------------------------------


def test_fixture_pairs_load_as_rgb_and_one_channel_thermal(shared_data: Path) -> None:
    source = KaistSource(shared_data / "kaist", image_set="fixture-test")
    assert isinstance(source, FrameSource)
    assert len(source) == 9
    periods = Counter()
    for i in range(len(source)):
        sample = source[i]
        assert sample.rgb.shape == (512, 640, 3) and sample.rgb.dtype == np.uint8
        assert sample.thermal.shape == (512, 640) and sample.thermal.dtype == np.uint8
        assert sample.fake_rgb is None and sample.boxes_rgb is None
        assert sample.meta["dataset"] == "kaist" and sample.meta["split"] == "test"
        assert sample.frame_id == source.frame_ids[i]
        assert Path(sample.meta["paths"]["thermal"]).is_file()
        periods[sample.period] += 1
    assert periods == {"day": 5, "night": 4}


def test_thermal_is_the_grey_of_the_stored_channels(shared_data: Path) -> None:
    source = KaistSource(shared_data / "kaist", image_set="fixture-test")
    path = source.image_paths(0)["thermal"]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert np.abs(source[0].thermal.astype(int) - bgr[:, :, 1].astype(int)).max() <= 3


def test_rgb_is_in_rgb_channel_order(shared_data: Path) -> None:
    source = KaistSource(shared_data / "kaist", image_set="fixture-test")
    bgr = cv2.imread(str(source.image_paths(0)["rgb"]), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(source[0].rgb, bgr[:, :, ::-1])


def test_test_all_20_ground_truth_counts(shared_data: Path) -> None:
    source = KaistSource(shared_data / "kaist", image_set="test-all-20")
    assert len(source) == 2252
    samples = [source.annotations(i) for i in range(len(source))]
    labels = Counter(label for s in samples for label in s.labels)
    assert sum(len(s.boxes) for s in samples) == 4254
    assert labels == {"person": 3390, "people": 597, "person?": 177, "cyclist": 90}
    assert Counter(s.period for s in samples) == {"day": 1455, "night": 797}
    assert [s.period for s in samples[:1455]] == ["day"] * 1455
    assert len(KaistSource(shared_data / "kaist", image_set="test-all-20", period="night")) == 797


def test_txt_and_json_ground_truth_agree_box_for_box(shared_data: Path) -> None:
    root = shared_data / "kaist"
    frames = read_image_set(root / "imageSets" / "test-all-20.txt")
    txt = read_annotations(root, frames)
    gt = read_kaist_json(root / "KAIST_annotation.json")
    assert gt.frame_ids == frames
    assert gt.image_ids == list(range(2252))
    for frame, objs_txt, objs_json in zip(frames, txt, gt.objects, strict=True):
        assert [o.box for o in objs_json] == [o.box for o in objs_txt], frame
        # The released json keeps a single category; ignore=1 marks exactly the non-person labels.
        assert [o.ignore for o in objs_json] == [int(o.label != "person") for o in objs_txt], frame
        assert [o.occlusion for o in objs_json] == [o.occlusion for o in objs_txt], frame


def test_json_written_from_txt_round_trips_to_the_txt_files(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "kaist"
    frames = read_image_set(root / "imageSets" / "test-all-20.txt")
    objects = read_annotations(root, frames)
    write_kaist_json(tmp_path / "gt.json", frames, objects)
    back = read_kaist_json(tmp_path / "gt.json")
    assert back.frame_ids == frames
    for frame, objs in zip(frames, back.objects, strict=True):
        assert format_bbgt(objs) == annotation_path(root, frame).read_text(encoding="utf-8"), frame


def test_frames_without_images_are_reported_by_the_loader(shared_data: Path) -> None:
    source = KaistSource(shared_data / "kaist")  # every annotated frame; only 9 have images
    assert len(source) == 2252
    assert source.frame_ids == sorted(source.frame_ids, key=parse_frame_id)
    missing = source.frame_ids.index("set06/V000/I00019")
    with pytest.raises(FileNotFoundError, match="image not found"):
        source[missing]


# --------------------------------------------------------------------------------------------
# tiny roots in the released layout
# --------------------------------------------------------------------------------------------

H, W = 16, 20
FRAMES = ("set00/V000/I00001", "set04/V001/I00003")


def _write_jpg(path: Path, image: np.ndarray) -> None:
    """Write an RGB (or grey) image as the release does: a cv2 JPEG (3-channel grey for lwir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[:, :, ::-1]
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _bbgt(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("% bbGt version=3\n" + "".join(line + "\n" for line in lines))


def make_kaist_root(root: Path, paired: bool = False) -> Path:
    """Two frames (a day and a night one) with a red RGB image and a flat grey thermal image."""
    red = np.zeros((H, W, 3), np.uint8)
    red[:, :, 0] = 220
    for i, frame in enumerate(FRAMES):
        _write_jpg(image_path(root, frame, "rgb"), red)
        _write_jpg(image_path(root, frame, "thermal"), np.full((H, W), 60 + 40 * i, np.uint8))
        _bbgt(annotation_path(root, frame), [
            "person 1 2 5 10 0 0 0 0 0 0 0",
            "people 8 1 6 7 1 0 0 0 0 1 0",
        ][: 2 - i])
    (root / "imageSets").mkdir()
    (root / "imageSets" / "tiny.txt").write_text("\n".join(FRAMES) + "\n\n")
    if paired:
        for frame in FRAMES:
            _bbgt(paired_annotation_path(root, frame, "thermal"), ["person 2 2 5 10 0 0 0 0 0 0 0"])
            _bbgt(paired_annotation_path(root, frame, "rgb"), ["person 4 3 5 10 0 0 0 0 0 0 0"])
    return root


def test_tiny_root_loads(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    assert detect_format(root) == "kaist"
    source = open_source(root, image_set="tiny")
    assert isinstance(source, KaistSource) and source.frame_ids == list(FRAMES)
    first = source[0]
    assert first.rgb.shape == (H, W, 3) and first.thermal.shape == (H, W)
    assert first.rgb[:, :, 0].min() > 200 and first.rgb[:, :, 2].max() < 40  # red stays in channel 0
    np.testing.assert_array_equal(first.boxes, [[1, 2, 6, 12], [8, 1, 14, 8]])
    assert first.boxes.dtype == np.float32
    assert first.labels == ["person", "people"]
    np.testing.assert_array_equal(first.ignore, [False, True])
    np.testing.assert_array_equal(first.occlusion, [0, 1])
    assert first.meta == {
        "dataset": "kaist", "split": "train", "image_set": "tiny", "frame_id": "set00/V000/I00001",
        "set": "set00", "video": "V000", "frame": "I00001", "period": "day", "scene": "campus",
        "paths": first.meta["paths"],
    }
    assert set(first.meta["paths"]) == {"rgb", "thermal", "annotation"}
    second = source.annotations(1)
    assert second.rgb is None and second.thermal is None
    assert (second.period, second.meta["scene"], second.meta["split"]) == ("night", "road", "train")


def test_frames_are_discovered_without_an_image_set(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    assert KaistSource(root).frame_ids == list(FRAMES)
    assert KaistSource(root, period="day").frame_ids == [FRAMES[0]]
    assert KaistSource(root, period="night").frame_ids == [FRAMES[1]]
    for frame in FRAMES:
        annotation_path(root, frame).unlink()
    (root / "images" / "set00" / "V000" / "lwir" / "notes.txt").write_text("not a frame")
    assert discover_frames(root) == list(FRAMES)  # falls back to images/
    with pytest.raises(ValueError, match="period"):
        KaistSource(root, period="dusk")


def test_missing_annotation_file_names_the_path(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    annotation_path(root, FRAMES[1]).unlink()
    source = KaistSource(root, image_set="tiny")
    with pytest.raises(FileNotFoundError, match=str(annotation_path(root, FRAMES[1]))):
        source.annotations(1)
    with pytest.raises(FileNotFoundError):
        source[1]


def test_period_and_frame_spellings_need_no_file(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    source = KaistSource(root, image_set="tiny")
    assert [source.period(i) for i in range(len(source))] == [source.annotations(i).period for i in range(len(source))]
    for frame in FRAMES:
        annotation_path(root, frame).unlink()
    assert [source.period(i) for i in range(len(source))] == ["day", "night"]
    assert source.frame_candidates("set00_V000_I00001") == ["set00/V000/I00001"]
    assert source.frame_candidates("images/set00/V000/lwir/I00001.jpg") == ["set00/V000/I00001"]
    assert source.frame_candidates("FLIR_00001") == []


def test_missing_rgb_keeps_the_frame_loadable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    image_path(root, FRAMES[0], "rgb").unlink()
    image_path(root, FRAMES[1], "rgb").unlink()
    source = KaistSource(root, image_set="tiny")
    with caplog.at_level(logging.WARNING, logger="rgbt.data.kaist"):
        samples = [source[0], source[1]]
    assert [s.rgb for s in samples] == [None, None]
    assert samples[0].thermal.shape == (H, W)
    assert sum("visible image missing" in r.getMessage() for r in caplog.records) == 1


def test_pair_of_different_sizes_is_a_format_error(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    _write_jpg(image_path(root, FRAMES[0], "rgb"), np.zeros((H, W + 2, 3), np.uint8))
    with pytest.raises(DataFormatError, match=rf"{W + 2}x{H} but its pair .* is {W}x{H}"):
        KaistSource(root, image_set="tiny")[0]


def test_paired_annotations_fill_both_frames(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist", paired=True)
    sample = KaistSource(root, image_set="tiny")[0]
    np.testing.assert_array_equal(sample.boxes, [[2, 2, 7, 12]])  # from the lwir paired file
    np.testing.assert_array_equal(sample.boxes_rgb, [[4, 3, 9, 13]])  # from the visible paired file
    assert sample.labels == ["person"]
    assert sample.meta["paths"]["annotation_rgb"].endswith("visible/I00001.txt")


def test_paired_count_mismatch_names_both_files(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist", paired=True)
    visible = paired_annotation_path(root, FRAMES[1], "rgb")
    lwir = paired_annotation_path(root, FRAMES[1], "thermal")
    _bbgt(visible, ["person 4 3 5 10 0 0 0 0 0 0 0", "cyclist 1 1 2 2 0 0 0 0 0 0 0"])
    source = KaistSource(root, image_set="tiny")
    source.annotations(0)
    with pytest.raises(DataFormatError) as info:
        source.annotations(1)
    message = str(info.value)
    assert message.startswith(f"{lwir}: ") and str(visible) in message
    assert "1 objects here but 2" in message


def test_paired_label_mismatch_and_missing_counterpart(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist", paired=True)
    _bbgt(paired_annotation_path(root, FRAMES[0], "rgb"), ["people 4 3 5 10 0 0 0 0 0 0 0"])
    paired_annotation_path(root, FRAMES[1], "rgb").unlink()
    source = KaistSource(root, image_set="tiny")
    with pytest.raises(DataFormatError, match="object 1 is 'person' here but 'people'"):
        source.annotations(0)
    with pytest.raises(FileNotFoundError, match="paired annotation missing"):
        source.annotations(1)


def test_fake_rgb_is_loaded_from_the_translated_root(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    fake_root = tmp_path / "fake"
    fake = np.zeros((H, W, 3), np.uint8)
    fake[:, :, 2] = 200
    fake_path = image_path(fake_root, FRAMES[0], "fake_rgb").with_suffix(".png")
    fake_path.parent.mkdir(parents=True)
    cv2.imwrite(str(fake_path), fake[:, :, ::-1])
    source = KaistSource(root, image_set="tiny", fake_rgb_root=fake_root)
    sample = source[0]
    np.testing.assert_array_equal(sample.fake_rgb, fake)
    assert sample.meta["paths"]["fake_rgb"] == str(fake_path)
    with pytest.raises(FileNotFoundError, match="fake RGB image missing"):
        source[1]


def test_malformed_annotation_surfaces_with_its_line(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    path = annotation_path(root, FRAMES[0])
    _bbgt(path, ["person 1 2 5 10 0 0 0 0 0 0 0", "person 1 2 5"])
    with pytest.raises(DataFormatError, match=rf"^{path}:3: "):
        KaistSource(root, image_set="tiny").annotations(0)


def test_malformed_image_set_line(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    (root / "imageSets" / "bad.txt").write_text("set00/V000/I00001\nset00/V000/frame7\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: not a KAIST frame id"):
        KaistSource(root, image_set="bad")
    with pytest.raises(FileNotFoundError, match="known: \\['bad', 'tiny'\\]"):
        KaistSource(root, image_set="nope")


def test_boxes_xyxy_of_no_objects() -> None:
    assert boxes_xyxy([]).shape == (0, 4)
    sample = PairSample(rgb=None, thermal=None, boxes=boxes_xyxy([]))
    assert sample.boxes.dtype == np.float32


def test_bbgt_written_by_the_fixture_round_trips(tmp_path: Path) -> None:
    root = make_kaist_root(tmp_path / "kaist")
    path = annotation_path(root, FRAMES[0])
    assert format_bbgt(read_bbgt(path)) == path.read_text()


def test_first_image_is_the_first_listed_frames_image_of_the_period(tmp_path: Path) -> None:
    sets = tmp_path / "imageSets"
    sets.mkdir()
    (sets / "train.txt").write_text("\nset03/V001/I00007\nset01/V002/I00041\nset00/V000/I00001\n")
    assert first_image(tmp_path, "train", "thermal") == tmp_path / "images/set03/V001/lwir/I00007.jpg"
    # set03 is a night set: the first day frame is the next one
    assert first_image(tmp_path, "train", "rgb", "day") == tmp_path / "images/set01/V002/visible/I00041.jpg"
    (sets / "night.txt").write_text("set04/V000/I00001\n")
    with pytest.raises(DataFormatError, match="night.txt: lists no frame of the day period"):
        first_image(tmp_path, "night", "rgb", "day")
    with pytest.raises(FileNotFoundError):
        first_image(tmp_path, "missing", "rgb")
