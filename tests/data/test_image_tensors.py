"""image_to_tensor and its inverse tensor_to_image: shapes, ranges, rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rgbt.data.dataset import image_to_tensor, tensor_to_image


def test_round_trip_gray_and_rgb() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert image_to_tensor(gray).shape == (1, 5, 7) and image_to_tensor(rgb).shape == (3, 5, 7)
    np.testing.assert_array_equal(tensor_to_image(image_to_tensor(gray)), gray)
    np.testing.assert_array_equal(tensor_to_image(image_to_tensor(rgb)), rgb)
    batch = torch.stack([image_to_tensor(rgb), image_to_tensor(rgb)])
    out = tensor_to_image(batch)
    assert out.shape == (2, 5, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], rgb)


def test_rounds_half_to_even_and_saturates() -> None:
    values = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 1.0, 1.7]).reshape(1, 1, 7)
    np.testing.assert_array_equal(tensor_to_image(values), [[0, 0, 0, 2, 2, 255, 255]])


def test_rejects_what_is_not_a_float_image() -> None:
    with pytest.raises(ValueError, match="float"):
        tensor_to_image(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        tensor_to_image(torch.zeros(4, 4))
