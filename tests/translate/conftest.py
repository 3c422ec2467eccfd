"""Shared helpers for the translator tests: seeded "trained-like" flows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from rgbt.translate.flow import ActNorm, CouplingNet


def perturb_(model: nn.Module, seed: int = 0, coupling_std: float = 0.05, actnorm_std: float = 0.2) -> None:
    """Give ``model`` random non-identity weights, as after training (in place, seeded).

    Zero-initialised coupling outputs make a fresh flow a product of linear maps; a trained one is
    not, and its round trip is what the numerical tests must survive.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, CouplingNet):
                w = module.conv_out.weight
                w.copy_(torch.randn(w.shape, generator=gen, dtype=w.dtype) * coupling_std)
                b = module.conv_out.bias
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype) * coupling_std)
            elif isinstance(module, ActNorm):
                for p in (module.bias, module.log_scale):
                    p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * actnorm_std)
                module.initialized.fill_(True)


@pytest.fixture
def trained_like() -> Callable[..., None]:
    """The :func:`perturb_` helper."""
    return perturb_
