"""Content-preserving thermal-to-RGB translation: Glow projection + latent style statistics.

``x = thermal`` replicated to 3 channels -> ``z = F(x)`` -> AdaIN/WCT to an RGB style in latent
space -> ``fake_rgb = F^-1(z')``. ``F`` is exactly invertible, so no content can be lost; only
global per-channel latent statistics change. Styles come from a paired or unpaired (even
misaligned) RGB frame, explicit statistics, or the running day/night :class:`StyleBank`.

Training (:meth:`FlowTranslator.loss`) encodes the thermal frame and its paired RGB frame in one
batch, moves the thermal latent to the RGB latent's statistics, decodes, and compares with the RGB
frame (L1 + 1 - SSIM + gradient term, optional NLL); the RGB latent statistics feed the bank.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rgbt.seeding import build_seeded
from rgbt.translate.base import ExtraLoss, Translator
from rgbt.translate.flow import (
    DEFAULT_AFFINE,
    DEFAULT_CHANNELS_LAST,
    DEFAULT_HIDDEN,
    DEFAULT_N_BLOCKS,
    DEFAULT_N_FLOWS,
    DEFAULT_SCALE_BOUND,
    DEFAULT_TILE_BYTES,
    Glow,
)
from rgbt.translate.losses import (
    DEFAULT_MS_SSIM,
    DEFAULT_W_GRAD,
    DEFAULT_W_L1,
    DEFAULT_W_NLL,
    DEFAULT_W_SSIM,
    translation_loss,
)
from rgbt.translate.transfer import (
    DEFAULT_MOMENTUM,
    DEFAULT_PERIODS,
    Period,
    StyleBank,
    adain,
    latent_mean_cov,
    latent_stats,
    wct,
)

__all__ = ["FlowTranslator", "build_translator", "METHODS"]

#: Latent style-transfer methods accepted by :meth:`FlowTranslator.translate`.
METHODS = ("adain", "wct")

Style = Tensor | tuple[Tensor, Tensor] | None


class FlowTranslator(Translator):
    """Thermal (B, 1, H, W) in [0, 1] -> fake RGB (B, C, H, W) in [0, 1] through an invertible flow.

    A :class:`~rgbt.translate.base.Translator`, invertible and taking a style.

    Args:
        flow: the projection flow; its ``in_channels`` is the RGB channel count ``C``.
        bank: running latent statistics with ``flow.latent_channels`` channels.
        w_l1, w_ssim, w_grad, w_nll: weights of the training objective
            (see :func:`rgbt.translate.losses.translation_loss`).
        use_ms_ssim: MS-SSIM instead of SSIM in the objective (large crops only).
    """

    #: the translation has an exact inverse (round-trip and rounds tests apply)
    invertible = True
    takes_style = True

    def __init__(
        self,
        flow: Glow,
        bank: StyleBank,
        w_l1: float = DEFAULT_W_L1,
        w_ssim: float = DEFAULT_W_SSIM,
        w_grad: float = DEFAULT_W_GRAD,
        w_nll: float = DEFAULT_W_NLL,
        use_ms_ssim: bool = DEFAULT_MS_SSIM,
    ) -> None:
        super().__init__()
        if bank.num_channels != flow.latent_channels:
            raise ValueError(
                f"the style bank has {bank.num_channels} channels, the flow latent {flow.latent_channels}"
            )
        self.flow = flow
        self.bank = bank
        self.loss_weights = {"w_l1": w_l1, "w_ssim": w_ssim, "w_grad": w_grad, "w_nll": w_nll}
        self.use_ms_ssim = use_ms_ssim

    @property
    def channels(self) -> int:
        """RGB channels ``C`` (the flow's input channels)."""
        return self.flow.in_channels

    def thermal_to_input(self, thermal: Tensor) -> Tensor:
        """(B, 1, H, W) thermal in [0, 1] -> (B, C, H, W) flow input (the channel replicated)."""
        if thermal.dim() != 4 or thermal.shape[1] != 1:
            raise ValueError(f"thermal must be (B, 1, H, W), got shape {tuple(thermal.shape)}")
        if not thermal.is_floating_point():
            raise ValueError(f"thermal must be a float tensor in [0, 1], got dtype {thermal.dtype}")
        return thermal.expand(-1, self.channels, -1, -1)

    def _check_rgb(self, rgb: Tensor, name: str) -> None:
        if rgb.dim() != 4 or rgb.shape[1] != self.channels:
            raise ValueError(f"{name} must be (B, {self.channels}, H, W), got shape {tuple(rgb.shape)}")
        if not rgb.is_floating_point():
            raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {rgb.dtype}")

    @torch.no_grad()
    def initialize(self, thermal: Tensor, rgb: Tensor) -> None:
        """Data-dependent ActNorm init on the mixed batch ``[thermal x C, rgb]`` (same H, W)."""
        x = self.thermal_to_input(thermal)
        self._check_rgb(rgb, "rgb")
        if rgb.shape[2:] != x.shape[2:]:
            raise ValueError(f"thermal {tuple(thermal.shape)} and rgb {tuple(rgb.shape)} differ in size")
        self.flow.initialize(torch.cat([x, rgb.to(x.dtype)]))

    def stylize(
        self,
        z: Tensor,
        style: Style = None,
        period: Period = "day",
        alpha: float = 1.0,
        method: str = "adain",
    ) -> Tensor:
        """Move latent ``z`` (B, C', h, w) to a style; see :meth:`translate` for the arguments."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        batch = z.shape[0]
        style_z: Tensor | None = None
        if isinstance(style, Tensor):
            self._check_rgb(style, "style")
            if style.shape[0] not in (1, batch):
                raise ValueError(f"style batch {style.shape[0]} must be 1 or {batch}")
            style_z = self.flow.encode(style.to(z.dtype))[0]
        elif style is not None and not (isinstance(style, tuple) and len(style) == 2):
            raise ValueError(
                f"style must be None, an RGB tensor or a 2-tuple of statistics, got {type(style).__name__}"
            )
        if method == "adain":
            if style_z is not None:
                mean, std = latent_stats(style_z)
            elif style is None:
                mean, std = self.bank.stats(period, batch)
            else:
                mean, std = style
            return adain(z, mean, std, alpha=alpha)
        if style_z is not None:
            return wct(z, latent_mean_cov(style_z), alpha=alpha)
        if style is None:
            return wct(z, self.bank.mean_cov(period, batch), alpha=alpha)
        return wct(z, style, alpha=alpha)

    def translate(
        self,
        thermal: Tensor,
        style: Style = None,
        period: Period = "day",
        alpha: float = 1.0,
        method: str = "adain",
    ) -> Tensor:
        """Translate thermal frames to fake RGB.

        Run it under ``torch.inference_mode()`` in eval mode for the fast path (fused, cached 1x1
        convolutions and banded coupling networks).

        Args:
            thermal: (B, 1, H, W) float in [0, 1], any H and W (padded and cropped internally).
            style: ``None`` (use the style bank for ``period``), an RGB tensor (B|1, C, H', W') in
                [0, 1] of any size (its global latent statistics are used; alignment does not
                matter), or statistics: ``(mean, std)`` for AdaIN, ``(mean, cov)`` for WCT, in the
                shapes :func:`~rgbt.translate.transfer.adain` / :func:`~rgbt.translate.transfer.wct`
                accept.
            period: bank name(s) when ``style`` is ``None``: one name or one per sample.
            alpha: stylisation strength in [0, 1] (0 returns the thermal input, replicated).
            method: ``"adain"`` or ``"wct"``.

        Returns:
            (B, C, H, W) fake RGB in [0, 1] (clamped only here, at the very end).
        """
        x = self.thermal_to_input(thermal)
        z, _, size = self.flow.encode(x)
        z = self.stylize(z, style, period=period, alpha=alpha, method=method)
        return self.flow.decode(z, size).clamp(0.0, 1.0).contiguous()

    def forward(
        self, thermal: Tensor, rgb: Tensor, period: Period = "day", extra_loss: ExtraLoss | None = None
    ) -> dict[str, Tensor]:
        """:meth:`loss`: training calls the module itself, which is what DistributedDataParallel wraps."""
        return self.loss(thermal, rgb, period, extra_loss)

    def loss(
        self, thermal: Tensor, rgb: Tensor, period: Period = "day", extra_loss: ExtraLoss | None = None
    ) -> dict[str, Tensor]:
        """The training objective for a paired batch; also feeds the style bank in training mode.

        Args:
            thermal: (B, 1, H, W) in [0, 1].
            rgb: (B, C, H, W) in [0, 1], the paired RGB frames (same size).
            period: "day"/"night" (or the bank's names), one or one per sample.
            extra_loss: an optional further objective (see :data:`~rgbt.translate.base.ExtraLoss`); its components join
                the returned dict and its ``total`` is added to ``total``.

        Returns:
            The dict of :func:`~rgbt.translate.losses.translation_loss` (``l1``, ``ssim``, ``grad``,
            ``nll``, ``total``; 0-dim tensors). ``nll`` (bits/dim) covers both encoded batches,
            thermal and RGB; it enters ``total`` only with ``w_nll > 0``.
        """
        x = self.thermal_to_input(thermal)
        self._check_rgb(rgb, "rgb")
        if rgb.shape[0] != x.shape[0] or rgb.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"thermal {tuple(thermal.shape)} and rgb {tuple(rgb.shape)} are not a paired batch"
            )
        periods = self.bank.resolve_periods(period, x.shape[0])
        # One flow pass over both modalities: half the kernel launches, and an uninitialised
        # flow gets its ActNorm init from the mixed batch.
        z, logdet, size = self.flow.encode(torch.cat([x, rgb.to(x.dtype)]))
        z_thermal, z_rgb = z.chunk(2)
        mean, std = latent_stats(z_rgb)
        pred = self.flow.decode(adain(z_thermal, mean, std), size)
        if self.training:
            self.bank.update(z_rgb, periods)
        parts = translation_loss(
            pred, rgb, z=z, logdet=logdet, use_ms_ssim=self.use_ms_ssim, **self.loss_weights
        )
        if extra_loss is not None:
            extra = extra_loss(pred, x, rgb.to(x.dtype))
            parts.update({name: value for name, value in extra.items() if name != "total"})
            parts["total"] = parts["total"] + extra["total"]
        return parts


def build_translator(
    in_channels: int = 3,
    n_blocks: int = DEFAULT_N_BLOCKS,
    n_flows: int = DEFAULT_N_FLOWS,
    hidden: int = DEFAULT_HIDDEN,
    affine: bool = DEFAULT_AFFINE,
    scale_bound: float = DEFAULT_SCALE_BOUND,
    periods: Sequence[str] = DEFAULT_PERIODS,
    momentum: float = DEFAULT_MOMENTUM,
    w_l1: float = DEFAULT_W_L1,
    w_ssim: float = DEFAULT_W_SSIM,
    w_grad: float = DEFAULT_W_GRAD,
    w_nll: float = DEFAULT_W_NLL,
    use_ms_ssim: bool = DEFAULT_MS_SSIM,
    channels_last: bool = DEFAULT_CHANNELS_LAST,
    tile_bytes: int | None = DEFAULT_TILE_BYTES,
    seed: int | None = None,
) -> FlowTranslator:
    """The default translator: Glow (2 blocks x 8 steps, hidden 64, additive) + day/night bank.

    ``seed`` makes the whole initialisation reproducible without touching torch's global RNG
    state; ``None`` draws from the global RNG. See :class:`~rgbt.translate.flow.Glow`,
    :class:`~rgbt.translate.transfer.StyleBank` and :class:`FlowTranslator` for the arguments.
    """
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")

    def make() -> FlowTranslator:
        flow = Glow(
            in_channels=in_channels,
            n_blocks=n_blocks,
            n_flows=n_flows,
            hidden=hidden,
            affine=affine,
            scale_bound=scale_bound,
            channels_last=channels_last,
            tile_bytes=tile_bytes,
        )
        bank = StyleBank(flow.latent_channels, periods=periods, momentum=momentum)
        return FlowTranslator(
            flow, bank, w_l1=w_l1, w_ssim=w_ssim, w_grad=w_grad, w_nll=w_nll, use_ms_ssim=use_ms_ssim
        )

    return build_seeded(make, seed)
