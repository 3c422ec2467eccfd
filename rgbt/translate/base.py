"""The interface every thermal-to-RGB translator implements: :class:`Translator`.

A translator is an ``nn.Module`` (its weights go into checkpoints, it moves between devices and
between train and eval mode, DistributedDataParallel wraps it for training) with

* :meth:`Translator.translate`: inference, thermal frames in, fake RGB frames out;
* :meth:`Translator.forward`: the training step's objective on a batch;
* two capabilities, declared as class attributes by every translator and read with
  :func:`is_invertible` and :func:`takes_style`.

GAN translators (pix2pixHD, MUNIT) derive from :class:`AdversarialTranslator`, which adds the
discriminator's half of the training step. Whatever else a method offers is its own and callers
check for it where they use it: the flow translator's latent style transfer and ActNorm
(:class:`~rgbt.translate.translator.FlowTranslator`), AdaIN's ``mix`` of several styles, MUNIT's
``random_styles``, pix2pixHD's ``load_start_weights``.

Implementations: :class:`~rgbt.translate.translator.FlowTranslator`,
:class:`~rgbt.translate.pix2pixhd.Pix2PixHDTranslator`, :class:`~rgbt.translate.adain_net.AdaINTranslator`,
:class:`~rgbt.translate.gatys.GatysTranslator`, :class:`~rgbt.translate.munit.MunitTranslator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from rgbt.translate.transfer import Period

__all__ = ["Translator", "AdversarialTranslator", "ExtraLoss", "is_invertible", "takes_style"]

#: An extra training objective ``fn(pred, content, rgb) -> {component: value, ..., "total": weighted sum}``
#: on the unclamped translation, the flow input and the paired RGB (e.g. the VGG losses of
#: :class:`rgbt.translate.perceptual.PerceptualLoss`).
ExtraLoss = Callable[[Tensor, Tensor, Tensor], dict[str, Tensor]]


class Translator(nn.Module, ABC):
    """Thermal (B, 1, H, W) in [0, 1] -> fake RGB (B, 3, H, W) in [0, 1]; see the module docstring.

    Subclasses set both capability flags:

    * ``invertible``: the translation has an exact inverse. Such a translator exposes it as
      ``flow`` (a :class:`~rgbt.translate.flow.Glow` with ``encode`` / ``decode``) and
      ``thermal_to_input`` (the thermal frame as the flow sees it), which the round-trip and
      rounds metrics of ``rgbt translate-eval`` use; the others report those metrics as null.
    * ``takes_style``: :meth:`translate` uses an RGB ``style=`` image; without it the translator
      has one fixed mapping (``rgbt translate`` then accepts only ``--style bank``).

    A translator has at least one parameter: the training loop builds an optimiser over them.
    """

    invertible: ClassVar[bool]
    takes_style: ClassVar[bool]

    @abstractmethod
    def translate(self, thermal: Tensor, style: Any = None, period: Period = "day", alpha: float | None = 1.0,
                  method: str = "adain") -> Tensor:
        """Fake RGB for a batch of thermal frames (run under ``torch.inference_mode()`` in eval mode).

        Every translator takes every argument, so callers pass the same ones, and ignores those
        it has no use for (pix2pixHD all but ``thermal``).

        Args:
            thermal: (B, 1, H, W) float in [0, 1], any H and W (padded and cropped back internally).
            style: ``None``: the translator's own default style (its style bank's entry for
                ``period``, MUNIT's seeded style code, pix2pixHD's one mapping). With
                ``takes_style``: an RGB image (B|1, 3, H', W') in [0, 1] of any size, whose global
                appearance is used (alignment with the thermal frame does not matter); a method
                may accept more (the flow: latent statistics; MUNIT: style codes).
            period: the style-bank entry when ``style`` is ``None``: one name or one per frame.
                AdaIN and Gatys map a frame's period to an entry themselves
                (:func:`~rgbt.translate.transfer.bank_period`); the flow needs an entry with
                statistics, so callers map it first.
            alpha: style strength in [0, 1]; AdaIN and Gatys read ``None`` as their configured one.
            method: ``adain`` or ``wct``, the flow's latent transfer (AdaIN accepts ``adain``).

        Returns:
            (B, 3, H, W) float in [0, 1] on ``thermal``'s device.
        """

    @abstractmethod
    def forward(self, thermal: Tensor, rgb: Tensor, period: Period = "day",
                extra_loss: ExtraLoss | None = None) -> dict[str, Tensor]:
        """The training objective on a batch; the training loop calls the module itself, which is
        what DistributedDataParallel wraps.

        Args:
            thermal: (B, 1, H, W) float in [0, 1] (crops).
            rgb: (B, 3, H, W) float in [0, 1], the RGB crops of the same frames (MUNIT uses them as
                unpaired samples of the RGB domain).
            period: the frames' periods, one name or one per frame; translators with a style bank
                fold the batch's RGB statistics into it in training mode.
            extra_loss: an optional further objective (:data:`ExtraLoss`); only the flow translator
                takes one, the others raise ``ValueError`` when given one.

        Returns:
            0-dim tensors: ``total``, the loss to minimise, and the components it is made of
            (logged under their names).
        """


class AdversarialTranslator(Translator):
    """A GAN translator: :meth:`forward` is the generator's objective against a ``discriminator``.

    The discriminator is a separate module (the training loop's ``adversary``, with its own
    optimiser, not part of the translator's weights); each training step first updates it on
    :meth:`discriminator_loss`, then the translator on :meth:`forward`. Subclasses define
    ``method`` (a name for messages), :meth:`generator_loss` and :meth:`discriminator_loss`.
    """

    method = "GAN"

    @abstractmethod
    def generator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: nn.Module) -> dict[str, Tensor]:
        """The generator's objective: 0-dim tensors with ``total`` (inputs as in :meth:`forward`)."""

    @abstractmethod
    def discriminator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: nn.Module) -> dict[str, Tensor]:
        """The discriminator's objective on real frames and (detached) fakes: 0-dim tensors
        ``d_real``, ``d_fake`` and ``total``."""

    def forward(self, thermal: Tensor, rgb: Tensor, period: object = "day", extra_loss: object = None,
                discriminator: nn.Module | None = None) -> dict[str, Tensor]:
        """:meth:`generator_loss` (see :meth:`Translator.forward`).

        ``period`` is accepted and ignored (no style bank); VGG ``extra_loss`` terms are not part of
        these baselines and must be ``None``.
        """
        if discriminator is None:
            raise ValueError(f"the {self.method} generator objective needs its discriminator")
        if extra_loss is not None:
            raise ValueError(f"the {self.method} translator takes no VGG content / style loss "
                             "(set loss.content/style 0)")
        return self.generator_loss(thermal, rgb, discriminator)


def _declared(translator: nn.Module, capability: str) -> bool:
    # A wrapper (DistributedDataParallel) or a bare module has no flags: refusing it beats
    # guessing False, which would silently skip the metrics or the style input.
    if not isinstance(translator, Translator):
        raise TypeError(f"{type(translator).__name__} is not a rgbt.translate.base.Translator (unwrap it first)")
    return bool(getattr(translator, capability))


def is_invertible(translator: nn.Module) -> bool:
    """Whether ``translator`` has an exact inverse (its ``invertible`` flag, see :class:`Translator`)."""
    return _declared(translator, "invertible")


def takes_style(translator: nn.Module) -> bool:
    """Whether ``translator.translate`` uses an RGB ``style=`` image (its ``takes_style`` flag)."""
    return _declared(translator, "takes_style")
