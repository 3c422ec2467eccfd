"""ONNX export: onnxruntime gives what PyTorch gives, for a detector and both flow directions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rgbt.cli import main
from rgbt.engine.detector_builder import load_detector_checkpoint
from rgbt.engine.translator_builder import load_translator

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def detector_run(kaist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("export") / "detector"
    assert main(["train-detector", "--config", str(CONFIGS / "detector" / "tiny.yaml"), "--data", str(kaist_root),
                 "--out", str(run), "--set", "train.max_steps=1"]) == 0
    return run / "last.pt"


@pytest.fixture(scope="module")
def translator_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("export") / "translator"
    assert main(["train-translator", "--config", str(CONFIGS / "translator" / "tiny.yaml"), "--data",
                 str(synthetic_root), "--out", str(run), "--set", "train.max_steps=2"]) == 0
    return run / "last.pt"


def test_detector_graph_matches_pytorch_at_any_size(detector_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "detector.onnx"
    assert main(["export", "--checkpoint", str(detector_run), "--out", str(out), "--height", "128",
                 "--width", "160"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "labels"]
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["modalities"]) == ["rgb", "thermal"] and json.loads(metadata["classes"]) == ["person"]
    model, _, _ = load_detector_checkpoint(detector_run)
    model.eval()
    generator = torch.Generator().manual_seed(3)
    # The traced size and another of the same aspect ratio (torchvision's resize rule is traced for it).
    for height, width in ((128, 160), (256, 320)):
        image = torch.rand(4, height, width, generator=generator)
        boxes, scores, labels = session.run(None, {"image": image.numpy()})
        with torch.no_grad():
            expected = model([image])[0]
        assert boxes.shape == tuple(expected["boxes"].shape) and len(scores) > 0
        np.testing.assert_allclose(boxes, expected["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(scores, expected["scores"].numpy(), atol=1e-4)
        np.testing.assert_array_equal(labels, expected["labels"].numpy())


def test_flow_graphs_match_pytorch_and_invert(translator_run: Path, tmp_path: Path) -> None:
    assert main(["export", "--checkpoint", str(translator_run), "--out", str(tmp_path / "flow.onnx"),
                 "--height", "64", "--width", "80"]) == 0
    forward = ort.InferenceSession(str(tmp_path / "flow_forward.onnx"), providers=["CPUExecutionProvider"])
    inverse = ort.InferenceSession(str(tmp_path / "flow_inverse.onnx"), providers=["CPUExecutionProvider"])
    styles = json.loads((tmp_path / "flow_styles.json").read_text())
    assert set(styles) == {"day", "night"}
    translator = load_translator(translator_run, device="cpu").translator
    thermal = torch.rand(2, 1, 64, 80, generator=torch.Generator().manual_seed(4))
    mean = np.array([styles["day"]["mean"]] * 2, dtype=np.float32)
    std = np.array([styles["day"]["std"]] * 2, dtype=np.float32)
    (fake,) = forward.run(None, {"thermal": thermal.numpy(), "style_mean": mean, "style_std": std})
    with torch.inference_mode():
        expected = translator.translate(thermal, period="day")
        z, _, _ = translator.flow.encode(translator.thermal_to_input(thermal))
        content_mean, content_std = (t.flatten(1).numpy() for t in
                                     __import__("rgbt.translate.transfer", fromlist=["x"]).latent_stats(z))
    np.testing.assert_allclose(fake, expected.numpy(), atol=1e-4)
    # Unclamped round trip through both graphs: the inverse graph gives the thermal frame back.
    (back,) = inverse.run(None, {"fake_rgb": fake, "content_mean": content_mean, "content_std": content_std})
    assert back.shape == (2, 1, 64, 80)
    inside = (fake > 0.0) & (fake < 1.0)
    assert inside.mean() > 0.5
    assert float(np.median(np.abs(back - thermal.numpy()))) < 0.05


def test_export_refuses_what_it_cannot_export(tmp_path: Path, capsys) -> None:
    from rgbt.engine.checkpoint import save_checkpoint

    junk = save_checkpoint(tmp_path / "weights.pt", {"model": {}})
    assert main(["export", "--checkpoint", str(junk), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "not an rgbt checkpoint" in capsys.readouterr().err
