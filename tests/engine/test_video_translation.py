"""`rgbt translate --thermal-video`: every thermal frame translated into an mp4 of the thermal's size and fps."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rgbt.cli import main
from rgbt.data.dataset import image_to_tensor, tensor_to_image
from rgbt.engine import video_translation
from rgbt.engine.translator_builder import load_translator
from rgbt.interrupt import INTERRUPTED_EXIT

TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "tiny.yaml"
FRAMES, HEIGHT, WIDTH, FPS = 7, 64, 80, 10.0


@pytest.fixture(scope="module")
def checkpoint(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("video_translator") / "run"
    assert main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                 "--set", "train.max_steps=2", "--set", "train.eval_every=2"]) == 0
    return run / "last.pt"


@pytest.fixture
def thermal_video(tmp_path: Path, write_video) -> Path:
    """7 frames of a blurred noise texture moving 4 px left per frame: every frame differs."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, WIDTH + 4 * FRAMES)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return write_video(tmp_path / "thermal.mp4", [texture[:, 4 * k: 4 * k + WIDTH] for k in range(FRAMES)], FPS)


def _decoded(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    capture.release()
    return frames, fps


def test_translate_writes_the_fake_rgb_video_and_the_frame_index(checkpoint: Path, thermal_video: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "fake"
    # Batches of 3 over 7 frames: the last batch is short.
    assert main(["translate", "--checkpoint", str(checkpoint), "--thermal-video", str(thermal_video), "--out",
                 str(out), "--batch-size", "3", "--device", "cpu"]) == 0
    fake, fps = _decoded(out / "fake_rgb.mp4")
    assert len(fake) == FRAMES and fake[0].shape == (HEIGHT, WIDTH, 3) and fps == pytest.approx(FPS)
    index = json.loads((out / "frames.json").read_text())
    assert index["thermal_fps"] == pytest.approx(FPS) and (index["width"], index["height"]) == (WIDTH, HEIGHT)
    assert index["settings"]["style"] == "bank"
    assert index["frames"][4] == {"frame": "frame_000004", "thermal_frame": 4, "time": 0.4}
    assert len(index["frames"]) == FRAMES
    assert not list(out.glob(".fake_rgb.mp4.*"))  # the temporary file was renamed
    # Frame k is the translator's output on thermal frame k (up to the mp4 coding of the fake RGB).
    thermal, _ = _decoded(thermal_video)
    loaded = load_translator(checkpoint, "cpu")
    with torch.inference_mode():
        batch = torch.stack([image_to_tensor(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)) for f in thermal])
        fakes = loaded.translator.translate(batch, None, "day", loaded.config.model.alpha, loaded.config.model.transfer)
        expected = [cv2.cvtColor(img, cv2.COLOR_RGB2BGR) for img in tensor_to_image(fakes)]
    for k in range(FRAMES):
        own = np.abs(fake[k].astype(float) - expected[k]).mean()
        other = np.abs(fake[k].astype(float) - expected[(k + 3) % FRAMES]).mean()
        assert own < 12 and own < other / 3, (k, own, other)  # mp4v at 80x64 costs ~7 grey levels


def test_an_interrupted_translation_leaves_no_video(checkpoint: Path, thermal_video: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = video_translation.translate_frames

    def interrupt_second_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(video_translation, "translate_frames", interrupt_second_batch)
    out = tmp_path / "fake"
    assert main(["translate", "--checkpoint", str(checkpoint), "--thermal-video", str(thermal_video), "--out",
                 str(out), "--batch-size", "2", "--device", "cpu"]) == INTERRUPTED_EXIT
    assert len(calls) == 2
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".rgbt")) == []


def test_bad_video_input_is_refused_with_a_clear_message(checkpoint: Path, thermal_video: Path, tmp_path: Path,
                                                         synthetic_root: Path, capsys) -> None:
    base = ["translate", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    cases = [
        (["--thermal-video", str(tmp_path / "missing.mp4")], "video not found: " + str(tmp_path / "missing.mp4")),
        (["--thermal-video", str(tmp_path / "junk.mp4")], "junk.mp4: not a video OpenCV can read"),
        (["--thermal-video", str(thermal_video), "--rgb-video", str(thermal_video)], "reads only the thermal video"),
        (["--thermal-video", str(thermal_video), "--data", str(synthetic_root)], "--data and --image-set do not apply"),
        (["--thermal-video", str(thermal_video), "--style", "paired"], "which a thermal video does not have"),
        ([], "give --data ROOT, or --thermal-video"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 1, extra
        assert message in capsys.readouterr().err, extra
