"""Invertible layers and the Glow projection: exact inverses, log-determinants, gradients, caches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call

from rgbt.translate.flow import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    CouplingNet,
    FlowLayer,
    FlowStep,
    Glow,
    InvConv1x1LU,
    Squeeze2x2,
)

ROADSCENE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "roadscene"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _layer(name: str, channels: int, hidden: int = 8) -> FlowLayer:
    """A float64 layer of each kind with non-trivial (non-identity) parameters."""
    torch.manual_seed(1)
    gen = _gen(2)
    if name == "actnorm":
        layer: FlowLayer = ActNorm(channels)
        layer.initialize(torch.randn(4, channels, 5, 5, generator=gen) * 3 + 1)
    elif name == "invconv":
        layer = InvConv1x1LU(channels, generator=gen)
    elif name == "additive":
        layer = AdditiveCoupling(channels, hidden=hidden)
    elif name == "affine":
        layer = AffineCoupling(channels, hidden=hidden)
    elif name == "squeeze":
        layer = Squeeze2x2()
    elif name in ("step", "step_affine"):
        layer = FlowStep(channels, hidden=hidden, affine=name == "step_affine", generator=gen)
        layer.actnorm.initialize(torch.randn(4, channels, 5, 5, generator=gen) * 2 - 1)
    else:
        raise KeyError(name)
    with torch.no_grad():
        for module in layer.modules():
            if isinstance(module, CouplingNet):
                module.conv_out.weight.normal_(0, 0.3, generator=gen)
                module.conv_out.bias.normal_(0, 0.3, generator=gen)
    return layer.double()


LAYERS = ["actnorm", "invconv", "additive", "affine", "squeeze", "step", "step_affine"]


def _logdet_brute_force(fn, x: torch.Tensor) -> torch.Tensor:
    jac = torch.autograd.functional.jacobian(fn, x)
    return torch.linalg.slogdet(jac.reshape(x.numel(), x.numel()))[1]


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_inverse_and_logdet(name: str, mode: str) -> None:
    layer = _layer(name, 3 if name != "squeeze" else 2)
    channels = 3 if name != "squeeze" else 2
    x = torch.randn(2, channels, 4, 4, generator=_gen(3), dtype=torch.float64)
    if mode == "eval":
        # Frozen parameters in eval mode take the cached / fused path.
        layer.eval().requires_grad_(False)
    y, logdet = layer(x)
    assert logdet.shape == (2,)
    torch.testing.assert_close(layer.inverse(y), x, rtol=0, atol=1e-12)
    for i in range(2):
        expected = _logdet_brute_force(lambda v: layer(v)[0], x[i : i + 1])
        torch.testing.assert_close(logdet[i], expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("n_blocks", [1, 2])
def test_glow_logdet_matches_jacobian(n_blocks: int, affine: bool, trained_like) -> None:
    torch.manual_seed(0)
    glow = Glow(3, n_blocks=n_blocks, n_flows=2, hidden=8, affine=affine, generator=_gen(1)).double()
    trained_like(glow, coupling_std=0.2)
    x = torch.rand(1, 3, 4, 4, generator=_gen(2), dtype=torch.float64)
    z, logdet = glow(x)
    assert z.shape == (1, 3 * 4**n_blocks, 4 // 2**n_blocks, 4 // 2**n_blocks)
    assert z.numel() == x.numel()
    torch.testing.assert_close(logdet[0], _logdet_brute_force(lambda v: glow(v)[0], x), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(glow.inverse(z), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["additive", "affine", "invconv"])
def test_gradcheck_inputs_and_parameters(name: str) -> None:
    layer = _layer(name, 4, hidden=3)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in layer.named_parameters()]
    x = torch.randn(1, 4, 3, 2, generator=_gen(4), dtype=torch.float64, requires_grad=True)

    def fn(inp: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return functional_call(layer, dict(zip(names, ps)), (inp,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


def test_actnorm_data_dependent_init() -> None:
    x = (
        torch.randn(8, 5, 6, 7, generator=_gen(0), dtype=torch.float64)
        * torch.arange(1.0, 6.0).double()[None, :, None, None]
        + 3.0
    )
    x[:, 2] = 4.0  # a constant channel: centred, not scaled by 1 / eps
    norm = ActNorm(5).double()
    assert not bool(norm.initialized)
    y, logdet = norm(x)  # training mode: first call initialises from this batch
    assert bool(norm.initialized)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)
    std = y.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(std[[0, 1, 3, 4]], torch.ones(4, dtype=torch.float64))
    assert norm.log_scale.detach()[0, 2].item() == 0.0
    expected = torch.full((8,), 42 * norm.log_scale.detach().sum().item(), dtype=torch.float64)
    torch.testing.assert_close(logdet.detach(), expected)


def test_actnorm_uninitialised_eval_is_identity() -> None:
    norm = ActNorm(3).eval()
    x = torch.randn(2, 3, 4, 4, generator=_gen(0))
    y, logdet = norm(x)
    assert torch.equal(y, x) and not bool(norm.initialized)
    assert torch.equal(logdet, torch.zeros(2))


def test_actnorm_initialised_flag_survives_state_dict() -> None:
    norm = ActNorm(3)
    norm(torch.randn(4, 3, 5, 5, generator=_gen(0)) * 5 + 2)
    buffer = io.BytesIO()
    torch.save(norm.state_dict(), buffer)
    buffer.seek(0)
    fresh = ActNorm(3)
    fresh.load_state_dict(torch.load(buffer))
    assert bool(fresh.initialized)
    other = torch.randn(4, 3, 5, 5, generator=_gen(1))
    fresh.train()
    y_fresh, ld_fresh = fresh(other)  # must not re-initialise from `other`
    y_ref, ld_ref = norm(other)
    assert torch.equal(y_fresh, y_ref) and torch.equal(ld_fresh, ld_ref)
    assert abs(y_fresh.detach().mean().item()) > 0.1


def test_glow_state_dict_round_trip_keeps_outputs(trained_like) -> None:
    torch.manual_seed(0)
    glow = Glow(3, n_blocks=2, n_flows=2, hidden=8)
    trained_like(glow)
    x = torch.rand(2, 3, 8, 12, generator=_gen(1))
    state = glow.state_dict()
    assert any(k.endswith("actnorm.initialized") for k in state)
    torch.manual_seed(5)
    fresh = Glow(3, n_blocks=2, n_flows=2, hidden=8)
    fresh.load_state_dict(state)
    z_ref, ld_ref = glow(x)
    z, ld = fresh(x)  # training mode: ActNorm must not re-initialise
    torch.testing.assert_close(z, z_ref, rtol=0, atol=0)
    torch.testing.assert_close(ld, ld_ref, rtol=0, atol=0)


def test_invconv_is_orthogonal_at_init_and_seeded() -> None:
    a = InvConv1x1LU(6, generator=_gen(7)).double()
    b = InvConv1x1LU(6, generator=_gen(7)).double()
    w = a.weight_matrix()
    torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.equal(w, b.weight_matrix())
    assert not torch.equal(w, InvConv1x1LU(6, generator=_gen(8)).double().weight_matrix())


def test_eval_caches_follow_parameter_changes(trained_like) -> None:
    torch.manual_seed(0)
    step = FlowStep(12, hidden=8, generator=_gen(0))
    trained_like(step)
    x = torch.randn(2, 12, 6, 6, generator=_gen(1))
    step.eval()
    with torch.inference_mode():
        y_cached, _ = step(x)
    y_plain, _ = step(x)  # grad enabled, parameters require grad: uncached path
    torch.testing.assert_close(y_cached, y_plain, rtol=0, atol=1e-5)
    with torch.no_grad():
        step.invconv.log_s.add_(0.3)
        step.actnorm.bias.sub_(0.2)
    with torch.inference_mode():
        y_changed, ld_changed = step(x)
    y_expected, ld_expected = step(x)
    torch.testing.assert_close(y_changed, y_expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(ld_changed, ld_expected.detach())
    # load_state_dict (copies in place) and train()/eval() also refresh the caches.
    other = FlowStep(12, hidden=8, generator=_gen(9))
    trained_like(other, seed=3)
    step.load_state_dict(other.state_dict())
    other.eval()
    with torch.inference_mode():
        torch.testing.assert_close(step(x)[0], other(x)[0], rtol=0, atol=0)
        torch.testing.assert_close(step.inverse(x), other.inverse(x), rtol=0, atol=0)


def test_squeeze_layout_and_channels_last_agree() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    squeeze = Squeeze2x2()
    y, _ = squeeze(x)
    assert y.shape == (2, 12, 2, 3)
    # Channel 4c + 2i + j holds input channel c at offset (i, j).
    assert torch.equal(y[:, 4 * 1 + 2 * 1 + 0], x[:, 1, 1::2, 0::2])
    y_cl, _ = squeeze(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y_cl, y) and y_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(squeeze.inverse(y_cl), x)
    with pytest.raises(ValueError, match="even"):
        squeeze(torch.zeros(1, 3, 5, 4))


@pytest.mark.parametrize(
    ("batch", "tile_bytes", "plan"),
    [(2, 1, (1, 8)), (5, 2 * 8 * 8 * 37 * 11, (2, 37)), (1, 8 * 8 * 37 * 11 // 3, (1, 10))],
)
def test_banded_coupling_equals_whole_image(batch: int, tile_bytes: int, plan: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = CouplingNet(3, 5, hidden=8, tile_bytes=tile_bytes).double()
    torch.nn.init.normal_(net.conv_out.weight, std=0.3)
    x = torch.randn(batch, 3, 37, 11, generator=_gen(1), dtype=torch.float64)
    whole = net(x)  # grad enabled: never banded
    with torch.no_grad():
        assert net._plan(x) == plan
        banded = net(x)
        banded_cl = net(x.contiguous(memory_format=torch.channels_last))
    assert banded_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(banded_cl, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [(37, 53), (1, 3), (5, 2), (6, 7)])
def test_encode_decode_any_size(size: tuple[int, int], trained_like) -> None:
    torch.manual_seed(0)
    glow = Glow(3, n_blocks=2, n_flows=2, hidden=8).double()
    trained_like(glow)
    x = torch.rand(2, 3, *size, generator=_gen(1), dtype=torch.float64)
    z, logdet, orig = glow.encode(x)
    assert orig == size and logdet.shape == (2,)
    assert z.shape[2] * 4 >= size[0] and z.shape[3] * 4 >= size[1]
    x_back = glow.decode(z, orig)
    assert x_back.shape == x.shape
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-12)


def test_glow_rejects_bad_input() -> None:
    glow = Glow(3, n_blocks=2, n_flows=1, hidden=4)
    with pytest.raises(ValueError, match="multiples of 4"):
        glow(torch.zeros(1, 3, 6, 8))
    with pytest.raises(ValueError, match="3 channels"):
        glow(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="48 channels"):
        glow.inverse(torch.zeros(1, 12, 2, 2))
    with pytest.raises(ValueError, match="does not fit"):
        glow.decode(torch.zeros(1, 48, 2, 2), (9, 8))
    with pytest.raises(ValueError, match="n_flows"):
        Glow(3, n_flows=0)
    with pytest.raises(ValueError, match="hidden"):
        Glow(3, hidden=-1)


def test_round_trip_512x640_float32_trained_like(trained_like) -> None:
    torch.manual_seed(0)
    glow = Glow()  # default: 2 blocks x 8 steps, hidden 64, additive
    glow.initialize(torch.rand(2, 3, 64, 80, generator=_gen(1)))
    trained_like(glow, seed=2)
    glow.eval()
    pixels = torch.randint(0, 256, (1, 3, 512, 640), generator=_gen(3), dtype=torch.uint8)
    x = pixels.float() / 255
    with torch.inference_mode():
        z, _ = glow(x)
        assert z.shape == (1, 48, 128, 160)
        # The perturbed flow is far from linear, as a trained one would be.
        crop = x[:, :, :64, :64]
        z0, z1, z2 = (glow(k * crop)[0] for k in (0.0, 1.0, 2.0))
        assert (z2 - z0 - 2 * (z1 - z0)).abs().mean().item() > 0.2
        x_back = glow.inverse(z)
    err = (x_back - x).abs().max().item()
    assert err <= 5e-4, err
    same = (x_back * 255).round().clamp(0, 255).to(torch.uint8) == pixels
    assert same.float().mean().item() >= 0.9999


@pytest.mark.skipif(not ROADSCENE.is_dir(), reason="real RoadScene fixtures not available")
def test_round_trip_on_real_roadscene_pair(trained_like) -> None:
    cv2 = pytest.importorskip("cv2")
    thermal = cv2.imread(str(ROADSCENE / "thermal" / "FLIR_00006.jpg"), cv2.IMREAD_GRAYSCALE)
    visible = cv2.imread(str(ROADSCENE / "visible" / "FLIR_00006.jpg"), cv2.IMREAD_COLOR)
    if thermal is None or visible is None:
        pytest.fail(f"could not read the RoadScene pair FLIR_00006 under {ROADSCENE}")
    rgb = np.ascontiguousarray(visible[:, :, ::-1])
    assert thermal.shape == rgb.shape[:2] and thermal.shape[0] % 2 == 1  # an odd size: 329 x 500
    x_t = torch.from_numpy(thermal).float().div(255)[None, None].expand(1, 3, -1, -1)
    x_rgb = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)[None]
    torch.manual_seed(0)
    glow = Glow(3, n_blocks=2, n_flows=2, hidden=16)
    glow.initialize(torch.cat([x_t, x_rgb]))
    trained_like(glow, seed=1)
    glow.eval()
    with torch.inference_mode():
        for x in (x_t, x_rgb):
            z, _, size = glow.encode(x)
            x_back = glow.decode(z, size)
            assert x_back.shape == x.shape
            assert (x_back - x).abs().max().item() <= 1e-4
