"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Every test parses its ground truth (tests of the cache itself point RGBT_CACHE_DIR elsewhere).
os.environ["RGBT_CACHE_DIR"] = "off"

#: Real KAIST/FLIR fixtures live beside the project; a fresh clone does not have them.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data fixtures not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic KAIST-layout root: 8 train + 6 test frames of 80x64, half day and half night."""
    from rgbt.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.getbasetemp() / "synthetic_80x64", 8, 6, seed=0, width=80, height=64,
                              progress=False)
