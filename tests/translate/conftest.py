"""Shared helpers for the translator tests: seeded "trained-like" flows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run each test on one intra-op thread, then restore the setting.

    These tensors are small; on a shared 2-core machine OpenMP threads spin-waiting for a busy core
    made the suite 15x slower, while one thread costs at most 2x on the single 512x640 test.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
