"""Pairs for registration tests: synthetic renderings with a known RGB offset, and the real RoadScene
fixtures (registered FLIR pairs in ``../shared/data/roadscene``, skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rgbt.data.imageio import read_image


def roadscene_pairs(shared_data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, rgb, thermal)`` of every RoadScene fixture pair."""
    folder = shared_data / "roadscene"
    pairs = []
    for path in sorted((folder / "thermal").glob("*.jpg")):
        pairs.append((path.stem, read_image(folder / "visible" / path.name, "rgb"), read_image(path, "gray")))
    if not pairs:
        pytest.skip(f"no RoadScene pairs in {folder}")
    return pairs


@pytest.fixture(scope="session")
def roadscene(shared_data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return roadscene_pairs(shared_data)


@pytest.fixture(scope="session")
def synthetic_day_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 240x192 synthetic day frame rendered without misalignment: ``(rgb, thermal)``."""
    from rgbt.data.synthetic import render_frame

    frame = render_frame(3, "set06/V000/I00007", width=240, height=192, max_shift=4.0, shift=(0.0, 0.0))
    return frame.rgb, frame.thermal
