"""The outcome of registering one RGB-thermal pair (or a pooled sequence): :class:`Registration`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rgbt.align.transform import centre_shift, normalised

#: ``status`` values. ``ok``: ``H`` is the estimate. ``ecc_not_converged``: the ECC refinement of the
#: requested general model failed; ``H`` is the best estimate of the simpler model before it. Every
#: other status means no transform was found and ``H`` is ``None``.
STATUSES: dict[str, str] = {
    "ok": "registered",
    "ecc_not_converged": "the ECC refinement of the requested model did not converge; H is the similarity / shift "
                         "estimate it started from",
    "missing_rgb": "the frame has no RGB image",
    "missing_thermal": "the frame has no thermal image",
    "unreadable_rgb": "the RGB image cannot be decoded",
    "unreadable_thermal": "the thermal image cannot be decoded",
    "flat_rgb": "the RGB image is flat (a constant or black frame)",
    "flat_thermal": "the thermal image is flat",
    "no_structure_rgb": "the RGB image has (almost) no edges to match (e.g. a dark night frame)",
    "no_structure_thermal": "the thermal image has (almost) no edges to match",
    "too_small": "an image is too small to register",
    "no_overlap": "the RGB image does not cover enough of the thermal frame under the initial transform",
    "no_match": "no transform gives a positive correlation",
}
#: Statuses that come with a transform.
WITH_TRANSFORM = frozenset({"ok", "ecc_not_converged"})


@dataclass
class Registration:
    """One registration estimate.

    Attributes:
        H: ``(3, 3)`` float64, maps a thermal pixel ``(x, y, 1)`` to the RGB pixel showing the same
            scene point (normalised to ``H[2, 2] = 1``); ``None`` when none was found.
        size: ``(height, width)`` of the thermal frame (the centre that ``dx``, ``dy`` refer to).
        score: confidence in [0, 1] (0 without a transform): see :mod:`rgbt.align.estimate`.
        status: one of :data:`STATUSES`.
        model: the transform model (``shift``, ``similarity``, ``affine``, ``homography``).
        details: diagnostics (correlations, candidates); JSON-ready.
    """

    H: np.ndarray | None
    size: tuple[int, int]
    score: float
    status: str
    model: str = "shift"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown registration status {self.status!r}; expected one of {tuple(STATUSES)}")
        if (self.H is None) == (self.status in WITH_TRANSFORM):
            raise ValueError(f"status {self.status!r} {'needs' if self.H is None else 'has no'} transform")
        if self.H is not None:
            self.H = normalised(self.H)
        self.size = (int(self.size[0]), int(self.size[1]))
        self.score = float(min(1.0, max(0.0, self.score)))

    @property
    def ok(self) -> bool:
        """Whether a transform was found (``status`` is ``ok`` or ``ecc_not_converged``)."""
        return self.H is not None

    @property
    def shift(self) -> tuple[float, float]:
        """``(dx, dy)``: where the thermal centre lands in RGB, minus the centre; NaN without ``H``."""
        if self.H is None:
            return math.nan, math.nan
        return centre_shift(self.H, self.size)

    @property
    def dx(self) -> float:
        return self.shift[0]

    @property
    def dy(self) -> float:
        return self.shift[1]

    def to_json(self) -> dict[str, Any]:
        """``{"H": 3x3 list or None, "dx", "dy" (None without H), "score", "status"}``."""
        dx, dy = self.shift
        return {
            "H": None if self.H is None else [[round(float(v), 9) for v in row] for row in self.H],
            "dx": None if self.H is None else round(dx, 4),
            "dy": None if self.H is None else round(dy, 4),
            "score": round(self.score, 4),
            "status": self.status,
        }

    @classmethod
    def failed(cls, status: str, size: tuple[int, int], model: str = "shift", **details: Any) -> Registration:
        """A registration without a transform."""
        return cls(None, size, 0.0, status, model, dict(details))
