"""Gatys et al. (CVPR 2016) baseline: optimisation-based style transfer, no trained network.

For each batch, :meth:`GatysTranslator.translate` optimises the image itself (from the content, the
thermal frame replicated to 3 channels, or from noise) for ``steps`` iterations of Adam or L-BFGS on

``content_weight * MSE(F_x, F_c) at relu4_2  +  alpha * style_weight * mean_l MSE(G_x^l, G_s^l)``

over the five layers ``relu1_1 .. relu5_1`` of a fixed VGG-19
(:class:`~rgbt.translate.perceptual.VGGEncoder` up to ``relu5_1``: from ``loss.vgg_weights``, else
random fixed features with a logged warning; never a download), where ``G = F F^T / (H W)`` is the
(C, C) Gram matrix of a layer. ``pool="avg"`` replaces the max pools with average pools, as the
paper suggests for smoother results.

The style is the paired RGB frame (``style=``) or, when ``style`` is ``None``, a stored day/night
running mean of RGB Gram matrices. "Training" therefore has nothing to learn: :meth:`forward` only
folds the batch's RGB Gram matrices into that bank and returns a zero ``total`` (from a
zero-element placeholder parameter, so the generic trainer, its optimiser and its checkpoints run
unchanged); ``rgbt train-translator`` thus saves the config and the style bank.

Images are float (B, C, H, W) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rgbt.seeding import build_seeded
from rgbt.translate.base import Translator
from rgbt.translate.perceptual import VGGEncoder
from rgbt.translate.transfer import DEFAULT_MOMENTUM, DEFAULT_PERIODS, bank_period

__all__ = ["STYLE_LAYERS", "CONTENT_LAYER", "GramBank", "GatysTranslator", "build_gatys", "gram"]

#: The paper's five style layers as indices into ``vgg19().features``.
STYLE_LAYERS: dict[str, int] = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
#: The paper's content layer.
CONTENT_LAYER: tuple[str, int] = ("relu4_2", 22)
_CHANNELS = (64, 128, 256, 512, 512)
_INDICES = sorted({*STYLE_LAYERS.values(), CONTENT_LAYER[1]})


def gram(feature: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrices normalised by H * W (so any image size compares)."""
    b, c, h, w = feature.shape
    flat = feature.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


class GramBank(nn.Module):
    """Running per-period (``day``, ``night``) means of the five style layers' Gram matrices.

    Buffers ``{period}_gram{k}`` (C_k, C_k) and ``{period}_count``; the first update copies, later
    ones blend by ``momentum``. Has ``periods`` and ``count`` like the flow's style bank, so
    :func:`rgbt.translate.transfer.bank_period` picks the entry to use.
    """

    def __init__(self, periods: Sequence[str] = DEFAULT_PERIODS, momentum: float = DEFAULT_MOMENTUM) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        self.periods, self.momentum = tuple(periods), float(momentum)
        for name in self.periods:
            for k, c in enumerate(_CHANNELS):
                self.register_buffer(f"{name}_gram{k}", torch.zeros(c, c))
            self.register_buffer(f"{name}_count", torch.zeros((), dtype=torch.long))

    def count(self, period: str) -> int:
        if period not in self.periods:
            raise ValueError(f"unknown period {period!r}; this bank holds {self.periods}")
        return int(getattr(self, f"{period}_count"))

    @torch.no_grad()
    def update(self, grams: Sequence[Tensor], periods: Sequence[str]) -> None:
        """Fold per-sample Gram matrices (five (B, C_k, C_k)) into the banks named by ``periods`` (B names)."""
        for name in dict.fromkeys(periods):
            rows = [i for i, n in enumerate(periods) if n == name]
            weight = 1.0 if self.count(name) == 0 else self.momentum
            for k, g in enumerate(grams):
                buf = getattr(self, f"{name}_gram{k}")
                buf.lerp_(g[rows].mean(0).to(buf.dtype), weight)
            getattr(self, f"{name}_count").add_(len(rows))

    def grams(self, period: str) -> list[Tensor]:
        """The five stored (1, C_k, C_k) Gram matrices of ``period``."""
        if self.count(period) == 0:
            raise ValueError(f"the Gram bank has no {period!r} statistics yet: train the translator or pass a style")
        return [getattr(self, f"{period}_gram{k}")[None] for k in range(len(_CHANNELS))]


class GatysTranslator(Translator):
    """Optimisation-based thermal -> RGB transfer (see the module docstring).

    Args:
        encoder: a frozen VGG-19 encoder reaching ``relu5_1`` (``last >= 29``).
        content_weight, style_weight: the content/style weights (their ratio is what matters).
        steps: optimisation iterations per batch (>= 1).
        init: ``content`` or ``noise`` (seeded, uniform in [0, 1]).
        optimizer: ``adam`` or ``lbfgs``.
        step_size: Adam learning rate / L-BFGS step length (> 0).
        alpha: default scale of the style weight in [0, 1] at translate time.
        momentum: EMA momentum of the Gram bank.
    """

    invertible = False
    takes_style = True

    def __init__(self, encoder: VGGEncoder, content_weight: float = 1.0, style_weight: float = 10.0,
                 steps: int = 100, init: str = "content", optimizer: str = "adam", step_size: float = 0.02,
                 alpha: float = 1.0, momentum: float = DEFAULT_MOMENTUM) -> None:
        super().__init__()
        if len(encoder.features) <= STYLE_LAYERS["relu5_1"]:
            raise ValueError("the Gatys translator needs a VGG encoder up to relu5_1 (VGGEncoder(..., last=29))")
        checks = ((content_weight >= 0, "content_weight", content_weight),
                  (style_weight >= 0, "style_weight", style_weight),
                  (isinstance(steps, int) and steps >= 1, "steps", steps),
                  (init in ("content", "noise"), "init", init),
                  (optimizer in ("adam", "lbfgs"), "optimizer", optimizer),
                  (step_size > 0, "step_size", step_size), (0.0 <= alpha <= 1.0, "alpha", alpha))
        for ok, name, value in checks:
            if not ok:
                raise ValueError(f"gatys: bad {name} {value!r}")
        self.encoder = encoder
        self.bank = GramBank(momentum=momentum)
        # Zero elements: the generic trainer needs a non-empty parameter list, Gatys learns nothing.
        self.placeholder = nn.Parameter(torch.zeros(0))
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.steps, self.init, self.optimizer, self.step_size = steps, init, optimizer, float(step_size)
        self.alpha = float(alpha)

    def _features(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(relu4_2 map, five Gram matrices)`` of (B, 3, H, W) in [0, 1]."""
        taps = dict(zip(_INDICES, self.encoder.taps(image, _INDICES)))
        return taps[CONTENT_LAYER[1]], [gram(taps[i]) for i in STYLE_LAYERS.values()]

    def style_grams(self, style: Tensor) -> list[Tensor]:
        """Five (B|1, C_k, C_k) Gram matrices of an RGB style image (B|1, 3, H, W) in [0, 1]."""
        if style.dim() != 4 or style.shape[1] != 3:
            raise ValueError(f"style must be an RGB (B, 3, H, W) image, got shape {tuple(style.shape)}")
        return self._features(style)[1]

    def objective(self, image: Tensor, content_feat: Tensor, grams: Sequence[Tensor],
                  alpha: float = 1.0) -> dict[str, Tensor]:
        """``{"content", "style", "total"}`` 0-dim tensors for the image being optimised (B, 3, H, W)."""
        feat, mine = self._features(image)
        content = F.mse_loss(feat, content_feat)
        style = torch.stack([F.mse_loss(g, t.expand_as(g)) for g, t in zip(mine, grams)]).mean()
        return {"content": content, "style": style,
                "total": self.content_weight * content + alpha * self.style_weight * style}

    def stylise(self, thermal: Tensor, grams: Sequence[Tensor], alpha: float | None = None,
                steps: int | None = None) -> tuple[Tensor, list[float]]:
        """Optimise the image: ``(result (B, 3, H, W) in [0, 1], objective before each iteration)``.

        Runs with gradients even under ``torch.inference_mode`` / ``no_grad`` (the inputs are
        cloned out of inference mode); the encoder stays frozen.
        """
        alpha = self.alpha if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        steps = self.steps if steps is None else int(steps)
        if thermal.dim() != 4 or thermal.shape[1] != 1 or not thermal.is_floating_point():
            raise ValueError(f"thermal must be a float (B, 1, H, W) tensor, got {thermal.dtype} {tuple(thermal.shape)}")
        history: list[float] = []
        with torch.inference_mode(False), torch.enable_grad():
            content = thermal.clone().expand(-1, 3, -1, -1).contiguous()
            grams = [g.clone() for g in grams]
            with torch.no_grad():
                content_feat = self._features(content)[0]
            if self.init == "content":
                start = content.clone()
            else:
                gen = torch.Generator(device=content.device).manual_seed(0)
                start = torch.rand(content.shape, generator=gen, device=content.device, dtype=content.dtype)
            image = start.requires_grad_(True)

            def closure() -> Tensor:
                optimiser.zero_grad()
                total = self.objective(image, content_feat, grams, alpha)["total"]
                total.backward()
                history.append(float(total.detach()))
                return total

            if self.optimizer == "adam":
                optimiser: torch.optim.Optimizer = torch.optim.Adam([image], lr=self.step_size)
                for _ in range(steps):
                    optimiser.step(closure)
                    with torch.no_grad():
                        image.clamp_(0.0, 1.0)
            else:
                optimiser = torch.optim.LBFGS([image], lr=self.step_size, max_iter=steps, max_eval=steps,
                                              line_search_fn="strong_wolfe")
                optimiser.step(closure)
            result = image.detach().clamp(0.0, 1.0)
        return result.clone(), history

    def translate(self, thermal: Tensor, style: Tensor | None = None, period: str | Sequence[str] = "day",
                  alpha: float | None = None, method: str = "adain") -> Tensor:
        """Fake RGB (B, 3, H, W) in [0, 1]: :meth:`stylise` for ``steps`` iterations.

        Args:
            style: an RGB image (B|1, 3, Hs, Ws) in [0, 1] (e.g. the paired frame); ``None``: the Gram
                bank's ``period`` entry (falling back to ``day``, then any trained period); a
                sequence of periods uses the first (one optimisation per batch).
            alpha: scale of the style weight in [0, 1]; ``None``: the configured ``model.alpha``.
            method: ignored (Gram matching has no AdaIN/WCT choice).
        """
        if style is not None:
            with torch.inference_mode(False), torch.no_grad():
                grams = self.style_grams(style.clone())
        else:
            name = period if isinstance(period, str) else period[0]
            grams = self.bank.grams(bank_period(self.bank, name))
        return self.stylise(thermal, grams, alpha)[0].contiguous()

    def forward(self, thermal: Tensor, rgb: Tensor, period: str | Sequence[str] = "day", extra_loss: object = None,
                ) -> dict[str, Tensor]:
        """"Training": fold the RGB Gram matrices into the bank (training mode) and return ``{"total": 0}``."""
        if extra_loss is not None:
            raise ValueError("the Gatys translator has its own VGG losses (loss.method_*): set loss.content/style 0")
        if rgb.dim() != 4 or rgb.shape[1] != 3 or rgb.shape[0] != thermal.shape[0]:
            raise ValueError(f"thermal {tuple(thermal.shape)} and rgb {tuple(rgb.shape)} are not a batch of pairs")
        if self.training:
            with torch.no_grad():
                grams = self.style_grams(rgb)
            names = [period] * rgb.shape[0] if isinstance(period, str) else list(period)
            self.bank.update(grams, [n if n in self.bank.periods else "day" for n in names])
        return {"total": self.placeholder.sum()}


def build_gatys(vgg_weights: str = "", content_weight: float = 1.0, style_weight: float = 10.0, steps: int = 100,
                init: str = "content", optimizer: str = "adam", step_size: float = 0.02, pool: str = "max",
                alpha: float = 1.0, momentum: float = DEFAULT_MOMENTUM, seed: int | None = None) -> GatysTranslator:
    """:class:`GatysTranslator` with a VGG-19 up to ``relu5_1`` from ``vgg_weights`` (``""``: random
    fixed features, warned), max or average (``pool="avg"``) pooling; ``seed`` makes random
    features reproducible without touching torch's global RNG."""
    if pool not in ("max", "avg"):
        raise ValueError(f"gatys: pool must be max or avg, got {pool!r}")

    def make() -> GatysTranslator:
        encoder = VGGEncoder(vgg_weights or None, last=STYLE_LAYERS["relu5_1"])
        if pool == "avg":
            for index, layer in enumerate(encoder.features):
                if isinstance(layer, nn.MaxPool2d):
                    encoder.features[index] = nn.AvgPool2d(kernel_size=2, stride=2)
        return GatysTranslator(encoder, content_weight, style_weight, steps, init, optimizer, step_size, alpha,
                               momentum)

    return build_seeded(make, seed)
