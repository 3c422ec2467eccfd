"""MUNIT-style unpaired, multimodal thermal-to-RGB translation (Huang et al., ECCV 2018), a baseline to the flow.

Two domains, thermal (1 channel) and RGB (3 channels), each with its own :class:`DomainAutoencoder`:

* :class:`ContentEncoder`: 7x7 convolution, ``n_downsample`` stride-2 4x4 convolutions, ``n_residual``
  residual blocks, instance norm throughout: the domain-shared content code (B, C, H / 2^n, W / 2^n);
* :class:`StyleEncoder`: 7x7 convolution and ``n_downsample + 2`` stride-2 convolutions *without*
  instance norm (it would remove the very statistics that carry style), global average pooling and a
  1x1 convolution to the ``style_dim``-d style code (8 in the paper);
* :class:`Decoder`: ``n_residual`` residual blocks with adaptive instance norm whose per-channel scales and
  biases come from a 3-layer MLP on the style code, then nearest-neighbour upsampling + 5x5 convolution
  with layer norm per level, 7x7 convolution to the image (``tanh``).

:class:`MunitDiscriminators` holds one unconditional multi-scale PatchGAN discriminator per domain
(:class:`~rgbt.translate.pix2pixhd.MultiscaleDiscriminator`), trained with the least-squares GAN loss.

The generator objective (:meth:`MunitTranslator.generator_loss`) is the paper's: GAN terms on both
cross-domain translations (made with style codes drawn from N(0, I)), the within-domain image
reconstruction (``recon_image``, 10 in the paper) and the cross-domain latent reconstructions of the
content (``recon_content``, 1) and of the drawn style code (``recon_style``, 1).

Unpaired training: the thermal and RGB frames of a batch are used only as samples of their domains.
No term compares a thermal frame's translation with the RGB frame at the same batch index (the cross
translations use random style codes, the reconstructions stay within one image), so misaligned or
unrelated RGB frames (FLIR) train the model exactly as aligned ones would.

Inference (:meth:`MunitTranslator.translate`) takes a style: ``None`` draws one code from N(0, I) with a
generator seeded by ``style_seed`` (the same code, hence the same output, on every call; one fixed
mapping for ``rgbt translate``), an (N, style_dim) tensor gives explicit codes (several codes: several
fake RGBs of one thermal frame), an RGB image batch gives its encoded style. There is no inverse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rgbt.seeding import build_seeded
from rgbt.translate.base import AdversarialTranslator
from rgbt.translate.pix2pixhd import MultiscaleDiscriminator, ResidualBlock, lsgan_loss

__all__ = [
    "ContentEncoder",
    "StyleEncoder",
    "Decoder",
    "DomainAutoencoder",
    "MunitDiscriminators",
    "MunitTranslator",
    "build_munit",
]


def _pad_to(x: Tensor, factor: int, minimum: int) -> Tensor:
    """Replicate-pad (B, C, H, W) at the bottom / right to multiples of ``factor`` of at least ``minimum``.

    Replicate, not reflect: reflection fails when the padding exceeds a tiny input.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = max(-h % factor, minimum - h), max(-w % factor, minimum - w)
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x


class ContentEncoder(nn.Module):
    """(B, in_channels, H, W) in [-1, 1], H and W multiples of ``2 ** n_downsample`` -> content (B, C, h, w).

    ``C = hidden * 2 ** n_downsample``, ``h = H / 2 ** n_downsample``; instance norm everywhere.
    """

    def __init__(self, in_channels: int, hidden: int, n_downsample: int, n_residual: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, hidden, 7), nn.InstanceNorm2d(hidden),
                                   nn.ReLU(True)]
        channels = hidden
        for _ in range(n_downsample):
            layers += [nn.Conv2d(channels, channels * 2, 4, 2, 1), nn.InstanceNorm2d(channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(n_residual)]
        self.net = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class StyleEncoder(nn.Module):
    """(B, in_channels, H, W) in [-1, 1], H and W >= ``2 ** n_downsample`` -> style code (B, style_dim).

    No instance norm: the first two stride-2 convolutions double the channels, the rest keep them.
    """

    def __init__(self, in_channels: int, hidden: int, n_downsample: int, style_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, hidden, 7), nn.ReLU(True)]
        channels = hidden
        for k in range(n_downsample):
            wider = channels * 2 if k < 2 else channels
            layers += [nn.Conv2d(channels, wider, 4, 2, 1), nn.ReLU(True)]
            channels = wider
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, style_dim, 1)]
        self.net = nn.Sequential(*layers)
        self.factor = 2**n_downsample

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_pad_to(x, 1, self.factor)).flatten(1)


class AdaptiveInstanceNorm(nn.Module):
    """Instance norm whose per-sample, per-channel scale and bias are set by the decoder's MLP."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.channels = channels
        self.params: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.params is None:
            raise RuntimeError("AdaIN parameters not set: call the Decoder, not its blocks")
        scale, bias = self.params
        return self.norm(x) * scale[:, :, None, None] + bias[:, :, None, None]


class AdaINResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with adaptive instance norm; (B, C, h, w) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList([AdaptiveInstanceNorm(channels), AdaptiveInstanceNorm(channels)])
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), self.norms[0], nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), self.norms[1],
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Decoder(nn.Module):
    """(content (B, C, h, w), style (B, style_dim)) -> image (B, out_channels, h * 2^n, w * 2^n) in [-1, 1].

    The MLP (``style_dim -> mlp_dim -> mlp_dim -> 2 * C`` per AdaIN layer) predicts every AdaIN layer's
    scale and bias from the style code.
    """

    def __init__(self, channels: int, out_channels: int, n_downsample: int, n_residual: int, style_dim: int,
                 mlp_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(AdaINResidualBlock(channels) for _ in range(n_residual))
        self.adain = [norm for block in self.blocks for norm in block.norms]
        self.mlp = nn.Sequential(nn.Linear(style_dim, mlp_dim), nn.ReLU(True), nn.Linear(mlp_dim, mlp_dim),
                                 nn.ReLU(True), nn.Linear(mlp_dim, 2 * channels * len(self.adain)))
        layers: list[nn.Module] = []
        for _ in range(n_downsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(2),
                       nn.Conv2d(channels, channels // 2, 5), nn.GroupNorm(1, channels // 2), nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        params = self.mlp(style).chunk(2 * len(self.adain), dim=1)
        for k, norm in enumerate(self.adain):
            # 1 + scale: an untrained MLP (outputs near 0) starts at plain instance norm rather than at zero.
            norm.params = (1.0 + params[2 * k], params[2 * k + 1])
        x = content
        for block in self.blocks:
            x = block(x)
        for norm in self.adain:
            norm.params = None
        return self.up(x)


class DomainAutoencoder(nn.Module):
    """One domain's content encoder, style encoder and decoder (``channels``: 1 thermal, 3 RGB)."""

    def __init__(self, channels: int, hidden: int, n_downsample: int, n_residual: int, style_dim: int,
                 mlp_dim: int) -> None:
        super().__init__()
        self.content = ContentEncoder(channels, hidden, n_downsample, n_residual)
        self.style = StyleEncoder(channels, hidden, n_downsample + 2, style_dim)
        self.decoder = Decoder(self.content.channels, channels, n_downsample, n_residual, style_dim, mlp_dim)


class MunitDiscriminators(nn.Module):
    """Unconditional multi-scale PatchGAN discriminators, one per domain (``thermal``: 1 channel, ``rgb``: 3)."""

    def __init__(self, hidden: int = 64, layers: int = 4, scales: int = 3) -> None:
        super().__init__()
        self.thermal = MultiscaleDiscriminator(1, hidden, layers, scales)
        self.rgb = MultiscaleDiscriminator(3, hidden, layers, scales)

    def forward(self, thermal: Tensor, rgb: Tensor) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
        """Both discriminators' per-scale layer outputs for images in [-1, 1]."""
        return self.thermal(thermal), self.rgb(rgb)


class MunitTranslator(AdversarialTranslator):
    """Thermal (B, 1, H, W) in [0, 1] -> fake RGB (B, 3, H, W) in [0, 1], unpaired and multimodal.

    Args:
        hidden, n_downsample, n_residual: both autoencoders' sizes (see :class:`DomainAutoencoder`).
        style_dim: length of a style code; mlp_dim: width of the decoder's AdaIN MLP.
        w_gan, w_image, w_content, w_style: weights of the GAN, image, content and style
            reconstruction terms (paper: 1, 10, 1, 1).
        style_seed: seed of the style code ``translate(style=None)`` draws.
    """

    #: No inverse: ``rgbt translate-eval`` reports the round-trip and rounds metrics as null.
    invertible = False
    #: An RGB image lends its encoded style code.
    takes_style = True
    method = "MUNIT"

    def __init__(self, hidden: int = 64, n_downsample: int = 2, n_residual: int = 4, style_dim: int = 8,
                 mlp_dim: int = 256, w_gan: float = 1.0, w_image: float = 10.0, w_content: float = 1.0,
                 w_style: float = 1.0, style_seed: int = 0) -> None:
        super().__init__()
        if min(hidden, style_dim, mlp_dim) < 1 or n_downsample < 0 or n_residual < 1:
            raise ValueError(f"bad MUNIT size: hidden {hidden}, n_downsample {n_downsample}, n_residual {n_residual}"
                             f" (>= 1: the style enters through AdaIN residual blocks), style_dim {style_dim}, "
                             f"mlp_dim {mlp_dim}")
        self.thermal = DomainAutoencoder(1, hidden, n_downsample, n_residual, style_dim, mlp_dim)
        self.rgb = DomainAutoencoder(3, hidden, n_downsample, n_residual, style_dim, mlp_dim)
        self.style_dim = style_dim
        self.style_seed = style_seed
        self.factor = 2**n_downsample
        self.loss_weights = {"gan": w_gan, "image": w_image, "content": w_content, "style": w_style}

    # -- codes and images -------------------------------------------------------------------------

    def _prepare(self, image: Tensor, channels: int, name: str) -> Tensor:
        """Check a float (B, channels, H, W) batch in [0, 1], map it to [-1, 1] and pad it for the encoders:
        multiples of the downsampling factor, at least 2 pixels at the lowest resolution (the residual
        blocks' reflection padding needs them)."""
        if image.dim() != 4 or image.shape[1] != channels or not image.is_floating_point():
            raise ValueError(f"{name} must be a float (B, {channels}, H, W) tensor, got {image.dtype} "
                             f"{tuple(image.shape)}")
        return _pad_to(image * 2.0 - 1.0, self.factor, 2 * self.factor)

    def random_styles(self, n: int, seed: int | None = None, device: torch.device | str = "cpu") -> Tensor:
        """``n`` style codes (n, style_dim) from N(0, I); a ``seed`` makes them reproducible without
        touching torch's global RNG (``None``: the global RNG)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.style_dim, generator=gen).to(device)

    def encode_style(self, rgb: Tensor) -> Tensor:
        """Style codes (B, style_dim) of RGB images (B, 3, H, W) in [0, 1]."""
        return self.rgb.style(self._prepare(rgb, 3, "rgb"))

    def translate(self, thermal: Tensor, style: Tensor | None = None, period: object = "day", alpha: float = 1.0,
                  method: str = "adain") -> Tensor:
        """Fake RGB (B, 3, H, W) in [0, 1] of thermal (B, 1, H, W) in [0, 1], any H, W.

        Args:
            style: ``None``: one code from N(0, I) seeded by ``style_seed`` for the whole batch (the same
                output on every call); a (B or 1, style_dim) tensor of codes; or RGB images (B or 1, 3, H', W')
                in [0, 1] whose encoded styles are used.
            period, alpha, method: accepted for the :class:`~rgbt.translate.base.Translator` signature
                and ignored.
        """
        x = self._prepare(thermal, 1, "thermal")
        b, (h, w) = thermal.shape[0], thermal.shape[-2:]
        if style is None:
            codes = self.random_styles(1, self.style_seed, thermal.device)
        elif isinstance(style, Tensor) and style.dim() == 2 and style.shape[1] == self.style_dim:
            codes = style.to(thermal.device, thermal.dtype)
        elif isinstance(style, Tensor) and style.dim() == 4:
            codes = self.encode_style(style.to(thermal.device, thermal.dtype))
        else:
            raise ValueError(f"style must be None, a (N, {self.style_dim}) code tensor or a (N, 3, H, W) RGB batch, "
                             f"got {type(style).__name__} {tuple(getattr(style, 'shape', ()))}")
        if codes.shape[0] not in (1, b):
            raise ValueError(f"{codes.shape[0]} styles for {b} thermal frames: give 1 or {b}")
        fake = self.rgb.decoder(self.thermal.content(x), codes.expand(b, -1))
        return ((fake[..., :h, :w] + 1.0) / 2.0).clamp(0.0, 1.0).contiguous()

    # -- objectives -------------------------------------------------------------------------------

    def _cross(self, x_t: Tensor, x_r: Tensor) -> dict[str, Tensor]:
        """Codes and cross translations of padded images in [-1, 1] with codes drawn from N(0, I)."""
        c_t, c_r = self.thermal.content(x_t), self.rgb.content(x_r)
        s_t_rand = torch.randn(x_r.shape[0], self.style_dim, device=x_t.device, dtype=x_t.dtype)
        s_r_rand = torch.randn(x_t.shape[0], self.style_dim, device=x_t.device, dtype=x_t.dtype)
        return {"c_t": c_t, "c_r": c_r, "s_t_rand": s_t_rand, "s_r_rand": s_r_rand,
                "fake_rgb": self.rgb.decoder(c_t, s_r_rand), "fake_thermal": self.thermal.decoder(c_r, s_t_rand)}

    def generator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: MunitDiscriminators) -> dict[str, Tensor]:
        """The generator's objective on unpaired batches (thermal (B, 1, H, W), rgb (B', 3, H', W'), [0, 1]).

        Returns:
            0-dim tensors ``gan`` (LSGAN of both cross translations, fakes labelled real), ``image``
            (L1 within-domain reconstruction, both domains), ``content`` and ``style`` (L1 latent
            reconstructions across domains) and their weighted sum ``total``.
        """
        x_t, x_r = self._prepare(thermal, 1, "thermal"), self._prepare(rgb, 3, "rgb")
        codes = self._cross(x_t, x_r)
        s_t, s_r = self.thermal.style(x_t), self.rgb.style(x_r)
        image = (F.l1_loss(self.thermal.decoder(codes["c_t"], s_t), x_t)
                 + F.l1_loss(self.rgb.decoder(codes["c_r"], s_r), x_r))
        fake_rgb, fake_thermal = codes["fake_rgb"], codes["fake_thermal"]
        content = (F.l1_loss(self.rgb.content(fake_rgb), codes["c_t"])
                   + F.l1_loss(self.thermal.content(fake_thermal), codes["c_r"]))
        style = (F.l1_loss(self.rgb.style(fake_rgb), codes["s_r_rand"])
                 + F.l1_loss(self.thermal.style(fake_thermal), codes["s_t_rand"]))
        d_thermal, d_rgb = discriminator(fake_thermal, fake_rgb)
        parts = {"gan": lsgan_loss(d_thermal, True) + lsgan_loss(d_rgb, True), "image": image, "content": content,
                 "style": style}
        parts["total"] = sum(self.loss_weights[name] * value for name, value in parts.items())
        return parts

    def discriminator_loss(self, thermal: Tensor, rgb: Tensor, discriminator: MunitDiscriminators) -> dict[str, Tensor]:
        """Both discriminators' LSGAN objective: real images to 1, (detached) cross translations to 0.

        Returns:
            0-dim tensors ``d_real``, ``d_fake`` (summed over the two domains) and
            ``total = (d_real + d_fake) / 2``.
        """
        x_t, x_r = self._prepare(thermal, 1, "thermal"), self._prepare(rgb, 3, "rgb")
        with torch.no_grad():
            codes = self._cross(x_t, x_r)
        real_t, real_r = discriminator(x_t, x_r)
        fake_t, fake_r = discriminator(codes["fake_thermal"], codes["fake_rgb"])
        parts = {"d_real": lsgan_loss(real_t, True) + lsgan_loss(real_r, True),
                 "d_fake": lsgan_loss(fake_t, False) + lsgan_loss(fake_r, False)}
        parts["total"] = 0.5 * (parts["d_real"] + parts["d_fake"])
        return parts


def build_munit(
    hidden: int = 64,
    n_downsample: int = 2,
    n_residual: int = 4,
    style_dim: int = 8,
    mlp_dim: int = 256,
    disc_hidden: int = 64,
    disc_layers: int = 4,
    disc_scales: int = 3,
    w_gan: float = 1.0,
    w_image: float = 10.0,
    w_content: float = 1.0,
    w_style: float = 1.0,
    seed: int | None = None,
) -> tuple[MunitTranslator, MunitDiscriminators]:
    """The translator (both autoencoders) and its per-domain multi-scale discriminators.

    Convolution weights are Kaiming-initialised as in MUNIT; ``seed`` makes all weights and the
    inference style code reproducible without touching torch's global RNG (``None``: the global RNG,
    style seed 0).
    """
    def make() -> tuple[MunitTranslator, MunitDiscriminators]:
        translator = MunitTranslator(hidden, n_downsample, n_residual, style_dim, mlp_dim, w_gan, w_image, w_content,
                                     w_style, style_seed=seed or 0)
        discriminator = MunitDiscriminators(disc_hidden, disc_layers, disc_scales)
        for module in (*translator.modules(), *discriminator.modules()):
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.0, mode="fan_in")
                nn.init.zeros_(module.bias)
        return translator, discriminator

    return build_seeded(make, seed)
