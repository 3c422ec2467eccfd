"""Weight-free quality measures of a flow translator (no pretrained network: no FID, no LPIPS).

* :func:`roundtrip_error`: ``|F^-1(F(x)) - x|`` on real frames: the flow's invertibility in practice;
* :func:`rounds_psnr`: ArtFlow's "rounds" test: stylise a content latent with 20 different styles
  in succession (decoding and re-encoding each time, float32, no clamping or quantising in between,
  unless a ``store`` step such as 8-bit file storage is given), then go back to the content's own
  statistics; PSNR against the original input. An exact flow with AdaIN gives the content back up
  to round-off; an encoder-decoder loses it round by round;
* :func:`recovery_error`: the thermal input recovered from a fake RGB (encode, latent statistics
  back to the thermal's own, decode): with the fake RGB as stored on disk (8 bits), what a
  fake-RGB dataset really keeps of the thermal frame;
* :func:`gradient_ssim` and :func:`edge_f1`: structure preservation between the thermal frame and
  its fake RGB (gradient-magnitude SSIM; Canny edge F1 with a pixel tolerance);
* :func:`psnr` and :func:`ssim`: fidelity to the paired real RGB (meaningful by day only).

Images: tensors are (B, C, H, W) floats in [0, 1]; numpy images are (H, W) or (H, W, 3) uint8
(RGB order) or floats in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from rgbt.translate.losses import check_image_pair, ssim_loss
from rgbt.translate.transfer import adain, latent_mean_cov, latent_stats
from rgbt.translate.translator import FlowTranslator

__all__ = [
    "psnr",
    "ssim",
    "roundtrip_error",
    "rounds_psnr",
    "recover_thermal",
    "recovery_error",
    "sobel_magnitude",
    "gradient_ssim",
    "canny_edges",
    "edge_f1",
    "to_gray_float",
    "finite_or_none",
]


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per sample, (B,) float64; ``inf`` for identical images."""
    check_image_pair(pred, target, "psnr")
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM per sample (pytorch_msssim, Gaussian window shrunk for tiny images, data range 1), (B,)."""
    check_image_pair(pred, target, "ssim")
    return torch.stack([1.0 - ssim_loss(p[None].float(), t[None].float()) for p, t in zip(pred, target)])


@torch.no_grad()
def roundtrip_error(translator: FlowTranslator, images: Tensor) -> tuple[float, float]:
    """``(max, mean)`` of ``|F^-1(F(x)) - x|`` over ``images`` (B, C, H, W) in [0, 1] (any H, W)."""
    flow = translator.flow
    z, _, size = flow.encode(images)
    back = flow.decode(z, size)
    diff = (back.double() - images.double()).abs()
    return float(diff.max()), float(diff.mean())


@torch.no_grad()
def rounds_psnr(
    translator: FlowTranslator, content: Tensor, styles: Sequence[tuple[Tensor, Tensor]],
    store: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """ArtFlow's rounds test on ``content`` (B, C, H, W) in [0, 1] with AdaIN in latent space.

    Args:
        translator: the flow translator (eval mode).
        content: the images to stylise (for the translator: the thermal frame replicated to C channels).
        styles: latent ``(mean, std)`` statistics, each (C',), (B|1, C') or (B|1, C', 1, 1), applied
            in order (ArtFlow uses 20); each round decodes to image space and re-encodes, in float32
            without clamping or quantising.
        store: ``None`` (the float test), or what happens to every decoded image before it is
            encoded again (and to the final one): e.g. writing it as an 8-bit image file and reading
            it back, ``(B, C, H, W) -> (B, C, H, W)`` in [0, 1].

    Returns:
        (B,) float64 PSNR in dB of the final image (back at the content's own latent statistics)
        against ``content``.
    """
    if not styles:
        raise ValueError("rounds_psnr needs at least one style")
    flow = translator.flow
    keep = store if store is not None else (lambda image: image)
    z, _, size = flow.encode(content)
    own_mean, own_std = latent_stats(z)
    x = content
    for mean, std in styles:
        z, _, size = flow.encode(x)
        x = keep(flow.decode(adain(z, mean, std), size))
    z, _, size = flow.encode(x)
    x = keep(flow.decode(adain(z, own_mean, own_std), size))
    return psnr(x, content)


@torch.no_grad()
def recover_thermal(translator: FlowTranslator, fake: Tensor, thermal: Tensor, method: str = "adain") -> Tensor:
    """The flow input recovered from a fake RGB: ``F^-1(T(F(fake)))``, ``T`` the latent transfer
    ``method`` back to the statistics of ``F(thermal)``.

    The translation moves only global latent statistics, and AdaIN / WCT normalise them away, so
    the inverse needs nothing but the thermal frame's own statistics (whatever style made the fake).

    Args:
        translator: the flow translator (eval mode).
        fake: (B, C, H, W) fake RGB in [0, 1] (e.g. re-read from the stored files).
        thermal: (B, 1, H, W) the thermal frames it was translated from, in [0, 1].
        method: ``adain`` or ``wct``, as the fake was made.

    Returns:
        (B, C, H, W) float: the thermal frame replicated to C channels when nothing was lost.
    """
    z_own = translator.flow.encode(translator.thermal_to_input(thermal))[0]
    own = latent_stats(z_own) if method == "adain" else latent_mean_cov(z_own)
    z, _, size = translator.flow.encode(fake.to(z_own.dtype))
    return translator.flow.decode(translator.stylize(z, own, method=method), size)


def recovery_error(
    translator: FlowTranslator, fake: Tensor, thermal: Tensor, method: str = "adain"
) -> tuple[float, float]:
    """``(max, mean)`` of ``|recover_thermal(fake) - thermal|`` (over the C replicated channels), in [0, 1] units."""
    back = recover_thermal(translator, fake, thermal, method)
    diff = (back.double() - translator.thermal_to_input(thermal).double()).abs()
    return float(diff.max()), float(diff.mean())


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) image -> (H, W) float32 in [0, 1] (BT.601 luminance for colour).

    uint8 input is divided by 255; float input is taken to be in [0, 1] already.
    """
    image = np.asarray(image)
    scale = np.float32(1.0 / 255.0) if image.dtype == np.uint8 else np.float32(1.0)
    if image.ndim == 3 and image.shape[2] == 3:
        gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    elif image.ndim == 2:
        gray = image.astype(np.float32)
    else:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    return gray * scale


def sobel_magnitude(gray: np.ndarray) -> np.ndarray:
    """(H, W) float32 gradient magnitude ``sqrt(gx^2 + gy^2)`` of 3x3 Sobel derivatives (reflected border)."""
    gray = np.asarray(gray, dtype=np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    return np.sqrt(gx * gx + gy * gy)


def _unit_range(magnitude: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    # Thermal and RGB edges differ in contrast; scaling each map by its own high percentile makes
    # the comparison about where the edges are, not how strong they are.
    scale = float(np.percentile(magnitude, percentile))
    if scale <= 1e-8:
        return np.zeros_like(magnitude)
    return np.clip(magnitude / scale, 0.0, 1.0)


def gradient_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between the Sobel gradient magnitudes of two images of one size (each scaled to [0, 1]
    by its own 99th percentile); 1 for identical structure. Colour images are converted to grey."""
    ga, gb = _unit_range(sobel_magnitude(to_gray_float(a))), _unit_range(sobel_magnitude(to_gray_float(b)))
    if ga.shape != gb.shape:
        raise ValueError(f"gradient_ssim: images differ in size: {ga.shape} vs {gb.shape}")
    ta = torch.from_numpy(ga)[None, None]
    tb = torch.from_numpy(gb)[None, None]
    return float(1.0 - ssim_loss(ta, tb))


def canny_edges(image: np.ndarray, sigma: float = 0.33) -> np.ndarray:
    """(H, W) bool Canny edge map with thresholds ``(1 -/+ sigma) * median`` of the grey image (uint8)."""
    gray = np.clip(np.round(to_gray_float(image) * 255.0), 0, 255).astype(np.uint8)
    median = float(np.median(gray))
    low = int(max(0.0, (1.0 - sigma) * median))
    high = int(min(255.0, (1.0 + sigma) * median))
    # A flat or very dark frame would get thresholds near 0 and mark noise: keep a floor.
    low, high = max(low, 10), max(high, 30)
    return cv2.Canny(gray, low, high, L2gradient=True) > 0


def _distance_to(edges: np.ndarray) -> np.ndarray:
    if not edges.any():
        return np.full(edges.shape, np.inf, np.float32)
    return cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3)


def edge_f1(reference: np.ndarray, candidate: np.ndarray, tolerance: float = 2.0) -> float:
    """F1 of the Canny edges of ``candidate`` against those of ``reference`` with a pixel tolerance.

    Precision: fraction of candidate edge pixels within ``tolerance`` px (Euclidean) of a reference
    edge; recall: the converse. Both maps empty gives 1, exactly one empty gives 0.
    """
    ref, cand = canny_edges(reference), canny_edges(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"edge_f1: images differ in size: {ref.shape} vs {cand.shape}")
    if not ref.any() and not cand.any():
        return 1.0
    if not ref.any() or not cand.any():
        return 0.0
    precision = float((_distance_to(ref)[cand] <= tolerance).mean())
    recall = float((_distance_to(cand)[ref] <= tolerance).mean())
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, ``None`` for nan/inf (strict JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None
