"""Detection on a pair of videos: frames paired by time, COCO json per frame, an annotated MP4."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.errors import DataFormatError
from rgbt.data.video import VideoPairSource
from rgbt.evaluation.detections import read_coco_results

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _numbered(count: int, height: int, width: int, channels: int) -> list[np.ndarray]:
    """Frames whose mean grey level tells their number (10 * k), to check the pairing."""
    return [np.full((height, width, channels), 10 * k, dtype=np.uint8) for k in range(count)]


@pytest.fixture
def videos(tmp_path: Path, write_video) -> tuple[Path, Path]:
    rgb = write_video(tmp_path / "rgb.avi", _numbered(12, 64, 80, 3), fps=10)
    thermal = write_video(tmp_path / "thermal.avi", _numbered(6, 64, 80, 3), fps=5)
    return rgb, thermal


def test_frames_are_paired_by_time_with_the_offset(videos: tuple[Path, Path]) -> None:
    rgb, thermal = videos
    source = VideoPairSource(rgb, thermal)
    assert source.pairs == [(i, 2 * i) for i in range(6)]  # 5 fps thermal against 10 fps RGB
    shifted = VideoPairSource(rgb, thermal, offset=0.3)  # RGB frame nearest to t + 0.3 s
    assert shifted.pairs == [(0, 3), (1, 5), (2, 7), (3, 9), (4, 11)]  # frame 5 would need RGB 13: left out
    sample = shifted[2]
    assert sample.thermal.shape == (64, 80) and sample.rgb.shape == (64, 80, 3)
    assert abs(float(sample.thermal.mean()) - 20) < 3 and abs(float(sample.rgb.mean()) - 70) < 3
    assert abs(float(shifted[0].rgb.mean()) - 30) < 3  # a seek back after reading forward
    assert sample.meta["thermal_frame"] == 2 and sample.meta["rgb_frame"] == 7


def test_streams_that_cannot_be_paired_are_refused(videos: tuple[Path, Path], tmp_path: Path) -> None:
    rgb, thermal = videos
    with pytest.raises(DataFormatError, match="do not overlap at an offset of 5 s"):
        VideoPairSource(rgb, thermal, offset=5)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(DataFormatError, match="junk.mp4: not a video"):
        VideoPairSource(tmp_path / "junk.mp4", thermal)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        VideoPairSource(rgb, tmp_path / "missing.mp4")


def test_detect_on_videos_writes_coco_json_and_an_annotated_mp4(kaist_root: Path, tmp_path: Path, write_video,
                                                                capsys) -> None:
    run = tmp_path / "run"
    assert main(["train-detector", "--config", str(CONFIGS / "detector" / "tiny.yaml"), "--data", str(kaist_root),
                 "--out", str(run), "--set", "train.max_steps=1"]) == 0
    frames = sorted((kaist_root / "images").glob("set*/V*/lwir/*.jpg"))[:4]
    thermal = write_video(tmp_path / "thermal.avi", [cv2.imread(str(p)) for p in frames], fps=4)
    rgb = write_video(tmp_path / "rgb.avi", [cv2.imread(str(p).replace("lwir", "visible")) for p in frames], fps=4)
    out = tmp_path / "video"
    assert main(["detect", "--checkpoint", str(run / "last.pt"), "--rgb-video", str(rgb), "--thermal-video",
                 str(thermal), "--out", str(out), "--workers", "0", "--draw-threshold", "0"]) == 0
    index = json.loads((out / "frames.json").read_text())
    assert [f["thermal_frame"] for f in index["frames"]] == [0, 1, 2, 3] and index["classes"] == ["person"]
    detections = read_coco_results(out / "detections.json", 4)
    assert len(detections) == 4 and sum(len(d) for d in detections) > 0
    written = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert int(written.get(cv2.CAP_PROP_FRAME_WIDTH)) == 2 * 640
    written.release()
    capsys.readouterr()
    # One video alone, or videos with --data, are usage errors with a clear message.
    assert main(["detect", "--checkpoint", str(run / "last.pt"), "--rgb-video", str(rgb), "--out", str(out)]) == 1
    assert "give both --rgb-video and --thermal-video" in capsys.readouterr().err
    assert main(["detect", "--checkpoint", str(run / "last.pt"), "--out", str(out)]) == 1
    assert "give --data ROOT, or --rgb-video and --thermal-video" in capsys.readouterr().err


def test_a_thermal_video_alone_serves_every_frame_without_rgb(videos: tuple[Path, Path]) -> None:
    _rgb, thermal = videos
    source = VideoPairSource(None, thermal)
    assert source.pairs == [(i, None) for i in range(6)] and source.rgb_fps is None
    sample = source[3]
    assert sample.rgb is None and sample.thermal.shape == (64, 80) and abs(float(sample.thermal.mean()) - 30) < 3
    assert source.frame_record(3) == {"frame": "frame_000003", "thermal_frame": 3, "time": 0.6}
    assert "rgb_frame" not in sample.meta and sample.meta["paths"]["rgb"] is None
