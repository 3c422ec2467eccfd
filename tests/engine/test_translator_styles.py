"""``--style paired|IMAGE`` for the baseline translators (AdaIN, Gatys, MUNIT; pix2pixHD refuses), AdaIN style
interpolation and MUNIT style seeds from `rgbt translate`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rgbt.config import TranslatorConfig, load_config
from rgbt.data.source import open_source
from rgbt.engine.translation import translate_dataset
from rgbt.engine.translation_eval import evaluate_translation
from rgbt.engine.translator_builder import load_translator
from rgbt.engine.translator_training import train_translator
from rgbt.translate.base import takes_style

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "translator"


@pytest.fixture(scope="module")
def checkpoints(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``method -> last.pt`` of a 2-step tiny training of each baseline."""
    out = tmp_path_factory.mktemp("styles")
    paths = {}
    for method in ("adain", "gatys", "munit", "pix2pixhd"):
        config = load_config(TranslatorConfig, CONFIGS / f"{method}_tiny.yaml",
                             ["train.max_steps=2", "train.device=cpu", "val_frames=0"])
        config.data.root = str(synthetic_root)
        train_translator(config, out / method)
        paths[method] = out / method / "last.pt"
    return paths


@pytest.mark.parametrize("method", ["adain", "gatys", "munit"])
def test_paired_and_image_styles_for_the_styled_baselines(method: str, checkpoints: dict[str, Path],
                                                          synthetic_root: Path, tmp_path: Path) -> None:
    loaded = load_translator(checkpoints[method], "cpu")
    assert takes_style(loaded.translator)
    paired = translate_dataset(loaded, synthetic_root, tmp_path / "paired", image_set="test", style="paired",
                               image_format="png", workers=0, progress=False)
    assert paired["written"] == 6 and paired["bank_fallbacks"] == 0
    style = synthetic_root / "images" / "set00" / "V000" / "visible" / "I00000.jpg"
    image = translate_dataset(loaded, synthetic_root, tmp_path / "image", image_set="test", style=str(style),
                              workers=0, progress=False)
    assert image["written"] == 6
    source = open_source(synthetic_root, "test", fake_rgb_root=tmp_path / "image")
    assert all(source[i].fake_rgb is not None for i in range(len(source)))


def test_pix2pixhd_refuses_a_style(checkpoints: dict[str, Path], synthetic_root: Path, tmp_path: Path) -> None:
    loaded = load_translator(checkpoints["pix2pixhd"], "cpu")
    assert not takes_style(loaded.translator)
    with pytest.raises(ValueError, match="takes no style input"):
        translate_dataset(loaded, synthetic_root, tmp_path / "paired", image_set="test", style="paired",
                          workers=0, progress=False)


@pytest.mark.parametrize("method", ["adain", "munit", "pix2pixhd"])
def test_translate_eval_paired_gives_the_frame_rgb_as_style(method: str, checkpoints: dict[str, Path],
                                                            synthetic_root: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_translator(checkpoints[method], "cpu")
    styles: list[object] = []
    original = loaded.translator.translate

    def spy(thermal, style=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        styles.append(style)
        return original(thermal, style, *args, **kwargs)

    monkeypatch.setattr(loaded.translator, "translate", spy)
    source = open_source(synthetic_root, "test")
    report, _ = evaluate_translation(loaded, source, max_frames=2, style="paired", rounds_frames=1)
    assert report["frames"] == 2 and len(styles) == 2
    if method == "pix2pixhd":
        assert all(style is None for style in styles)  # one fixed mapping: scored on it
    else:
        assert all(isinstance(style, torch.Tensor) and style.shape[:2] == (1, 3) for style in styles)


def _fakes(root: Path, out: Path) -> list:
    source = open_source(root, "test", fake_rgb_root=out)
    return [source[i].fake_rgb for i in range(len(source))]


def test_adain_interpolates_several_style_images(checkpoints: dict[str, Path], synthetic_root: Path,
                                                 tmp_path: Path) -> None:
    from rgbt.cli import main

    visible = synthetic_root / "images" / "set00" / "V000" / "visible"
    day, other = sorted(visible.glob("*.jpg"))[:2]
    common = ["translate", "--checkpoint", str(checkpoints["adain"]), "--data", str(synthetic_root),
              "--image-set", "test", "--format", "png", "--workers", "0", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "one"), "--style", str(day)]) == 0
    assert main([*common, "--out", str(tmp_path / "mix"), "--style", str(day), str(day), "--style-weights",
                 "0.3", "0.7"]) == 0
    # Interpolating a style with itself is that style.
    assert all(abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in
               zip(_fakes(synthetic_root, tmp_path / "one"), _fakes(synthetic_root, tmp_path / "mix")))
    loaded = load_translator(checkpoints["adain"], "cpu")
    summary = translate_dataset(loaded, synthetic_root, tmp_path / "half", image_set="test",
                                style=[str(day), str(other)], image_format="png", workers=0, progress=False)
    assert summary["written"] == 6
    import json

    settings = json.loads((tmp_path / "half" / "manifest.json").read_text())["settings"]
    assert settings["style"] == "mix" and settings["style_weights"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="one style weight"):
        translate_dataset(loaded, synthetic_root, tmp_path / "bad", image_set="test", style=[str(day), str(other)],
                          style_weights=[1.0], workers=0, progress=False)
    with pytest.raises(ValueError, match="cannot be mixed"):
        translate_dataset(loaded, synthetic_root, tmp_path / "bad", image_set="test", style=["bank", str(day)],
                          workers=0, progress=False)
    with pytest.raises(ValueError, match="model: adain"):
        translate_dataset(load_translator(checkpoints["gatys"], "cpu"), synthetic_root, tmp_path / "bad",
                          image_set="test", style=[str(day), str(other)], workers=0, progress=False)


def test_munit_style_seeds_give_different_fake_rgb_variants(checkpoints: dict[str, Path], synthetic_root: Path,
                                                            tmp_path: Path) -> None:
    loaded = load_translator(checkpoints["munit"], "cpu")
    for name, seed in (("a", 1), ("a_again", 1), ("b", 2)):
        translate_dataset(loaded, synthetic_root, tmp_path / name, image_set="test", image_format="png",
                          style_seed=seed, workers=0, progress=False)
    a, a_again, b = (_fakes(synthetic_root, tmp_path / name) for name in ("a", "a_again", "b"))
    assert all((x == y).all() for x, y in zip(a, a_again))
    assert any((x != y).any() for x, y in zip(a, b))
    with pytest.raises(ValueError, match="style seed draws the style code of --style bank"):
        translate_dataset(loaded, synthetic_root, tmp_path / "c", image_set="test", style="paired", style_seed=1,
                          workers=0, progress=False)
    with pytest.raises(ValueError, match="model: munit"):
        translate_dataset(load_translator(checkpoints["adain"], "cpu"), synthetic_root, tmp_path / "c",
                          image_set="test", style_seed=1, workers=0, progress=False)
