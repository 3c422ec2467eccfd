"""Detection result files: aggregated txt, per-frame folders, COCO results json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rgbt.data.errors import DataFormatError
from rgbt.evaluation.detections import (
    coco_results,
    format_aggregated_txt,
    read_aggregated_txt,
    read_coco_results,
    read_detections,
    read_frame_folder,
    write_aggregated_txt,
    write_coco_results,
)

FRAMES = ["set06/V000/I00019", "set06/V000/I00039", "set09/V001/I00059"]


def random_detections(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for m in (3, 0, 2):
        xy = rng.uniform(0, 500, (m, 2))
        wh = rng.uniform(1, 100, (m, 2))
        out.append(np.column_stack([xy, xy + wh, rng.uniform(0, 1, m)]))
    return out


# --------------------------------------------------------------------------------------------
# aggregated txt
# --------------------------------------------------------------------------------------------


def test_aggregated_txt_round_trip_is_exact(tmp_path) -> None:
    detections = random_detections()
    path = write_aggregated_txt(tmp_path / "r.txt", detections)
    back = read_aggregated_txt(path, 3)
    assert [len(d) for d in back] == [3, 0, 2]
    for a, b in zip(detections, back):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    rounded = read_aggregated_txt(write_aggregated_txt(tmp_path / "r4.txt", detections, precision=4), 3)
    for a, b in zip(detections, rounded):
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_aggregated_txt_layout_and_whitespace(tmp_path) -> None:
    """idx is 1-based, boxes are x y w h; file order is kept inside a frame; spaces work too."""
    text = "3,10,20,30,40,0.5\n1,1,2,3,4,0.9\n\n3,0,0,5,5,0.7\n"
    (tmp_path / "c.txt").write_text(text)
    (tmp_path / "w.txt").write_text(text.replace(",", " "))
    for name in ("c.txt", "w.txt"):
        got = read_aggregated_txt(tmp_path / name, 3)
        np.testing.assert_array_equal(got[0], [[1, 2, 4, 6, 0.9]])
        assert got[1].shape == (0, 5)
        np.testing.assert_array_equal(got[2], [[10, 20, 40, 60, 0.5], [0, 0, 5, 5, 0.7]])
    assert format_aggregated_txt([np.array([[1.0, 2, 4, 6, 0.9]])], precision=1) == "1,1.0,2.0,3.0,4.0,0.90000\n"


def test_empty_file_means_no_detections(tmp_path) -> None:
    (tmp_path / "e.txt").write_text("\n")
    assert [d.shape for d in read_aggregated_txt(tmp_path / "e.txt", 2)] == [(0, 5), (0, 5)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2,10,10,abc,40,0.5", "field 'w' is not a number: 'abc'"),
        ("2,10,10,20,40", "expected 6 fields"),
        ("2,10,10,20,40,0.5,7", "expected 6 fields"),
        ("2,10,10,20,40,nan", "field 'score' is not finite"),
        ("2,10,inf,20,40,0.5", "field 'y' is not finite"),
        ("2,10,10,-20,40,0.5", "negative box size"),
        ("4,10,10,20,40,0.5", "image index '4' is not an image of the list (expected 1..3)"),
        ("0,10,10,20,40,0.5", "image index '0'"),
        ("1.5,10,10,20,40,0.5", "image index '1.5'"),
    ],
)
def test_malformed_aggregated_txt_names_file_and_line(tmp_path, line, message) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"1,10,10,20,40,0.9\n\n{line}\n3,1,1,2,2,0.1\n")
    with pytest.raises(DataFormatError) as info:
        read_aggregated_txt(path, 3)
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)


# --------------------------------------------------------------------------------------------
# per-frame folders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True])
def test_frame_folder(tmp_path, nested) -> None:
    """KAIST per-frame files hold 0-based x1 y1 x2 y2; like kaist_eval_full.m the reader adds 1.
    A frame without a file has no detection; files of frames outside the list are not read."""
    def name(frame_id: str) -> str:
        return frame_id + ".txt" if nested else frame_id.replace("/", "_") + ".txt"

    files = {
        FRAMES[0]: "person 10 20 30 60 0.9\nperson 0 0 5 5 0.1\n",
        FRAMES[2]: "\n",
        "set11/V001/I01999": "person not even read\n",
    }
    for frame_id, text in files.items():
        path = tmp_path / name(frame_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    got = read_frame_folder(tmp_path, FRAMES)
    np.testing.assert_array_equal(got[0], [[11, 21, 31, 61, 0.9], [1, 1, 6, 6, 0.1]])
    assert got[1].shape == got[2].shape == (0, 5)
    np.testing.assert_array_equal(read_frame_folder(tmp_path, FRAMES, offset=0)[0][0], [10, 20, 30, 60, 0.9])
    assert len(read_detections(tmp_path, FRAMES)) == 3


def test_frame_folder_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no detection file"):
        read_frame_folder(tmp_path, FRAMES)
    bad = tmp_path / "set06_V000_I00039.txt"
    bad.write_text("person 1 2 3 4 0.5\nperson 1 2 x 4 0.5\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:2: field 'x2' is not a number: 'x'"):
        read_frame_folder(tmp_path, FRAMES)
    bad.write_text("person 10 2 3 4 0.5\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:1: negative box size"):
        read_frame_folder(tmp_path, FRAMES)
    bad.write_text("person 1 2 3 4\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:1: expected 'person x1 y1 x2 y2 score'"):
        read_frame_folder(tmp_path, FRAMES)
    bad.write_text("person 1 2 3 4 0.5\n")
    (tmp_path / "set06" / "V000").mkdir(parents=True)
    (tmp_path / "set06" / "V000" / "I00039.txt").write_text("")
    with pytest.raises(DataFormatError, match="second detection file for frame set06/V000/I00039"):
        read_frame_folder(tmp_path, FRAMES)


# --------------------------------------------------------------------------------------------
# COCO results json
# --------------------------------------------------------------------------------------------


def test_coco_results_round_trip_and_image_id_zero(tmp_path) -> None:
    detections = random_detections(1)
    path = write_coco_results(tmp_path / "r.json", detections)
    entries = json.loads(path.read_text())
    assert entries[0]["image_id"] == 0 and entries[0]["category_id"] == 1
    for a, b in zip(detections, read_coco_results(path, 3)):
        np.testing.assert_allclose(a, b, atol=1e-12)
    # json image ids that are not positions: frame i has id ids[i]
    ids = [7, 0, 3]
    path = write_coco_results(tmp_path / "ids.json", detections, image_ids=ids)
    back = read_coco_results(path, 3, image_ids=ids)
    assert [len(d) for d in back] == [3, 0, 2]
    assert read_detections(path, FRAMES, ids)[2].shape == (2, 5)
    assert len(coco_results(detections)) == 5


def test_coco_results_category_filter(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps([
        {"image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
        {"image_id": 0, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5},
    ]))
    assert len(read_coco_results(path, 1)[0]) == 2
    assert len(read_coco_results(path, 1, category_id=1)[0]) == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"image_id": 5, "bbox": [1, 2, 3, 4], "score": 0.5}, "entry 1: image_id 5 is not an image"),
        ({"image_id": 1, "bbox": [1, 2, -3, 4], "score": 0.5}, "entry 1: negative box size"),
        ({"image_id": 1, "bbox": [1, 2, 3], "score": 0.5}, "entry 1: bbox must be [x, y, w, h]"),
        ({"image_id": 1, "bbox": [1, 2, 3, 4]}, "entry 1: missing key 'score'"),
        ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": float("nan")}, "entry 1: score is not a finite number"),
        ({"image_id": "a", "bbox": [1, 2, 3, 4], "score": 0.5}, "entry 1: image_id is not an integer"),
    ],
)
def test_malformed_coco_results(tmp_path, entry, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"image_id": 0, "bbox": [1, 2, 3, 4], "score": 0.5}, entry]))
    with pytest.raises(DataFormatError) as info:
        read_coco_results(path, 3)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_invalid_json_names_line(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n{"image_id": 0,\n "bbox": [1, 2, 3, 4] "score": 1}]')
    with pytest.raises(DataFormatError, match=rf"^{path}:3: invalid json"):
        read_coco_results(path, 1)


def test_read_detections_missing_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_detections(tmp_path / "nope.txt", FRAMES)


def test_published_txt_and_json_agree(shared_data) -> None:
    """MLPD ships its results as txt (idx 1-based) and json (image_id 0-based): same boxes."""
    from rgbt.data.kaist import read_image_set

    root = shared_data / "kaist"
    frames = read_image_set(root / "imageSets" / "test-all-20.txt")
    txt = read_detections(root / "detections" / "MLPD_result.txt", frames)
    js = read_detections(root / "detections" / "MLPD_result.json", frames)
    assert sum(len(d) for d in txt) == sum(len(d) for d in js) == 5939
    for a, b in zip(txt, js):
        np.testing.assert_allclose(a, b, atol=1e-4)
