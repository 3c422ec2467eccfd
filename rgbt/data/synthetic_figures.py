"""Figures of the synthetic scenes: walkers, cyclists and dogs as part label maps, their palettes,
and how a figure is painted onto the canvas.

A figure is first drawn into a ``uint8`` label map (0 background, then one id per part: skin,
hair, top, legs, shoes, metal, tyre, fur), then :func:`composite` colours each part from a
:class:`Palette` in every layer of the :class:`~rgbt.data.synthetic_canvas.Canvas`: RGB with
shading, thermal from the frame's :class:`~rgbt.data.synthetic_climate.Climate` (skin near 33 degC,
clothing between skin and air, dark clothing absorbing more sun).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rgbt.data.synthetic_canvas import Canvas, hsv_colour, smooth_noise
from rgbt.data.synthetic_climate import Climate

# Part ids of a figure's label map.
SKIN, HAIR, TOP, LEGS, SHOES, METAL, TYRE, FUR = 1, 2, 3, 4, 5, 6, 7, 8
N_PARTS = 9
#: Ranges of clothing insulation (0 skin-tight .. 1 a thick coat; see Climate.garment) of the top
#: (shirts, jackets) and of the legs (jeans and trousers hold the most air).
INSULATION_TOP, INSULATION_LEGS = (0.45, 0.85), (0.7, 0.95)
#: Temperature texture of clothing (folds, air gaps, damp patches), K.
FOLDS_KELVIN = 1.2
#: How much insulation people add on a cold day (and shed on a hot one), at 4 degC (32 degC).
DRESS = 0.1


def _line(img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], part: int, width: float) -> None:
    cv2.line(img, (int(round(p0[0])), int(round(p0[1]))), (int(round(p1[0])), int(round(p1[1]))), part,
             max(1, int(round(width))))


def walker(label_map: np.ndarray, cx: float, top: float, h: float, rng: np.random.Generator, bare: float = 0.0) -> None:
    """Draw a standing / walking person of height ``h`` (top of head at ``top``) into a label map.

    ``bare`` is the probability of short sleeves and, separately, of shorts or a skirt (bare
    forearms and shins show skin; warm-season clothing). The draws from ``rng`` do not depend on it.
    """
    short_sleeves, short_legs = rng.random(2) < bare
    r = max(1.0, 0.065 * h)
    lean = rng.normal(0, 0.01) * h
    head = (cx + lean, top + r)
    cv2.circle(label_map, (int(round(head[0])), int(round(head[1]))), int(round(r)), SKIN, -1)
    if r >= 2:  # hair on the upper half of the head
        cv2.ellipse(label_map, (int(round(head[0])), int(round(head[1]))), (int(round(r)), int(round(r))), 0, 180, 360,
                    HAIR, -1)
    shoulder, hip = top + 0.17 * h, top + rng.uniform(0.5, 0.56) * h
    sw, hw = rng.uniform(0.22, 0.27) * h, rng.uniform(0.16, 0.2) * h
    _line(label_map, (cx + lean, top + 2 * r - 1), (cx, shoulder), SKIN, 0.05 * h)
    coat = rng.random() < 0.3
    bottom_top = hip + (0.1 * h if coat else 0.0)
    flare = 1.15 if coat else 1.0
    torso = np.array([[cx - sw / 2, shoulder], [cx + sw / 2, shoulder], [cx + hw / 2 * flare, bottom_top],
                      [cx - hw / 2 * flare, bottom_top]])
    stride = rng.uniform(0.0, 0.14) * h
    feet_y = top + h - 0.03 * h
    for sign in (-1, 1):
        hip_pt = (cx + sign * 0.045 * h, hip)
        foot = (cx + sign * stride / 2 + rng.normal(0, 0.01) * h, feet_y)
        _line(label_map, hip_pt, foot, LEGS, 0.075 * h)
        if short_legs:
            knee = (hip_pt[0] + 0.45 * (foot[0] - hip_pt[0]), hip + 0.45 * (feet_y - hip))
            _line(label_map, knee, foot, SKIN, 0.06 * h)
        cv2.ellipse(label_map, (int(round(foot[0] + sign * 0.01 * h)), int(round(top + h - 0.025 * h))),
                    (max(1, int(0.035 * h)), max(1, int(0.02 * h))), 0, 0, 360, SHOES, -1)
    cv2.fillPoly(label_map, [np.round(torso).astype(np.int32)], TOP)
    swing = rng.uniform(-0.07, 0.07) * h
    for sign in (-1, 1):
        s0 = (cx + sign * (sw / 2 - 0.02 * h), shoulder + 0.02 * h)
        hand = (cx + sign * (sw / 2 + 0.01 * h + swing), top + 0.5 * h)
        _line(label_map, s0, hand, TOP, 0.05 * h)
        if short_sleeves:
            _line(label_map, ((s0[0] + hand[0]) / 2, (s0[1] + hand[1]) / 2), hand, SKIN, 0.04 * h)
        cv2.circle(label_map, (int(round(hand[0])), int(round(hand[1]))), max(1, int(0.025 * h)), SKIN, -1)
    if rng.random() < 0.35:  # bag or backpack: at air temperature
        bx = cx + rng.choice([-1, 1]) * sw * 0.45
        cv2.rectangle(label_map, (int(bx - 0.05 * h), int(top + 0.35 * h)), (int(bx + 0.05 * h), int(top + 0.5 * h)),
                      METAL, -1)


def rider(label_map: np.ndarray, x0: float, top: float, h: float, rng: np.random.Generator) -> float:
    """Draw a cyclist whose box starts at ``x0`` (head at ``top``, wheels touching ``top + h``).

    Returns the drawing's width.
    """
    wheel = 0.19 * h
    base = top + h
    facing = rng.choice([-1, 1])
    width = 0.95 * h
    rear, front = (x0 + wheel, x0 + width - wheel) if facing > 0 else (x0 + width - wheel, x0 + wheel)
    for wx in (rear, front):
        cv2.circle(label_map, (int(round(wx)), int(round(base - wheel))), max(1, int(round(wheel))), TYRE,
                   max(1, int(round(0.03 * h))))
    seat = (rear + facing * 0.25 * h, base - 0.5 * h)
    crank = ((rear + front) / 2 - facing * 0.03 * h, base - wheel)
    bar = (front - facing * 0.05 * h, base - 0.58 * h)
    for a, b in ((seat, crank), (crank, (rear, base - wheel)), (seat, (rear, base - wheel)), (crank, bar),
                 (bar, (front, base - wheel)), (seat, bar)):
        _line(label_map, a, b, METAL, 0.025 * h)
    hip = (seat[0], seat[1] - 0.03 * h)
    shoulder = (hip[0] + facing * 0.14 * h, top + 0.17 * h)
    r = max(1.0, 0.065 * h)
    head = (shoulder[0] + facing * 0.04 * h, top + r)
    _line(label_map, hip, shoulder, TOP, 0.14 * h)
    _line(label_map, shoulder, bar, TOP, 0.045 * h)
    knee = (hip[0] + facing * 0.18 * h, hip[1] + 0.05 * h)
    phase = rng.uniform(0, 2 * math.pi)
    pedal = (crank[0] + 0.08 * h * math.cos(phase), crank[1] + 0.08 * h * math.sin(phase))
    _line(label_map, hip, knee, LEGS, 0.07 * h)
    _line(label_map, knee, pedal, LEGS, 0.06 * h)
    cv2.circle(label_map, (int(round(head[0])), int(round(head[1]))), int(round(r)), SKIN, -1)
    return width


def dog(label_map: np.ndarray, x0: float, top: float, h: float, rng: np.random.Generator) -> float:
    """Draw a dog standing side-on, ``h`` px high at the head, box from ``x0``; returns its width."""
    facing = rng.choice([-1, 1])
    width = h * rng.uniform(1.1, 1.5)
    base = top + h
    body_y = top + 0.45 * h
    body = (x0 + width / 2, body_y)
    axes = (max(1, int(0.36 * width)), max(1, int(0.2 * h)))
    cv2.ellipse(label_map, (int(round(body[0])), int(round(body[1]))), axes, 0, 0, 360, FUR, -1)
    for fx in (0.22, 0.32, 0.68, 0.78):
        x = x0 + width * fx
        _line(label_map, (x, body_y), (x, base), FUR, max(1.0, 0.08 * h))
    hx = x0 + width * (0.88 if facing > 0 else 0.12)
    cv2.circle(label_map, (int(round(hx)), int(round(top + 0.18 * h))), max(1, int(round(0.17 * h))), FUR, -1)
    # Nose and eyes: the warmest spots of a dog in thermal.
    cv2.circle(label_map, (int(round(hx + facing * 0.12 * h)), int(round(top + 0.22 * h))), max(1, int(0.05 * h)),
               SKIN, -1)
    tail = x0 + width * (0.1 if facing > 0 else 0.9)
    _line(label_map, (tail, body_y - 0.1 * h), (tail - facing * 0.12 * h, top + 0.1 * h), FUR, max(1.0, 0.05 * h))
    return width


@dataclass
class Palette:
    """Per-part appearance of one figure (index = part id, row 0 unused).

    Attributes:
        rgb: ``(N_PARTS, 3)`` float32 daylight colours.
        temp: ``(N_PARTS,)`` float32 temperatures without sunshine, degC.
        absorb: ``(N_PARTS,)`` float32 solar absorptivities.
    """

    rgb: np.ndarray
    temp: np.ndarray
    absorb: np.ndarray


def _clothing(rng: np.random.Generator) -> np.ndarray:
    """A KAIST-like clothing colour: mostly dark or neutral (street wear in Seoul), some colour."""
    kind = rng.random()
    if kind < 0.45:
        return hsv_colour(rng, (0.0, 0.35), (0.06, 0.3))
    if kind < 0.65:
        return hsv_colour(rng, (0.0, 0.12), (0.62, 0.92))
    return hsv_colour(rng, (0.35, 0.8), (0.3, 0.8))


def _luma(rgb: np.ndarray) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def figure_palette(rng: np.random.Generator, climate: Climate) -> Palette:
    """Appearance of one person (the same number of draws from ``rng`` for every climate).

    Garments get an insulation from :data:`INSULATION_TOP` / :data:`INSULATION_LEGS`, raised by up
    to :data:`DRESS` on cold days and lowered on hot ones (:meth:`Climate.garment` turns it into a
    surface temperature), and absorb sunshine by their darkness (0.6 * (0.15 .. 0.9)).
    """
    skin = np.array([(232, 196, 170), (212, 170, 135), (176, 128, 94), (112, 78, 56)][
        rng.choice(4, p=(0.35, 0.4, 0.17, 0.08))], np.float32) * rng.uniform(0.92, 1.05)
    hair = np.array([(28, 24, 22), (62, 46, 32), (140, 112, 72), (120, 118, 115)][
        rng.choice(4, p=(0.7, 0.18, 0.06, 0.06))], np.float32)
    top = _clothing(rng)
    legs = np.array([(42, 52, 82), (30, 30, 34), (82, 82, 88), (160, 142, 110), (70, 84, 120)][
        rng.choice(5, p=(0.35, 0.3, 0.15, 0.1, 0.1))], np.float32) * rng.uniform(0.8, 1.2)
    shoes = np.array([(34, 30, 30), (220, 220, 215), (90, 70, 50)][rng.choice(3, p=(0.6, 0.25, 0.15))], np.float32)
    fur = np.array([(70, 50, 35), (30, 28, 26), (210, 200, 185), (170, 120, 70)][rng.integers(4)], np.float32)
    rgb = np.clip(np.stack([np.zeros(3), skin, hair, top, legs, shoes, (70, 70, 75), (25, 25, 25), fur]), 0, 255)

    # People dress for the weather: thicker clothing on cold days and nights, lighter on warm ones.
    dress = DRESS * min(max((18.0 - climate.ambient) / 14.0, -1.0), 1.0)
    insulation_top = min(max(rng.uniform(*INSULATION_TOP) + dress, 0.0), 1.0)
    insulation_legs = min(max(rng.uniform(*INSULATION_LEGS) + dress, 0.0), 1.0)
    temp = np.array([
        0.0, climate.skin, climate.garment(0.7), climate.garment(insulation_top), climate.garment(insulation_legs),
        climate.garment(0.95), climate.ambient, climate.ambient,
        climate.ambient + 0.55 * (climate.skin + 4.0 - climate.ambient),  # fur over a 37-38 degC dog
    ], np.float32)
    darkness = 1.0 - np.array([_luma(c) for c in rgb]) / 255.0
    absorb = 0.6 * (0.15 + 0.75 * darkness)
    absorb[SKIN], absorb[METAL], absorb[TYRE] = 0.3, 0.4, 0.9
    return Palette(rgb.astype(np.float32), temp, absorb.astype(np.float32))


def bare_skin(climate: Climate) -> float:
    """Probability of short sleeves (and of shorts) at the frame's temperature: none below 16 degC,
    80 % from 28 degC."""
    return min(max((climate.ambient - 16.0) / 15.0, 0.0), 0.8)


def decoy_palette(rng: np.random.Generator, surface_temp: float, surface_absorb: float) -> Palette:
    """A person's colours printed on (or standing behind) a surface: every part takes the surface's
    temperature and absorptivity, so the figure does not exist in thermal."""
    palette = figure_palette(rng, Climate(20.0, 0.0, 0.0, 0.0, 0.0, False))
    n = len(palette.temp)
    return Palette(palette.rgb, np.full(n, surface_temp, np.float32), np.full(n, surface_absorb, np.float32))


def _shading(labels: np.ndarray, height: float, strength: float, side: float) -> np.ndarray:
    """RGB brightness factor ``(h, w)`` of a figure lit as a solid: brighter at the top and on the
    ``side`` (+1: right, -1: left) facing the light, darker at the silhouette's edges."""
    mask = (labels > 0).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    edge = np.clip(dist / max(1.0, 0.05 * height), 0.0, 1.0)
    rows, cols = np.indices(labels.shape, dtype=np.float32)
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return np.ones(labels.shape, np.float32)
    cx, half = xs.mean(), max(1.0, (xs.max() - xs.min()) / 2)
    top, span = ys.min(), max(1.0, ys.max() - ys.min())
    factor = (1.0 - 0.35 * (1.0 - edge)) * (1.0 + 0.2 * (0.5 - (rows - top) / span)) \
        * (1.0 + 0.22 * side * np.clip((cols - cx) / half, -1, 1))
    return (1.0 + strength * (factor - 1.0)).astype(np.float32)


def composite(canvas: Canvas, rng: np.random.Generator, label_map: np.ndarray, x0: int, y0: int,
              palettes: list[Palette], owner: np.ndarray | None = None, blur: float = 0.5, opacity: float = 1.0,
              shading: float = 0.0, light_side: float = 1.0, sunlit: float | None = None,
              thermal: bool = True) -> None:
    """Paint a label map (its top-left at canvas ``(x0, y0)``) into the canvas layers.

    Args:
        canvas: the scene's canvas.
        rng: the scene stream (cloth folds; the same draws whatever the other arguments).
        label_map: ``(h, w)`` uint8 part ids.
        x0, y0: canvas position of the label map's top-left pixel.
        palettes: one per figure; ``owner`` ``(h, w)`` says which figure coloured each pixel (None: the first).
        blur: Gaussian softening of the edges, px; ``opacity`` < 1 blends the figure into what is behind.
        shading: :attr:`~rgbt.data.synthetic_effects.SyntheticEffects.person_shading` (0: flat colours).
        light_side: the side the light comes from (+1 right, -1 left).
        sunlit: direct sun reaching the figure (0..1); ``None`` leaves the sun layer as it is.
        thermal: also paint temperature and absorptivity (``False``: an RGB-only figure, e.g. a
            printed poster or a reflection).
    """
    ph, pw = label_map.shape
    region = canvas.window(x0, y0, x0 + pw, y0 + ph)
    if region is None:
        return
    rows, cols = region
    labels = label_map[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0]
    owners = owner[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0] if owner is not None \
        else np.zeros_like(labels)
    colour = np.stack([p.rgb for p in palettes])[owners, labels]
    heat = np.stack([p.temp for p in palettes])[owners, labels]
    absorb = np.stack([p.absorb for p in palettes])[owners, labels]
    # Cloth folds and skin shading: a little texture on the figure itself.
    folds = smooth_noise(rng, labels.shape[0], labels.shape[1], max(1.5, 0.08 * ph))
    colour = colour * (1 + 0.08 * folds[..., None])
    heat = heat + FOLDS_KELVIN * folds
    if shading > 0:
        colour = colour * _shading(labels, ph, shading, light_side)[..., None]
    inside = (labels > 0).astype(np.float32)
    alpha = inside * opacity
    if blur > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
        coverage = np.maximum(cv2.GaussianBlur(inside, (0, 0), blur), 1e-3)
        # Blurring the colour with the zero background darkens edges: renormalise by the coverage.
        colour = cv2.GaussianBlur(colour * inside[..., None], (0, 0), blur) / coverage[..., None]
        heat = cv2.GaussianBlur(heat * inside, (0, 0), blur) / coverage
        absorb = cv2.GaussianBlur(absorb * inside, (0, 0), blur) / coverage
    target = canvas.rgb[rows, cols]
    target += (colour - target) * alpha[..., None]
    if thermal:
        canvas.temp[rows, cols] += (heat - canvas.temp[rows, cols]) * alpha
        canvas.absorb[rows, cols] += (absorb - canvas.absorb[rows, cols]) * alpha
    if sunlit is not None:
        canvas.sunlit[rows, cols] += (sunlit - canvas.sunlit[rows, cols]) * alpha
    canvas.sky[rows, cols] &= (alpha < 0.5).astype(np.uint8)
