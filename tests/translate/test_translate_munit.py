"""MUNIT-style translator: shapes, multimodal styles, gradients, training progress, and the CLI end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from translator_checks import assert_eval_without_inverse, assert_translates_every_frame

from rgbt.cli import main
from rgbt.engine.translator_builder import load_translator
from rgbt.translate.munit import MunitDiscriminators, MunitTranslator, build_munit

TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "munit_tiny.yaml"


def tiny_models(seed: int = 0) -> tuple[MunitTranslator, MunitDiscriminators]:
    return build_munit(hidden=8, n_downsample=1, n_residual=1, mlp_dim=16, disc_hidden=8, disc_layers=2,
                       disc_scales=2, seed=seed)


def tiny_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Thermal (2, 1, 32, 40) and an unrelated (unpaired) RGB batch (2, 3, 32, 40), both in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, 32, 40, generator=gen), torch.rand(2, 3, 32, 40, generator=gen)


def test_translate_shapes_and_range_for_any_size() -> None:
    translator, _ = tiny_models()
    translator.eval()
    with torch.no_grad():
        for h, w in ((32, 40), (31, 37), (5, 3)):
            fake = translator.translate(torch.rand(2, 1, h, w))
            assert fake.shape == (2, 3, h, w)
            assert torch.isfinite(fake).all() and fake.min() >= 0.0 and fake.max() <= 1.0
        # An RGB image (any size) gives its encoded style.
        fake = translator.translate(torch.rand(2, 1, 32, 40), style=torch.rand(1, 3, 20, 24))
        assert fake.shape == (2, 3, 32, 40) and torch.isfinite(fake).all()
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        translator.translate(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="style must be"):
        translator.translate(torch.rand(2, 1, 8, 8), style=torch.rand(2, 5))
    assert translator.invertible is False


def test_style_codes_select_the_output() -> None:
    translator, _ = tiny_models()
    translator.eval()
    thermal = torch.rand(1, 1, 32, 40, generator=torch.Generator().manual_seed(1))
    codes = translator.random_styles(2, seed=3)
    assert torch.equal(codes, translator.random_styles(2, seed=3))
    with torch.no_grad():
        first, second = (translator.translate(thermal, style=codes[k:k + 1]) for k in range(2))
        assert torch.equal(first, translator.translate(thermal, style=codes[:1]))
        assert (first - second).abs().max() > 1e-3
        # No style: one seeded code, the same output on every call and whatever the global RNG does.
        default = translator.translate(thermal)
        torch.manual_seed(123)
        assert torch.equal(default, translator.translate(thermal))
        # Several codes for one frame: several fake RGBs.
        several = translator.translate(thermal.expand(2, -1, -1, -1), style=codes)
        assert torch.allclose(several[0], first[0]) and torch.allclose(several[1], second[0])


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    translator, discriminator = tiny_models()
    thermal, rgb = tiny_batch()
    parts = translator(thermal, rgb, discriminator=discriminator)
    assert set(parts) == {"gan", "image", "content", "style", "total"}
    assert all(torch.isfinite(v) for v in parts.values())
    parts["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in translator.parameters())
    discriminator.zero_grad(set_to_none=True)
    translator.zero_grad(set_to_none=True)
    d_parts = translator.discriminator_loss(thermal, rgb, discriminator)
    assert set(d_parts) == {"d_real", "d_fake", "total"}
    d_parts["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())
    # The fakes are made without gradient: the discriminators' step does not touch the generator.
    assert all(p.grad is None for p in translator.parameters())


def test_a_few_steps_lower_the_generator_objective() -> None:
    translator, discriminator = tiny_models()
    thermal, rgb = tiny_batch()
    opt = torch.optim.Adam(translator.parameters(), lr=2e-3, betas=(0.5, 0.999))

    def objective() -> torch.Tensor:
        torch.manual_seed(0)  # the same drawn style codes every time: compare like with like
        return translator.generator_loss(thermal, rgb, discriminator)["total"]

    before = float(objective().detach())
    for _ in range(10):
        opt.zero_grad()
        objective().backward()
        opt.step()
    after = float(objective().detach())
    assert after < 0.8 * before, (before, after)


def test_cli_train_translate_eval_end_to_end(synthetic_root: Path, tmp_path: Path) -> None:
    run, fake_root, report_path = tmp_path / "run", tmp_path / "fake", tmp_path / "eval.json"
    assert main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                 "--set", "train.device=cpu"]) == 0
    with (run / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {"loss", "gan", "image", "content", "style", "adversary_loss", "d_real", "d_fake"} <= set(rows[0])
    assert all(np.isfinite(float(v)) for row in rows for v in row.values())
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert "adversary" in state and all(key.startswith(("thermal.", "rgb.")) for key in state["model"])

    loaded = load_translator(run / "last.pt", "cpu")
    assert isinstance(loaded.translator, MunitTranslator)
    assert_translates_every_frame(run / "last.pt", synthetic_root, fake_root)

    report = assert_eval_without_inverse(run / "last.pt", synthetic_root, report_path, 4)
    assert report["frames"] == 4
