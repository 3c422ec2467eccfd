"""The translator's default objective: L1 + (1 - SSIM) + gradient/checkerboard term (+ optional NLL).

"Weight-free" means every term is on a comparable [0, ~1] scale for images in [0, 1], so the
default weights are all 1 (NLL off). Losses are computed on the *unclamped* translation: clamping
would zero the gradient of every out-of-range pixel.

Shapes: ``pred`` and ``target`` are (B, C, H, W) images with range [0, 1] (``pred`` may stray
outside it during training); ``z`` is the flow latent of the same batch and ``logdet`` (B,).
"""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ms_ssim, ssim
from torch import Tensor

__all__ = [
    "check_image_pair",
    "ssim_loss",
    "ms_ssim_loss",
    "checkerboard",
    "gradient_loss",
    "nll_bits_per_dim",
    "translation_loss",
    "DEFAULT_W_L1",
    "DEFAULT_W_SSIM",
    "DEFAULT_W_GRAD",
    "DEFAULT_W_NLL",
    "DEFAULT_MS_SSIM",
]

# The default weights of the objective (see the module docstring), stated here only: the flow
# translator, build_translator and the translator config's loss section start from them.
DEFAULT_W_L1 = 1.0
DEFAULT_W_SSIM = 1.0
DEFAULT_W_GRAD = 1.0
DEFAULT_W_NLL = 0.0
#: SSIM, not MS-SSIM (which needs frames larger than 160 px)
DEFAULT_MS_SSIM = False


def check_image_pair(pred: Tensor, target: Tensor, where: str) -> None:
    """Raise ``ValueError`` (naming ``where``) unless ``pred`` and ``target`` are (B, C, H, W) of one shape."""
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(
            f"{where}: expected two (B, C, H, W) tensors of one shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )


def _window(height: int, width: int, win_size: int) -> int:
    """The largest odd window <= ``win_size`` that fits the image (tiny images get a smaller one)."""
    side = min(height, width, win_size)
    return side if side % 2 else side - 1


def ssim_loss(pred: Tensor, target: Tensor, win_size: int = 11) -> Tensor:
    """``1 - SSIM`` (pytorch_msssim, data range 1, Gaussian window, mean over the batch); 0-dim."""
    check_image_pair(pred, target, "ssim_loss")
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size must be a positive odd int, got {win_size!r}")
    win = _window(pred.shape[2], pred.shape[3], win_size)
    return 1.0 - ssim(pred, target, data_range=1.0, size_average=True, win_size=max(win, 1))


def ms_ssim_loss(pred: Tensor, target: Tensor, win_size: int = 11) -> Tensor:
    """``1 - MS-SSIM`` (pytorch_msssim, 5 scales); needs ``min(H, W) > 16 * (win_size - 1)``."""
    check_image_pair(pred, target, "ms_ssim_loss")
    need = 16 * (win_size - 1)
    if min(pred.shape[2:]) <= need:
        raise ValueError(
            f"ms_ssim_loss: images of {pred.shape[2]}x{pred.shape[3]} are too small for 5 scales with "
            f"win_size={win_size} (need both sides > {need}); use ssim_loss"
        )
    return 1.0 - ms_ssim(pred, target, data_range=1.0, size_average=True, win_size=win_size)


def checkerboard(x: Tensor) -> Tensor:
    """Response to the 2x2 checkerboard pattern ``[[1, -1], [-1, 1]] / 4`` at every offset.

    ``(B, C, H, W) -> (B, C, H - 1, W - 1)``. This is the highest-frequency component of a 2x2
    block, exactly what a squeeze-based flow leaves behind as grid artefacts.
    """
    return (x[:, :, :-1, :-1] - x[:, :, :-1, 1:] - x[:, :, 1:, :-1] + x[:, :, 1:, 1:]) * 0.25


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L1 distance between the finite differences and checkerboard responses of two images.

    Penalising the difference to the target (rather than the output's own total variation) removes
    2x2 grid artefacts and ringing without blurring the edges the target really has. 0-dim tensor.
    """
    check_image_pair(pred, target, "gradient_loss")
    terms = []
    if pred.shape[3] > 1:
        terms.append((pred.diff(dim=3) - target.diff(dim=3)).abs().mean())
    if pred.shape[2] > 1:
        terms.append((pred.diff(dim=2) - target.diff(dim=2)).abs().mean())
    if pred.shape[2] > 1 and pred.shape[3] > 1:
        terms.append((checkerboard(pred) - checkerboard(target)).abs().mean())
    if not terms:
        return pred.new_zeros(())
    return torch.stack(terms).sum()


def nll_bits_per_dim(z: Tensor, logdet: Tensor, n_bins: int = 256) -> Tensor:
    """Negative log-likelihood under a standard normal prior on ``z``, in bits per input dimension.

    ``(-log N(z; 0, I) - logdet) / D / ln 2 + log2(n_bins)``, the discrete NLL of data quantised
    to ``n_bins`` levels in [0, 1] (meaningful with uniform dequantisation noise on the input).
    Since the flow has no split, ``D`` is ``z``'s element count per sample. Returns (B,).
    """
    if z.dim() < 2 or logdet.shape != (z.shape[0],):
        raise ValueError(
            f"nll_bits_per_dim: z {tuple(z.shape)} and logdet {tuple(logdet.shape)} do not match"
        )
    dims = z[0].numel()
    log_prior = -0.5 * (z.flatten(1).pow(2).sum(1) + dims * math.log(2 * math.pi))
    return -(log_prior + logdet) / (dims * math.log(2.0)) + math.log2(n_bins)


def translation_loss(
    pred: Tensor,
    target: Tensor,
    *,
    z: Tensor | None = None,
    logdet: Tensor | None = None,
    w_l1: float = DEFAULT_W_L1,
    w_ssim: float = DEFAULT_W_SSIM,
    w_grad: float = DEFAULT_W_GRAD,
    w_nll: float = DEFAULT_W_NLL,
    use_ms_ssim: bool = DEFAULT_MS_SSIM,
) -> dict[str, Tensor]:
    """The default objective and its parts.

    Args:
        pred: (B, C, H, W) translated image (unclamped).
        target: (B, C, H, W) real image in [0, 1].
        z, logdet: latent and log-determinant of the encoded batch, for the NLL term (needed
            when ``w_nll > 0``; reported whenever given).
        w_l1, w_ssim, w_grad, w_nll: weights (>= 0) of the components.
        use_ms_ssim: MS-SSIM instead of SSIM (images must be large, see :func:`ms_ssim_loss`).

    Returns:
        ``{"l1", "ssim", "grad", ["nll",] "total"}``: 0-dim tensors; ``ssim`` is ``1 - SSIM``,
        ``nll`` is mean bits/dim.
    """
    for name, weight in (("w_l1", w_l1), ("w_ssim", w_ssim), ("w_grad", w_grad), ("w_nll", w_nll)):
        if not weight >= 0:
            raise ValueError(f"{name} must be >= 0, got {weight!r}")
    if w_nll > 0 and (z is None or logdet is None):
        raise ValueError("translation_loss: w_nll > 0 needs z and logdet")
    check_image_pair(pred, target, "translation_loss")
    parts = {
        "l1": (pred - target).abs().mean(),
        "ssim": ms_ssim_loss(pred, target) if use_ms_ssim else ssim_loss(pred, target),
        "grad": gradient_loss(pred, target),
    }
    total = w_l1 * parts["l1"] + w_ssim * parts["ssim"] + w_grad * parts["grad"]
    if z is not None and logdet is not None:
        parts["nll"] = nll_bits_per_dim(z, logdet).mean()
        if w_nll > 0:
            total = total + w_nll * parts["nll"]
    parts["total"] = total
    return parts
