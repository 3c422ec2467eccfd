"""pix2pixHD-style translator: shapes, gradients, training progress, and the CLI end to end (CPU, seconds)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from translator_checks import assert_translates_every_frame

from rgbt.cli import main
from rgbt.engine.translation_eval import REPORT_KEYS
from rgbt.engine.translator_builder import build_translator_pair, load_translator
from rgbt.translate.pix2pixhd import LocalEnhancer, MultiscaleDiscriminator, Pix2PixHDTranslator, build_pix2pixhd

TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "pix2pixhd_tiny.yaml"
LOCAL_TINY = TINY.with_name("pix2pixhd_local_tiny.yaml")


def tiny_models(seed: int = 0) -> tuple[Pix2PixHDTranslator, MultiscaleDiscriminator]:
    return build_pix2pixhd(hidden=8, n_downsample=2, n_residual=2, disc_hidden=8, disc_layers=2, disc_scales=2,
                           seed=seed)


def tiny_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Thermal (2, 1, 32, 40) and an RGB that is a fixed function of it, both in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    thermal = torch.rand(2, 1, 32, 40, generator=gen)
    rgb = torch.cat([thermal, 1.0 - thermal, 0.5 * thermal + 0.25], dim=1)
    return thermal, rgb


def generator_steps(translator: Pix2PixHDTranslator, discriminator: MultiscaleDiscriminator, thermal: torch.Tensor,
                    rgb: torch.Tensor, steps: int = 8) -> tuple[float, float]:
    """The generator objective before and after ``steps`` Adam steps against a fixed discriminator."""
    g_opt = torch.optim.Adam(translator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    before = float(translator.generator_loss(thermal, rgb, discriminator)["total"].detach())
    for _ in range(steps):
        g_opt.zero_grad()
        translator.generator_loss(thermal, rgb, discriminator)["total"].backward()
        g_opt.step()
    return before, float(translator.generator_loss(thermal, rgb, discriminator)["total"].detach())


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
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    # Against a fixed discriminator the generator's whole objective must go down ...
    before, after = generator_steps(translator, discriminator, thermal, rgb)
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
    assert tuple(report) == REPORT_KEYS
    # No inverse: the round-trip and rounds metrics are null (float and 8-bit), the rest finite.
    assert all(report[k] is None for k in ("roundtrip_max_abs", "roundtrip_mean_abs", "rounds_psnr_db",
                                           "roundtrip_max_abs_8bit", "roundtrip_mean_abs_8bit", "rounds_psnr_db_8bit"))
    assert report["image_format"] == "jpg"
    assert all(np.isfinite(report[k]) for k in ("edge_f1", "gradient_ssim", "psnr_day", "ssim_day"))
    assert report["frames"] == 4 and (tmp_path / "fig.png").is_file()


# --------------------------------------------------------------------------------------------
# Local enhancer (coarse-to-fine generator)
# --------------------------------------------------------------------------------------------

#: The global-only tiny translator's state-dict keys before the local enhancer existed: old checkpoints must load.
GLOBAL_ONLY_KEYS = [f"generator.net.{i}.{p}" for i in (1, 4, 7) for p in ("weight", "bias")] + [
    f"generator.net.{i}.body.{j}.{p}" for i in (10, 11) for j in (1, 5) for p in ("weight", "bias")] + [
    f"generator.net.{i}.{p}" for i in (12, 15, 19) for p in ("weight", "bias")]


def local_models(seed: int = 0, n_local: int = 1, hidden: int = 4) -> tuple[Pix2PixHDTranslator,
                                                                            MultiscaleDiscriminator]:
    """A local enhancer whose global generator has the tiny global-only translator's size (hidden 8 for n_local 1)."""
    return build_pix2pixhd(hidden=hidden, n_downsample=2, n_residual=2, disc_hidden=8, disc_layers=2, disc_scales=2,
                           local_enhancers=n_local, local_residual=1, seed=seed)


def test_global_only_state_dict_keys_are_unchanged() -> None:
    translator, _ = tiny_models()
    assert list(translator.state_dict()) == GLOBAL_ONLY_KEYS
    generator = translator.generator
    assert generator.feature_channels == 8 and len(generator.features) + len(generator.head) == len(generator.net)
    x = torch.rand(1, 1, 16, 20) * 2 - 1
    with torch.no_grad():
        assert torch.equal(generator.head(generator.features(x)), generator(x))


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_shapes_range_and_factor(n_local: int) -> None:
    translator, _ = local_models(n_local=n_local)
    generator = translator.generator
    assert isinstance(generator, LocalEnhancer) and len(generator.stages) == n_local
    assert generator.factor == 4 * 2**n_local
    assert generator.global_generator.feature_channels == 4 * 2**n_local and generator.global_generator.head is None
    translator.eval()
    for h, w in ((32, 40), (31, 37), (5, 3), (1, 1)):
        with torch.no_grad():
            fake = translator.translate(torch.rand(2, 1, h, w))
        assert fake.shape == (2, 3, h, w)
        assert torch.isfinite(fake).all() and fake.min() >= 0.0 and fake.max() <= 1.0
    with pytest.raises(ValueError, match=f"multiples of {generator.factor}"):
        generator(torch.rand(1, 1, generator.factor + 4, generator.factor))


def test_negative_local_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="-1"):
        build_pix2pixhd(hidden=4, local_enhancers=-1)
    with pytest.raises(ValueError, match="-2"):
        build_pix2pixhd(hidden=4, local_enhancers=1, local_residual=-2)


def test_local_enhancer_every_parameter_gets_a_gradient() -> None:
    translator, discriminator = local_models()
    thermal, rgb = tiny_batch()
    translator(thermal, rgb, discriminator=discriminator)["total"].backward()
    names = [name for name, _ in translator.named_parameters()]
    assert any(".global_generator." in n for n in names) and any(".stages.0." in n for n in names)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in translator.parameters())


def test_local_enhancer_a_few_steps_lower_the_generator_objective() -> None:
    torch.manual_seed(0)
    translator, discriminator = local_models()
    thermal, rgb = tiny_batch()
    before, after = generator_steps(translator, discriminator, thermal, rgb)
    assert after < 0.8 * before, (before, after)


def test_load_start_weights_global_only_into_local_enhancer(caplog: pytest.LogCaptureFixture) -> None:
    global_only, _ = tiny_models(seed=1)
    enhanced, _ = local_models(seed=2)
    fresh_stages = {k: v.clone() for k, v in enhanced.state_dict().items() if ".global_generator." not in k}
    with caplog.at_level(logging.INFO, logger="rgbt.translate.pix2pixhd"):
        enhanced.load_start_weights(global_only.state_dict())
    assert len(caplog.records) == 1 and "global-only generator" in caplog.text
    # The global generator now computes the global-only generator's features; the enhancer is untouched.
    x = torch.rand(2, 1, 16, 20) * 2 - 1
    with torch.no_grad():
        assert torch.equal(enhanced.generator.global_generator(x), global_only.generator.features(x))
    assert all(torch.equal(enhanced.state_dict()[k], v) for k, v in fresh_stages.items())
    # Its own state dict loads as usual, into either kind.
    other, _ = local_models(seed=3)
    other.load_start_weights(enhanced.state_dict())
    assert all(torch.equal(other.state_dict()[k], v) for k, v in enhanced.state_dict().items())
    tiny_models(seed=3)[0].load_start_weights(global_only.state_dict())


def test_load_start_weights_mismatches_raise() -> None:
    enhanced, _ = local_models()
    # A global-only generator of the wrong size (hidden 4, not 4 * 2 ** 1).
    with pytest.raises(ValueError, match="hidden 8"):
        enhanced.load_start_weights(build_pix2pixhd(hidden=4, n_downsample=2, n_residual=2)[0].state_dict())
    with pytest.raises(ValueError, match="n_residual"):
        enhanced.load_start_weights(build_pix2pixhd(hidden=8, n_downsample=2, n_residual=3)[0].state_dict())
    # An enhancer's weights do not fit a global-only translator, nor an enhancer of another depth.
    with pytest.raises(ValueError, match="global_generator"):
        tiny_models()[0].load_start_weights(enhanced.state_dict())
    with pytest.raises(ValueError):
        local_models(n_local=2, hidden=2)[0].load_start_weights(enhanced.state_dict())


def test_cli_coarse_to_fine_schedule(synthetic_root: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    coarse, fine = tmp_path / "global", tmp_path / "local"
    common = ["--data", str(synthetic_root), "--set", "train.device=cpu", "--set", "train.max_steps=2",
              "--set", "val_frames=1", "--set", "bank_frames=0"]
    # The global generator alone at half resolution ...
    assert main(["train-translator", "--config", str(TINY), "--out", str(coarse), "--set", "crop=[16,20]",
                 *common]) == 0
    start = torch.load(coarse / "last.pt", map_location="cpu", weights_only=False)["model"]
    # ... then the local enhancer around it at full resolution.
    assert main(["train-translator", "--config", str(LOCAL_TINY), "--out", str(fine), "--set",
                 f"model.weights={coarse / 'last.pt'}", *common]) == 0
    assert json.loads((fine / "result.json").read_text())["steps"] == 2
    state = torch.load(fine / "last.pt", map_location="cpu", weights_only=False)["model"]
    assert any(key.startswith("generator.stages.0.") for key in state)
    # Two steps from the loaded weights, not from a fresh N(0, 0.02) draw: still close to them.
    loaded = load_translator(fine / "last.pt", "cpu")
    assert isinstance(loaded.translator.generator, LocalEnhancer)
    weight = state["generator.global_generator.net.1.weight"]
    assert (weight - start["generator.net.1.weight"]).abs().max() < 0.01 < weight.abs().max()
    assert_translates_every_frame(fine / "last.pt", synthetic_root, tmp_path / "fake")
    # A global-only checkpoint of the wrong size is named.
    assert main(["train-translator", "--config", str(LOCAL_TINY), "--out", str(tmp_path / "bad"), "--set",
                 f"model.weights={coarse / 'last.pt'}", "--set", "model.hidden=8", *common]) == 1
    assert "does not fit this translator" in capsys.readouterr().err
