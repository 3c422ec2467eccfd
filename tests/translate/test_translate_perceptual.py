"""The optional VGG-19 content/style objective, with a randomly initialised saved state dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from rgbt.translate.perceptual import VGG_LAYERS, PerceptualLoss, VGGEncoder, load_vgg_encoder
from rgbt.translate.translator import build_translator


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-style vgg19 state dict (``features.N.*`` keys) of random weights, up to relu4_1."""
    torch.manual_seed(0)
    features = make_layers(cfgs["E"])[: VGG_LAYERS["relu4_1"] + 1]
    path = tmp_path_factory.mktemp("vgg") / "vgg19_random.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_missing_or_unset_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        VGGEncoder(tmp_path / "vgg19.pth")
    with pytest.raises(ValueError, match="loss.vgg_weights"):
        load_vgg_encoder("")


def test_wrong_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        VGGEncoder(tmp_path / "junk.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="features.0.weight has shape|lacks"):
        VGGEncoder(tmp_path / "partial.pth")


def test_encoder_loads_the_file_and_gives_four_maps(vgg_file: Path) -> None:
    encoder = VGGEncoder(vgg_file)
    saved = torch.load(vgg_file)
    assert torch.equal(encoder.features[0].weight, saved["features.0.weight"])
    assert not any(p.requires_grad for p in encoder.parameters())
    maps = encoder(torch.rand(2, 3, 32, 40))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 32, 40), (128, 16, 20), (256, 8, 10), (512, 4, 5)]
    encoder.train()
    assert not encoder.training


def test_perceptual_loss_runs_inside_the_translator_objective(vgg_file: Path) -> None:
    loss_fn = PerceptualLoss(load_vgg_encoder(vgg_file), content_weight=1.0, style_weight=0.5)
    translator = build_translator(n_blocks=2, n_flows=2, hidden=8, seed=0)
    gen = torch.Generator().manual_seed(0)
    thermal, rgb = torch.rand(2, 1, 32, 40, generator=gen), torch.rand(2, 3, 32, 40, generator=gen)
    parts = translator(thermal, rgb, "day", loss_fn)
    assert {"l1", "ssim", "grad", "content", "style", "total"} <= set(parts)
    base = parts["l1"] + parts["ssim"] + parts["grad"]
    assert torch.allclose(parts["total"], base + parts["content"] + 0.5 * parts["style"])
    parts["total"].backward()
    grads = [p.grad for p in translator.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # Identical images: no style difference; content is compared after per-channel normalisation.
    same = loss_fn(rgb, rgb, rgb)
    assert float(same["content"]) < 1e-6 and float(same["style"]) < 1e-6
