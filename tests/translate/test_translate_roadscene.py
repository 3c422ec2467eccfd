"""The flow translator on real registered imagery: a few training steps on the 6 RoadScene pairs.

RoadScene keeps its frames in ``thermal/`` and ``visible/``; a folder of pairs reads ``lwir/`` and
``visible/``, so the test links them into that layout. Skipped when the fixtures are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.source import open_source

ROADSCENE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "roadscene"
TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "tiny.yaml"


@pytest.fixture
def roadscene_pairs(tmp_path: Path) -> Path:
    if not (ROADSCENE / "thermal").is_dir() or not (ROADSCENE / "visible").is_dir():
        pytest.skip(f"real RoadScene fixtures not found at {ROADSCENE}")
    root = tmp_path / "roadscene"
    root.mkdir()
    (root / "lwir").symlink_to(ROADSCENE / "thermal")
    (root / "visible").symlink_to(ROADSCENE / "visible")
    return root


def test_a_few_steps_on_the_roadscene_pairs_train_translate_and_score(roadscene_pairs: Path, tmp_path: Path) -> None:
    source = open_source(roadscene_pairs)
    assert len(source) == 6 and all(source[i].rgb is not None and source[i].thermal is not None for i in range(6))
    run = tmp_path / "run"
    assert main(["train-translator", "--config", str(TINY), "--data", str(roadscene_pairs), "--out", str(run),
                 "--set", "train.max_steps=3", "--set", "crop=[64, 80]", "--set", "bank_frames=6",
                 "--set", "val_frames=2", "--set", "train.eval_every=1"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 3 and result["bank_counts"]["day"] > 0  # unknown period counts as day
    assert np.isfinite(result["final"]["psnr"])
    report_path = tmp_path / "eval.json"
    assert main(["translate-eval", "--checkpoint", str(run / "last.pt"), "--data", str(roadscene_pairs),
                 "--max-frames", "0", "--json", str(report_path), "--device", "cpu",
                 "--figure", str(tmp_path / "triplets.png")]) == 0
    report = json.loads(report_path.read_text())
    assert report["frames"] == 6 and report["image_format"] == "png"
    # Real frames of odd sizes (329 x 500 among them) still go round the flow exactly in float.
    assert report["roundtrip_max_abs"] < 1e-3 and report["rounds_psnr_db"] > 30
    assert report["roundtrip_max_abs"] < report["roundtrip_max_abs_8bit"] < 1.0
    assert report["person_contrast_fake"] is None  # RoadScene has no annotations
    assert np.isfinite(report["psnr_day"]) and (tmp_path / "triplets.png").is_file()
