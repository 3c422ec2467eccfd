"""Weight-free translator metrics: hand-checked values and the invertibility tests on a trained-like flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rgbt.translate.metrics import (
    canny_edges,
    edge_f1,
    gradient_ssim,
    psnr,
    rounds_psnr,
    roundtrip_error,
    sobel_magnitude,
    ssim,
    to_gray_float,
)
from rgbt.translate.transfer import latent_stats
from rgbt.translate.translator import build_translator


def scene(seed: int = 0, height: int = 48, width: int = 64) -> np.ndarray:
    """(H, W) uint8: a few bright rectangles on a dark smooth background."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 40, np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, height - 12), rng.integers(0, width - 12)
        image[y:y + rng.integers(6, 12), x:x + rng.integers(6, 12)] = rng.integers(120, 255)
    return image


def test_psnr_hand_value_and_identity() -> None:
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.1)
    assert torch.allclose(psnr(a, b), torch.full((2,), 20.0, dtype=torch.float64))
    assert math.isinf(float(psnr(a, a)[0]))
    assert torch.allclose(ssim(b, b), torch.ones(2), atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        psnr(a, b[:, :2])


def test_gray_conversion_and_sobel_magnitude() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 255
    assert np.allclose(to_gray_float(rgb), 0.587, atol=1e-6)
    assert np.allclose(to_gray_float(np.full((3, 3), 0.5, np.float32)), 0.5)
    step = np.zeros((8, 8), np.float32)
    step[:, 4:] = 1.0
    mag = sobel_magnitude(step)
    assert mag[4, 3] == pytest.approx(4.0) and mag[4, 0] == 0.0  # Sobel gain 4 on a unit step


def test_structure_metrics_reward_the_same_edges_and_tolerate_one_pixel() -> None:
    image = scene()
    assert edge_f1(image, image) == pytest.approx(1.0)
    assert gradient_ssim(image, image) == pytest.approx(1.0, abs=1e-5)
    shifted = np.roll(image, 1, axis=1)
    assert edge_f1(image, shifted, tolerance=2.0) == pytest.approx(1.0)
    assert edge_f1(image, shifted, tolerance=0.5) < 0.5
    other = scene(seed=1)
    assert edge_f1(image, other) < 0.5 and gradient_ssim(image, other) < 0.5
    # Contrast inversion keeps every edge: structure, not appearance, is scored.
    inverted = 255 - image
    assert edge_f1(image, inverted) > 0.9 and gradient_ssim(image, inverted) > 0.99
    flat = np.full_like(image, 90)
    assert not canny_edges(flat).any()
    assert edge_f1(flat, flat) == 1.0 and edge_f1(image, flat) == 0.0


@pytest.fixture
def translator(trained_like):  # type: ignore[no-untyped-def]
    model = build_translator(n_blocks=2, n_flows=2, hidden=8, seed=0).eval()
    trained_like(model, seed=1)
    return model


def test_roundtrip_error_is_round_off(translator) -> None:  # type: ignore[no-untyped-def]
    images = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(0))  # padded inside
    worst, mean = roundtrip_error(translator, images)
    assert worst < 1e-5 and 0 <= mean <= worst


def test_rounds_test_returns_to_the_content(translator) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 16, 16, generator=gen)
    styles = []
    for _ in range(20):
        z = translator.flow.encode(torch.rand(1, 3, 16, 16, generator=gen) ** 2)[0]
        styles.append(latent_stats(z))
    with torch.no_grad():
        assert float(rounds_psnr(translator, content, styles)[0]) > 60.0
    with pytest.raises(ValueError, match="at least one style"):
        rounds_psnr(translator, content, [])
