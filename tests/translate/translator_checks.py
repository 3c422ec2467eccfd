"""Command-line checks shared by the translator-method tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rgbt.cli import main
from rgbt.data.imageio import read_image
from rgbt.data.source import open_source


def assert_translates_every_frame(checkpoint: Path, root: Path, out: Path) -> None:
    """`rgbt translate` writes a uint8 fake RGB of the thermal frame's size for every frame of ``root``."""
    assert main(["translate", "--checkpoint", str(checkpoint), "--data", str(root), "--out", str(out),
                 "--format", "png", "--workers", "0", "--device", "cpu"]) == 0
    source = open_source(root, None, fake_rgb_root=out)
    for index in range(len(source)):
        fake = read_image(source.image_paths(index)["fake_rgb"], "rgb")
        thermal = read_image(source.image_paths(index)["thermal"], "gray")
        assert fake.shape == (*thermal.shape, 3) and fake.dtype == np.uint8


def assert_eval_without_inverse(checkpoint: Path, root: Path, report_path: Path, frames: int) -> dict:
    """`rgbt translate-eval` of a method without an inverse: round-trip and rounds null, the rest finite."""
    assert main(["translate-eval", "--checkpoint", str(checkpoint), "--data", str(root), "--image-set", "test",
                 "--max-frames", str(frames), "--json", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["roundtrip_max_abs"] is None and report["roundtrip_mean_abs"] is None
    assert report["rounds_psnr_db"] is None and report["rounds_psnr_db_8bit"] is None
    assert report["roundtrip_max_abs_8bit"] is None
    assert all(np.isfinite(report[k]) for k in ("edge_f1", "gradient_ssim", "psnr_day", "ssim_day"))
    return report
