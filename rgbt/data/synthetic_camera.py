"""The two cameras of the synthetic benchmark: what each makes of the painted canvas.

* thermal: the surface temperature (``temp + sun * absorb * sunlit``, degC), optics blur, sensor
  noise (NETD), column fixed-pattern noise and a smooth non-uniformity, then a linear map of
  :data:`THERMAL_GAIN` grey levels per kelvin that puts the frame's median temperature at a grey
  level in :data:`THERMAL_MEDIAN_GREY`, clipped to 0..255. KAIST's 8-bit thermal frames look like
  this: dark (median grey 50-60 by day, 25-50 at night), the sky clipped to black, night frames
  flatter than day frames because a night scene spans fewer kelvin;
* RGB by day: the sun's shadows (``sunlit``), exposure and white balance jitter, blur, noise;
* RGB by night (:func:`night_rgb`): the daylight colours lit by a weak sky glow plus, with the
  ``night_lighting`` effect, pools of light under street lamps and in front of shop windows and
  headlight beams, emissive lights with halos, headlight glare (bloom, streak, veil) that covers
  what is behind it; then a noisy, low-contrast sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from rgbt.data.synthetic_canvas import smooth_noise

#: Thermal camera gain, grey levels per kelvin (drawn per frame).
THERMAL_GAIN = (5.0, 7.0)
#: Grey level of the frame's median temperature (drawn per frame), by day and by night: KAIST's
#: thermal frames have median grey levels of about 50-60 by day and 25-50 at night.
THERMAL_MEDIAN_GREY = {"day": (45.0, 65.0), "night": (25.0, 50.0)}
#: Sodium and LED street light colours (relative RGB).
_LAMP_TINTS = (np.array([1.0, 0.78, 0.5], np.float32), np.array([0.95, 0.97, 1.0], np.float32))


@dataclass
class Lights:
    """Light sources of a night scene, in canvas pixels.

    Attributes:
        points: emissive lights ``(x, y, radius, (r, g, b))``: lit windows, lamp heads, car lights.
        lamps: street lamps ``(x, top_y, base_y)``: each lights a pool around its base.
        shops: lit shop windows ``(x0, y0, x1, y1)``: each lights the pavement in front of it.
        beams: headlight beams ``(x, y, width, length)``: the road lit towards the camera.
        glare: headlights facing the camera ``(x, y, size)``: bloom, streak and veil in RGB.
    """

    points: list[tuple[float, float, float, tuple[float, float, float]]] = field(default_factory=list)
    lamps: list[tuple[float, float, float]] = field(default_factory=list)
    shops: list[tuple[float, float, float, float]] = field(default_factory=list)
    beams: list[tuple[float, float, float, float]] = field(default_factory=list)
    glare: list[tuple[float, float, float]] = field(default_factory=list)


def _add_spot(target: np.ndarray, x: float, y: float, sx: float, sy: float, weight: np.ndarray) -> None:
    """Add ``weight * exp(-((col - x)^2 / 2 sx^2 + (row - y)^2 / 2 sy^2))`` to an ``(H, W, 3)`` image,
    within 3 sigma of the centre (``weight``: 3 floats)."""
    h, w = target.shape[:2]
    sx, sy = max(sx, 0.5), max(sy, 0.5)
    x0, x1 = max(0, int(x - 3 * sx)), min(w, int(x + 3 * sx) + 2)
    y0, y1 = max(0, int(y - 3 * sy)), min(h, int(y + 3 * sy) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-0.5 * ((np.arange(x0, x1, dtype=np.float32) - x) / sx) ** 2)
    gy = np.exp(-0.5 * ((np.arange(y0, y1, dtype=np.float32) - y) / sy) ** 2)
    target[y0:y1, x0:x1] += (gy[:, None] * gx[None, :])[..., None] * np.asarray(weight, np.float32)


#: Colours (relative RGB) of shop-window light and of headlights.
_SHOP_TINT = np.array([1.0, 0.92, 0.8], np.float32)
_HEADLIGHT_TINT = np.array([1.0, 0.98, 0.92], np.float32)


def night_rgb(rng: np.random.Generator, rgb: np.ndarray, sky: np.ndarray, lights: Lights, strength: float,
              scale: float) -> np.ndarray:
    """Turn a daylight colour canvas ``(H, W, 3)`` float32 into the night view (float32, 0-255+).

    Args:
        rng: the frame's night-lighting stream (the same draws whatever ``strength``).
        rgb: daylight colours (the scene's albedo under daylight).
        sky: ``(H, W)`` uint8, 1 where the canvas shows open sky (dark at night, lit by nothing).
        lights: the scene's light sources.
        strength: :attr:`~rgbt.data.synthetic_effects.SyntheticEffects.night_lighting` (0: a
            uniform dim light and point lights only).
        scale: frame width / 640 (sizes of halos and glare).
    """
    h, w = rgb.shape[:2]
    base = (1 - strength) * rng.uniform(0.12, 0.22) + strength * rng.uniform(0.05, 0.1)
    light = np.full((h, w, 3), base, np.float32)
    for x, top, bottom in lights.lamps:
        height = max(4.0, bottom - top)
        tint = _LAMP_TINTS[int(rng.integers(2))]
        peak = rng.uniform(0.5, 1.0)
        _add_spot(light, x, bottom - 0.15 * height, 0.3 * height, 0.22 * height, strength * peak * tint)
    for x0, y0, x1, y1 in lights.shops:
        peak = rng.uniform(0.25, 0.5)
        _add_spot(light, (x0 + x1) / 2, y1, 0.5 * (x1 - x0), 0.5 * (y1 - y0), strength * peak * _SHOP_TINT)
    for x, y, width, length in lights.beams:
        peak = rng.uniform(0.4, 0.8)
        _add_spot(light, x, y + 0.5 * length, 0.5 * width, 0.5 * length, strength * peak * _HEADLIGHT_TINT)
    out = rgb * light
    # Open sky: dark, with the orange glow of a city towards the horizon.
    rows = np.nonzero(sky.any(axis=1))[0]
    if len(rows):
        lowest = max(1, int(rows.max()))
        glow = (np.arange(h, dtype=np.float32) / lowest).clip(0, 1)[:, None, None] ** 2
        night_sky = np.array([12, 14, 22], np.float32) * rng.uniform(0.7, 1.3) + glow * np.array([14, 10, 6],
                                                                                                    np.float32)
        np.copyto(out, np.broadcast_to(night_sky, out.shape), where=sky[..., None] > 0)
    mean = float(out.mean())
    # A dim scene on a cheap sensor: lifted blacks and compressed contrast.
    out += (mean - out) * 0.2 + rng.uniform(3, 8)
    if lights.points:
        glow = np.zeros_like(out)
        for x, y, r, colour in lights.points:
            cv2.circle(glow, (int(x), int(y)), max(1, int(r)), colour, -1)
        halo = cv2.GaussianBlur(glow, (0, 0), max(1.0, 8 * scale))
        out += glow * 0.8 + halo * 0.8
    for x, y, size in lights.glare:
        bloom_r = size * rng.uniform(1.5, 3.0)
        amplitude = strength * rng.uniform(0.7, 1.2)
        streak = rng.uniform(5, 10)
        # A saturated bloom, a horizontal streak and a veil over much of the frame: what is behind is lost.
        _add_spot(out, x, y, bloom_r, bloom_r, amplitude * 300 * _HEADLIGHT_TINT)
        _add_spot(out, x, y, bloom_r * streak, max(1.0, 0.25 * bloom_r), amplitude * 80 * _HEADLIGHT_TINT)
        _add_spot(out, x, y, 0.2 * w, 0.2 * h, amplitude * 12 * _HEADLIGHT_TINT)
    return out


def rgb_camera(rng: np.random.Generator, rgb: np.ndarray, night: bool) -> np.ndarray:
    """Exposure, blur and sensor noise of the RGB camera (``rgb`` float32 HxWx3); returns uint8."""
    if night:
        blur, sigma = rng.uniform(0.6, 1.1), rng.uniform(4.0, 7.0)
    else:
        blur, sigma = rng.uniform(0.3, 0.8), rng.uniform(1.5, 3.5)
        rgb = rgb * rng.uniform(0.85, 1.1) * rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    rgb = cv2.GaussianBlur(rgb, (0, 0), blur)
    if rng.random() < 0.1:  # occasional motion blur (vehicle-mounted camera)
        length = int(rng.integers(2, 5))
        rgb = cv2.blur(rgb, (length, 1))
    noise = rng.standard_normal(rgb.shape[:2], dtype=np.float32)[..., None] * sigma
    chroma = rng.standard_normal(rgb.shape, dtype=np.float32) * (sigma * 0.4)
    return np.clip(rgb + noise + chroma + 0.5, 0, 255).astype(np.uint8)


def thermal_camera(rng: np.random.Generator, temperature: np.ndarray, scale: float, night: float = 0.0) -> np.ndarray:
    """Grey levels ``(H, W)`` uint8 of a surface temperature image ``(H, W)`` float32 degC (see the
    module docstring); ``scale`` is frame width / 640 (the optics blur scales with it), ``night`` in
    [0, 1] blends the median grey level from the day range to the night range."""
    h, w = temperature.shape
    image = cv2.GaussianBlur(temperature, (0, 0), max(0.3, rng.uniform(1.0, 1.8) * scale))
    image = image + rng.standard_normal((h, w), dtype=np.float32) * rng.uniform(0.15, 0.35)
    image = image + rng.standard_normal((1, w), dtype=np.float32) * 0.1
    image = image + 0.4 * smooth_noise(rng, h, w, max(8.0, w / 3))
    # Fixed radiometric gain, the offset following the scene: the night's narrower temperature spread
    # gives a flatter image, and the camera sets it darker.
    gain = rng.uniform(*THERMAL_GAIN)
    u = rng.random()
    (d0, d1), (n0, n1) = THERMAL_MEDIAN_GREY["day"], THERMAL_MEDIAN_GREY["night"]
    anchor = (1 - night) * (d0 + (d1 - d0) * u) + night * (n0 + (n1 - n0) * u)
    grey = anchor + gain * (image - float(np.median(image[::3, ::3])))
    return np.clip(grey + 0.5, 0, 255).astype(np.uint8)
