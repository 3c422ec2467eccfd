"""`rgbt align --rgb-video --thermal-video`: every frame pair registered, the tables of `rgbt align ROOT`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.cli import main

FRAMES, HEIGHT, WIDTH, FPS = 8, 64, 80, 10.0
#: The known misalignment: RGB pixel = scale * thermal pixel (centre to centre) + (DX, DY).
DX, DY = 3.0, -2.0


def _scene(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(thermal grey, RGB-camera BGR)`` views of a blurred noise texture panning 4 px per frame; the
    colour channels map intensity differently (one inverted), so the modalities do not match by value."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, WIDTH + 4 * count)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    views = [texture[:, 4 * k: 4 * k + WIDTH] for k in range(count)]
    return [(v.astype(np.uint8), np.stack([255 - v, 0.5 * v + 60, 255 - 0.8 * v], -1).astype(np.uint8))
            for v in views]


def _moved(image: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``image`` as the RGB camera sees it: content scaled about the pixel centres and moved by (DX, DY)."""
    matrix = np.float32([[scale, 0, (scale - 1) / 2 + DX], [0, scale, (scale - 1) / 2 + DY]])
    size = (round(WIDTH * scale), round(HEIGHT * scale))
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)


@pytest.fixture
def videos(tmp_path: Path, write_video) -> tuple[Path, Path]:
    scene = _scene(FRAMES)
    thermal = write_video(tmp_path / "thermal.mp4", [t for t, _ in scene], FPS)
    rgb = write_video(tmp_path / "rgb.mp4", [_moved(c) for _, c in scene], FPS)
    return rgb, thermal


def _frame_count(path: Path) -> tuple[int, int, int, float]:
    capture = cv2.VideoCapture(str(path))
    info = (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), float(capture.get(cv2.CAP_PROP_FPS)))
    capture.release()
    return info


def test_align_recovers_the_shift_and_writes_the_documented_tables(videos: tuple[Path, Path], tmp_path: Path,
                                                                   capsys) -> None:
    rgb, thermal = videos
    out = tmp_path / "align"
    assert main(["align", "--rgb-video", str(rgb), "--thermal-video", str(thermal), "--out", str(out),
                 "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"frames          {FRAMES} (video, model shift, pool frame)" in printed and "registered      8" in printed
    lines = (out / "alignment.json").read_text().splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == FRAMES + 2  # one frame per line
    frames = json.loads("\n".join(lines))
    assert [f["frame"] for f in frames] == [f"frame_{k:06d}" for k in range(FRAMES)]
    for frame in frames:
        assert set(frame) == {"frame", "H", "dx", "dy", "score", "status", "sequence", "period"}
        assert frame["status"] == "ok" and frame["sequence"] == "thermal.mp4" and frame["period"] == "unknown"
        # mp4v at 80x64 blurs the texture: within 0.4 px of the truth, where a 1 px error would fail.
        assert abs(frame["dx"] - DX) < 0.4 and abs(frame["dy"] - DY) < 0.4, frame
    with (out / "alignment.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["frame", "dx", "dy", "score", "status"] and len(rows) == FRAMES + 1
    assert rows[3] == [frames[2]["frame"], str(frames[2]["dx"]), str(frames[2]["dy"]), str(frames[2]["score"]), "ok"]
    assert not (out / "aligned_rgb.mp4").exists()


def test_sequence_pooling_and_the_aligned_video(videos: tuple[Path, Path], tmp_path: Path) -> None:
    rgb, thermal = videos
    out = tmp_path / "align"
    # One worker process: the pooled path, with its bounded queue of decoded frames.
    assert main(["align", "--rgb-video", str(rgb), "--thermal-video", str(thermal), "--out", str(out),
                 "--pool", "sequence", "--write-aligned", "--workers", "1"]) == 0
    frames = json.loads((out / "alignment.json").read_text())
    assert len({(f["dx"], f["dy"]) for f in frames}) == 1  # the whole video is one sequence
    assert abs(frames[0]["dx"] - DX) < 0.3 and abs(frames[0]["dy"] - DY) < 0.3
    assert all({"frame_dx", "frame_dy", "frame_score", "frame_status", "outlier"} <= set(f) for f in frames)
    assert _frame_count(out / "aligned_rgb.mp4") == (FRAMES, WIDTH, HEIGHT, FPS)
    # The aligned RGB lands on the unmoved colour view; the input RGB does not.
    capture = cv2.VideoCapture(str(out / "aligned_rgb.mp4"))
    ok, aligned = capture.read()
    capture.release()
    original = _scene(FRAMES)[0][1]
    moved = _moved(original)
    inner = (slice(6, HEIGHT - 6), slice(6, WIDTH - 6))
    aligned_error = np.abs(aligned[inner].astype(float) - original[inner]).mean()
    moved_error = np.abs(moved[inner].astype(float) - original[inner]).mean()
    assert ok and aligned_error < moved_error / 2, (aligned_error, moved_error)


def test_rgb_of_another_size_registers_with_the_similarity_model(tmp_path: Path, write_video) -> None:
    scene = _scene(4)
    thermal = write_video(tmp_path / "thermal.mp4", [t for t, _ in scene], FPS)
    rgb = write_video(tmp_path / "rgb.mp4", [_moved(c, scale=1.5) for _, c in scene], FPS)
    out = tmp_path / "align"
    assert main(["align", "--rgb-video", str(rgb), "--thermal-video", str(thermal), "--out", str(out),
                 "--model", "similarity", "--workers", "0"]) == 0
    corners = np.array([[0, 0, 1], [WIDTH - 1, 0, 1], [0, HEIGHT - 1, 1], [WIDTH - 1, HEIGHT - 1, 1]], float).T
    truth = np.array([[1.5, 0, 0.25 + DX], [0, 1.5, 0.25 + DY]]) @ corners
    for frame in json.loads((out / "alignment.json").read_text()):
        mapped = np.asarray(frame["H"]) @ corners
        error = np.abs(mapped[:2] / mapped[2] - truth).max()
        assert frame["status"] == "ok" and error < 1.0, (frame["frame"], error)  # RGB pixels


def test_bad_video_input_is_refused_with_a_clear_message(videos: tuple[Path, Path], tmp_path: Path,
                                                         capsys) -> None:
    rgb, thermal = videos
    out = ["--out", str(tmp_path / "out")]
    cases = [
        (["--rgb-video", str(rgb)], "give both --rgb-video and --thermal-video"),
        ([str(tmp_path), "--rgb-video", str(rgb), "--thermal-video", str(thermal)],
         "a dataset ROOT, --image-set and --format do not apply to videos"),
        (["--rgb-video", str(rgb), "--thermal-video", str(tmp_path / "missing.mp4")],
         "video not found: " + str(tmp_path / "missing.mp4")),
        (["--rgb-video", str(rgb), "--thermal-video", str(thermal), "--video-offset", "5"],
         "do not overlap at an offset of 5 s"),
        ([], "give a dataset ROOT, or --rgb-video and --thermal-video"),
    ]
    for extra, message in cases:
        assert main(["align", *extra, *out]) == 1, extra
        assert message in capsys.readouterr().err, extra
