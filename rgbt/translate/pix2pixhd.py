"""pix2pixHD-style paired thermal-to-RGB translation (Wang et al., CVPR 2018), a baseline to the flow.

A conditional GAN for aligned pairs:

* :class:`GlobalGenerator`: 7x7 convolution front end, ``n_downsample`` stride-2 convolutions,
  ``n_residual`` residual blocks, as many transposed convolutions back (its ``features``), then a 7x7
  convolution to RGB (its ``head``); instance norm, ReLU, reflection padding, ``tanh`` output.
* :class:`LocalEnhancer` (optional, ``local_enhancers >= 1``): the paper's coarse-to-fine generator.
  A global generator with ``hidden * 2 ** n_local`` channels runs on the input average-pooled
  ``n_local`` times, without its RGB head; each local enhancer stage, inner to outer, adds its own
  front end's features of the input at its (twice finer) scale to the features from inside, refines
  the sum with residual blocks and upsamples it; the outermost stage ends with the 7x7 RGB head.
  Training follows the paper's schedule: train a global-only generator at half resolution, then
  start the enhanced one from it (:meth:`Pix2PixHDTranslator.load_start_weights`) and train both
  jointly at full resolution.
* :class:`MultiscaleDiscriminator`: ``scales`` PatchGAN discriminators (:class:`PatchDiscriminator`)
  on the (thermal, RGB) pair at successive half resolutions, each returning its intermediate
  features.
* objective (:meth:`Pix2PixHDTranslator.generator_loss`, :meth:`~Pix2PixHDTranslator.discriminator_loss`):
  least-squares GAN losses, the discriminator feature-matching loss (L1 between the features of the
  real and the fake pair, every layer but the last, weighted ``4 / (layers + 1)`` per layer and
  ``1 / scales`` per discriminator, as in the paper) and an L1 term against the paired RGB.

Unlike the flow translator, the generator has no inverse and no style input: the fake RGB is a
deterministic function of the thermal frame. Generator and discriminator are separate modules: the
translator (generator) is what checkpoints and ``rgbt translate`` need; the discriminator is only a
training companion with its own optimiser (:class:`rgbt.engine.trainer.Trainer`'s ``adversary``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rgbt.seeding import build_seeded
from rgbt.translate.base import AdversarialTranslator

__all__ = [
    "GlobalGenerator",
    "LocalEnhancer",
    "PatchDiscriminator",
    "MultiscaleDiscriminator",
    "Pix2PixHDTranslator",
    "build_pix2pixhd",
    "lsgan_loss",
    "feature_matching_loss",
]

log = logging.getLogger(__name__)


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with reflection padding and instance norm; (B, C, H, W) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _check_multiple(x: Tensor, factor: int) -> None:
    """Raise unless a generator input's H and W are multiples of its downsampling ``factor``."""
    if x.shape[-2] % factor or x.shape[-1] % factor:
        raise ValueError(f"generator input {tuple(x.shape)}: H and W must be multiples of {factor}")


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1].

    ``H`` and ``W`` must be multiples of ``factor = 2 ** n_downsample`` and at least ``min_size``
    (:class:`Pix2PixHDTranslator` pads).

    Two parts: :attr:`features` (front end, downsampling, residual blocks, upsampling: (B, in_channels,
    H, W) -> (B, feature_channels, H, W), ``feature_channels = min(hidden, max_channels)`` unless
    ``n_downsample`` is 0) and :attr:`head` (reflection pad, 7x7 convolution, ``tanh``). Both are views
    of the one ``net`` sequence, so checkpoints keep their ``net.<i>`` parameter names.
    ``output_head=False`` builds the features only (a :class:`LocalEnhancer`'s inner generator), and
    ``forward`` then returns the features.

    Args:
        in_channels, out_channels: image channels in and out.
        hidden: channels after the front end (doubled by every downsampling, at most ``max_channels``).
        n_downsample: stride-2 convolutions (and transposed convolutions back).
        n_residual: residual blocks at the lowest resolution.
        output_head: build the RGB head.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, hidden: int = 64, n_downsample: int = 3,
                 n_residual: int = 9, max_channels: int = 1024, output_head: bool = True) -> None:
        super().__init__()
        if min(in_channels, out_channels, hidden) < 1 or n_downsample < 0 or n_residual < 0:
            raise ValueError(f"bad generator size: in {in_channels}, out {out_channels}, hidden {hidden}, "
                             f"n_downsample {n_downsample}, n_residual {n_residual}")
        self.factor = 2**n_downsample
        # The 7x7 reflection padding needs 4 pixels at full resolution, the residual blocks' 2 at the lowest.
        self.min_size = max(2 * self.factor, 4)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, hidden, 7),
                                   nn.InstanceNorm2d(hidden), nn.ReLU(True)]
        channels = hidden
        for _ in range(n_downsample):
            wider = min(channels * 2, max_channels)
            layers += [nn.Conv2d(channels, wider, 3, stride=2, padding=1), nn.InstanceNorm2d(wider), nn.ReLU(True)]
            channels = wider
        layers += [ResidualBlock(channels) for _ in range(n_residual)]
        for k in range(n_downsample):
            narrower = min(hidden * 2 ** (n_downsample - k - 1), max_channels)
            layers += [nn.ConvTranspose2d(channels, narrower, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(narrower), nn.ReLU(True)]
            channels = narrower
        self.feature_channels = channels
        self._n_features = len(layers)
        if output_head:
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @property
    def features(self) -> nn.Sequential:
        """(B, in_channels, H, W) -> (B, feature_channels, H, W): everything before the RGB head."""
        return self.net[: self._n_features]

    @property
    def head(self) -> nn.Sequential | None:
        """(B, feature_channels, H, W) -> (B, out_channels, H, W) in [-1, 1]; ``None`` without one."""
        return self.net[self._n_features:] if len(self.net) > self._n_features else None

    def forward(self, x: Tensor) -> Tensor:
        _check_multiple(x, self.factor)
        return self.net(x)


class _EnhancerStage(nn.Module):
    """One local enhancer stage at a scale twice finer than the features it refines.

    ``front``: (B, in_channels, H, W) -> (B, 2 * hidden, H / 2, W / 2) (7x7 convolution to ``hidden``,
    stride-2 convolution); ``back``: (B, 2 * hidden, H / 2, W / 2) -> (B, hidden, H, W) (``n_residual``
    residual blocks, stride-2 transposed convolution).
    """

    def __init__(self, in_channels: int, hidden: int, n_residual: int) -> None:
        super().__init__()
        self.front = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, hidden, 7), nn.InstanceNorm2d(hidden), nn.ReLU(True),
            nn.Conv2d(hidden, 2 * hidden, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * hidden), nn.ReLU(True),
        )
        self.back = nn.Sequential(
            *(ResidualBlock(2 * hidden) for _ in range(n_residual)),
            nn.ConvTranspose2d(2 * hidden, hidden, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(hidden), nn.ReLU(True),
        )

    def forward(self, image: Tensor, inner: Tensor) -> Tensor:
        """image (B, in_channels, H, W), inner features (B, 2 * hidden, H / 2, W / 2) -> (B, hidden, H, W)."""
        return self.back(self.front(image) + inner)


class LocalEnhancer(nn.Module):
    """pix2pixHD's coarse-to-fine generator: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1].

    A :class:`GlobalGenerator` with ``hidden * 2 ** n_local`` channels and no RGB head
    (:attr:`global_generator`) sees the input average-pooled ``n_local`` times (3x3, stride 2). Then
    ``n_local`` :class:`_EnhancerStage` s (:attr:`stages`, innermost first; stage ``k`` of
    ``n_local``, counted from the inside, has ``hidden * 2 ** (n_local - k)`` channels, so each
    stage's output has the channels the next stage out expects) each add their own features of the
    input at their scale to the features from inside and upsample the sum; :attr:`head` (reflection
    pad, 7x7 convolution, ``tanh``) maps the outermost stage's (B, hidden, H, W) to the output.

    ``H`` and ``W`` must be multiples of ``factor = 2 ** (n_downsample + n_local)`` and at least
    ``min_size`` (:class:`Pix2PixHDTranslator` pads).

    Args:
        in_channels, out_channels: image channels in and out.
        hidden: channels of the outermost stage (the global generator has ``hidden * 2 ** n_local``).
        n_local: local enhancer stages (>= 1; the paper uses 1).
        local_residual: residual blocks of each stage.
        n_downsample, n_residual, max_channels: the global generator's (see :class:`GlobalGenerator`).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, hidden: int = 32, n_local: int = 1,
                 local_residual: int = 3, n_downsample: int = 3, n_residual: int = 9,
                 max_channels: int = 1024) -> None:
        super().__init__()
        if n_local < 1 or local_residual < 0 or hidden < 1:
            raise ValueError(f"bad local enhancer size: hidden {hidden}, n_local {n_local} (>= 1), "
                             f"local_residual {local_residual} (>= 0)")
        self.n_local = n_local
        self.global_hidden = hidden * 2**n_local
        self.global_generator = GlobalGenerator(in_channels, out_channels, self.global_hidden, n_downsample,
                                                n_residual, max_channels, output_head=False)
        if self.global_generator.feature_channels != self.global_hidden:
            raise ValueError(f"the global generator's {self.global_hidden} channels (hidden {hidden} * 2 ** {n_local}) "
                             f"exceed max_channels {max_channels}")
        self.stages = nn.ModuleList(_EnhancerStage(in_channels, hidden * 2 ** (n_local - k), local_residual)
                                    for k in range(1, n_local + 1))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(hidden, out_channels, 7), nn.Tanh())
        self.factor = self.global_generator.factor * 2**n_local
        # The global generator runs at 1 / 2 ** n_local of the input size.
        self.min_size = self.global_generator.min_size * 2**n_local

    def forward(self, x: Tensor) -> Tensor:
        _check_multiple(x, self.factor)
        pyramid = [x]
        for _ in range(self.n_local):
            pyramid.append(F.avg_pool2d(pyramid[-1], 3, stride=2, padding=1, count_include_pad=False))
        features = self.global_generator(pyramid[-1])
        # Innermost stage (the coarsest of the finer scales) first.
        for stage, image in zip(self.stages, reversed(pyramid[:-1])):
            features = stage(image, features)
        return self.head(features)

    def load_global_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a global-only :class:`GlobalGenerator`'s state dict (``net.<i>`` keys) into :attr:`global_generator`.

        Its RGB head is dropped (the enhancer has its own); the stages and head stay as they are.

        Raises:
            ValueError: the state dict is not a global generator of this one's size (it must have been
                built with ``hidden * 2 ** n_local`` channels and the same ``n_downsample`` and
                ``n_residual``).
        """
        own = self.global_generator.state_dict()
        n_features = len(self.global_generator.net)

        def in_head(key: str) -> bool:
            index = key.split(".")[1] if key.startswith("net.") else ""
            return index.isdigit() and int(index) >= n_features

        body = {key: value for key, value in state_dict.items() if not in_head(key)}
        fits = set(body) == set(own) and all(body[key].shape == own[key].shape for key in own)
        if not fits:
            missing, unexpected = sorted(set(own) - set(body)), sorted(set(body) - set(own))
            shapes = sorted(key for key in set(own) & set(body) if body[key].shape != own[key].shape)
            raise ValueError(f"not a global generator with hidden {self.global_hidden} (= hidden * 2 ** "
                             f"{self.n_local}) and this one's n_downsample and n_residual: missing {missing[:4]}, "
                             f"unexpected {unexpected[:4]}, other shapes {shapes[:4]}")
        self.global_generator.load_state_dict(body)


class PatchDiscriminator(nn.Module):
    """One PatchGAN discriminator: (B, C, H, W) -> its layer outputs, the last a (B, 1, h, w) realness map.

    4x4 convolutions: ``layers`` of stride 2 (channels doubled up to 512, instance norm after the
    first), one of stride 1, then the 1-channel output (no sigmoid: least-squares GAN).
    """

    def __init__(self, in_channels: int, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        if in_channels < 1 or hidden < 1 or layers < 1:
            raise ValueError(f"bad discriminator size: in {in_channels}, hidden {hidden}, layers {layers}")
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, hidden, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        channels = hidden
        for k in range(1, layers + 1):
            wider = min(channels * 2, 512)
            stride = 2 if k < layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(channels, wider, 4, stride, 2), nn.InstanceNorm2d(wider),
                                        nn.LeakyReLU(0.2, True)))
            channels = wider
        blocks.append(nn.Conv2d(channels, 1, 4, 1, 2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``scales`` :class:`PatchDiscriminator` s on the input at full, half, quarter ... resolution.

    Returns:
        per scale (finest first), the list of that discriminator's layer outputs.
    """

    def __init__(self, in_channels: int, hidden: int = 64, layers: int = 3, scales: int = 2) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"the discriminator needs at least one scale, got {scales}")
        self.discriminators = nn.ModuleList(PatchDiscriminator(in_channels, hidden, layers) for _ in range(scales))
        self.layers = layers

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs = []
        for k, discriminator in enumerate(self.discriminators):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


def lsgan_loss(outputs: Sequence[Sequence[Tensor]], real: bool) -> Tensor:
    """Least-squares GAN loss: mean over scales of ``mean((D(x) - target)^2)``, target 1 (real) or 0."""
    target = 1.0 if real else 0.0
    return torch.stack([F.mse_loss(scale[-1], torch.full_like(scale[-1], target)) for scale in outputs]).mean()


def feature_matching_loss(fake: Sequence[Sequence[Tensor]], real: Sequence[Sequence[Tensor]]) -> Tensor:
    """pix2pixHD's feature matching: L1 between fake and (detached) real intermediate features.

    Every layer but the realness map, weighted ``4 / (layers + 1)`` per layer and ``1 / scales``
    per discriminator as in the paper.
    """
    total = fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake, real):
        weight = 4.0 / len(fake_scale) / len(fake)
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + weight * F.l1_loss(f, r.detach())
    return total


class Pix2PixHDTranslator(AdversarialTranslator):
    """Thermal (B, 1, H, W) in [0, 1] -> fake RGB (B, 3, H, W) in [0, 1] with a pix2pixHD generator.

    Args:
        generator: a :class:`GlobalGenerator` or a :class:`LocalEnhancer` from 1 to 3 channels.
        w_gan, w_feat, w_l1: weights of the LSGAN, feature-matching and L1 terms of the generator.
    """

    #: No inverse: ``rgbt translate-eval`` reports the round-trip and rounds metrics as null.
    invertible = False
    #: A paired conditional GAN: one fixed mapping, no style input.
    takes_style = False
    method = "pix2pixHD"

    def __init__(self, generator: GlobalGenerator | LocalEnhancer, w_gan: float = 1.0, w_feat: float = 10.0,
                 w_l1: float = 10.0) -> None:
        super().__init__()
        self.generator = generator
        self.loss_weights = {"gan": w_gan, "feat": w_feat, "l1": w_l1}

    def load_start_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Start from ``state_dict`` (``model.weights``): this translator's own, or, the paper's coarse-to-fine
        schedule, a global-only pix2pixHD translator's when this one has local enhancers.

        The global-only generator must have been trained with ``hidden * 2 ** local_enhancers`` channels
        (and the same ``n_downsample``, ``n_residual``); it becomes the enhancer's global generator (its
        RGB head is dropped) and the local enhancer stays freshly initialised.

        Raises:
            ValueError: the state dict fits neither way.
        """
        global_only = bool(state_dict) and all(key.startswith("generator.net.") for key in state_dict)
        if isinstance(self.generator, LocalEnhancer) and global_only:
            self.generator.load_global_weights({key.removeprefix("generator."): v for key, v in state_dict.items()})
            log.info("pix2pixHD: loaded a global-only generator into the global generator of the local enhancer "
                     "(%d stage(s), freshly initialised)", self.generator.n_local)
            return
        try:
            self.load_state_dict(state_dict)
        except RuntimeError as err:
            raise ValueError(str(err)) from None

    def generate(self, thermal: Tensor) -> Tensor:
        """(B, 1, H, W) in [0, 1], any H, W -> unclamped (B, 3, H, W) in [0, 1] (tanh range mapped)."""
        if thermal.dim() != 4 or thermal.shape[1] != 1 or not thermal.is_floating_point():
            raise ValueError(f"thermal must be a float (B, 1, H, W) tensor, got {thermal.dtype} {tuple(thermal.shape)}")
        h, w = thermal.shape[-2:]
        factor, least = self.generator.factor, self.generator.min_size
        # Up to a multiple of the downsampling factor, and at least the generator's smallest input
        # (a multiple of the factor: the reflection paddings need a few pixels at every scale).
        pad_h, pad_w = max(-h % factor, least - h), max(-w % factor, least - w)
        # Replicate, not reflect: reflection fails when the padding exceeds a tiny input.
        x = F.pad(thermal * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else thermal * 2 - 1
        return (self.generator(x)[..., :h, :w] + 1.0) / 2.0

    def translate(self, thermal: Tensor, style: object = None, period: object = "day", alpha: float = 1.0,
                  method: str = "adain") -> Tensor:
        """Fake RGB (B, 3, H, W) in [0, 1]. ``style``, ``period``, ``alpha`` and ``method`` exist for the
        :class:`~rgbt.translate.base.Translator` signature and are ignored: a paired conditional GAN
        takes no style."""
        return self.generate(thermal).clamp(0.0, 1.0).contiguous()

    @staticmethod
    def _pair(thermal: Tensor, rgb: Tensor) -> Tensor:
        """The conditional discriminator's input: (B, 4, H, W) ``[thermal, rgb]`` in [-1, 1]."""
        return torch.cat([thermal, rgb], dim=1) * 2.0 - 1.0

    @staticmethod
    def _check_paired_batch(thermal: Tensor, rgb: Tensor) -> None:
        """Raise unless ``rgb`` is (B, 3, H, W) with the batch size and frame size of ``thermal``."""
        paired = rgb.shape[0] == thermal.shape[0] and rgb.shape[2:] == thermal.shape[2:]
        if rgb.dim() != 4 or rgb.shape[1] != 3 or not paired:
            raise ValueError(f"thermal {tuple(thermal.shape)} and rgb {tuple(rgb.shape)} are not a paired batch")

    def generator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: nn.Module) -> dict[str, Tensor]:
        """The generator's objective on a paired batch (thermal (B, 1, H, W), rgb (B, 3, H, W), [0, 1]).

        Returns:
            0-dim tensors ``gan`` (LSGAN, fake pair labelled real), ``feat`` (feature matching),
            ``l1`` and their weighted sum ``total``.
        """
        self._check_paired_batch(thermal, rgb)
        fake = self.generate(thermal)
        fake_out = discriminator(self._pair(thermal, fake))
        with torch.no_grad():
            real_out = discriminator(self._pair(thermal, rgb))
        parts = {"gan": lsgan_loss(fake_out, True), "feat": feature_matching_loss(fake_out, real_out),
                 "l1": F.l1_loss(fake, rgb)}
        parts["total"] = sum(self.loss_weights[name] * value for name, value in parts.items())
        return parts

    def discriminator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: nn.Module) -> dict[str, Tensor]:
        """The discriminator's LSGAN objective: real pairs to 1, pairs with a (detached) fake to 0.

        Returns:
            0-dim tensors ``d_real``, ``d_fake`` and ``total = (d_real + d_fake) / 2``.
        """
        self._check_paired_batch(thermal, rgb)
        with torch.no_grad():
            fake = self.generate(thermal)
        # One discriminator pass over both halves (one DDP forward per step).
        outputs = discriminator(torch.cat([self._pair(thermal, rgb), self._pair(thermal, fake)]))
        real_out = [[f.chunk(2)[0] for f in scale] for scale in outputs]
        fake_out = [[f.chunk(2)[1] for f in scale] for scale in outputs]
        parts = {"d_real": lsgan_loss(real_out, True), "d_fake": lsgan_loss(fake_out, False)}
        parts["total"] = 0.5 * (parts["d_real"] + parts["d_fake"])
        return parts


def build_pix2pixhd(
    hidden: int = 64,
    n_downsample: int = 3,
    n_residual: int = 9,
    disc_hidden: int = 64,
    disc_layers: int = 3,
    disc_scales: int = 2,
    w_gan: float = 1.0,
    w_feat: float = 10.0,
    w_l1: float = 10.0,
    local_enhancers: int = 0,
    local_residual: int = 3,
    seed: int | None = None,
) -> tuple[Pix2PixHDTranslator, MultiscaleDiscriminator]:
    """The translator (generator) and its multi-scale discriminator on (thermal, RGB) pairs.

    ``local_enhancers`` 0 builds a :class:`GlobalGenerator` with ``hidden`` channels; ``N >= 1`` a
    :class:`LocalEnhancer` with ``N`` stages of ``local_residual`` residual blocks, whose outermost
    stage has ``hidden`` channels and whose global generator has ``hidden * 2 ** N``.

    Weights are drawn from N(0, 0.02) as in pix2pixHD; ``seed`` makes them reproducible without
    touching torch's global RNG (``None``: the global RNG).

    Raises:
        ValueError: a negative ``local_enhancers`` or ``local_residual``, or a bad size.
    """
    if local_enhancers < 0 or local_residual < 0:
        raise ValueError(f"local_enhancers and local_residual must be >= 0, got {local_enhancers}, {local_residual}")

    def make() -> tuple[Pix2PixHDTranslator, MultiscaleDiscriminator]:
        generator: GlobalGenerator | LocalEnhancer
        if local_enhancers:
            generator = LocalEnhancer(1, 3, hidden, local_enhancers, local_residual, n_downsample, n_residual)
        else:
            generator = GlobalGenerator(1, 3, hidden, n_downsample, n_residual)
        translator = Pix2PixHDTranslator(generator, w_gan, w_feat, w_l1)
        discriminator = MultiscaleDiscriminator(4, disc_hidden, disc_layers, disc_scales)
        for module in (*translator.modules(), *discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)
        return translator, discriminator

    return build_seeded(make, seed)
