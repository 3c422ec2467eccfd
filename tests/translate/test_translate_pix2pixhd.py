"""pix2pixHD-style translator: shapes, gradients, training progress, and the CLI end to end (CPU, seconds)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from translator_checks import assert_translates_every_frame

from rgbt.cli import main
from rgbt.engine.translation import build_translator_pair, load_translator
from rgbt.translate.pix2pixhd import MultiscaleDiscriminator, Pix2PixHDTranslator, build_pix2pixhd

TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "pix2pixhd_tiny.yaml"


def tiny_models(seed: int = 0) -> tuple[Pix2PixHDTranslator, MultiscaleDiscriminator]:
    return build_pix2pixhd(hidden=8, n_downsample=2, n_residual=2, disc_hidden=8, disc_layers=2, disc_scales=2,
                           seed=seed)


def tiny_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Thermal (2, 1, 32, 40) and an RGB that is a fixed function of it, both in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    thermal = torch.rand(2, 1, 32, 40, generator=gen)
    rgb = torch.cat([thermal, 1.0 - thermal, 0.5 * thermal + 0.25], dim=1)
    return thermal, rgb


def test_translate_shapes_and_range_for_any_size() -> None:
    translator, _ = tiny_models()
    translator.eval()
    for h, w in ((32, 40), (31, 37), (5, 3)):
        with torch.no_grad():
            fake = translator.translate(torch.rand(2, 1, h, w))
        assert fake.shape == (2, 3, h, w)
        assert torch.isfinite(fake).all() and fake.min() >= 0.0 and fake.max() <= 1.0
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        translator.translate(torch.rand(2, 3, 8, 8))


def test_discriminator_returns_features_per_scale() -> None:
    _, discriminator = tiny_models()
    outputs = discriminator(torch.rand(2, 4, 32, 40))
    assert len(outputs) == 2 and all(len(scale) == 4 for scale in outputs)  # 2 stride-2, 1 stride-1, output
    assert outputs[0][-1].shape[:2] == (2, 1) and outputs[1][-1].shape[-1] < outputs[0][-1].shape[-1]


def test_every_parameter_gets_a_gradient() -> None:
    translator, discriminator = tiny_models()
    thermal, rgb = tiny_batch()
    parts = translator(thermal, rgb, discriminator=discriminator)
    assert set(parts) == {"gan", "feat", "l1", "total"} and all(torch.isfinite(v) for v in parts.values())
    parts["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in translator.parameters())
    discriminator.zero_grad(set_to_none=True)
    translator.zero_grad(set_to_none=True)
    d_parts = translator.discriminator_loss(thermal, rgb, discriminator)
    assert set(d_parts) == {"d_real", "d_fake", "total"}
    d_parts["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())
    # The fake is made without gradient: the discriminator's step does not touch the generator.
    assert all(p.grad is None for p in translator.parameters())


def test_a_few_steps_lower_both_objectives() -> None:
    torch.manual_seed(0)
    translator, discriminator = tiny_models()
    thermal, rgb = tiny_batch()
    g_opt = torch.optim.Adam(translator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    # Against a fixed discriminator the generator's whole objective must go down ...
    before = float(translator.generator_loss(thermal, rgb, discriminator)["total"].detach())
    for _ in range(8):
        g_opt.zero_grad()
        translator.generator_loss(thermal, rgb, discriminator)["total"].backward()
        g_opt.step()
    after = float(translator.generator_loss(thermal, rgb, discriminator)["total"].detach())
    assert after < 0.8 * before, (before, after)
    # ... and the discriminator's against a fixed generator.
    d_before = float(translator.discriminator_loss(thermal, rgb, discriminator)["total"].detach())
    for _ in range(8):
        d_opt.zero_grad()
        translator.discriminator_loss(thermal, rgb, discriminator)["total"].backward()
        d_opt.step()
    assert float(translator.discriminator_loss(thermal, rgb, discriminator)["total"].detach()) < d_before


def test_unknown_method_is_named() -> None:
    from rgbt.config import TranslatorConfig

    config = TranslatorConfig()
    config.model.model = "cyclegan"
    with pytest.raises(ValueError, match="pix2pixhd"):
        build_translator_pair(config.model, config.loss)


def test_cli_train_translate_eval_end_to_end(synthetic_root: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run, fake_root, report_path = tmp_path / "run", tmp_path / "fake", tmp_path / "eval.json"
    assert main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                 "--set", "train.device=cpu"]) == 0
    with (run / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {"loss", "gan", "feat", "l1", "adversary_loss", "d_real", "d_fake"} <= set(rows[0])
    assert all(np.isfinite(float(v)) for row in rows for v in row.values())
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 6 and result["bank_counts"] == {}
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert "adversary" in state and "adversary_optimizer" in state
    assert all(key.startswith("generator.") for key in state["model"])  # the discriminator is not the model
    # Resuming restores the discriminator and its optimiser with the rest and carries on.
    assert main(["train-translator", "--out", str(run), "--resume", "--set", "train.max_steps=8"]) == 0
    resumed = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert resumed["step"] == 8 and resumed["adversary_optimizer"]["state"]
    assert any(not torch.equal(resumed["adversary"][k], v) for k, v in state["adversary"].items())

    loaded = load_translator(run / "last.pt", "cpu")
    assert isinstance(loaded.translator, Pix2PixHDTranslator)
    assert_translates_every_frame(run / "last.pt", synthetic_root, fake_root)
    assert main(["translate", "--checkpoint", str(run / "last.pt"), "--data", str(synthetic_root), "--out",
                 str(tmp_path / "fake2"), "--style", "paired", "--workers", "0", "--device", "cpu"]) == 1
    assert "no style input" in capsys.readouterr().err

    assert main(["translate-eval", "--checkpoint", str(run / "last.pt"), "--data", str(synthetic_root),
                 "--image-set", "test", "--max-frames", "4", "--json", str(report_path), "--figure",
                 str(tmp_path / "fig.png"), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert list(report) == ["roundtrip_max_abs", "roundtrip_mean_abs", "rounds_psnr_db", "edge_f1", "gradient_ssim",
                            "psnr_day", "ssim_day", "frames"]
    # No inverse: the round-trip and rounds metrics are null, the rest finite.
    assert report["roundtrip_max_abs"] is None and report["roundtrip_mean_abs"] is None
    assert report["rounds_psnr_db"] is None
    assert all(np.isfinite(report[k]) for k in ("edge_f1", "gradient_ssim", "psnr_day", "ssim_day"))
    assert report["frames"] == 4 and (tmp_path / "fig.png").is_file()
