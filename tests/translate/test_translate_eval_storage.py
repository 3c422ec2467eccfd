"""translate-eval's 8-bit storage metrics and per-person contrast, on hand-built KAIST-layout frames."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor

from rgbt.config import TranslatorConfig, config_to_dict
from rgbt.data.source import open_source
from rgbt.engine.translation import default_image_format, translate_dataset
from rgbt.engine.translation_eval import FileStore, evaluate_translation, evaluate_translator
from rgbt.engine.translator_builder import LoadedTranslator, build_translator_from_config, load_translator
from rgbt.evaluation.contrast import box_regions, d_prime
from rgbt.translate.base import Translator
from rgbt.translate.metrics import recover_thermal, recovery_error, rounds_psnr
from rgbt.translate.transfer import latent_stats

H, W = 64, 80
#: Two persons (x, y, w, h), tall enough for the "reasonable" setup scaled to a 64 px frame (>= 6.9 px).
PERSONS = ((12, 14, 10, 30), (50, 20, 8, 24))


def write_root(root: Path, frames: int = 2, person_level: int = 190) -> Path:
    """A KAIST-layout root: ``frames`` frames of set00/V000, noisy warm persons on a noisy cooler scene,
    the released bbGt v3 annotation text (``label x y w h occ vx vy vw vh ign ang``)."""
    rng = np.random.default_rng(0)
    for k in range(frames):
        thermal = np.clip(rng.normal(90, 12, (H, W)), 0, 255)
        rgb = np.clip(rng.normal(120, 30, (H, W, 3)), 0, 255)
        lines = ["% bbGt version=3"]
        for x, y, w, h in PERSONS:
            thermal[y:y + h, x:x + w] = np.clip(rng.normal(person_level, 12, (h, w)), 0, 255)
            lines.append(f"person {x} {y} {w} {h} 0 0 0 0 0 0 0")
        for folder, image in (("lwir", thermal), ("visible", rgb[..., ::-1])):
            path = root / "images" / "set00" / "V000" / folder / f"I{k:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
        ann = root / "annotations" / "set00" / "V000" / f"I{k:05d}.txt"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text("\n".join(lines) + "\n")
    return root


def tiny_config() -> TranslatorConfig:
    config = TranslatorConfig()
    config.model.n_blocks, config.model.n_flows, config.model.hidden = 1, 2, 8
    return config


def tiny_flow(trained_like, seed: int) -> Translator:  # type: ignore[no-untyped-def]
    """A tiny flow translator (eval mode) with trained-like weights."""
    config = tiny_config()
    translator = build_translator_from_config(config.model, config.loss, seed=0)
    trained_like(translator, seed=seed)
    return translator.eval()


def flow_checkpoint(path: Path, trained_like) -> Path:  # type: ignore[no-untyped-def]
    """:func:`tiny_flow` saved as `rgbt train-translator` does (weights and config)."""
    translator = tiny_flow(trained_like, seed=1)
    torch.save({"model": translator.state_dict(), "config": config_to_dict(tiny_config()), "step": 0}, path)
    return path


class Inverted(Translator):
    """A stand-in translator without inverse or style: fake RGB = the thermal frame, inverted, in 3 channels."""

    invertible = False
    takes_style = False

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def translate(self, thermal: Tensor, style=None, period="day", alpha=1.0, method="adain") -> Tensor:  # type: ignore[no-untyped-def, override]
        return (1.0 - thermal).expand(-1, 3, -1, -1)

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# 8-bit storage
# --------------------------------------------------------------------------------------------


def test_recovery_is_exact_in_float_and_loses_what_8_bit_storage_rounds_away(trained_like) -> None:  # type: ignore[no-untyped-def]
    translator = tiny_flow(trained_like, seed=1)
    gen = torch.Generator().manual_seed(0)
    thermal = 0.3 + 0.4 * torch.rand((2, 1, 16, 20), generator=gen)
    style = 0.2 + 0.6 * torch.rand((2, 3, 16, 20), generator=gen)
    with torch.no_grad():
        fake = translator.translate(thermal, style=style)
        exact = recovery_error(translator, fake, thermal)
        quantised = recovery_error(translator, torch.round(fake * 255) / 255, thermal)
        back = recover_thermal(translator, torch.round(fake * 255) / 255, thermal)
    assert exact[0] < 1e-4
    # Rounding moves each pixel by up to 1/510; the inverse passes that on (and may amplify it).
    assert quantised[0] > 1e-3 > exact[0] and quantised[1] > exact[1]
    assert back.shape == (2, 3, 16, 20)


def test_rounds_with_a_storage_step_lose_to_the_float_rounds(trained_like) -> None:  # type: ignore[no-untyped-def]
    translator = tiny_flow(trained_like, seed=2)
    gen = torch.Generator().manual_seed(1)
    content = (0.3 + 0.4 * torch.rand((1, 1, 16, 20), generator=gen)).expand(-1, 3, -1, -1).contiguous()
    styles = [latent_stats(translator.flow.encode(0.2 + 0.6 * torch.rand((1, 3, 16, 20), generator=gen))[0])
              for _ in range(3)]
    calls = []

    def quantise(x: Tensor) -> Tensor:
        calls.append(1)
        return torch.round(x.clamp(0, 1) * 255) / 255

    with torch.no_grad():
        float_db = float(rounds_psnr(translator, content, styles)[0])
        same_db = float(rounds_psnr(translator, content, styles, store=lambda x: x)[0])
        stored_db = float(rounds_psnr(translator, content, styles, store=quantise)[0])
    assert same_db == float_db
    assert len(calls) == 4  # every round and the final image
    assert float_db > 80 and stored_db < float_db - 20


def test_file_store_writes_8_bit_files_and_png_keeps_the_rounded_values(tmp_path: Path) -> None:
    images = torch.linspace(0, 1, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    png = FileStore(tmp_path, "png")
    back = png(images)
    assert png.written == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["stored0.png", "stored1.png"]
    assert torch.equal(back, torch.round(images * 255) / 255)
    jpg = FileStore(tmp_path, "jpg")(images)
    assert jpg.shape == images.shape and not torch.equal(jpg, back)
    with pytest.raises(ValueError, match="image_format must be one of"):
        FileStore(tmp_path, "bmp")


def test_translate_eval_8_bit_metrics_read_the_stored_files(tmp_path: Path, trained_like) -> None:  # type: ignore[no-untyped-def]
    root = write_root(tmp_path / "root")
    checkpoint = flow_checkpoint(tmp_path / "flow.pt", trained_like)
    loaded = load_translator(checkpoint, "cpu")
    assert default_image_format(loaded.translator) == "png"
    out = tmp_path / "fake"
    translate_dataset(loaded, root, out, style="paired", workers=0, progress=False)
    stored = sorted((out / "images").rglob("*.png"))
    assert len(stored) == 2  # the flow's default storage: lossless PNG
    report = evaluate_translator(loaded, root, style="paired", fake_rgb_root=out)
    assert report["image_format"] == "png"
    assert report["roundtrip_max_abs"] < 1e-4 < report["roundtrip_max_abs_8bit"] < 0.5
    assert report["rounds_psnr_db_8bit"] < report["rounds_psnr_db"]
    # Without the folder, the fake RGB is stored in a temporary folder in the same format: the same bytes.
    fresh = evaluate_translator(loaded, root, style="paired")
    assert fresh["roundtrip_max_abs_8bit"] == pytest.approx(report["roundtrip_max_abs_8bit"], rel=1e-6)
    # A damaged stored file shows up: the metric is computed from the files, not recomputed.
    cv2.imwrite(str(stored[0]), np.full((H, W, 3), 128, np.uint8))
    damaged = evaluate_translator(loaded, root, style="paired", fake_rgb_root=out)
    assert damaged["roundtrip_max_abs_8bit"] > 5 * report["roundtrip_max_abs_8bit"]
    jpeg = evaluate_translator(loaded, root, style="paired", image_format="jpg")
    assert jpeg["image_format"] == "jpg" and jpeg["roundtrip_mean_abs_8bit"] > fresh["roundtrip_mean_abs_8bit"]
    stored[1].unlink()
    with pytest.raises(FileNotFoundError, match="I00001: no stored fake RGB"):
        evaluate_translator(loaded, root, style="paired", fake_rgb_root=out)
    with pytest.raises(FileNotFoundError, match="fake RGB folder not found"):
        evaluate_translator(loaded, root, style="paired", fake_rgb_root=tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no fake-RGB manifest"):
        evaluate_translator(loaded, root, style="paired", fake_rgb_root=tmp_path / "empty")


# --------------------------------------------------------------------------------------------
# per-person contrast
# --------------------------------------------------------------------------------------------


def _loaded(translator: Translator) -> LoadedTranslator:
    return LoadedTranslator(translator.eval(), TranslatorConfig(), Path("stand-in.pt"), "", torch.device("cpu"), None)


def test_person_contrast_is_the_median_d_prime_of_the_persons_in_thermal_and_fake(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root", frames=1)
    source = open_source(root)
    report, _ = evaluate_translation(_loaded(Inverted()), source, max_frames=1, rounds_frames=1)
    thermal = source[0].thermal.astype(np.float32)
    expected = []
    for x, y, w, h in PERSONS:
        core, ring = box_regions((x, y, x + w, y + h), thermal.shape)
        expected.append(d_prime(thermal[core], thermal[ring]))
    assert min(expected) > 2  # warm persons on a cooler scene: salient in thermal
    assert report["person_contrast_thermal"] == pytest.approx(float(np.median(expected)), abs=1e-9)
    # The fake RGB is the inverted thermal frame: the same saliency, the sign flipped (1-level rounding aside).
    assert report["person_contrast_fake"] == pytest.approx(-report["person_contrast_thermal"], rel=1e-2)
    assert report["roundtrip_max_abs_8bit"] is None and report["rounds_psnr_db_8bit"] is None
    assert report["image_format"] == "jpg"


def test_person_contrast_is_none_without_persons_and_low_when_persons_match_the_scene(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root", frames=1, person_level=90)
    report, _ = evaluate_translation(_loaded(Inverted()), open_source(root), max_frames=1)
    assert abs(report["person_contrast_thermal"]) < 0.5
    for ann in (root / "annotations").rglob("*.txt"):
        ann.write_text("% bbGt version=3\n")
    report, _ = evaluate_translation(_loaded(Inverted()), open_source(root), max_frames=1)
    assert report["person_contrast_thermal"] is None and report["person_contrast_fake"] is None
    assert not math.isnan(report["edge_f1"])
