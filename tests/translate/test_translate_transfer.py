"""Latent style transfer: AdaIN, WCT, the style bank, and ArtFlow's repeated-stylisation test."""

from __future__ import annotations

import math

import pytest
import torch

from rgbt.translate.flow import Glow
from rgbt.translate.transfer import StyleBank, adain, bank_period, latent_mean_cov, latent_stats, wct


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _latent(shape=(2, 12, 5, 7), seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    gen = _gen(seed)
    scale = torch.rand(shape[0], shape[1], 1, 1, generator=gen, dtype=dtype) * 2 + 0.5
    shift = torch.randn(shape[0], shape[1], 1, 1, generator=gen, dtype=dtype)
    return torch.randn(shape, generator=gen, dtype=dtype) * scale + shift


def test_latent_stats_shapes_and_values() -> None:
    z = _latent()
    mean, std = latent_stats(z)
    assert mean.shape == std.shape == (2, 12, 1, 1)
    torch.testing.assert_close(mean[..., 0, 0], z.mean(dim=(2, 3)))
    torch.testing.assert_close(std[..., 0, 0], z.std(dim=(2, 3), unbiased=False))
    _, std_const = latent_stats(torch.full((1, 2, 3, 3), 5.0))
    assert torch.all(std_const == 1e-5)


def test_adain_matches_target_statistics_and_is_idempotent() -> None:
    z = _latent()
    gen = _gen(1)
    mean_a = torch.randn(2, 12, 1, 1, generator=gen, dtype=torch.float64)
    std_a = torch.rand(2, 12, 1, 1, generator=gen, dtype=torch.float64) + 0.2
    styled = adain(z, mean_a, std_a)
    mean_s, std_s = latent_stats(styled)
    torch.testing.assert_close(mean_s, mean_a)
    torch.testing.assert_close(std_s, std_a)
    mean_z, std_z = latent_stats(z)
    torch.testing.assert_close(adain(styled, mean_z, std_z), z, rtol=0, atol=1e-12)
    # Statistics may also be given as (C,) or (B, C).
    torch.testing.assert_close(adain(z, mean_a[0, :, 0, 0], std_a[0, :, 0, 0])[0], styled[0])
    torch.testing.assert_close(adain(z, mean_a[..., 0, 0], std_a[..., 0, 0]), styled)


def test_adain_alpha_blends() -> None:
    z = _latent()
    mean, std = torch.zeros(12, dtype=torch.float64), torch.ones(12, dtype=torch.float64)
    assert torch.equal(adain(z, mean, std, alpha=0.0), z)
    full = adain(z, mean, std)
    torch.testing.assert_close(adain(z, mean, std, alpha=0.25), 0.75 * z + 0.25 * full)
    with pytest.raises(ValueError, match="alpha"):
        adain(z, mean, std, alpha=1.5)
    with pytest.raises(ValueError, match="style_mean"):
        adain(z, torch.zeros(5), std)


def test_wct_with_own_statistics_is_identity_and_matches_style_covariance() -> None:
    z = _latent()
    torch.testing.assert_close(wct(z, z), z, rtol=0, atol=1e-9)
    # Correlated style channels, of another spatial size than the content.
    mixing = torch.randn(12, 12, generator=_gen(4), dtype=torch.float64)
    style = torch.einsum("dc,bchw->bdhw", mixing, _latent((2, 12, 9, 4), seed=3))
    out = wct(_latent((2, 12, 16, 16), seed=5), style)
    out_mean, out_cov = latent_mean_cov(out)
    style_mean, style_cov = latent_mean_cov(style)
    torch.testing.assert_close(out_mean, style_mean)
    torch.testing.assert_close(out_cov, style_cov, rtol=1e-6, atol=1e-6)
    # Explicit (mean, cov) statistics give the same result as the style latent.
    torch.testing.assert_close(wct(z, (style_mean, style_cov)), wct(z, style))
    torch.testing.assert_close(wct(z, z, alpha=0.5), z, rtol=0, atol=1e-9)


def test_wct_eigenvalue_floor_handles_replicated_gray_latent() -> None:
    # A replicated-gray latent: 12 channels that are 4 independent signals seen 3 times each.
    base = torch.randn(1, 4, 8, 8, generator=_gen(0), dtype=torch.float32)
    z = base.repeat_interleave(3, dim=1) + 1e-7 * torch.randn(1, 12, 8, 8, generator=_gen(1))
    _, cov = latent_mean_cov(z)
    assert torch.linalg.eigvalsh(cov)[0, 0] < 1e-10
    style = _latent((1, 12, 8, 8), seed=2, dtype=torch.float32)
    out = wct(z, style)
    assert torch.isfinite(out).all()
    # Whitening may not blow the near-null directions up: the result stays at the style's scale.
    assert out.abs().max() < 20 * style.abs().max()
    with pytest.raises(ValueError, match="style"):
        wct(z, "day")  # type: ignore[arg-type]


def test_style_bank_ema_and_persistence() -> None:
    bank = StyleBank(12, momentum=0.5)
    assert bank.count("day") == 0
    with pytest.raises(ValueError, match="no 'day' statistics"):
        bank.stats("day")
    z1, z2 = _latent(seed=1).float(), _latent(seed=2).float()
    bank.update(z1, "day")
    mean1, std1 = latent_stats(z1)
    torch.testing.assert_close(bank.day_mean, mean1.mean(0).flatten())  # first update copies
    torch.testing.assert_close(bank.day_std, std1.mean(0).flatten())
    torch.testing.assert_close(bank.day_cov, latent_mean_cov(z1)[1].mean(0).float())
    bank.update(z2, ["day", "night"])
    mean2, _ = latent_stats(z2)
    torch.testing.assert_close(bank.day_mean, 0.5 * mean1.mean(0).flatten() + 0.5 * mean2[0].flatten())
    torch.testing.assert_close(bank.night_mean, mean2[1].flatten())
    assert bank.count("day") == 3 and bank.count("night") == 1
    mean, std = bank.stats(["night", "day", "night"], 3)
    assert mean.shape == std.shape == (3, 12, 1, 1)
    torch.testing.assert_close(mean[0, :, 0, 0], bank.night_mean)
    mean_w, cov_w = bank.mean_cov("day", 2)
    assert mean_w.shape == (2, 12, 1, 1) and cov_w.shape == (2, 12, 12)

    fresh = StyleBank(12)
    fresh.load_state_dict(bank.state_dict())
    assert fresh.count("day") == 3
    torch.testing.assert_close(fresh.stats("night")[0], bank.stats("night")[0])
    with pytest.raises(ValueError, match="unknown period 'dusk'"):
        bank.stats("dusk")
    with pytest.raises(ValueError, match="got 1 periods for a batch of 2"):
        bank.update(z1, ["day"])
    with pytest.raises(ValueError, match="momentum"):
        StyleBank(12, momentum=0.0)


def test_bank_period_falls_back_to_day() -> None:
    bank = StyleBank(4)
    with pytest.raises(ValueError, match="no statistics"):
        bank_period(bank, "day")
    bank.update(torch.randn(2, 4, 3, 3), "day")
    assert bank_period(bank, "night") == "day"  # trained on day frames only
    assert bank_period(bank, "unknown") == "day"  # FLIR / pairs
    assert bank_period(bank, "night", need_stats=False) == "night"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a - b).double().pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def test_artflow_rounds_twenty_stylisations_then_back(trained_like) -> None:
    """ArtFlow's content-leak test: 20 stylisations, then the content's own statistics back."""
    torch.manual_seed(0)
    glow = Glow(3, n_blocks=2, n_flows=4, hidden=32)  # float32
    image = torch.rand(1, 3, 32, 48, generator=_gen(1))
    image = torch.nn.functional.avg_pool2d(image, 3, stride=1, padding=1)  # some image-like structure
    glow.initialize(torch.cat([image, torch.rand(1, 3, 32, 48, generator=_gen(2))]))
    trained_like(glow, seed=3)
    glow.eval()
    gen = _gen(4)
    with torch.inference_mode():
        z0, _, size = glow.encode(image)
        content_mean, content_std = latent_stats(z0)
        x = image
        for _ in range(20):
            z, _, _ = glow.encode(x)
            style_mean = torch.randn(1, 48, 1, 1, generator=gen)
            style_std = torch.rand(1, 48, 1, 1, generator=gen) * 1.5 + 0.5
            x = glow.decode(adain(z, style_mean, style_std), size)  # no clamping between rounds
        assert _psnr(x, image) < 30  # the rounds really changed the image
        z, _, _ = glow.encode(x)
        restored = glow.decode(adain(z, content_mean, content_std), size)
    assert _psnr(restored, image) >= 50
