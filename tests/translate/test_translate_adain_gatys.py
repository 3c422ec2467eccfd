"""AdaIN and Gatys baselines: shapes, gradients, training / optimisation progress, and the CLI (CPU, seconds)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from translator_checks import assert_eval_without_inverse, assert_translates_every_frame

from rgbt.cli import main
from rgbt.engine.translator_builder import load_translator
from rgbt.translate.adain_net import AdaINTranslator, build_adain
from rgbt.translate.gatys import GatysTranslator, build_gatys

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "translator"


@pytest.fixture(scope="module")
def adain() -> AdaINTranslator:
    return build_adain(seed=0)


@pytest.fixture(scope="module")
def gatys() -> GatysTranslator:
    return build_gatys(content_weight=1.0, style_weight=1000.0, steps=4, pool="avg", seed=0)


def tiny_batch(seed: int = 0, h: int = 16, w: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Thermal (2, 1, h, w) and an RGB that is a fixed function of it, both in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    thermal = torch.rand(2, 1, h, w, generator=gen)
    rgb = torch.cat([thermal, 1.0 - thermal, 0.5 * thermal + 0.25], dim=1)
    return thermal, rgb


def test_random_vgg_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rgbt.translate.perceptual"):
        build_adain(seed=1)
    assert any("randomly initialised fixed VGG features" in r.getMessage() for r in caplog.records)


def test_adain_forward_backward_trains_only_the_decoder(adain: AdaINTranslator) -> None:
    thermal, rgb = tiny_batch()
    adain.train()
    parts = adain(thermal, rgb, ["day", "night"])
    assert set(parts) == {"content", "style", "total"} and all(torch.isfinite(v) for v in parts.values())
    adain.zero_grad()
    parts["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adain.decoder.parameters())
    assert all(not p.requires_grad for p in adain.encoder.parameters())
    assert adain.bank.count("day") >= 1 and adain.bank.count("night") >= 1


def test_adain_training_steps_lower_the_loss() -> None:
    model = build_adain(seed=0)
    model.train()
    thermal, rgb = tiny_batch()
    optimiser = torch.optim.Adam(model.decoder.parameters(), lr=1e-4)
    losses = []
    for _ in range(6):
        total = model(thermal, rgb)["total"]
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(float(total.detach()))
    assert losses[-1] < losses[0]


def test_adain_translate_style_sources_alpha_and_mixing(adain: AdaINTranslator) -> None:
    adain.train()
    thermal, rgb = tiny_batch()
    adain(thermal, rgb, "day")
    adain.eval()
    with torch.inference_mode():
        for h, w in ((16, 24), (13, 7)):
            small = thermal[..., :h, :w]
            for fake in (adain.translate(small), adain.translate(small, style=rgb[:1]),
                         adain.translate(small, period="night", alpha=0.5)):
                assert fake.shape == (2, 3, h, w)
                assert torch.isfinite(fake).all() and fake.min() >= 0.0 and fake.max() <= 1.0
        one = adain.translate(thermal, style=rgb)
        assert torch.allclose(adain.mix(thermal, [rgb, rgb.flip(-1)], [1.0, 0.0]), one, atol=1e-5)
        mixed = adain.mix(thermal, [rgb, 1.0 - rgb], [0.5, 0.5])
        assert not torch.allclose(mixed, one)
    with pytest.raises(ValueError, match="alpha"):
        adain.translate(thermal, alpha=1.5)
    with pytest.raises(ValueError, match="weight"):
        adain.mix(thermal, [rgb], [0.0])


def test_gatys_lowers_its_objective_and_translates(gatys: GatysTranslator) -> None:
    thermal, rgb = tiny_batch()
    assert sum(p.numel() for p in gatys.parameters() if p.requires_grad) == 0
    with torch.inference_mode():  # the optimisation must still run, as in `rgbt translate`
        fake, history = gatys.stylise(thermal, gatys.style_grams(rgb))
    assert len(history) == 4 and history[-1] < history[0]
    assert fake.shape == (2, 3, 16, 24) and torch.isfinite(fake).all() and 0.0 <= fake.min() <= fake.max() <= 1.0
    with pytest.raises(ValueError, match="holds no statistics"):
        gatys.translate(thermal)
    gatys.train()
    parts = gatys(thermal, rgb, ["day", "unknown"])
    parts["total"].backward()
    assert float(parts["total"].detach()) == 0.0 and gatys.bank.count("day") == 2
    gatys.eval()
    assert gatys.translate(thermal, period="night").shape == (2, 3, 16, 24)


def test_gatys_lbfgs_from_noise_lowers_its_objective() -> None:
    model = build_gatys(style_weight=1000.0, steps=4, init="noise", optimizer="lbfgs", step_size=1.0, seed=0)
    thermal, rgb = tiny_batch()
    _, history = model.stylise(thermal, model.style_grams(rgb))
    assert min(history) < history[0]


def test_cli_adain_train_translate_eval_end_to_end(synthetic_root: Path, tmp_path: Path) -> None:
    run, fake_root, report_path = tmp_path / "run", tmp_path / "fake", tmp_path / "eval.json"
    assert main(["train-translator", "--config", str(CONFIGS / "adain_tiny.yaml"), "--data", str(synthetic_root),
                 "--out", str(run), "--set", "train.device=cpu"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 4 and "last.pt" in result["checkpoints"]
    assert_translates_every_frame(run / "last.pt", synthetic_root, fake_root)
    assert_eval_without_inverse(run / "last.pt", synthetic_root, report_path, 2)


def test_cli_gatys_train_saves_its_gram_bank(synthetic_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "gatys"
    assert main(["train-translator", "--config", str(CONFIGS / "gatys_tiny.yaml"), "--data", str(synthetic_root),
                 "--out", str(run), "--set", "train.device=cpu"]) == 0
    loaded = load_translator(run / "last.pt", "cpu")
    assert isinstance(loaded.translator, GatysTranslator) and loaded.translator.bank.count("day") > 0
    fake = loaded.translator.translate(torch.rand(1, 1, 16, 16))
    assert fake.shape == (1, 3, 16, 16) and torch.isfinite(fake).all()
