"""Translators from configs and from checkpoints: the one place the translator config meets the models.

``model.model`` names the method; :data:`TRANSLATORS` is the plain ``name -> builder`` dict. A
builder reads the model and loss configs, passes plain values to the method's own builder in
:mod:`rgbt.translate` and returns ``(translator, adversary)``: a
:class:`~rgbt.translate.base.Translator` and the discriminator a GAN trains against (its own
optimiser, not part of the translator's checkpointed weights) or ``None``. Same values and seed:
same initial weights.

:func:`load_translator` rebuilds the translator a ``rgbt train-translator`` checkpoint was trained
with: its stored config fixes the architecture, its weights fill it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rgbt.atomic import file_sha256
from rgbt.config import TranslatorConfig, TranslatorLossConfig, TranslatorModelConfig
from rgbt.engine.checkpoint import load_checkpoint
from rgbt.engine.run import resolve_device, stored_config
from rgbt.translate.adain_net import build_adain
from rgbt.translate.base import Translator
from rgbt.translate.gatys import build_gatys
from rgbt.translate.munit import build_munit
from rgbt.translate.pix2pixhd import build_pix2pixhd
from rgbt.translate.translator import METHODS, build_translator

__all__ = [
    "TRANSLATORS",
    "Builder",
    "LoadedTranslator",
    "build_adain_from_config",
    "build_flow_from_config",
    "build_gatys_from_config",
    "build_munit_from_config",
    "build_pix2pixhd_from_config",
    "build_translator_from_config",
    "build_translator_pair",
    "load_translator",
]

#: ``builder(model_cfg, loss_cfg, seed) -> (translator, adversary or None)``
Builder = Callable[[TranslatorModelConfig, TranslatorLossConfig, "int | None"], "tuple[Translator, nn.Module | None]"]


# --------------------------------------------------------------------------------------------
# one builder per method
# --------------------------------------------------------------------------------------------


def build_flow_from_config(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
                           seed: int | None = None) -> tuple[Translator, None]:
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
                                seed: int | None = None) -> tuple[Translator, nn.Module]:
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


def build_munit_from_config(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
                            seed: int | None = None) -> tuple[Translator, nn.Module]:
    """MUNIT's two autoencoders and per-domain discriminators: ``hidden``, ``n_downsample``, ``n_residual``,
    ``style_dim``, ``mlp_dim``, ``disc_*``; loss weights ``gan``, ``recon_image``, ``recon_content``,
    ``recon_style`` (the flow's and pix2pixHD's other weights do not apply)."""
    return build_munit(
        hidden=model_cfg.hidden,
        n_downsample=model_cfg.n_downsample,
        n_residual=model_cfg.n_residual,
        style_dim=model_cfg.style_dim,
        mlp_dim=model_cfg.mlp_dim,
        disc_hidden=model_cfg.disc_hidden,
        disc_layers=model_cfg.disc_layers,
        disc_scales=model_cfg.disc_scales,
        w_gan=loss_cfg.gan,
        w_image=loss_cfg.recon_image,
        w_content=loss_cfg.recon_content,
        w_style=loss_cfg.recon_style,
        seed=seed,
    )


def build_adain_from_config(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
                            seed: int | None = None) -> tuple[Translator, None]:
    """The AdaIN translator: ``loss.vgg_weights``, ``loss.method_content``, ``loss.method_style``,
    ``model.alpha``, ``model.bank_momentum``; no adversary."""
    translator = build_adain(loss_cfg.vgg_weights, loss_cfg.method_content, loss_cfg.method_style, model_cfg.alpha,
                             model_cfg.bank_momentum, seed)
    return translator, None


def build_gatys_from_config(model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig,
                            seed: int | None = None) -> tuple[Translator, None]:
    """The Gatys translator: ``loss.vgg_weights``, ``loss.method_content``, ``loss.method_style``,
    ``model.steps``, ``init``, ``optimizer``, ``step_size``, ``pool``, ``alpha``, ``bank_momentum``;
    no adversary."""
    translator = build_gatys(loss_cfg.vgg_weights, loss_cfg.method_content, loss_cfg.method_style, model_cfg.steps,
                             model_cfg.init, model_cfg.optimizer, model_cfg.step_size, model_cfg.pool,
                             model_cfg.alpha, model_cfg.bank_momentum, seed)
    return translator, None


#: ``model.model`` -> builder.
TRANSLATORS: dict[str, Builder] = {
    "flow": build_flow_from_config,
    "pix2pixhd": build_pix2pixhd_from_config,
    "munit": build_munit_from_config,
    "adain": build_adain_from_config,
    "gatys": build_gatys_from_config,
}


def build_translator_pair(
    model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig, seed: int | None = None
) -> tuple[Translator, nn.Module | None]:
    """``(translator, adversary or None)`` for ``model.model`` (:data:`TRANSLATORS`).

    Same values and seed: same initial weights. The adversary is the discriminator a GAN method
    trains against; inference needs only the translator.

    Raises:
        ValueError: an unknown ``model.model``, or a bad value for that method.
    """
    builder = TRANSLATORS.get(model_cfg.model)
    if builder is None:
        raise ValueError(f"model.model must be one of {sorted(TRANSLATORS)}, got {model_cfg.model!r}")
    return builder(model_cfg, loss_cfg, seed)


def build_translator_from_config(
    model_cfg: TranslatorModelConfig, loss_cfg: TranslatorLossConfig, seed: int | None = None
) -> Translator:
    """The translator a config describes (see :func:`build_translator_pair`), without its adversary.

    Raises:
        ValueError: an unknown ``model.model`` or ``model.transfer``, ``alpha`` outside [0, 1], or
            a bad size.
    """
    return build_translator_pair(model_cfg, loss_cfg, seed)[0]


# --------------------------------------------------------------------------------------------
# from a checkpoint
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedTranslator:
    """A translator rebuilt from a checkpoint, with what it came from."""

    translator: Translator  #: in eval mode, on ``device`` (a FlowTranslator for ``model: flow``)
    config: TranslatorConfig  #: the config it was trained with
    checkpoint: Path
    sha256: str  #: of the checkpoint file
    device: torch.device
    step: int | None  #: training step of the checkpoint (None for a bare state dict)


def load_translator(checkpoint: str | os.PathLike[str], device: str | torch.device = "auto") -> LoadedTranslator:
    """Rebuild the translator of a ``rgbt train-translator`` checkpoint (``last.pt`` / ``best.pt``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a translator checkpoint (no translator config, a detector checkpoint, which
            is named as one, or mismatching weights).
    """
    path = Path(checkpoint)
    device = resolve_device(device) if isinstance(device, str) else device
    state = load_checkpoint(path, map_location="cpu")
    if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("config"), dict):
        raise ValueError(f"{path}: not a translator checkpoint written by `rgbt train-translator` (no model/config)")
    config = stored_config(TranslatorConfig, path, state)
    translator = build_translator_from_config(config.model, config.loss)
    try:
        translator.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the translator its config describes ({err})") from None
    translator.to(device).eval()
    return LoadedTranslator(translator, config, path, file_sha256(path), device, state.get("step"))
