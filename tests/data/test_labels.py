"""Category names: matched by name, normalised, release aliases resolved."""

from __future__ import annotations

from rgbt.data.labels import canonical_label


def test_canonical_labels() -> None:
    assert canonical_label(" Bike ") == "bicycle"
    assert canonical_label("motor") == "motorcycle"
    assert canonical_label("Other  Vehicle") == "other vehicle"
