"""The layered canvas a synthetic scene is painted on, once for both cameras.

Every pixel of a :class:`Canvas` holds what each camera needs from the surface seen there: its RGB
colour in daylight (``rgb``), its temperature without sunshine (``temp``, degC), its solar
absorptivity (``absorb``), how much direct sun reaches it (``sunlit``) and whether it is open sky
(``sky``: no surface a lamp could light). Painting with a
:class:`Material` writes all four at once, so one scene layout renders consistently in both
modalities; an effect that one camera sees and the other does not (glass, smoke, glare) writes only
the layers of that camera. :func:`smooth_noise` and :func:`hsv_colour` are the painter's two random
sources: texture fields and colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Material:
    """What a surface looks like to both cameras.

    Attributes:
        rgb: daylight colour, 3 floats 0-255 (RGB order).
        temp: temperature without sunshine, degC.
        absorb: solar absorptivity in [0, 1] (dark asphalt ~0.9, white paint ~0.3, sky 0).
    """

    rgb: tuple[float, float, float]
    temp: float
    absorb: float

    @classmethod
    def of(cls, rgb: Sequence[float] | np.ndarray, temp: float, absorb: float) -> Material:
        """A material with the colour clipped to 0-255 and the absorptivity to [0, 1]."""
        r, g, b = (min(255.0, max(0.0, float(v))) for v in rgb)
        return cls((r, g, b), float(temp), min(1.0, max(0.0, float(absorb))))


class Canvas:
    """Float32 layers ``(Hc, Wc)`` (``rgb`` ``(Hc, Wc, 3)``, ``sky`` uint8 0/1) in canvas pixels; see the
    module docstring.

    Args:
        height, width: canvas size in pixels.
    """

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), np.float32)
        self.temp = np.zeros((height, width), np.float32)
        self.absorb = np.zeros((height, width), np.float32)
        self.sunlit = np.ones((height, width), np.float32)
        self.sky = np.zeros((height, width), np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.temp.shape[:2]

    def _clip_rect(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
        h, w = self.shape
        xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
        ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
        return (xa, ya, xb, yb) if xa < xb and ya < yb else None

    def fill_rect(self, x0: float, y0: float, x1: float, y1: float, material: Material) -> None:
        """Fill a rectangle (clipped to the canvas) with a material."""
        rect = self._clip_rect(x0, y0, x1, y1)
        if rect is not None:
            xa, ya, xb, yb = rect
            self.rgb[ya:yb, xa:xb] = material.rgb
            self.temp[ya:yb, xa:xb] = material.temp
            self.absorb[ya:yb, xa:xb] = material.absorb
            self.sky[ya:yb, xa:xb] = 0

    def add_heat(self, x0: float, y0: float, x1: float, y1: float, kelvin: float) -> None:
        """Warm a rectangle by ``kelvin`` (a running engine, a vent): thermal only."""
        rect = self._clip_rect(x0, y0, x1, y1)
        if rect is not None:
            xa, ya, xb, yb = rect
            self.temp[ya:yb, xa:xb] += kelvin

    def fill_poly(self, points: np.ndarray, material: Material) -> None:
        """Fill a polygon ``(K, 2)`` of canvas ``(x, y)`` points."""
        pts = [np.round(points).astype(np.int32)]
        cv2.fillPoly(self.rgb, pts, material.rgb)
        cv2.fillPoly(self.temp, pts, material.temp)
        cv2.fillPoly(self.absorb, pts, material.absorb)
        cv2.fillPoly(self.sky, pts, 0)

    def fill_ellipse(self, centre: tuple[float, float], axes: tuple[float, float], material: Material,
                     start: float = 0, end: float = 360) -> None:
        """Fill an axis-aligned ellipse (or the sector ``start..end`` degrees of it)."""
        c = (int(round(centre[0])), int(round(centre[1])))
        a = (max(1, int(round(axes[0]))), max(1, int(round(axes[1]))))
        cv2.ellipse(self.rgb, c, a, 0, start, end, material.rgb, -1)
        cv2.ellipse(self.temp, c, a, 0, start, end, material.temp, -1)
        cv2.ellipse(self.absorb, c, a, 0, start, end, material.absorb, -1)
        cv2.ellipse(self.sky, c, a, 0, start, end, 0, -1)

    def line(self, p0: tuple[float, float], p1: tuple[float, float], width: float, material: Material) -> None:
        """A straight line ``width`` pixels wide."""
        a = (int(round(p0[0])), int(round(p0[1])))
        b = (int(round(p1[0])), int(round(p1[1])))
        w = max(1, int(round(width)))
        cv2.line(self.rgb, a, b, material.rgb, w)
        cv2.line(self.temp, a, b, material.temp, w)
        cv2.line(self.absorb, a, b, material.absorb, w)
        cv2.line(self.sky, a, b, 0, w)

    def window(self, x0: int, y0: int, x1: int, y1: int) -> tuple[slice, slice] | None:
        """Row and column slices of the canvas part of the rectangle ``[x0, x1) x [y0, y1)``, or ``None``."""
        h, w = self.shape
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        return (slice(ya, yb), slice(xa, xb)) if xa < xb and ya < yb else None

    def shade(self, centre: tuple[float, float], axes: tuple[float, float], depth: float, blur: float) -> None:
        """Cast a soft elliptical shadow: ``sunlit`` drops by ``depth`` inside the ellipse (edges
        softened by a Gaussian of ``blur`` px)."""
        h, w = self.shape
        pad = int(3 * blur) + 2
        x0 = int(centre[0] - axes[0]) - pad
        y0 = int(centre[1] - axes[1]) - pad
        x1, y1 = int(centre[0] + axes[0]) + pad + 1, int(centre[1] + axes[1]) + pad + 1
        region = self.window(x0, y0, x1, y1)
        if region is None:
            return
        rows, cols = region
        mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
        cv2.ellipse(mask, (int(round(centre[0])) - cols.start, int(round(centre[1])) - rows.start),
                    (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))), 0, 0, 360, 1.0, -1)
        if blur > 0:
            mask = cv2.GaussianBlur(mask, (0, 0), blur)
        self.sunlit[rows, cols] *= 1.0 - depth * mask


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field ``(height, width)`` float32 of roughly unit variance, features about ``cell`` px wide."""
    gh, gw = max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def hsv_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    """A random RGB colour (float32 0-255) with hue uniform and saturation / value in ranges."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
