"""Which translator a config names: a plain ``name -> builder`` dict (:data:`TRANSLATORS`).

Every translator the engine trains and runs is an ``nn.Module`` with

* ``translate(thermal, style=None, period="day", alpha=1.0, method="adain") -> fake RGB``:
  thermal (B, 1, H, W) float in [0, 1], any H, W -> (B, 3, H, W) in [0, 1] (methods without a
  style input ignore the style arguments);
* ``forward(thermal, rgb, period, extra_loss[, discriminator=...]) -> {..., "total": 0-dim tensor}``:
  the training objective on a paired batch (the module itself is called so DDP can wrap it);
* ``invertible: bool``: whether it has an exact inverse (the round-trip and rounds metrics of
  ``rgbt translate-eval`` need one; others report them as null).

A builder takes the model and loss configs and an optional seed and returns ``(translator,
adversary)``: the adversary is the discriminator a GAN trains against (its own optimiser, not part
of the translator's checkpointed weights) or ``None``. Only the flow translator has a style bank,
ActNorm initialisation and latent style transfer; the engine checks for :class:`FlowTranslator`
where it uses those.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from rgbt.config import TranslatorLossConfig, TranslatorModelConfig
from rgbt.translate.adain_net import build_adain_from_config
from rgbt.translate.gatys import build_gatys_from_config
from rgbt.translate.munit import build_munit_from_config
from rgbt.translate.pix2pixhd import build_pix2pixhd
from rgbt.translate.translator import METHODS, build_translator

__all__ = ["TRANSLATORS", "Builder", "build_flow", "build_pix2pixhd_from_config"]

#: ``builder(model_cfg, loss_cfg, seed) -> (translator, adversary or None)``
Builder = Callable[[TranslatorModelConfig, TranslatorLossConfig, "int | None"], "tuple[nn.Module, nn.Module | None]"]


def build_flow(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
               seed: int | None = None) -> tuple[nn.Module, None]:
    """The :class:`~rgbt.translate.translator.FlowTranslator` a config describes (no adversary).

    ``loss.tv`` is the weight of the gradient / checkerboard term; the VGG terms are not part of
    the model (see :mod:`rgbt.translate.perceptual`).

    Raises:
        ValueError: an unknown ``model.transfer``, ``alpha`` outside [0, 1], or a bad size.
    """
    if model_cfg.transfer not in METHODS:
        raise ValueError(f"model.transfer must be one of {METHODS}, got {model_cfg.transfer!r}")
    if not 0.0 <= model_cfg.alpha <= 1.0:
        raise ValueError(f"model.alpha must be in [0, 1], got {model_cfg.alpha!r}")
    translator = build_translator(
        in_channels=3,
        n_blocks=model_cfg.n_blocks,
        n_flows=model_cfg.n_flows,
        hidden=model_cfg.hidden,
        affine=model_cfg.affine,
        momentum=model_cfg.bank_momentum,
        w_l1=loss_cfg.l1,
        w_ssim=loss_cfg.ssim,
        w_grad=loss_cfg.tv,
        w_nll=loss_cfg.nll,
        use_ms_ssim=loss_cfg.ms_ssim,
        seed=seed,
    )
    return translator, None


def build_pix2pixhd_from_config(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
                                seed: int | None = None) -> tuple[nn.Module, nn.Module]:
    """The pix2pixHD generator and its multi-scale discriminator (``hidden``, ``n_downsample``,
    ``n_residual``, ``local_enhancers``, ``local_residual``, ``disc_*``; loss weights ``gan``,
    ``feat_match``, ``l1``; the flow's ``ssim``, ``tv`` and ``nll`` weights do not apply)."""
    return build_pix2pixhd(
        hidden=model_cfg.hidden,
        n_downsample=model_cfg.n_downsample,
        n_residual=model_cfg.n_residual,
        local_enhancers=model_cfg.local_enhancers,
        local_residual=model_cfg.local_residual,
        disc_hidden=model_cfg.disc_hidden,
        disc_layers=model_cfg.disc_layers,
        disc_scales=model_cfg.disc_scales,
        w_gan=loss_cfg.gan,
        w_feat=loss_cfg.feat_match,
        w_l1=loss_cfg.l1,
        seed=seed,
    )


#: ``model.model`` -> builder.
TRANSLATORS: dict[str, Builder] = {
    "flow": build_flow,
    "pix2pixhd": build_pix2pixhd_from_config,
    "munit": build_munit_from_config,
    "adain": build_adain_from_config,
    "gatys": build_gatys_from_config,
}
