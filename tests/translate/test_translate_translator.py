"""FlowTranslator and its objective: shapes, styles, gradients, a few optimisation steps."""

from __future__ import annotations

import math

import pytest
import torch

from rgbt.translate.losses import (
    checkerboard,
    gradient_loss,
    ms_ssim_loss,
    nll_bits_per_dim,
    ssim_loss,
    translation_loss,
)
from rgbt.translate.translator import FlowTranslator, build_translator


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tiny(**kwargs) -> FlowTranslator:
    return build_translator(n_blocks=1, n_flows=2, hidden=8, seed=0, **kwargs)


def _paired(
    batch: int = 4, height: int = 16, width: int = 20, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random thermal frames and an RGB that is a fixed pixel-wise function of them."""
    gen = _gen(seed)
    thermal = torch.rand(batch, 1, height // 4, width // 4, generator=gen)
    thermal = torch.nn.functional.interpolate(
        thermal, size=(height, width), mode="bilinear", align_corners=False
    )
    rgb = torch.cat([thermal, thermal.pow(2), 1.0 - 0.5 * thermal], dim=1)
    return thermal, rgb


def test_losses_are_zero_for_identical_images_and_see_checkerboards() -> None:
    img = torch.rand(2, 3, 16, 16, generator=_gen(0), dtype=torch.float64)
    parts = translation_loss(img, img)
    assert set(parts) == {"l1", "ssim", "grad", "total"}
    for value in parts.values():
        assert abs(value.item()) < 1e-12
    rows = torch.arange(16)
    pattern = ((rows[:, None] + rows[None, :]) % 2).double() * 0.2 - 0.1
    assert checkerboard(pattern[None, None]).abs().min().item() == pytest.approx(0.1)
    assert gradient_loss(img + pattern, img).item() > 0.3
    assert gradient_loss(img + 0.1, img).item() < 1e-12  # a flat offset is L1's business, not this term's
    assert ssim_loss(img, 1 - img).item() > 0.5
    assert ssim_loss(img[:, :, :5, :4], img[:, :, :5, :4]).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="too small"):
        ms_ssim_loss(img, img)
    with pytest.raises(ValueError, match="one shape"):
        translation_loss(img, img[:, :, :8])
    with pytest.raises(ValueError, match="needs z and logdet"):
        translation_loss(img, img, w_nll=1.0)


def test_nll_bits_per_dim_by_hand() -> None:
    z = torch.zeros(2, 12, 2, 2)
    bpd = nll_bits_per_dim(z, torch.tensor([0.0, 48 * math.log(2.0)]))
    base = 0.5 * math.log(2 * math.pi) / math.log(2.0) + 8.0
    torch.testing.assert_close(bpd, torch.tensor([base, base - 1.0]))


def test_translate_shapes_styles_and_range() -> None:
    translator = _tiny()
    thermal, rgb = _paired(2, 13, 19)
    translator.train()
    translator.loss(thermal, rgb, ["day", "night"])
    translator.eval()
    with torch.inference_mode():
        for kwargs in (
            {"period": "night"},
            {"period": ["night", "day"]},
            {"period": "day", "method": "wct"},
            {"style": rgb[:1, :, :7, :11]},  # unaligned, other size, broadcast over the batch
            {"style": rgb, "method": "wct", "alpha": 0.5},
            {"style": (torch.zeros(12), torch.ones(12))},
        ):
            out = translator.translate(thermal, **kwargs)
            assert out.shape == (2, 3, 13, 19), kwargs
            assert out.min() >= 0 and out.max() <= 1 and out.is_contiguous()
        # alpha = 0 keeps the thermal latent: the output is the replicated thermal frame.
        same = translator.translate(thermal, period="day", alpha=0.0)
        torch.testing.assert_close(same, thermal.expand(-1, 3, -1, -1), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="thermal must be"):
        translator.translate(rgb)
    with pytest.raises(ValueError, match="method"):
        translator.translate(thermal, method="cycle")
    with pytest.raises(ValueError, match="unknown period"):
        translator.translate(thermal, period="dusk")


def test_translate_needs_bank_statistics() -> None:
    translator = _tiny().eval()
    with pytest.raises(ValueError, match="no 'night' statistics"):
        translator.translate(torch.rand(1, 1, 8, 8), period="night")


def test_build_translator_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b = _tiny(), _tiny()
    assert torch.equal(state, torch.random.get_rng_state())
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    with pytest.raises(ValueError, match="hidden"):
        build_translator(hidden=0)


def test_every_parameter_gets_a_gradient(trained_like) -> None:
    translator = _tiny(w_nll=0.1)
    trained_like(translator)
    thermal, rgb = _paired(2, 8, 12)
    translator.train()
    parts = translator.loss(thermal, rgb, "day")
    assert set(parts) == {"l1", "ssim", "grad", "nll", "total"}
    parts["total"].backward()
    for name, param in translator.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    assert translator.bank.count("day") == 2


def test_initialize_on_mixed_batch() -> None:
    translator = _tiny()
    thermal, rgb = _paired(2, 8, 12)
    translator.initialize(thermal, rgb)
    actnorm = translator.flow.layers[1].actnorm
    assert bool(actnorm.initialized)
    with pytest.raises(ValueError, match="differ in size"):
        translator.initialize(thermal, rgb[:, :, :4])


def test_adam_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    translator = build_translator(n_blocks=1, n_flows=2, hidden=16, seed=0)
    thermal, rgb = _paired(4, 16, 16)
    translator.initialize(thermal, rgb)
    translator.train()
    optimizer = torch.optim.Adam(translator.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        total = translator.loss(thermal, rgb, "day")["total"]
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses
