"""Style transfer in the flow's latent space: AdaIN, WCT and a bank of running style statistics.

All functions act on latents ``z`` of shape ``(B, C, h, w)`` (any real values) and only use
global per-channel statistics, which do not depend on where things are in the frame: that is what
lets a misaligned (or unpaired) RGB frame lend its appearance to a thermal frame.

Statistics conventions:

* ``mean``/``std`` are per sample and channel over the spatial dims, shaped ``(B, C, 1, 1)``;
  ``std`` is the population standard deviation, floored at ``eps`` only for (near-)constant
  channels, so ``adain(adain(z, a), stats(z))`` gives back ``z`` up to round-off.
* ``cov`` is the per-sample channel covariance ``(B, C, C)`` (population, around ``mean``).
* ``alpha`` in [0, 1] blends the stylised latent with the original: ``alpha * out + (1 - alpha) * z``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

__all__ = ["latent_stats", "latent_mean_cov", "adain", "wct", "StyleBank", "PeriodBank", "bank_period",
           "DEFAULT_PERIODS", "DEFAULT_MOMENTUM"]

Period = str | Sequence[str]

#: Entries of a style bank: frames by day and by night look nothing alike in RGB.
DEFAULT_PERIODS = ("day", "night")
#: EMA weight of each new batch in a style bank's running statistics.
DEFAULT_MOMENTUM = 0.01


def _check_latent(z: Tensor, where: str) -> None:
    if z.dim() != 4:
        raise ValueError(f"{where}: expected a (B, C, h, w) latent, got shape {tuple(z.shape)}")
    if z.shape[2] * z.shape[3] < 1:
        raise ValueError(f"{where}: empty spatial size {z.shape[2]}x{z.shape[3]}")


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return alpha


def _as_stat(stat: Tensor, batch: int, channels: int, name: str) -> Tensor:
    """Reshape a (C,), (B|1, C) or (B|1, C, 1, 1) statistic to (B|1, C, 1, 1)."""
    if stat.dim() == 1:
        stat = stat[None]
    if stat.dim() == 2:
        stat = stat[:, :, None, None]
    if (
        stat.dim() != 4
        or stat.shape[1] != channels
        or stat.shape[2:] != (1, 1)
        or stat.shape[0] not in (1, batch)
    ):
        raise ValueError(
            f"{name}: expected shape (C,), (B, C) or (B, C, 1, 1) with C={channels}, B in (1, {batch}); "
            f"got {tuple(stat.shape)}"
        )
    return stat


def latent_stats(z: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over space.

    Args:
        z: (B, C, h, w) latent.
        eps: floor of the standard deviation (only reached by near-constant channels).

    Returns:
        ``(mean, std)``, each (B, C, 1, 1), in ``z``'s dtype.
    """
    _check_latent(z, "latent_stats")
    var, mean = torch.var_mean(z, dim=(2, 3), keepdim=True, correction=0)
    # Floor the variance rather than adding eps: adding would bias every round trip by ~eps/var.
    return mean, var.clamp_min(eps * eps).sqrt()


def latent_mean_cov(z: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample channel mean (B, C, 1, 1) and covariance (B, C, C), computed in float64.

    The covariance is returned in float64 (it feeds an eigendecomposition); the mean in ``z``'s dtype.
    """
    _check_latent(z, "latent_mean_cov")
    b, c, h, w = z.shape
    flat = z.reshape(b, c, h * w).double()
    mean = flat.mean(dim=2, keepdim=True)
    centred = flat - mean
    cov = centred @ centred.transpose(1, 2) / (h * w)
    return mean[..., None].to(z.dtype), cov


def adain(
    content_z: Tensor, style_mean: Tensor, style_std: Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> Tensor:
    """Adaptive instance normalisation in latent space.

    ``out = (z - mean(z)) / std(z) * style_std + style_mean``, then ``alpha * out + (1 - alpha) * z``.

    Args:
        content_z: (B, C, h, w) latent.
        style_mean, style_std: (C,), (B|1, C) or (B|1, C, 1, 1) target statistics (std > 0).
        alpha: stylisation strength in [0, 1].
        eps: standard-deviation floor of the content statistics (see :func:`latent_stats`).

    Returns:
        (B, C, h, w) stylised latent.
    """
    _check_latent(content_z, "adain")
    alpha = _check_alpha(alpha)
    b, c = content_z.shape[:2]
    style_mean = _as_stat(style_mean, b, c, "adain style_mean").to(content_z.dtype)
    style_std = _as_stat(style_std, b, c, "adain style_std").to(content_z.dtype)
    mean, std = latent_stats(content_z, eps)
    # One multiply-add per element: z * (s_style / s) + (m_style - m * s_style / s).
    gain = style_std / std
    out = torch.addcmul(style_mean - mean * gain, content_z, gain)
    if alpha == 1.0:
        return out
    return torch.lerp(content_z, out, alpha)


def _sym_power(cov: Tensor, power: float, floor: Tensor) -> Tensor:
    """``cov ** power`` for symmetric PSD (B, C, C) float64 matrices, eigenvalues floored at (B, 1)."""
    evals, evecs = torch.linalg.eigh(cov)
    evals = torch.maximum(evals, floor)
    return (evecs * evals.pow(power)[:, None, :]) @ evecs.transpose(1, 2)


def wct(
    content_z: Tensor,
    style: Tensor | tuple[Tensor, Tensor],
    alpha: float = 1.0,
    eps: float = 1e-8,
    rel_floor: float = 1e-5,
) -> Tensor:
    """Whitening and colouring transform in latent space.

    ``out = Cs^(1/2) Cc^(-1/2) (z - mean_c) + mean_s`` per sample, with the matrix powers from a
    float64 eigendecomposition, then ``alpha * out + (1 - alpha) * z``.

    A latent of a replicated-gray input is close to rank-deficient (two thirds of the input
    dimensions carry no information), so whitening would blow its noise directions up by
    ``1/sqrt(lambda)``: eigenvalues below ``max(eps, rel_floor * lambda_max)`` are floored.

    Args:
        content_z: (B, C, h, w) latent.
        style: a style latent (B|1, C, h', w') (any spatial size), or ``(mean, cov)`` with mean
            (C,), (B|1, C) or (B|1, C, 1, 1) and cov (C, C) or (B|1, C, C).
        alpha: stylisation strength in [0, 1].
        eps: absolute eigenvalue floor.
        rel_floor: eigenvalue floor relative to the largest eigenvalue of each covariance.

    Returns:
        (B, C, h, w) stylised latent in ``content_z``'s dtype.
    """
    _check_latent(content_z, "wct")
    alpha = _check_alpha(alpha)
    if eps < 0 or rel_floor < 0:
        raise ValueError(f"eps and rel_floor must be >= 0, got eps={eps!r}, rel_floor={rel_floor!r}")
    b, c, h, w = content_z.shape
    if isinstance(style, Tensor):
        _check_latent(style, "wct style")
        if style.shape[1] != c or style.shape[0] not in (1, b):
            raise ValueError(
                f"wct: style latent {tuple(style.shape)} does not match the content {tuple(content_z.shape)}"
            )
        style_mean, style_cov = latent_mean_cov(style)
    elif isinstance(style, tuple) and len(style) == 2:
        style_mean, style_cov = style
        if style_cov.dim() == 2:
            style_cov = style_cov[None]
        if style_cov.dim() != 3 or style_cov.shape[1:] != (c, c) or style_cov.shape[0] not in (1, b):
            raise ValueError(
                f"wct: style cov must be (C, C) or (B|1, C, C) with C={c}, got {tuple(style_cov.shape)}"
            )
    else:
        raise ValueError(
            f"wct: style must be a latent tensor or a (mean, cov) tuple, got {type(style).__name__}"
        )
    style_mean = _as_stat(style_mean, b, c, "wct style mean")

    content_mean, content_cov = latent_mean_cov(content_z)
    c_floor = (rel_floor * torch.linalg.eigvalsh(content_cov)[:, -1:]).clamp_min(eps)
    s_cov = style_cov.double()
    s_floor = (rel_floor * torch.linalg.eigvalsh(s_cov)[:, -1:]).clamp_min(eps)
    whiten = _sym_power(content_cov, -0.5, c_floor)
    colour = _sym_power(s_cov, 0.5, s_floor)
    transform = (colour @ whiten).to(content_z.dtype)
    flat = (content_z - content_mean).reshape(b, c, h * w)
    out = (transform @ flat).reshape(b, c, h, w) + style_mean.to(content_z.dtype)
    if alpha == 1.0:
        return out
    return torch.lerp(content_z, out, alpha)


class StyleBank(nn.Module):
    """Running latent style statistics per period ("day", "night", ...), for one-pass inference.

    Buffers per period ``p`` (all saved in the state dict): ``p_mean`` (C,), ``p_std`` (C,),
    ``p_cov`` (C, C) and ``p_count`` (number of samples seen). :meth:`update` folds in the
    per-sample statistics of a batch of RGB latents by exponential moving average (the first
    update copies them, so no warm-up bias); inference then needs just one forward and one inverse
    pass per frame, no style image.

    Args:
        num_channels: latent channels ``C``.
        periods: bank names (Python identifiers), default ``("day", "night")``.
        momentum: EMA weight of each new batch, in (0, 1].
        eps: standard-deviation floor (as in :func:`latent_stats`).
    """

    def __init__(
        self,
        num_channels: int,
        periods: Sequence[str] = DEFAULT_PERIODS,
        momentum: float = DEFAULT_MOMENTUM,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels must be an int >= 1, got {num_channels!r}")
        periods = tuple(periods)
        if not periods or len(set(periods)) != len(periods):
            raise ValueError(f"periods must be non-empty and unique, got {periods!r}")
        for name in periods:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"period names must be Python identifiers, got {name!r}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        self.num_channels = num_channels
        self.periods = periods
        self.momentum = float(momentum)
        self.eps = float(eps)
        for name in periods:
            self.register_buffer(f"{name}_mean", torch.zeros(num_channels))
            self.register_buffer(f"{name}_std", torch.ones(num_channels))
            self.register_buffer(f"{name}_cov", torch.eye(num_channels))
            self.register_buffer(f"{name}_count", torch.zeros((), dtype=torch.long))

    def resolve_periods(self, period: Period, batch: int) -> list[str]:
        """One period name per sample: a single name is broadcast, a sequence must have ``batch`` items."""
        names = [period] * batch if isinstance(period, str) else list(period)
        if len(names) != batch:
            raise ValueError(f"got {len(names)} periods for a batch of {batch}: {names!r}")
        for name in names:
            if name not in self.periods:
                raise ValueError(f"unknown period {name!r}; this bank holds {self.periods}")
        return names

    def count(self, period: str) -> int:
        """Samples folded into ``period``'s statistics so far."""
        self.resolve_periods(period, 1)
        return int(getattr(self, f"{period}_count"))

    @torch.no_grad()
    def update(self, z: Tensor, period: Period) -> None:
        """Fold the statistics of RGB latents ``z`` (B, C, h, w) into the banks named by ``period``."""
        _check_latent(z, "StyleBank.update")
        if z.shape[1] != self.num_channels:
            raise ValueError(f"StyleBank.update: expected {self.num_channels} channels, got {z.shape[1]}")
        names = self.resolve_periods(period, z.shape[0])
        z = z.detach()
        mean, std = latent_stats(z, self.eps)
        _, cov = latent_mean_cov(z)
        for name in dict.fromkeys(names):
            idx = torch.tensor([i for i, n in enumerate(names) if n == name], device=z.device)
            batch_mean = mean.index_select(0, idx).mean(0).flatten()
            batch_std = std.index_select(0, idx).mean(0).flatten()
            batch_cov = cov.index_select(0, idx).mean(0)
            count = getattr(self, f"{name}_count")
            weight = 1.0 if int(count) == 0 else self.momentum
            for suffix, value in (("mean", batch_mean), ("std", batch_std), ("cov", batch_cov)):
                buf = getattr(self, f"{name}_{suffix}")
                buf.lerp_(value.to(buf.dtype), weight)
            count.add_(len(idx))

    def _require(self, names: list[str]) -> None:
        for name in dict.fromkeys(names):
            if int(getattr(self, f"{name}_count")) == 0:
                raise ValueError(
                    f"the style bank has no {name!r} statistics yet: train the translator or pass a style"
                )

    def stats(self, period: Period, batch: int = 1) -> tuple[Tensor, Tensor]:
        """``(mean, std)``, each (batch, C, 1, 1), for AdaIN."""
        names = self.resolve_periods(period, batch)
        self._require(names)
        mean = torch.stack([getattr(self, f"{n}_mean") for n in names])[:, :, None, None]
        std = torch.stack([getattr(self, f"{n}_std") for n in names])[:, :, None, None]
        return mean, std

    def mean_cov(self, period: Period, batch: int = 1) -> tuple[Tensor, Tensor]:
        """``(mean (batch, C, 1, 1), cov (batch, C, C))`` for WCT."""
        names = self.resolve_periods(period, batch)
        self._require(names)
        mean = torch.stack([getattr(self, f"{n}_mean") for n in names])[:, :, None, None]
        cov = torch.stack([getattr(self, f"{n}_cov") for n in names])
        return mean, cov


class PeriodBank(Protocol):
    """What :func:`bank_period` reads of a bank: its entry names and how many samples each holds
    (:class:`StyleBank`, and the Gatys translator's bank of Gram matrices)."""

    periods: tuple[str, ...]

    def count(self, period: str) -> int: ...


def bank_period(bank: PeriodBank, period: str, need_stats: bool = True) -> str:
    """The bank entry used for a frame of ``period`` (``day``, ``night``, ``unknown`` ...).

    The frame's own period when the bank has it (and, with ``need_stats``, has statistics for it);
    otherwise ``day`` (FLIR and folders of pairs do not know the period; a translator trained on
    day frames only, the default, has no night statistics), otherwise the first entry with
    statistics.

    Raises:
        ValueError: ``need_stats`` and the bank holds no statistics at all (an untrained translator).
    """
    def usable(name: str) -> bool:
        return name in bank.periods and (not need_stats or bank.count(name) > 0)

    if usable(period):
        return period
    for name in ("day", *bank.periods):
        if usable(name):
            return name
    raise ValueError("the translator's style bank holds no statistics: train it first, or use --style paired|IMAGE")
