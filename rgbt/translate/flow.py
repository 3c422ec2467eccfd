"""Glow-style projection flow (ArtFlow's PFN): invertible layers with exact inverses.

Every layer is an :class:`FlowLayer`: ``forward(x) -> (y, logdet)`` with ``logdet`` of shape
``(B,)`` holding ``log|det dy/dx|`` per sample, and ``inverse(y) -> x`` undoing ``forward``
exactly (up to floating-point round-off). Tensors are ``(B, C, H, W)`` floats throughout.

The model is :class:`Glow` *without* the multi-scale split: every block is a 2x2 squeeze followed
by ``n_flows`` steps of ActNorm -> LU 1x1 convolution -> coupling, and the latent ``z`` has as many
elements as the input. Style is then moved by matching global statistics of ``z``
(:mod:`rgbt.translate.transfer`), and content comes back through the exact inverse.

Speed. In eval mode the linear part of every step (ActNorm followed by the 1x1 convolution) is
folded into one 1x1 convolution with bias, computed in float64 and cached for both directions, so
a forward + inverse pass runs four convolutions per step instead of rebuilding ``P L U`` and
inverting it on each call. Caches are keyed on the parameters' version counters, so an optimizer
step, ``load_state_dict`` or a manual in-place edit invalidate them; ``train()``/``eval()`` and
device or dtype moves clear them as well. Caches are only used when no gradient with respect to
the parameters can be asked for (eval mode and either grad mode off or frozen parameters).
Without autograd the coupling networks also run in bands of rows (:class:`CouplingNet`), and
:class:`Glow` keeps activations channels-last; with both, a 512x640 forward + inverse of the
default model runs at about 2 frames/s on two CPU cores (``tools/bench_translate.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FlowLayer",
    "ActNorm",
    "InvConv1x1LU",
    "CouplingNet",
    "AdditiveCoupling",
    "AffineCoupling",
    "Squeeze2x2",
    "FlowStep",
    "Glow",
    "DEFAULT_N_BLOCKS",
    "DEFAULT_N_FLOWS",
    "DEFAULT_HIDDEN",
    "DEFAULT_AFFINE",
    "DEFAULT_SCALE_BOUND",
    "DEFAULT_CHANNELS_LAST",
    "DEFAULT_TILE_BYTES",
]

# The default projection, stated here only: Glow, build_translator and the translator config's
# model section start from it.
#: 2x2 squeezes (a latent of 48 channels at 1/4 of the frame size for RGB)
DEFAULT_N_BLOCKS = 2
#: flow steps per block
DEFAULT_N_FLOWS = 8
#: width of the coupling networks
DEFAULT_HIDDEN = 64
#: additive (volume-preserving) couplings rather than bounded affine ones
DEFAULT_AFFINE = False
#: log-scale bound of affine couplings
DEFAULT_SCALE_BOUND = 2.0
#: channels-last activations (oneDNN's CPU convolutions are much faster on them)
DEFAULT_CHANNELS_LAST = True
#: band size of the coupling networks without autograd (see :class:`CouplingNet`)
DEFAULT_TILE_BYTES = 4 << 20


def _check_4d(x: Tensor, where: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{where}: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")


def _check_channels(x: Tensor, expected: int, where: str) -> None:
    _check_4d(x, where)
    if x.shape[1] != expected:
        raise ValueError(f"{where}: expected {expected} channels, got {x.shape[1]} (shape {tuple(x.shape)})")


def _check_positive_int(value: int, name: str, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _is_channels_last(x: Tensor) -> bool:
    # A (B, 1, H, W) or (B, C, 1, 1) tensor counts as both layouts; only a genuine NHWC storage counts here.
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _split_channels(x: Tensor, split: int) -> tuple[Tensor, Tensor]:
    """``(x[:, :split], x[:, split:])``; the first made channels-last contiguous when ``x`` is.

    A channel slice of an NHWC tensor is contiguous in neither layout, and oneDNN then falls back to
    NCHW kernels that are several times slower for the coupling network (the second half only
    meets element-wise ops, which take any strides).
    """
    a, b = x[:, :split], x[:, split:]
    if _is_channels_last(x):
        a = a.contiguous(memory_format=torch.channels_last)
    return a, b


def _grad_may_reach(params: Iterable[Tensor]) -> bool:
    """True when autograd could ask for a gradient with respect to one of ``params``."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in params)


class _ParamCache:
    """Tensors derived from parameters, rebuilt whenever one of those parameters changes.

    The key is each parameter's in-place version counter, storage address, dtype and device:
    optimizer steps and ``load_state_dict`` write in place (bumping the version), ``.to()``
    replaces the storage. Values are built outside inference mode so they stay usable by later
    grad-enabled calls (inference tensors cannot be saved for backward), and with autocast off.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: tuple[Tensor, ...] | None = None

    def clear(self) -> None:
        self._key = None
        self._value = None

    def get(self, params: list[Tensor], build: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        key = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in params)
        if self._value is None or key != self._key:
            # Autocast off: the float64 algebra in ``build`` must not be lowered to bf16/fp16.
            autocast_off = torch.autocast(params[0].device.type, enabled=False)
            with torch.inference_mode(False), torch.no_grad(), autocast_off:
                self._value = build()
            self._key = key
        return self._value


class FlowLayer(nn.Module):
    """One invertible layer: ``forward(x) -> (y, logdet)`` and ``inverse(y) -> x``.

    ``logdet`` has shape ``(B,)``: the log absolute Jacobian determinant of ``x -> y`` for each
    sample (the sum over all of its elements' contributions).
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ActNorm(FlowLayer):
    """Per-channel affine map ``y = x * exp(log_scale) + bias`` with data-dependent init.

    Args:
        num_channels: ``C``.
        eps: channels whose standard deviation is at most ``eps`` (constant channels) keep a unit
            scale at initialisation instead of being blown up by ``1 / eps``; their mean is still
            removed.

    :meth:`initialize` sets the parameters so that the given batch comes out with zero mean and
    unit standard deviation per channel, and sets the ``initialized`` buffer. That flag is part of
    the state dict, so loading a checkpoint never re-initialises. If :meth:`forward` runs in
    training mode on an uninitialised layer it first initialises from that very batch (Glow's
    convention); in eval mode an uninitialised layer simply applies its current parameters
    (identity for a fresh layer).

    ``logdet = H * W * sum(log_scale)`` for every sample.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.num_channels = num_channels
        self.eps = float(eps)
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        # Python mirror of the buffer so training-mode forwards avoid a device sync once initialised.
        self._known_initialized = False

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent init from ``x`` (B, C, H, W): output zero mean, unit std per channel."""
        _check_channels(x, self.num_channels, "ActNorm.initialize")
        x = x.detach().to(self.bias.dtype)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        std = torch.where(std > self.eps, std, torch.ones_like(std))
        self.log_scale.copy_(-std.log())
        self.bias.copy_(-mean / std)
        self.initialized.fill_(True)
        self._known_initialized = True

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialized = False

    def _maybe_initialize(self, x: Tensor) -> None:
        if self.training and not self._known_initialized:
            if not bool(self.initialized):
                self.initialize(x)
            self._known_initialized = True

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, C, H, W) -> ``(y, logdet)`` with ``y`` like ``x`` and ``logdet`` (B,)."""
        _check_channels(x, self.num_channels, "ActNorm")
        self._maybe_initialize(x)
        y = torch.addcmul(self.bias, x, self.log_scale.exp())
        logdet = (self.log_scale.sum() * (x.shape[2] * x.shape[3])).repeat(x.shape[0])
        return y, logdet

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse: ``x = (y - bias) * exp(-log_scale)``."""
        _check_channels(y, self.num_channels, "ActNorm.inverse")
        return (y - self.bias) * torch.exp(-self.log_scale)


class _CachingLayer(FlowLayer):
    """A flow layer whose eval-mode weights are derived once and kept in ``self._cache``.

    The cache is dropped whenever the weights may change: switching train/eval, moving or casting
    the module, and loading a state dict.
    """

    _cache: _ParamCache

    def train(self, mode: bool = True) -> _CachingLayer:
        self._cache.clear()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)


class InvConv1x1LU(_CachingLayer):
    """Invertible 1x1 convolution parameterised as ``W = P L (U + diag(sign_s * exp(log_s)))``.

    ``P`` is a fixed permutation buffer, ``L`` (parameter ``lower``, strictly lower part used) is
    unit lower-triangular, ``U`` (parameter ``upper``, strictly upper part used) plus the diagonal
    ``sign_s * exp(log_s)``; ``sign_s`` is a fixed buffer. The weight is initialised to a random
    orthogonal matrix drawn from ``generator`` (or torch's global RNG when ``None``).

    ``logdet = H * W * sum(log_s)``. The inverse weight is computed in float64 and cast back; in
    eval mode both weights are cached (see the module docstring for invalidation).
    """

    def __init__(self, num_channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels")
        self.num_channels = num_channels
        gaussian = torch.randn(num_channels, num_channels, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(gaussian)
        perm, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        dtype = torch.get_default_dtype()
        self.register_buffer("perm", perm.to(dtype))
        self.register_buffer("sign_s", torch.sign(s).to(dtype))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(dtype))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dtype))
        self.log_s = nn.Parameter(s.abs().log().to(dtype))
        self._cache = _ParamCache()

    def _lu_factors(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        eye = torch.eye(self.num_channels, dtype=dtype, device=self.lower.device)
        lower = torch.tril(self.lower.to(dtype), -1) + eye
        upper = torch.triu(self.upper.to(dtype), 1) + torch.diag(
            self.sign_s.to(dtype) * self.log_s.to(dtype).exp()
        )
        return self.perm.to(dtype), lower, upper

    def weight_matrix(self, dtype: torch.dtype | None = None) -> Tensor:
        """``W`` as a (C, C) matrix (differentiable), in ``dtype`` (default: the parameters')."""
        perm, lower, upper = self._lu_factors(dtype or self.lower.dtype)
        return perm @ lower @ upper

    def inverse_matrix(self) -> Tensor:
        """``W^-1`` as a (C, C) float64 matrix, via triangular solves of the LU factors."""
        perm, lower, upper = self._lu_factors(torch.float64)
        # W^-1 = U^-1 L^-1 P^T: two triangular solves are better conditioned than a generic inverse.
        inv_l_pt = torch.linalg.solve_triangular(lower, perm.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, inv_l_pt, upper=True)

    def _use_cache(self) -> bool:
        return not self.training and not _grad_may_reach(self.parameters())

    def _cached_weights(self) -> tuple[Tensor, Tensor]:
        dtype = self.lower.dtype

        def build() -> tuple[Tensor, Tensor]:
            w = self.weight_matrix(torch.float64).to(dtype)
            w_inv = self.inverse_matrix().to(dtype)
            return w[:, :, None, None].contiguous(), w_inv[:, :, None, None].contiguous()

        w, w_inv = self._cache.get([self.lower, self.upper, self.log_s], build)
        return w, w_inv

    def logdet_per_pixel(self) -> Tensor:
        """``sum(log_s)``: log|det W| (a 0-dim tensor)."""
        return self.log_s.sum()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, C, H, W) -> ``(W x, logdet)``, ``logdet`` (B,)."""
        _check_channels(x, self.num_channels, "InvConv1x1LU")
        if self._use_cache():
            weight = self._cached_weights()[0]
        else:
            weight = self.weight_matrix()[:, :, None, None]
        y = F.conv2d(x, weight)
        logdet = (self.logdet_per_pixel() * (x.shape[2] * x.shape[3])).repeat(x.shape[0])
        return y, logdet

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse ``W^-1 y`` (inverse weight computed in float64)."""
        _check_channels(y, self.num_channels, "InvConv1x1LU.inverse")
        if self._use_cache():
            weight = self._cached_weights()[1]
        else:
            weight = self.inverse_matrix().to(y.dtype)[:, :, None, None]
        return F.conv2d(y, weight)


class CouplingNet(nn.Module):
    """The coupling function: conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 (zero-initialised).

    No normalisation inside: the flow's ActNorm layers already feed it standardised inputs, a plain
    conv stack is the cheapest at inference, and batch statistics would make the inverse depend on
    the batch. Zero-initialising the last convolution makes every coupling start as the identity.

    Without autograd, large inputs are processed in horizontal bands of rows (each with the two
    rows of context the two 3x3 convolutions need), so the ``hidden``-channel intermediates stay
    cache-sized instead of being fresh multi-megabyte allocations (page faults dominated the CPU
    time otherwise). The result equals the untiled computation; forward and inverse of a coupling
    take the same path, so invertibility is unaffected. ``tile_bytes=None`` disables it.

    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    #: Rows of context a band needs on each side: two 3x3 convolutions.
    HALO = 2

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, tile_bytes: int | None = DEFAULT_TILE_BYTES
    ) -> None:
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(out_channels, "out_channels")
        _check_positive_int(hidden, "hidden")
        if tile_bytes is not None:
            _check_positive_int(tile_bytes, "tile_bytes")
        self.tile_bytes = tile_bytes
        self.conv_in = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv_mid = nn.Conv2d(hidden, hidden, 1)
        self.conv_out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _net(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv_in(x), inplace=True)
        h = F.relu(self.conv_mid(h), inplace=True)
        return self.conv_out(h)

    def _plan(self, x: Tensor) -> tuple[int, int] | None:
        """``(samples per chunk, rows per band)`` for banded evaluation, or ``None`` for one pass."""
        if self.tile_bytes is None or torch.is_grad_enabled():
            return None
        batch, _, height, width = x.shape
        row_bytes = self.conv_mid.out_channels * width * x.element_size()
        sample_bytes = row_bytes * height
        if batch * sample_bytes <= 2 * self.tile_bytes:
            return None
        if sample_bytes <= self.tile_bytes:
            return self.tile_bytes // sample_bytes, height
        # Equal bands (no thin tail band), at least 8 rows so the recomputed halo stays cheap.
        n_bands = -(-sample_bytes // self.tile_bytes)
        rows = max(8, -(-height // n_bands))
        return (1, rows) if rows < height else (1, height)

    def forward(self, x: Tensor) -> Tensor:
        plan = self._plan(x)
        if plan is None:
            return self._net(x)
        samples, rows = plan
        batch, _, height, width = x.shape
        layout = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        out = torch.empty(
            (batch, self.conv_out.out_channels, height, width),
            dtype=x.dtype,
            device=x.device,
            memory_format=layout,
        )
        for first in range(0, batch, samples):
            last = min(batch, first + samples)
            for top in range(0, height, rows):
                bottom = min(height, top + rows)
                lo, hi = max(0, top - self.HALO), min(height, bottom + self.HALO)
                band = self._net(x[first:last, :, lo:hi])
                out[first:last, :, top:bottom] = band[:, :, top - lo : bottom - lo]
        return out


class AdditiveCoupling(FlowLayer):
    """Additive coupling (NICE/Glow): ``y_a = x_a``, ``y_b = x_b + NN(x_a)``; ``logdet = 0``.

    ``x_a`` is the first ``C // 2`` channels, ``x_b`` the rest (the 1x1 convolutions before each
    coupling mix channels, so a fixed split suffices). Volume-preserving and exactly invertible:
    the inverse recomputes ``NN(y_a)`` on the same ``y_a``.
    """

    def __init__(self, num_channels: int, hidden: int, tile_bytes: int | None = DEFAULT_TILE_BYTES) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels", minimum=2)
        self.num_channels = num_channels
        self.split = num_channels // 2
        self.net = CouplingNet(self.split, num_channels - self.split, hidden, tile_bytes=tile_bytes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_channels(x, self.num_channels, "AdditiveCoupling")
        x_a, x_b = _split_channels(x, self.split)
        y = torch.cat([x_a, x_b + self.net(x_a)], dim=1)
        return y, x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        _check_channels(y, self.num_channels, "AdditiveCoupling.inverse")
        y_a, y_b = _split_channels(y, self.split)
        return torch.cat([y_a, y_b - self.net(y_a)], dim=1)


class AffineCoupling(FlowLayer):
    """Affine coupling with a bounded log-scale: ``y_b = (x_b + t) * exp(s)``, ``y_a = x_a``.

    ``(t, raw) = NN(x_a)`` and ``s = scale_bound * tanh(raw / scale_bound)`` keeps every scale in
    ``[exp(-scale_bound), exp(scale_bound)]`` (no exploding inverse) and is exactly 0 for a
    zero-initialised net, so the layer starts as the identity. ``logdet = sum(s)`` per sample.
    """

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        scale_bound: float = DEFAULT_SCALE_BOUND,
        tile_bytes: int | None = DEFAULT_TILE_BYTES,
    ) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels", minimum=2)
        if not scale_bound > 0:
            raise ValueError(f"scale_bound must be > 0, got {scale_bound!r}")
        self.num_channels = num_channels
        self.split = num_channels // 2
        self.scale_bound = float(scale_bound)
        self.net = CouplingNet(self.split, 2 * (num_channels - self.split), hidden, tile_bytes=tile_bytes)

    def _shift_log_scale(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.net(x_a).chunk(2, dim=1)
        return shift, self.scale_bound * torch.tanh(raw / self.scale_bound)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_channels(x, self.num_channels, "AffineCoupling")
        x_a, x_b = _split_channels(x, self.split)
        shift, log_s = self._shift_log_scale(x_a)
        y = torch.cat([x_a, (x_b + shift) * log_s.exp()], dim=1)
        return y, log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        _check_channels(y, self.num_channels, "AffineCoupling.inverse")
        y_a, y_b = _split_channels(y, self.split)
        shift, log_s = self._shift_log_scale(y_a)
        return torch.cat([y_a, y_b * torch.exp(-log_s) - shift], dim=1)


class Squeeze2x2(FlowLayer):
    """Space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2); ``logdet = 0``. H and W must be even.

    Output channel ``4c + 2i + j`` holds input channel ``c`` at row offset ``i``, column offset ``j``.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_4d(x, "Squeeze2x2")
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze2x2 needs even height and width, got {h}x{w}")
        if _is_channels_last(x):
            # Same channel order, built from the (B, H, W, C) storage so the output stays channels-last.
            y = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4)
            y = y.reshape(b, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)
        else:
            y = (
                x.reshape(b, c, h // 2, 2, w // 2, 2)
                .permute(0, 1, 3, 5, 2, 4)
                .reshape(b, 4 * c, h // 2, w // 2)
            )
        return y, x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        _check_4d(y, "Squeeze2x2.inverse")
        b, c4, h, w = y.shape
        if c4 % 4:
            raise ValueError(f"Squeeze2x2.inverse needs a channel count divisible by 4, got {c4}")
        c = c4 // 4
        if _is_channels_last(y):
            x = y.permute(0, 2, 3, 1).reshape(b, h, w, c, 2, 2).permute(0, 1, 4, 2, 5, 3)
            return x.reshape(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
        return y.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


class FlowStep(_CachingLayer):
    """One Glow step: :class:`ActNorm` -> :class:`InvConv1x1LU` -> coupling.

    In eval mode (with no parameter gradient possible) ActNorm and the 1x1 convolution are applied
    as one fused 1x1 convolution with bias, ``W diag(s) x + W b``, and the inverse likewise as
    ``diag(1/s) W^-1 y - b / s``, both computed in float64 and cached.
    """

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        affine: bool = DEFAULT_AFFINE,
        scale_bound: float = DEFAULT_SCALE_BOUND,
        generator: torch.Generator | None = None,
        tile_bytes: int | None = DEFAULT_TILE_BYTES,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.actnorm = ActNorm(num_channels)
        self.invconv = InvConv1x1LU(num_channels, generator=generator)
        self.coupling: FlowLayer
        if affine:
            self.coupling = AffineCoupling(
                num_channels, hidden, scale_bound=scale_bound, tile_bytes=tile_bytes
            )
        else:
            self.coupling = AdditiveCoupling(num_channels, hidden, tile_bytes=tile_bytes)
        self._cache = _ParamCache()

    def _linear_params(self) -> list[Tensor]:
        return [
            self.actnorm.bias,
            self.actnorm.log_scale,
            self.invconv.lower,
            self.invconv.upper,
            self.invconv.log_s,
        ]

    def _use_fused(self) -> bool:
        return not self.training and not _grad_may_reach(self._linear_params())

    def _fused(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        dtype = self.invconv.lower.dtype

        def build() -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
            scale = self.actnorm.log_scale.double().exp().flatten()
            bias = self.actnorm.bias.double().flatten()
            w = self.invconv.weight_matrix(torch.float64)
            w_inv = self.invconv.inverse_matrix()
            fwd_w = w * scale[None, :]
            fwd_b = w @ bias
            inv_w = w_inv / scale[:, None]
            inv_b = -bias / scale
            logdet = self.actnorm.log_scale.double().sum() + self.invconv.log_s.double().sum()
            return (
                fwd_w.to(dtype)[:, :, None, None].contiguous(),
                fwd_b.to(dtype),
                inv_w.to(dtype)[:, :, None, None].contiguous(),
                inv_b.to(dtype),
                logdet.to(dtype),
            )

        return self._cache.get(self._linear_params(), build)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_channels(x, self.num_channels, "FlowStep")
        if self._use_fused():
            fwd_w, fwd_b, _, _, logdet_pp = self._fused()
            y = F.conv2d(x, fwd_w, fwd_b)
            logdet = (logdet_pp * (x.shape[2] * x.shape[3])).repeat(x.shape[0])
        else:
            y, logdet = self.actnorm(x)
            y, ld = self.invconv(y)
            logdet = logdet + ld
        y, ld = self.coupling(y)
        return y, logdet + ld

    def inverse(self, y: Tensor) -> Tensor:
        _check_channels(y, self.num_channels, "FlowStep.inverse")
        x = self.coupling.inverse(y)
        if self._use_fused():
            _, _, inv_w, inv_b, _ = self._fused()
            return F.conv2d(x, inv_w, inv_b)
        return self.actnorm.inverse(self.invconv.inverse(x))


class Glow(FlowLayer):
    """Glow projection flow without split: ``n_blocks`` x (squeeze + ``n_flows`` steps).

    Args:
        in_channels: image channels ``C`` (3 for RGB or replicated thermal).
        n_blocks: number of 2x2 squeezes; the latent has ``C * 4**n_blocks`` channels at
            ``H / 2**n_blocks`` x ``W / 2**n_blocks`` (as many elements as the input).
        n_flows: steps per block.
        hidden: width of the coupling networks.
        affine: bounded affine couplings instead of additive (volume-preserving) ones.
        scale_bound: log-scale bound of affine couplings.
        generator: seeds the random orthogonal 1x1 convolutions (torch's global RNG when ``None``;
            the coupling convs always use the global RNG, as ``nn.Conv2d`` does).
        channels_last: run every layer on channels-last (NHWC) storage, which oneDNN's CPU
            convolutions are much faster on; outputs then carry channels-last strides (same values).
        tile_bytes: band size of the coupling networks without autograd (see :class:`CouplingNet`).

    :meth:`forward` / :meth:`inverse` need H and W divisible by ``2**n_blocks``;
    :meth:`encode` / :meth:`decode` accept any size by reflect-padding on the bottom/right and
    cropping back exactly. Inputs are typically images in [0, 1]; nothing is clamped here.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_blocks: int = DEFAULT_N_BLOCKS,
        n_flows: int = DEFAULT_N_FLOWS,
        hidden: int = DEFAULT_HIDDEN,
        affine: bool = DEFAULT_AFFINE,
        scale_bound: float = DEFAULT_SCALE_BOUND,
        generator: torch.Generator | None = None,
        channels_last: bool = DEFAULT_CHANNELS_LAST,
        tile_bytes: int | None = DEFAULT_TILE_BYTES,
    ) -> None:
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(n_blocks, "n_blocks", minimum=0)
        _check_positive_int(n_flows, "n_flows")
        _check_positive_int(hidden, "hidden")
        if n_blocks == 0 and in_channels < 2:
            raise ValueError(f"a coupling needs >= 2 channels: in_channels={in_channels} with n_blocks=0")
        self.in_channels = in_channels
        self.n_blocks = n_blocks
        self.n_flows = n_flows
        self.latent_channels = in_channels * 4**n_blocks
        self.multiple = 2**n_blocks
        self.channels_last = bool(channels_last)
        layers: list[FlowLayer] = []
        channels = in_channels
        # With n_blocks == 0 there is a single group of steps and no squeeze.
        for _ in range(max(n_blocks, 1)):
            if n_blocks > 0:
                layers.append(Squeeze2x2())
                channels *= 4
            for _ in range(n_flows):
                step = FlowStep(
                    channels,
                    hidden,
                    affine=affine,
                    scale_bound=scale_bound,
                    generator=generator,
                    tile_bytes=tile_bytes,
                )
                layers.append(step)
        self.layers = nn.ModuleList(layers)

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _check_size(self, x: Tensor, where: str) -> None:
        _check_channels(x, self.in_channels, where)
        h, w = x.shape[2], x.shape[3]
        if h % self.multiple or w % self.multiple:
            raise ValueError(
                f"{where}: height and width must be multiples of {self.multiple} (2**n_blocks), got {h}x{w}; "
                "use encode()/decode() for arbitrary sizes"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, C, H, W) -> ``(z, logdet)``: ``z`` (B, C*4**n, H/2**n, W/2**n), ``logdet`` (B,)."""
        self._check_size(x, "Glow")
        x = self._layout(x)
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        """``z`` (B, C*4**n, h, w) -> ``x`` (B, C, h*2**n, w*2**n)."""
        _check_channels(z, self.latent_channels, "Glow.inverse")
        z = self._layout(z)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def pad(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Pad (bottom/right) to multiples of ``2**n_blocks``; returns ``(padded, (H, W))``.

        Reflect padding keeps image statistics; for images too small to reflect (pad >= size)
        replicate padding is used instead.
        """
        _check_channels(x, self.in_channels, "Glow.pad")
        h, w = x.shape[2], x.shape[3]
        if h < 1 or w < 1:
            raise ValueError(f"Glow.pad: empty image of size {h}x{w}")
        pad_h = -h % self.multiple
        pad_w = -w % self.multiple
        if pad_h == 0 and pad_w == 0:
            return x, (h, w)
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Any-size ``x`` (B, C, H, W) -> ``(z, logdet, (H, W))``; logdet is of the padded image."""
        padded, size = self.pad(x)
        z, logdet = self.forward(padded)
        return z, logdet, size

    def decode(self, z: Tensor, size: tuple[int, int]) -> Tensor:
        """Inverse of :meth:`encode`: ``z`` -> ``x`` (B, C, H, W) cropped to ``size = (H, W)``."""
        _check_channels(z, self.latent_channels, "Glow.decode")
        h, w = size
        full_h, full_w = z.shape[2] * self.multiple, z.shape[3] * self.multiple
        if not (0 < h <= full_h and 0 < w <= full_w):
            raise ValueError(f"Glow.decode: size {size} does not fit the decoded {full_h}x{full_w}")
        return self.inverse(z)[:, :, :h, :w]

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent init of every ActNorm, layer by layer, from the batch ``x`` (any size)."""
        h, _ = self.pad(x)
        for layer in self.layers:
            if isinstance(layer, FlowStep):
                layer.actnorm.initialize(h)
            h, _ = layer(h)
