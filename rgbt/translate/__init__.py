"""Flow-based, content-preserving thermal-to-RGB translation (ArtFlow-style Glow projection).

:mod:`~rgbt.translate.flow` holds the invertible layers and :class:`Glow`,
:mod:`~rgbt.translate.transfer` the latent AdaIN/WCT and the day/night :class:`StyleBank`,
:mod:`~rgbt.translate.losses` the training objective and :mod:`~rgbt.translate.translator` the
:class:`FlowTranslator` that wires them together (built by :func:`build_translator`).
Baselines the flow is compared against live beside it (:mod:`~rgbt.translate.pix2pixhd`,
:mod:`~rgbt.translate.adain_net`, :mod:`~rgbt.translate.gatys`, :mod:`~rgbt.translate.munit`);
every one of them is a :class:`~rgbt.translate.base.Translator`. Nothing here reads a config:
:mod:`rgbt.engine.translator_builder` maps ``model.model`` names and config values to builders.
"""

from rgbt.translate.base import Translator
from rgbt.translate.flow import Glow
from rgbt.translate.transfer import StyleBank, adain, latent_stats, wct
from rgbt.translate.translator import FlowTranslator, build_translator

__all__ = ["Translator", "Glow", "StyleBank", "adain", "latent_stats", "wct", "FlowTranslator", "build_translator"]
