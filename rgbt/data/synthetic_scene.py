"""The street a synthetic frame shows: sky, road, buildings, trees, poles, furniture, cars, shadows.

:func:`draw_background` paints a :class:`Scene`'s canvas with materials whose temperatures come
from the frame's :class:`~rgbt.data.synthetic_climate.Climate`: a clear sky is far colder than
the air, dark asphalt absorbs most of the sun, walls less and leaves little (they transpire),
windows reflect the cold sky by day and leak heat at night, running engines and braked wheels are
hot. By day the sun casts soft shadows (the canvas's ``sunlit`` layer), which darken RGB and cool
the ground in thermal. At night the scene registers its light sources (lit windows, street lamps,
shop fronts, car lights, oncoming headlights) for the night RGB camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rgbt.data.synthetic_camera import Lights
from rgbt.data.synthetic_canvas import Canvas, Material, hsv_colour, smooth_noise
from rgbt.data.synthetic_climate import Climate

#: Amplitudes (K) of the shared, thermal-only and fine temperature textures of every surface.
THERMAL_TEXTURE = (1.6, 1.2, 0.5)
#: Range of the offset of the ground's shade field (higher: more of the ground in shadow).
SHADE_BIAS = (-1.0, 0.0)
#: Amplitude of the ground's solar absorptivity texture (worn, patched, stained paving).
ABSORB_TEXTURE = 0.06
#: Spatial spread of the heat the ground keeps after sunset, as a fraction of it.
RETAIN_PATCHES = 0.6


@dataclass
class Scene:
    """One frame's canvas and what the renderer knows about it (canvas pixels; the canvas is larger
    than the frame by ``margin`` on every side, so the shifted RGB crop never runs out of content).

    Attributes:
        canvas: the layers both cameras look at.
        climate: the frame's temperatures and sun.
        margin: canvas pixels around the frame.
        scale: frame width / 640 (object sizes scale with it).
        night: the frame's period is night.
        horizon: canvas row of the horizon (set by :func:`draw_background`).
        light_side: +1 / -1: the side the sun (or, at night, the main light) comes from.
        sky_rgb: the sky colour (glass reflects it).
        lights: light sources of the night scene.
    """

    canvas: Canvas
    climate: Climate
    margin: int
    scale: float
    night: bool
    horizon: int = 0
    light_side: float = 1.0
    sky_rgb: np.ndarray = field(default_factory=lambda: np.array((150, 175, 210), np.float32))
    lights: Lights = field(default_factory=Lights)

    @property
    def shape(self) -> tuple[int, int]:
        return self.canvas.shape


def _darkness(rgb: np.ndarray) -> float:
    """0 (white) .. 1 (black) from a colour's luma: dark paint absorbs more sunshine."""
    return float(1.0 - (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0)


def draw_background(scene: Scene, rng: np.random.Generator) -> None:
    """Paint sky, ground, road markings, buildings, trees, poles, furniture, cars, shadows and textures.

    Every random number comes from ``rng`` (the frame's scene stream), in an order that does not
    depend on the effects.
    """
    c, cl, s = scene.canvas, scene.climate, scene.scale
    hc, wc = scene.shape
    horizon = int(hc * rng.uniform(0.33, 0.5))
    scene.horizon = horizon
    scene.light_side = float(rng.choice([-1.0, 1.0]))
    rows = np.arange(hc, dtype=np.float32)[:, None]

    # Sky: brighter towards the horizon in RGB; in thermal the coldest thing in view, a little
    # warmer near the horizon (longer path through warm air).
    sky = np.array([(135, 170, 215), (185, 190, 198), (160, 185, 215)][rng.integers(3)], np.float32)
    scene.sky_rgb = sky
    ramp = (rows[:horizon] / max(horizon, 1))[..., None]
    c.rgb[:horizon] = sky * (0.85 + 0.2 * ramp)
    c.temp[:horizon] = cl.sky + 10.0 * ramp[..., 0] ** 2
    c.absorb[:horizon] = 0.0
    c.sky[:horizon] = 1

    # Ground: asphalt absorbs most of the sun and keeps heat after sunset; a sidewalk wedge on one side.
    asphalt = rng.uniform(85, 120)
    road = Material.of(asphalt * np.array([1.0, 1.0, rng.uniform(0.98, 1.06)]), cl.ground(1.0) + rng.uniform(-1, 1),
                       rng.uniform(0.85, 0.95))
    c.fill_rect(0, horizon, wc, hc, road)
    vp = wc * rng.uniform(0.3, 0.7)
    side = rng.choice([-1, 1])
    edge_bottom = vp + side * wc * rng.uniform(0.3, 0.8)
    walk = np.array([[vp, horizon], [edge_bottom, hc], [wc if side > 0 else 0, hc], [wc if side > 0 else 0, horizon]])
    walk_rgb = rng.uniform(140, 175)
    c.fill_poly(walk, Material.of((walk_rgb, walk_rgb, walk_rgb * 0.97), cl.ground(0.6) + rng.uniform(-1, 1),
                                  rng.uniform(0.5, 0.7)))
    # Grass: a verge along the sidewalk and a lawn across the road; transpiration keeps it below air
    # temperature by day, and it cools fastest after sunset.
    grass = np.array((rng.uniform(70, 110), rng.uniform(115, 160), rng.uniform(45, 75)))
    t_grass = cl.ambient - (rng.uniform(2, 4) if scene.night else rng.uniform(0.5, 2.5))
    verge_w, lawn_edge = wc * rng.uniform(0.03, 0.1), vp - side * wc * rng.uniform(0.45, 0.9)
    has_verge, has_lawn = rng.random(2) < (0.5, 0.4)
    if has_verge:
        c.fill_poly(np.array([[vp, horizon], [edge_bottom, hc], [edge_bottom + side * verge_w, hc], [vp, horizon]]),
                    Material.of(grass, t_grass, 0.3))
    if has_lawn:
        far = 0 if side > 0 else wc
        c.fill_poly(np.array([[vp, horizon], [lawn_edge, hc], [far, hc], [far, horizon]]),
                    Material.of(grass * 0.9, t_grass, 0.3))
    # Dashed lane marking converging to the vanishing point: white paint absorbs less sun than asphalt.
    lane_bottom = vp - side * wc * rng.uniform(0.05, 0.4)
    paint = Material.of((215, 215, 205), road.temp, 0.35)
    for k in range(8):
        a, b = (k + 0.2) / 8, (k + 0.6) / 8
        p0 = (vp + (lane_bottom - vp) * a**2, horizon + (hc - horizon) * a**2)
        p1 = (vp + (lane_bottom - vp) * b**2, horizon + (hc - horizon) * b**2)
        c.line(p0, p1, 6 * s * (a + b), paint)

    _draw_buildings(scene, rng)

    # Trees: trunk + overlapping crowns (leaves stay near air temperature); a shadow under the crown.
    for _ in range(rng.integers(0, 5)):
        tx, base = rng.uniform(0, wc), horizon + rng.uniform(0, 0.25) * (hc - horizon)
        th = (base - horizon + 20 * s) * rng.uniform(2.0, 3.5)
        trunk_w = max(1.0, th * 0.06)
        c.fill_rect(tx - trunk_w / 2, base - th * 0.6, tx + trunk_w / 2, base,
                    Material.of((85, 65, 45), cl.ambient + rng.uniform(-0.5, 0.5), 0.6))
        leaf = np.array((rng.uniform(30, 80), rng.uniform(90, 140), rng.uniform(30, 60)))
        t_leaf = cl.ambient - rng.uniform(0.0, 2.0)
        crown = th * 0.25
        for _ in range(rng.integers(2, 5)):
            cx, cy = tx + rng.normal(0, th * 0.12), base - th * rng.uniform(0.6, 0.9)
            axes = (th * rng.uniform(0.15, 0.3), th * rng.uniform(0.12, 0.22))
            c.fill_ellipse((cx, cy), axes, Material.of(leaf * rng.uniform(0.8, 1.2), t_leaf + rng.normal(0, 0.7), 0.25))
        c.shade((tx + scene.light_side * -0.3 * crown, base), (1.3 * crown, 0.3 * crown), 0.75, max(1.0, 0.1 * crown))

    # Poles and street lamps (lamps glow and light a pool at night; the lamp head is hot).
    for _ in range(rng.integers(0, 3)):
        px, base = rng.uniform(0, wc), horizon + rng.uniform(0.05, 0.5) * (hc - horizon)
        ph = (base - horizon + 10 * s) * rng.uniform(2.5, 4.0)
        pw = max(1.0, ph * 0.02)
        c.fill_rect(px - pw / 2, base - ph, px + pw / 2, base, Material.of((90, 90, 95), cl.ambient, 0.5))
        if scene.night:
            scene.lights.points.append((px, base - ph, max(2.0, ph * 0.06), (255, 235, 190)))
            scene.lights.lamps.append((px, base - ph, base))
            c.add_heat(px - 3 * pw, base - ph - 2 * pw, px + 3 * pw, base - ph + 2 * pw, 25.0)

    # Street furniture (bins, bollards, signs, planters): metal reflects the cold sky, stone and
    # plastic sit near air temperature; warm objects are the warm clutter's.
    for _ in range(rng.integers(0, 7)):
        fx, base = rng.uniform(0, wc), horizon + rng.uniform(0.02, 0.6) * (hc - horizon)
        fh = (base - horizon + 5 * s) * rng.uniform(0.3, 0.9)
        fw = fh * rng.uniform(0.25, 0.8)
        colour = hsv_colour(rng, (0.0, 0.8), (0.2, 0.9))
        c.fill_rect(fx, base - fh, fx + fw, base,
                    Material.of(colour, cl.ambient + rng.uniform(-5, 1), 0.3 + 0.6 * _darkness(colour)))

    # Cars on the road, sized by depth like the people; some face the camera (headlights at night).
    for _ in range(rng.integers(0, 4)):
        bottom = horizon + (hc - horizon) * rng.uniform(0.15, 1.0)
        ch = (bottom - horizon) * rng.uniform(0.5, 0.8)
        if rng.random() < 0.3:
            draw_car_front(scene, rng, rng.uniform(-0.1, 0.9) * wc, bottom, ch * rng.uniform(1.1, 1.4), ch)
        else:
            draw_car(scene, rng, rng.uniform(-0.2, 1.0) * wc, bottom, ch * rng.uniform(1.4, 2.6), ch)

    # Sun and shade on the ground: soft patches of building and tree shadow.
    patches = smooth_noise(rng, hc - horizon, wc, max(6.0, 90 * s))
    shade = np.clip(patches * 1.5 + rng.uniform(*SHADE_BIAS), 0.0, 1.0)
    c.sunlit[horizon:] *= 1.0 - 0.8 * shade

    # Textures: one shared smooth field (same materials look alike in both cameras) plus independent ones.
    shared = smooth_noise(rng, hc, wc, max(4.0, 40 * s))
    fine_rgb = smooth_noise(rng, hc, wc, max(1.5, 3 * s))
    fine_t = smooth_noise(rng, hc, wc, max(1.5, 4 * s))
    own_rgb = smooth_noise(rng, hc, wc, max(3.0, 25 * s))
    own_t = smooth_noise(rng, hc, wc, max(3.0, 30 * s))
    c.rgb += (9 * shared + 6 * own_rgb + 5 * fine_rgb)[..., None]
    c.temp += THERMAL_TEXTURE[0] * shared + THERMAL_TEXTURE[1] * own_t + THERMAL_TEXTURE[2] * fine_t
    # After sunset surfaces give back the day's heat unevenly (material, exposure, parked cars).
    kept = smooth_noise(rng, hc - horizon, wc, max(4.0, 50 * s))
    c.temp[horizon:] += RETAIN_PATCHES * cl.retain * kept
    c.absorb[horizon:] = np.clip(c.absorb[horizon:] + ABSORB_TEXTURE * (shared + own_t)[horizon:], 0.0, 1.0)


def _draw_buildings(scene: Scene, rng: np.random.Generator) -> None:
    """Buildings along the horizon with window grids: glass reflects the cold sky by day, some
    windows leak heat, some are lit at night; ground floors may be lit shop fronts."""
    c, cl, s = scene.canvas, scene.climate, scene.scale
    hc, wc = scene.shape
    horizon = scene.horizon
    x = -rng.uniform(0, 0.1) * wc
    while x < wc:
        bw = wc * rng.uniform(0.1, 0.3)
        if rng.random() < 0.8:
            top = horizon - horizon * rng.uniform(0.25, 0.95)
            bottom = horizon + hc * rng.uniform(0.0, 0.03)
            colour = np.array([(150, 90, 70), (170, 165, 155), (120, 125, 135), (200, 190, 170)][rng.integers(4)])
            colour = colour * rng.uniform(0.75, 1.15)
            facing = rng.uniform(0.2, 1.0)  # vertical walls catch less sun, some face away
            leak = rng.uniform(0.5, 3.0) if scene.night else 0.0
            wall = Material.of(colour, cl.ambient + rng.uniform(-1, 2) + leak, facing * (0.3 + 0.5 * _darkness(colour)))
            c.fill_rect(x, top, x + bw, bottom, wall)
            step = max(3.0, 28 * s * rng.uniform(0.7, 1.3))
            win = step * rng.uniform(0.35, 0.6)
            glass = np.array((60, 70, 85)) * rng.uniform(0.7, 1.4)
            shop = rng.random() < 0.35
            floor_top = bottom - step * 1.2 if shop else bottom
            for wy in np.arange(top + step * 0.5, floor_top - step * 0.7, step):
                for wx in np.arange(x + step * 0.4, x + bw - win - 1, step):
                    heated = rng.random() < 0.25
                    t_glass = wall.temp + rng.uniform(1, 5) if heated else cl.ambient - rng.uniform(2, 6)
                    c.fill_rect(wx, wy, wx + win, wy + win, Material.of(glass, t_glass, 0.1))
                    if scene.night and rng.random() < 0.2:
                        scene.lights.points.append((wx + win / 2, wy + win / 2, win * 0.6, (255, 225, 150)))
            if shop:  # a shop front: a glass band at street level, lit at night
                interior = hsv_colour(rng, (0.1, 0.5), (0.35, 0.7))
                sx0, sx1 = x + bw * 0.08, x + bw * 0.92
                c.fill_rect(sx0, floor_top, sx1, bottom - step * 0.1,
                            Material.of(interior * 0.6 + glass * 0.4, cl.ambient + rng.uniform(-1, 2), 0.1))
                if scene.night:
                    scene.lights.shops.append((sx0, floor_top, sx1, bottom))
        x += bw + wc * rng.uniform(0, 0.08)


def draw_car(scene: Scene, rng: np.random.Generator, x: float, bottom: float, cw: float,
             ch: float) -> tuple[float, float, float, float]:
    """Side-view car; a running engine and braked wheels are hot. Returns its ``(x0, y0, x1, y1)`` extent."""
    c, cl = scene.canvas, scene.climate
    paint = hsv_colour(rng, (0.0, 0.8), (0.2, 0.95))
    body = Material.of(paint, cl.ambient + rng.uniform(-0.5, 1.5), 0.3 + 0.6 * _darkness(paint))
    body_top = bottom - ch * 0.62
    c.fill_rect(x, body_top, x + cw, bottom - ch * 0.12, body)
    cabin = np.array([[x + cw * 0.2, body_top], [x + cw * 0.3, bottom - ch], [x + cw * 0.72, bottom - ch],
                      [x + cw * 0.85, body_top]])
    c.fill_poly(cabin, body)
    glass = np.array([[x + cw * 0.27, body_top], [x + cw * 0.33, bottom - ch * 0.92],
                      [x + cw * 0.7, bottom - ch * 0.92], [x + cw * 0.8, body_top]])
    c.fill_poly(glass, Material.of((55, 65, 80), cl.ambient - rng.uniform(2, 6), 0.1))
    front_left = rng.random() < 0.5
    ex0 = x if front_left else x + cw * 0.7
    if rng.random() < 0.7:  # engine running: the hood is hot
        c.add_heat(ex0, body_top, ex0 + cw * 0.3, bottom - ch * 0.12, rng.uniform(10, 35))
    r = max(1, int(ch * 0.2))
    for wx in (x + cw * 0.2, x + cw * 0.8):
        c.fill_ellipse((wx, bottom - r), (r, r), Material.of((25, 25, 25), cl.ambient + rng.uniform(4, 20), 0.9))
    if scene.night:
        lx = x + (0.02 * cw if front_left else 0.98 * cw)
        colour = (255, 250, 220) if front_left else (255, 40, 30)  # headlight or tail light
        scene.lights.points.append((lx, bottom - ch * 0.4, max(1.5, ch * 0.1), colour))
    return x, bottom - ch, x + cw, bottom


def draw_car_front(scene: Scene, rng: np.random.Generator, x: float, bottom: float, cw: float, ch: float) -> None:
    """A car facing the camera: at night its headlights light the road and glare in RGB; its
    radiator and engine are warm in thermal."""
    c, cl = scene.canvas, scene.climate
    paint = hsv_colour(rng, (0.0, 0.8), (0.2, 0.95))
    body = Material.of(paint, cl.ambient + rng.uniform(-0.5, 1.5), 0.3 + 0.6 * _darkness(paint))
    c.fill_rect(x, bottom - ch * 0.6, x + cw, bottom - ch * 0.1, body)
    c.fill_poly(np.array([[x + cw * 0.12, bottom - ch * 0.6], [x + cw * 0.22, bottom - ch],
                          [x + cw * 0.78, bottom - ch], [x + cw * 0.88, bottom - ch * 0.6]]), body)
    c.fill_poly(np.array([[x + cw * 0.18, bottom - ch * 0.62], [x + cw * 0.26, bottom - ch * 0.93],
                          [x + cw * 0.74, bottom - ch * 0.93], [x + cw * 0.82, bottom - ch * 0.62]]),
                Material.of((50, 60, 75), cl.ambient - rng.uniform(2, 6), 0.1))
    c.add_heat(x + cw * 0.25, bottom - ch * 0.45, x + cw * 0.75, bottom - ch * 0.15, rng.uniform(8, 25))
    for wx in (x + cw * 0.05, x + cw * 0.82):
        c.fill_rect(wx, bottom - ch * 0.12, wx + cw * 0.13, bottom, Material.of((25, 25, 25), cl.ambient + 5, 0.9))
    size = max(1.5, 0.07 * cw)
    for hx in (x + cw * 0.14, x + cw * 0.86):
        c.fill_ellipse((hx, bottom - ch * 0.42), (size, size * 0.7), Material.of((235, 235, 225), cl.ambient + 8, 0.3))
        if scene.night:
            scene.lights.points.append((hx, bottom - ch * 0.42, size, (255, 250, 225)))
            scene.lights.glare.append((hx, bottom - ch * 0.42, size))
    if scene.night:
        scene.lights.beams.append((x + cw / 2, bottom, cw * 1.2, (scene.shape[0] - bottom) + ch))
