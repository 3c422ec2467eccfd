"""AdaIN baseline (Huang & Belongie, ICCV 2017): fixed VGG-19 encoder, AdaIN, trained decoder.

* encoder: VGG-19 up to ``relu4_1`` (:class:`~rgbt.translate.perceptual.VGGEncoder`), frozen; from
  ``loss.vgg_weights`` when given, otherwise randomly initialised fixed features (a warning is
  logged; never a download). Its weights are part of the checkpoint, so random features are the
  same at translate time;
* AdaIN on the ``relu4_1`` map of the thermal frame (replicated to 3 channels) with the channel
  statistics of a style: ``t = std_s * (f_c - mean_c) / std_c + mean_s`` (reused from
  :func:`rgbt.translate.transfer.adain`), blended ``alpha * t + (1 - alpha) * f_c``;
* decoder: mirror of the encoder (reflection-padded 3x3 convs + ReLU, nearest x2 upsampling in
  place of the pools), the only trained part;
* loss: content ``||f(g(t)) - t||^2`` at ``relu4_1`` against the AdaIN target, style: sum over
  ``relu1_1 .. relu4_1`` of the MSE of channel means plus the MSE of channel standard deviations
  of ``g(t)`` and of the style image (here the paired RGB frame).

Style sources at :meth:`AdaINTranslator.translate`: an RGB image (``style=``), or, when ``style`` is
``None``, the day/night running mean of the RGB ``relu4_1`` statistics folded in during training (a
:class:`~rgbt.translate.transfer.StyleBank`, like the flow's). :meth:`AdaINTranslator.mix`
interpolates between several styles (convex weights over their AdaIN targets, as in the paper).

Images are float (B, C, H, W) in [0, 1]; any H, W (padded to a multiple of 8 internally).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rgbt.seeding import build_seeded
from rgbt.translate.base import Translator
from rgbt.translate.perceptual import VGGEncoder
from rgbt.translate.transfer import DEFAULT_MOMENTUM, StyleBank, adain, bank_period, latent_stats

__all__ = ["AdaINDecoder", "AdaINTranslator", "build_adain", "feature_style_loss"]

#: Style given as an RGB image (B|1, 3, Hs, Ws) in [0, 1] or as ``relu4_1`` statistics ``(mean, std)``.
Style = Tensor | tuple[Tensor, Tensor]

#: Downsampling factor of the encoder at ``relu4_1``.
FACTOR = 8


def _conv(c_in: int, c_out: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)]
    return [*layers, nn.ReLU(inplace=True)] if relu else layers


class AdaINDecoder(nn.Module):
    """Mirror of VGG-19 ``conv1_1 .. relu4_1``: (B, 512, H/8, W/8) -> unclamped (B, 3, H, W) image."""

    def __init__(self) -> None:
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.layers = nn.Sequential(
            *_conv(512, 256), up,
            *_conv(256, 256), *_conv(256, 256), *_conv(256, 256), *_conv(256, 128), up,
            *_conv(128, 128), *_conv(128, 64), up,
            *_conv(64, 64), *_conv(64, 3, relu=False),
        )

    def forward(self, t: Tensor) -> Tensor:
        return self.layers(t)


def feature_style_loss(mine: Sequence[Tensor], theirs: Sequence[Tensor]) -> Tensor:
    """Sum over layers of MSE(channel means) + MSE(channel stds); ``theirs`` may have batch 1 (broadcast)."""
    terms = []
    for a, b in zip(mine, theirs):
        mean_a, std_a = latent_stats(a.float())
        mean_b, std_b = latent_stats(b.float())
        terms.append(F.mse_loss(mean_a, mean_b.expand_as(mean_a)) + F.mse_loss(std_a, std_b.expand_as(std_a)))
    return torch.stack(terms).sum()


class AdaINTranslator(Translator):
    """Thermal -> RGB by AdaIN in VGG space and a trained decoder (see the module docstring).

    Args:
        encoder: the frozen VGG-19 encoder up to ``relu4_1``.
        content_weight, style_weight: loss weights (>= 0).
        alpha: default content-style trade-off in [0, 1] at translate time.
        momentum: EMA momentum of the day/night style bank.
    """

    invertible = False
    takes_style = True

    def __init__(self, encoder: VGGEncoder, content_weight: float = 1.0, style_weight: float = 10.0,
                 alpha: float = 1.0, momentum: float = DEFAULT_MOMENTUM) -> None:
        super().__init__()
        for name, value in (("content_weight", content_weight), ("style_weight", style_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.encoder = encoder
        self.decoder = AdaINDecoder()
        self.bank = StyleBank(512, momentum=momentum)
        self.content_weight, self.style_weight, self.alpha = float(content_weight), float(style_weight), float(alpha)

    @staticmethod
    def _pad(image: Tensor) -> Tensor:
        """Replicate-pad to a multiple of 8 and at least 16 px (the decoder's reflection padding needs 2 px)."""
        h, w = image.shape[-2:]
        pad_h, pad_w = max(-h % FACTOR, 2 * FACTOR - h), max(-w % FACTOR, 2 * FACTOR - w)
        return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image

    @staticmethod
    def _content(thermal: Tensor) -> Tensor:
        if thermal.dim() != 4 or thermal.shape[1] != 1 or not thermal.is_floating_point():
            raise ValueError(f"thermal must be a float (B, 1, H, W) tensor, got {thermal.dtype} {tuple(thermal.shape)}")
        return thermal.expand(-1, 3, -1, -1)

    def style_stats(self, style: Style) -> tuple[Tensor, Tensor]:
        """``relu4_1`` ``(mean, std)`` (B|1, 512, 1, 1) of an RGB image (B, 3, H, W) in [0, 1], or the pair as given."""
        if isinstance(style, tuple):
            return style
        if style.dim() != 4 or style.shape[1] != 3:
            raise ValueError(f"style must be an RGB (B, 3, H, W) image, got shape {tuple(style.shape)}")
        return latent_stats(self.encoder(self._pad(style))[-1])

    def _bank_stats(self, period: str | Sequence[str], batch: int) -> tuple[Tensor, Tensor]:
        names = [period] * batch if isinstance(period, str) else list(period)
        return self.bank.stats([bank_period(self.bank, name) for name in names], batch)

    def _decode(self, t: Tensor, size: tuple[int, int]) -> Tensor:
        return self.decoder(t)[..., : size[0], : size[1]]

    def translate(self, thermal: Tensor, style: Tensor | None = None, period: str | Sequence[str] = "day",
                  alpha: float | None = None, method: str = "adain") -> Tensor:
        """Fake RGB (B, 3, H, W) in [0, 1] for thermal (B, 1, H, W) in [0, 1].

        Args:
            style: an RGB image (B|1, 3, Hs, Ws) in [0, 1] lending its statistics (e.g. the paired
                frame); ``None``: the style bank's statistics for ``period`` (falling back to
                ``day``, then any trained period).
            alpha: content-style trade-off in [0, 1]; ``None``: the configured ``model.alpha``.
            method: only ``adain``.
        """
        if method != "adain":
            raise ValueError(f"the AdaIN translator only transfers with method='adain', got {method!r}")
        self._content(thermal)
        stats = self.style_stats(style) if style is not None else self._bank_stats(period, thermal.shape[0])
        return self.mix(thermal, [stats], [1.0], alpha)

    def mix(self, thermal: Tensor, styles: Sequence[Style], weights: Sequence[float],
            alpha: float | None = None) -> Tensor:
        """Style interpolation: decode ``sum_k w_k AdaIN(f_c, s_k)`` (weights >= 0, normalised to sum 1).

        Args:
            thermal: (B, 1, H, W) in [0, 1].
            styles: RGB images (B|1, 3, Hs, Ws) or ``relu4_1`` ``(mean, std)`` pairs.
            weights: one per style.
            alpha: content-style trade-off in [0, 1]; ``None``: the configured one.

        Returns:
            (B, 3, H, W) in [0, 1].
        """
        alpha = self.alpha if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        if not styles or len(styles) != len(weights) or any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"need one weight >= 0 per style with a positive sum, got {list(weights)} for "
                             f"{len(styles)} styles")
        content = self._content(thermal)
        f_c = self.encoder(self._pad(content))[-1]
        total = float(sum(weights))
        t = sum((w / total) * adain(f_c, *self.style_stats(s), alpha=alpha) for s, w in zip(styles, weights))
        return self._decode(t, thermal.shape[-2:]).clamp(0.0, 1.0).contiguous()

    def forward(self, thermal: Tensor, rgb: Tensor, period: str | Sequence[str] = "day", extra_loss: object = None,
                ) -> dict[str, Tensor]:
        """The AdaIN objective with the paired RGB as style: ``{"content", "style", "total"}`` 0-dim tensors.

        In training mode the RGB ``relu4_1`` statistics are folded into the bank under ``period``
        (names the bank lacks, e.g. FLIR's ``unknown``, count as ``day``).
        """
        if extra_loss is not None:
            raise ValueError("the AdaIN translator has its own VGG losses (loss.method_*): set loss.content/style 0")
        content = self._pad(self._content(thermal))
        rgb = self._pad(rgb)
        if rgb.dim() != 4 or rgb.shape[1] != 3 or rgb.shape[0] != thermal.shape[0]:
            raise ValueError(f"thermal {tuple(thermal.shape)} and rgb {tuple(rgb.shape)} are not a batch of pairs")
        with torch.no_grad():
            f_c = self.encoder(content)[-1]
            style_feats = self.encoder(rgb)
            t = adain(f_c, *latent_stats(style_feats[-1]))
        if self.training:
            names = [period] * thermal.shape[0] if isinstance(period, str) else list(period)
            self.bank.update(style_feats[-1], [n if n in self.bank.periods else "day" for n in names])
        out_feats = self.encoder(self.decoder(t))
        parts = {"content": F.mse_loss(out_feats[-1], t), "style": feature_style_loss(out_feats, style_feats)}
        parts["total"] = self.content_weight * parts["content"] + self.style_weight * parts["style"]
        return parts


def build_adain(vgg_weights: str = "", content_weight: float = 1.0, style_weight: float = 10.0, alpha: float = 1.0,
                momentum: float = DEFAULT_MOMENTUM, seed: int | None = None) -> AdaINTranslator:
    """:class:`AdaINTranslator` with the VGG encoder from ``vgg_weights`` (``""``: random fixed features,
    warned) and a decoder in PyTorch's default initialisation; ``seed`` makes random weights
    reproducible without touching torch's global RNG."""
    def make() -> AdaINTranslator:
        return AdaINTranslator(VGGEncoder(vgg_weights or None), content_weight, style_weight, alpha, momentum)

    return build_seeded(make, seed)
