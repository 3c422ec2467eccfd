"""The Translator interface, checked the same way on every method: flags, training step, translate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from rgbt.translate.adain_net import build_adain
from rgbt.translate.base import AdversarialTranslator, Translator, is_invertible, takes_style
from rgbt.translate.gatys import build_gatys
from rgbt.translate.munit import build_munit
from rgbt.translate.pix2pixhd import build_pix2pixhd
from rgbt.translate.translator import build_translator

#: method -> (tiny ``(translator, adversary or None)``, invertible, takes_style)
CASES: dict[str, tuple[Callable[[], tuple[Translator, nn.Module | None]], bool, bool]] = {
    "flow": (lambda: (build_translator(n_blocks=1, n_flows=2, hidden=8, seed=0), None), True, True),
    "pix2pixhd": (lambda: build_pix2pixhd(hidden=8, n_downsample=2, n_residual=2, disc_hidden=8, disc_layers=2,
                                          disc_scales=2, seed=0), False, False),
    "munit": (lambda: build_munit(hidden=8, n_downsample=1, n_residual=1, mlp_dim=16, disc_hidden=8, disc_layers=2,
                                  disc_scales=2, seed=0), False, True),
    "adain": (lambda: (build_adain(seed=0), None), False, True),
    "gatys": (lambda: (build_gatys(steps=2, seed=0), None), False, True),
}


def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Thermal (2, 1, 32, 40) and an RGB that is a fixed function of it, both in [0, 1]."""
    thermal = torch.rand(2, 1, 32, 40, generator=torch.Generator().manual_seed(0))
    return thermal, torch.cat([thermal, 1.0 - thermal, 0.5 * thermal + 0.25], dim=1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_method_implements_the_interface(name: str) -> None:
    make, invertible, styled = CASES[name]
    translator, adversary = make()
    assert isinstance(translator, Translator)
    assert is_invertible(translator) is invertible and takes_style(translator) is styled
    assert isinstance(translator, AdversarialTranslator) == (adversary is not None)
    assert list(translator.parameters())  # the training loop builds an optimiser over them
    thermal, rgb = tiny_batch()

    translator.train()
    gan = {} if adversary is None else {"discriminator": adversary}
    parts = translator(thermal, rgb, ["day", "day"], None, **gan)
    assert parts["total"].dim() == 0 and torch.isfinite(parts["total"])
    if isinstance(translator, AdversarialTranslator):
        assert adversary is not None
        d_parts = translator.discriminator_loss(thermal, rgb, adversary)
        assert {"d_real", "d_fake", "total"} <= set(d_parts) and d_parts["total"].dim() == 0

    translator.eval()
    with torch.inference_mode():
        fakes = [translator.translate(thermal), translator.translate(thermal, None, "day", 1.0, "adain")]
        if styled:
            fakes.append(translator.translate(thermal, style=rgb[:1]))
    for fake in fakes:
        assert fake.shape == (2, 3, 32, 40) and fake.dtype == torch.float32
        assert 0.0 <= float(fake.min()) and float(fake.max()) <= 1.0


def test_capabilities_are_only_read_from_translators() -> None:
    wrapped = nn.Sequential(build_translator(n_blocks=1, n_flows=2, hidden=8, seed=0))
    with pytest.raises(TypeError, match="not a rgbt.translate.base.Translator"):
        is_invertible(wrapped)
    with pytest.raises(TypeError, match="unwrap it first"):
        takes_style(wrapped)
