"""`aligned_visible/` written by `rgbt align --write-aligned` read back as the modality `aligned_rgb`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rgbt.align import warp_to_thermal
from rgbt.data.dataset import PairDataset
from rgbt.data.imageio import read_image, write_image
from rgbt.data.perturbation import Perturbation, apply_perturbation
from rgbt.data.sample import MODALITIES
from rgbt.data.show import render_frame
from rgbt.data.source import open_source
from rgbt.engine.align import align_dataset


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-frame synthetic day root (160x128) and its `rgbt align --write-aligned --image-format png` folder."""
    from rgbt.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("aligned")
    root = generate_synthetic(base / "root", 0, 2, seed=3, width=160, height=128, progress=False)
    out = base / "out"
    align_dataset(root, out, pool="sequence", write_aligned=True, workers=0, image_format="png", progress=False)
    return root, out


def test_kaist_layout_reads_aligned_rgb(aligned: tuple[Path, Path]) -> None:
    root, out = aligned
    assert "aligned_rgb" in MODALITIES
    plain = open_source(root)
    source = open_source(root, aligned_rgb_root=out)
    assert plain[0].aligned_rgb is None and plain.image_paths(0)["aligned_rgb"] is None
    for index in range(len(source)):
        sample = source[index]
        path = source.image_paths(index)["aligned_rgb"]
        assert path.parent.name == "aligned_visible" and path.suffix == ".png"
        assert sample.meta["paths"]["aligned_rgb"] == str(path)
        assert sample.aligned_rgb.shape == (*sample.thermal.shape, 3) and sample.aligned_rgb.dtype == np.uint8
        np.testing.assert_array_equal(sample.aligned_rgb, read_image(path, "rgb"))
    # The registered RGB is closer to the thermal frame than the raw one: warping it by the estimate
    # again moves it by (almost) nothing.
    from rgbt.align import estimate

    sample = source[0]
    assert np.hypot(*estimate(sample.aligned_rgb, sample.thermal).shift) < 0.5
    assert np.hypot(*estimate(sample.rgb, sample.thermal).shift) > 0.5


def test_the_aligned_modality_flows_through_dataset_perturbation_and_show(aligned: tuple[Path, Path]) -> None:
    root, out = aligned
    source = open_source(root, aligned_rgb_root=out)
    images, target = PairDataset(source, ("aligned_rgb", "thermal"))[0]
    assert images["aligned_rgb"].shape == (3, 128, 160) and images["thermal"].shape == (1, 128, 160)
    sample = source[0]
    moved = apply_perturbation(sample, Perturbation.parse("shift:3,0:aligned_rgb"))
    np.testing.assert_array_equal(moved.rgb, sample.rgb)
    assert not np.array_equal(moved.aligned_rgb, sample.aligned_rgb)
    assert render_frame(sample).shape == (128, 3 * 160, 3)  # RGB | thermal | aligned RGB
    assert render_frame(sample.with_images(aligned_rgb=None)).shape == (128, 2 * 160, 3)


def test_a_pairs_root_and_a_missing_aligned_image(tmp_path: Path) -> None:
    from rgbt.data.synthetic import render_frame as render_synthetic

    root = tmp_path / "pairs"
    frames = {}
    for k in range(2):
        frame = render_synthetic(1, f"set06/V000/I{k:05d}", 160, 128, 4.0, shift=(2.0, -1.0))
        write_image(root / "visible" / f"p{k}.png", frame.rgb)
        write_image(root / "lwir" / f"p{k}.png", frame.thermal)
        frames[f"p{k}"] = frame
    out = tmp_path / "out"
    align_dataset(root, out, write_aligned=True, workers=0, image_format="png", progress=False)
    source = open_source(root, aligned_rgb_root=out)
    assert source.image_paths(0)["aligned_rgb"] == out / "aligned_visible" / "p0.png"
    sample = source[0]
    expected = warp_to_thermal(frames["p0"].rgb, np.array([[1, 0, 2.0], [0, 1, -1.0], [0, 0, 1]]), (128, 160))
    # The estimate is within a fraction of a pixel of the true shift: most of the picture agrees.
    assert np.median(np.abs(sample.aligned_rgb.astype(int) - expected.astype(int))[8:-8, 8:-8]) <= 2
    (out / "aligned_visible" / "p1.png").unlink()
    with pytest.raises(FileNotFoundError, match="aligned RGB image missing for frame p1"):
        source[1]
    with pytest.raises(FileNotFoundError, match="aligned RGB folder not found: .*nowhere"):
        open_source(root, aligned_rgb_root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="fake RGB folder not found"):
        open_source(root, fake_rgb_root=tmp_path / "nowhere")
