"""A user's folder of pairs, and the image decoder every loader shares (rgbt.data.imageio)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

import rgbt.data.imageio as imageio
from rgbt.data.errors import DataFormatError
from rgbt.data.formats import detect_format
from rgbt.data.imageio import find_image, read_image, write_image
from rgbt.data.pairs import PairsSource
from rgbt.data.source import FrameSource, open_source

H, W = 8, 10


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def make_pairs(root: Path, annotations: bool = True) -> Path:
    write_image(root / "visible" / "frame_000.png", _rgb(0))
    write_image(root / "lwir" / "frame_000.png", _rgb(1)[:, :, 0])
    cv2.imwrite(str(root / "visible" / "frame_001.bmp"), _rgb(2)[:, :, ::-1])
    cv2.imwrite(str(root / "lwir" / "frame_001.TIFF"), _rgb(3)[:, :, 0])
    write_image(root / "visible" / "only_rgb.png", _rgb(4))
    write_image(root / "lwir" / "only_thermal.png", _rgb(5)[:, :, 0])
    (root / "lwir" / "notes.txt").write_text("not an image")
    if annotations:
        coco = {
            "images": [{"id": 10, "file_name": "frame_001.jpg"}, {"id": 11, "file_name": "lwir/frame_000.png"}],
            "annotations": [
                {"id": 1, "image_id": 10, "category_id": 5, "bbox": [1, 2, 3, 4]},
                {"id": 2, "image_id": 10, "category_id": 9, "bbox": [0, 0, 2, 2], "iscrowd": 1},
            ],
            "categories": [{"id": 9, "name": "person"}, {"id": 5, "name": "car"}],
        }
        (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_pairs_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_pairs(tmp_path / "mine")
    assert detect_format(root) == "pairs"
    with caplog.at_level(logging.WARNING, logger="rgbt.data.pairs"):
        source = open_source(root)
    assert isinstance(source, PairsSource) and isinstance(source, FrameSource)
    assert source.frame_ids == ["frame_000", "frame_001", "only_rgb", "only_thermal"]
    assert (source.only_rgb, source.only_thermal) == (["only_rgb"], ["only_thermal"])
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "1 frames only in visible/" in messages and "1 frames only in lwir/" in messages
    first = source[0]
    np.testing.assert_array_equal(first.rgb, _rgb(0))  # png: lossless, RGB order kept
    np.testing.assert_array_equal(first.thermal, _rgb(1)[:, :, 0])
    second = source[1]
    np.testing.assert_array_equal(second.rgb, _rgb(2))
    assert second.labels == ["car", "person"]
    np.testing.assert_array_equal(second.boxes, [[1, 2, 4, 6], [0, 0, 2, 2]])
    np.testing.assert_array_equal(second.ignore, [False, True])
    assert second.meta["dataset"] == "pairs" and second.frame_id == "frame_001"
    assert source[2].thermal is None and source[2].rgb.shape == (H, W, 3)
    assert source[3].rgb is None and source[3].thermal.shape == (H, W)
    assert source[3].size == (H, W)


def test_pairs_without_annotations_and_with_fake_rgb(tmp_path: Path) -> None:
    root = make_pairs(tmp_path / "mine", annotations=False)
    fake_root = tmp_path / "fake"
    write_image(fake_root / "fake_visible" / "frame_000.png", _rgb(6))
    source = PairsSource(root, fake_rgb_root=fake_root)
    sample = source[0]
    assert sample.labels == [] and sample.boxes.shape == (0, 4)
    np.testing.assert_array_equal(sample.fake_rgb, _rgb(6))
    with pytest.raises(FileNotFoundError, match="fake RGB image missing"):
        source[1]


def test_pairs_period_is_unknown_and_frames_are_named_by_stem(tmp_path: Path) -> None:
    source = PairsSource(make_pairs(tmp_path / "mine"))
    assert {source.period(i) for i in range(len(source))} == {source.annotations(0).period} == {"unknown"}
    spellings = source.frame_candidates("visible/frame_001.png")
    assert spellings[:3] == ["visible/frame_001.png", "frame_001.png", "frame_001"]


def test_a_thermal_folder_reads_like_lwir(tmp_path: Path) -> None:
    """RoadScene's layout (``visible/`` + ``thermal/``) is a folder of pairs; both names at once is refused."""
    root = tmp_path / "roadscene"
    write_image(root / "visible" / "FLIR_00006.jpg", _rgb(0))
    write_image(root / "thermal" / "FLIR_00006.jpg", _rgb(1)[:, :, 0])
    assert detect_format(root) == "pairs"
    source = PairsSource(root)
    assert source.frame_ids == ["FLIR_00006"] and not source.only_rgb and not source.only_thermal
    assert source.image_paths(0)["thermal"] == root / "thermal" / "FLIR_00006.jpg"
    assert source[0].thermal.shape == (H, W)
    write_image(root / "lwir" / "FLIR_00006.jpg", _rgb(1)[:, :, 0])
    with pytest.raises(DataFormatError, match="both lwir/ and thermal/ exist"):
        PairsSource(root)


def test_pairs_problems(tmp_path: Path) -> None:
    root = make_pairs(tmp_path / "mine")
    coco = json.loads((root / "annotations.json").read_text())
    coco["images"].append({"id": 12, "file_name": "ghost.jpg"})
    (root / "annotations.json").write_text(json.dumps(coco))
    assert PairsSource(root).unmatched_annotations == ["ghost.jpg"]
    write_image(root / "lwir" / "frame_000.jpg", _rgb(1)[:, :, 0])
    with pytest.raises(DataFormatError, match="frame_000.png: stem 'frame_000' is also used by frame_000.jpg"):
        PairsSource(root)
    with pytest.raises(FileNotFoundError, match="no images"):
        PairsSource(tmp_path / "mine" / "visible")


# --------------------------------------------------------------------------------------------
# rgbt.data.imageio
# --------------------------------------------------------------------------------------------


def test_read_image_modes(tmp_path: Path) -> None:
    image = _rgb(7)
    write_image(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    grey = read_image(tmp_path / "a.png", "gray")
    assert grey.shape == (H, W)
    np.testing.assert_array_equal(grey, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    write_image(tmp_path / "g.png", image[:, :, 1])
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", "rgb"), np.repeat(image[:, :, 1:2], 3, axis=2))
    equal = np.repeat(image[:, :, :1], 3, axis=2)
    write_image(tmp_path / "e.png", equal)
    np.testing.assert_array_equal(read_image(tmp_path / "e.png", "gray"), image[:, :, 0])  # exact for equal channels
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "a.png", "bgr")


def test_colour_thermal_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setattr(imageio, "_warned_colour_thermal", False)
    write_image(tmp_path / "c.png", _rgb(8))
    with caplog.at_level(logging.WARNING, logger="rgbt.data.imageio"):
        read_image(tmp_path / "c.png", "gray")
        read_image(tmp_path / "c.png", "gray")
    assert sum("differing channels" in r.getMessage() for r in caplog.records) == 1


def test_read_image_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataFormatError, match=rf"^{tmp_path / 'bad.jpg'}: cannot decode image"):
        read_image(tmp_path / "bad.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataFormatError, match="cannot decode"):
        read_image(tmp_path / "empty.png")
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((4, 4), np.uint16))
    with pytest.raises(DataFormatError, match="8-bit"):
        read_image(tmp_path / "deep.png", "gray")


def test_write_image(tmp_path: Path) -> None:
    path = write_image(tmp_path / "sub" / "x.jpg", _rgb(9))
    assert path.is_file() and read_image(path).shape == (H, W, 3)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.jpg"]  # no temporary file left
    with pytest.raises(ValueError, match="unsupported extension"):
        write_image(tmp_path / "x.gif", _rgb(9))
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "x.png", _rgb(9).astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 2), np.uint8))


def test_find_image(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", _rgb(0))
    assert find_image(tmp_path / "a") == tmp_path / "a.png"
    assert find_image(tmp_path / "a", (".jpg",)) is None
