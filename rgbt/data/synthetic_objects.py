"""What stands in a synthetic street: the annotated pedestrians and the objects that imitate them.

* pedestrians (:func:`layout_objects`, :func:`draw_object`): the four KAIST labels, heights drawn
  from KAIST's test-set distribution, opaque occluders (bush, wall, fence, car) that set the
  ``occ`` level, RGB shading and a cast shadow, and with probability ``modal_occluders`` an
  occluder only one camera sees (:func:`draw_modal_occluder`): glass or smoke;
* warm clutter (:func:`layout_distractors` then :func:`draw_clutter`): objects of pedestrian size
  at about a person's temperature that RGB shows as what they are;
* cold decoys (:func:`draw_decoy`): person-like shapes that thermal shows as a flat board or pane.

Clutter and decoys never overlap a pedestrian's footprint (the pedestrian and its occluder), so
they change what is around a person, never the person itself. Each family draws from its own
random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from rgbt.data.synthetic_canvas import Material, hsv_colour, smooth_noise
from rgbt.data.synthetic_figures import (
    HAIR,
    SKIN,
    TOP,
    Palette,
    bare_skin,
    composite,
    decoy_palette,
    dog,
    figure_palette,
    rider,
    walker,
)
from rgbt.data.synthetic_scene import Scene, draw_car

#: Object label probabilities (KAIST test set: person 80%, people 14%, person? 4%, cyclist 2%;
#: the rarer labels are boosted so a few dozen frames already hold every label).
LABEL_PROBS: dict[str, float] = {"person": 0.70, "people": 0.13, "cyclist": 0.08, "person?": 0.09}
#: Occlusion level probabilities (KAIST: 79% none, 14% partial, 7% heavy; boosted likewise).
OCCLUSION_PROBS = (0.68, 0.20, 0.12)
#: Probability that a person is placed beside one already placed (a group walking together).
CLUSTER_PROB = 0.8
#: Objects per frame, 0..6.
COUNT_PROBS = (0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.15)
#: Log-normal fit of KAIST's test-set person heights at 640x512 (test-all-20: exp(mean log h) = 59 px, log
#: standard deviation 0.42; median 55 px, half of them >= 55 px, the 'reasonable' threshold).
HEIGHT_MEDIAN, HEIGHT_LOG_SD = 59.0, 0.42

#: Warm clutter kinds: probability, height as a fraction of a person's at the same depth, width / height.
CLUTTER_KINDS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "cabinet": (0.3, (0.55, 0.9), (0.5, 0.9)),
    "vending": (0.15, (0.95, 1.15), (0.5, 0.7)),
    "scooter": (0.2, (0.55, 0.75), (1.1, 1.5)),
    "dog": (0.15, (0.3, 0.45), (1.1, 1.5)),
    "meter": (0.2, (0.7, 0.95), (0.15, 0.3)),
}
#: Cold decoy kinds, likewise.
DECOY_KINDS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "poster": (0.45, (1.1, 1.35), (0.45, 0.7)),
    "mannequin": (0.3, (1.2, 1.5), (0.6, 1.0)),
    "reflection": (0.25, (1.1, 1.4), (0.6, 1.2)),
}


@dataclass
class Placed:
    """An annotated object laid out in canvas coordinates, before drawing.

    ``modal`` is ``(kind, u1..u5)``: an occluder only one camera sees (``glass`` or ``smoke``) with
    its geometry draws, or ``None``.
    """

    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (canvas pixels)
    occlusion: int = 0
    visible: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1, empty when unoccluded
    occluder: tuple[str, float, float, float, float] | None = None  # kind, x0, y0, x1, y1
    members: list[tuple[float, float]] = field(default_factory=list)  # people: (centre x, height) each
    modal: tuple[str, ...] | None = None

    @property
    def footprint(self) -> tuple[float, float, float, float]:
        """The box and its occluder."""
        if self.occluder is None:
            return self.box
        _kind, ox0, oy0, ox1, oy1 = self.occluder
        return min(self.box[0], ox0), min(self.box[1], oy0), max(self.box[2], ox1), max(self.box[3], oy1)


@dataclass
class Distractor:
    """A warm clutter object or a cold decoy: its kind and canvas box ``(x0, y0, x1, y1)``."""

    kind: str
    box: tuple[float, float, float, float]


def sample_height(rng: np.random.Generator, label: str, scale: float, frame_h: int) -> float:
    """Object height in pixels: KAIST's log-normal height distribution scaled by ``scale``."""
    if label == "person?":
        h = rng.uniform(22, 42)
    else:
        h = math.exp(rng.normal(math.log(HEIGHT_MEDIAN), HEIGHT_LOG_SD))
    return float(min(max(h * scale, 5.0), 0.8 * frame_h))


def intersects(a: tuple[float, ...], b: tuple[float, ...], gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def layout_objects(scene: Scene, rng: np.random.Generator, frame_h: int, frame_w: int) -> list[Placed]:
    """Choose labels, sizes, positions and occluders; objects never overlap one another's footprint.

    Returns the objects in painter's order (far, i.e. feet higher in the frame, first).
    """
    s, m = scene.scale, scene.margin
    n = rng.choice(len(COUNT_PROBS), p=COUNT_PROBS)
    labels, probs = list(LABEL_PROBS), list(LABEL_PROBS.values())
    placed: list[Placed] = []
    for _ in range(n):
        label = str(rng.choice(labels, p=probs))
        for _attempt in range(15):
            # KAIST persons often walk in groups (crosswalks, campus paths): some stand beside another.
            anchor = placed[int(rng.integers(len(placed)))] if placed and rng.random() < CLUSTER_PROB else None
            h = sample_height(rng, label, s, frame_h)
            if anchor is not None and label == "person":
                h = float(min(max((anchor.box[3] - anchor.box[1]) * rng.uniform(0.85, 1.15), 5.0), 0.8 * frame_h))
            else:
                anchor = None
            if label == "people":
                k = int(rng.integers(2, 5))
                heights = [h * rng.uniform(0.9, 1.05) for _ in range(k)]
                offsets = np.cumsum([0.0] + [rng.uniform(0.18, 0.32) * h for _ in range(k - 1)])
                width = float(offsets[-1] + 0.41 * max(heights))
                h = max(heights)
            elif label == "cyclist":
                width = 0.95 * h
            else:
                width = max(2.0, round(h * rng.uniform(0.41, 0.47)))
            h, width = float(round(h)), float(round(width))
            if width > frame_w - 2:
                continue
            if anchor is not None:  # beside the anchor, at about its depth
                ax0, _ay0, ax1, ay1 = (v - m for v in anchor.box)
                foot = float(min(max(round(ay1 + rng.normal(0, 0.04 * h)), h), frame_h))
                gap = max(2.5, rng.uniform(0.05, 0.6) * width)
                x = float(round(ax1 + gap if rng.random() < 0.5 else ax0 - gap - width))
                if not 0 <= x <= frame_w - width:
                    continue
            else:  # perspective: feet lower in the frame for taller (nearer) people
                foot = scene.horizon - m + h * rng.uniform(0.8, 1.6)
                foot = float(min(max(round(foot), h), frame_h))
                x = float(rng.integers(0, int(frame_w - width) + 1))
            box = (x + m, foot - h + m, x + width + m, foot + m)
            occlusion = int(rng.choice(3, p=OCCLUSION_PROBS)) if label != "person?" else 0
            occluder, visible = None, (0.0, 0.0, 0.0, 0.0)
            if occlusion:
                frac = rng.uniform(0.15, 0.45) if occlusion == 1 else rng.uniform(0.5, 0.8)
                if rng.random() < 0.75:  # from below: car, bush, wall, fence
                    cut = box[3] - max(1, round(frac * h))  # at least one row hidden
                    kinds = ["bush", "wall", "fence"] + (["car"] if h > 12 else [])
                    margin = round(width * rng.uniform(0.1, 0.6))
                    occluder = (str(rng.choice(kinds)), box[0] - margin, cut, box[2] + margin, box[3] + 1)
                    visible = (box[0], box[1], box[2], cut)
                else:  # from one side: pole, wall corner
                    cut_w = max(1, round(frac * width))
                    if rng.random() < 0.5:
                        occluder = ("wall", box[0] - round(0.2 * width), box[1] - round(0.1 * h), box[0] + cut_w,
                                    box[3] + 1)
                        visible = (box[0] + cut_w, box[1], box[2], box[3])
                    else:
                        occluder = ("wall", box[2] - cut_w, box[1] - round(0.1 * h), box[2] + round(0.2 * width),
                                    box[3] + 1)
                        visible = (box[0], box[1], box[2] - cut_w, box[3])
            obj = Placed(label, box, occlusion, visible, occluder)
            if any(intersects(obj.footprint, other.footprint, gap=1.0) for other in placed):
                continue
            if label == "people":
                obj.members = [(box[0] + off + 0.205 * mh, mh) for off, mh in zip(offsets, heights)]
            placed.append(obj)
            break
    return sorted(placed, key=lambda o: o.box[3])


def assign_modal_occluders(placed: list[Placed], rng: np.random.Generator, probability: float) -> None:
    """Put each object behind glass or in smoke with ``probability`` (``modal`` set in place); every
    object takes the same draws from ``rng`` whatever the probability."""
    for obj in placed:
        u, kind, *geometry = rng.random(7)
        if obj.label != "person?" and u < probability:
            obj.modal = ("glass" if kind < 0.5 else "smoke", *map(float, geometry))


def draw_object(scene: Scene, rng: np.random.Generator, obj: Placed, shading: float) -> None:
    """Draw a person / people / cyclist / person? with its cast shadow and occluders.

    Args:
        scene: the frame.
        rng: the scene stream.
        obj: the laid-out object.
        shading: :attr:`~rgbt.data.synthetic_effects.SyntheticEffects.person_shading`.
    """
    c = scene.canvas
    x0, y0, x1, y1 = obj.box
    h = y1 - y0
    pad = 3
    ox, oy = int(math.floor(x0)) - pad, int(math.floor(y0)) - pad
    pw, ph = int(math.ceil(x1 - x0)) + 2 * pad + 1, int(math.ceil(h)) + 2 * pad + 1
    label_map = np.zeros((ph, pw), np.uint8)
    top = y0 - oy
    feet = (int(min(max((x0 + x1) / 2, 0), c.shape[1] - 1)), int(min(max(y1 - 1, 0), c.shape[0] - 1)))
    sunlit = float(c.sunlit[feet[1], feet[0]])
    if shading > 0:  # the cast shadow falls away from the light, on the ground at the feet
        c.shade(((x0 + x1) / 2 - scene.light_side * 0.3 * h, y1 - 0.01 * h), ((x1 - x0) / 2 + 0.25 * h, 0.05 * h + 1),
                0.7 * shading, 0.03 * h + 0.5)
    style = {"shading": shading, "light_side": scene.light_side, "sunlit": sunlit}
    bare = bare_skin(scene.climate)
    if obj.label == "people":
        owner = np.zeros((ph, pw), np.uint8)
        palettes = []
        for k, (mx, mh) in enumerate(obj.members):
            member = np.zeros_like(label_map)
            walker(member, mx - ox, y1 - mh - oy, mh, rng, bare)
            drawn = member > 0
            label_map[drawn] = member[drawn]
            owner[drawn] = k
            palettes.append(figure_palette(rng, scene.climate))
        composite(c, rng, label_map, ox, oy, palettes, owner, **style)
    elif obj.label == "cyclist":
        rider(label_map, x0 - ox, top, h, rng)
        composite(c, rng, label_map, ox, oy, [figure_palette(rng, scene.climate)], **style)
    else:
        walker(label_map, (x0 + x1) / 2 - ox, top, h, rng, bare)
        if obj.label == "person?":
            composite(c, rng, label_map, ox, oy, [figure_palette(rng, scene.climate)], blur=rng.uniform(0.9, 1.6),
                      opacity=rng.uniform(0.45, 0.75), **style)
        else:
            composite(c, rng, label_map, ox, oy, [figure_palette(rng, scene.climate)], **style)
    if obj.occluder is not None:
        _draw_occluder(scene, rng, *obj.occluder)
    if obj.modal is not None:
        draw_modal_occluder(scene, obj)


def _draw_occluder(scene: Scene, rng: np.random.Generator, kind: str, x0: float, y0: float, x1: float,
                   y1: float) -> None:
    """A wall, bush, car or fence covering part of an object, opaque in both cameras."""
    c, cl = scene.canvas, scene.climate
    if kind == "car":
        height = y1 - y0
        draw_car(scene, rng, x0, y1 + 0.15 * height, x1 - x0, height * 1.15)
        colour = hsv_colour(rng, (0.0, 0.7), (0.2, 0.9))
        c.fill_rect(x0, y0 + 0.1 * height, x1, y1, Material.of(colour, cl.ambient + rng.uniform(0, 2), 0.7))
    elif kind == "bush":
        leaf = np.array((rng.uniform(30, 70), rng.uniform(80, 130), rng.uniform(25, 50)))
        c.fill_rect(x0, y0, x1, y1, Material.of(leaf, cl.ambient - rng.uniform(0, 2), 0.25))
        cx, cw = (x0 + x1) / 2, (x1 - x0) / 2
        for _ in range(3):
            ex = cx + rng.uniform(-0.6, 0.6) * cw
            c.fill_ellipse((ex, y0), (cw * 0.4, (y1 - y0) * 0.25),
                           Material.of(leaf * rng.uniform(0.8, 1.2), cl.ambient - rng.uniform(0, 2), 0.25), 180, 360)
    else:  # wall, fence or pole: a textured slab
        colour = np.array([(160, 155, 150), (120, 100, 80), (90, 95, 100)][rng.integers(3)]) * rng.uniform(0.8, 1.2)
        slab = Material.of(colour, cl.ambient + rng.uniform(-1, 1.5), 0.6)
        c.fill_rect(x0, y0, x1, y1, slab)
        if kind == "fence":
            step = max(2.0, (x1 - x0) / 8)
            bar = Material.of(colour * 0.6, cl.ambient + rng.uniform(-1, 1), 0.8)
            for bx in np.arange(x0 + step / 2, x1, step):
                c.fill_rect(bx, y0, bx + max(1.0, step * 0.2), y1, bar)


def draw_modal_occluder(scene: Scene, obj: Placed) -> None:
    """Glass in front of the object (RGB sees through it, thermal sees the pane) or smoke around it
    (RGB sees smoke, long-wave infrared passes it); geometry from ``obj.modal``."""
    c, cl = scene.canvas, scene.climate
    kind, u1, u2, u3, u4, u5 = obj.modal
    x0, y0, x1, y1 = obj.box
    w, h = x1 - x0, y1 - y0
    if kind == "glass":
        gx0, gx1 = x0 - (0.1 + 0.5 * u1) * w, x1 + (0.1 + 0.5 * u2) * w
        gy0 = y0 - (0.05 + 0.25 * u3) * h if u4 < 0.6 else y0 + (0.3 + 0.3 * u3) * h
        region = c.window(int(round(gx0)), int(round(gy0)), int(round(gx1)), int(round(y1 + 1)))
        if region is None:
            return
        rows, cols = region
        c.rgb[rows, cols] = c.rgb[rows, cols] * (0.78 + 0.14 * u5) + scene.sky_rgb * (0.06 + 0.1 * u5)
        c.temp[rows, cols] = cl.ambient - 1.0 - 3.0 * u5
        c.absorb[rows, cols] = 0.1
        frame = Material.of((110, 112, 118), cl.ambient, 0.5)
        post = max(1.0, 0.03 * h)
        c.fill_rect(gx0 - post, gy0 - post, gx0, y1 + 1, frame)
        c.fill_rect(gx1, gy0 - post, gx1 + post, y1 + 1, frame)
        c.fill_rect(gx0 - post, gy0 - post, gx1 + post, gy0, frame)
        return
    centre = ((x0 + x1) / 2 + (u1 - 0.5) * 0.4 * w, y0 + (0.2 + 0.6 * u2) * h)
    axes = ((0.7 + 0.7 * u3) * w, (0.35 + 0.35 * u4) * h)
    pad = int(0.3 * h) + 2
    bx0, by0 = int(centre[0] - axes[0]) - pad, int(centre[1] - axes[1]) - pad
    bx1, by1 = int(centre[0] + axes[0]) + pad, int(centre[1] + axes[1]) + pad
    region = c.window(bx0, by0, bx1, by1)
    if region is None:
        return
    rows, cols = region
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    cv2.ellipse(mask, (int(centre[0]) - cols.start, int(centre[1]) - rows.start),
                (max(1, int(axes[0])), max(1, int(axes[1]))), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.12 * h))
    # Smoke texture from the smoke's own draws, so the object's other draws stay where they were.
    puff = smooth_noise(np.random.default_rng(int(u5 * 2**31)), mask.shape[0], mask.shape[1], max(2.0, 0.2 * h))
    alpha = np.clip(mask * (0.75 + 0.25 * puff) * (0.65 + 0.27 * u5), 0.0, 0.95)
    grey = 165.0 + 50.0 * u1
    c.rgb[rows, cols] += (grey - c.rgb[rows, cols]) * alpha[..., None]


def layout_distractors(scene: Scene, rng: np.random.Generator, count: float,
                       kinds: dict[str, tuple[float, tuple[float, float], tuple[float, float]]],
                       avoid: list[tuple[float, float, float, float]], frame_h: int, frame_w: int) -> list[Distractor]:
    """Place ``Poisson(count)`` objects of ``kinds`` on the ground at pedestrian scale, clear of
    ``avoid`` (canvas boxes; placed distractors are added to it)."""
    s, m = scene.scale, scene.margin
    names = list(kinds)
    probs = np.array([kinds[k][0] for k in names])
    out = []
    for _ in range(int(rng.poisson(count)) if count > 0 else 0):
        kind = str(rng.choice(names, p=probs / probs.sum()))
        _p, size, aspect = kinds[kind]
        for _attempt in range(10):
            person_h = sample_height(rng, "person", s, frame_h)
            h = float(round(person_h * rng.uniform(*size)))
            w = float(max(2.0, round(h * rng.uniform(*aspect))))
            foot = float(min(max(round(scene.horizon - m + person_h * rng.uniform(0.8, 1.6)), h), frame_h))
            if w > frame_w - 2 or h < 3:
                continue
            x = float(rng.integers(0, int(frame_w - w) + 1))
            box = (x + m, foot - h + m, x + w + m, foot + m)
            if any(intersects(box, other, gap=2.0) for other in avoid):
                continue
            avoid.append(box)
            out.append(Distractor(kind, box))
            break
    return out


def _person_warmth(scene: Scene, rng: np.random.Generator) -> float:
    """A temperature between a clothed and a bare person of this frame, degC."""
    cl = scene.climate
    return cl.ambient + rng.uniform(0.45, 1.1) * (cl.skin - cl.ambient)


def draw_clutter(scene: Scene, rng: np.random.Generator, item: Distractor) -> None:
    """A warm object of pedestrian size: a thermal look-alike that RGB shows as what it is."""
    c, cl = scene.canvas, scene.climate
    x0, y0, x1, y1 = item.box
    w, h = x1 - x0, y1 - y0
    warm = _person_warmth(scene, rng)
    colour = hsv_colour(rng, (0.0, 0.6), (0.25, 0.85))
    if item.kind in ("cabinet", "vending"):
        if item.kind == "vending":
            colour = np.array([(200, 30, 35), (30, 70, 170), (235, 235, 230)][rng.integers(3)], np.float32)
        c.fill_rect(x0, y0, x1, y1, Material.of(colour, warm, 0.5))
        c.add_heat(x0, y0, x1, y0 + 0.3 * h, rng.uniform(0.5, 2.0))  # warm air rises to the vents
        line = Material.of(colour * 0.55, warm - 0.5, 0.5)
        if item.kind == "vending":
            window = Material.of((40, 45, 55), warm - 1, 0.1)
            c.fill_rect(x0 + 0.1 * w, y0 + 0.1 * h, x1 - 0.1 * w, y0 + 0.6 * h, window)
            for k in range(3):
                ry = y0 + (0.15 + 0.15 * k) * h
                for j in range(3):
                    rx = x0 + (0.18 + 0.24 * j) * w
                    c.fill_rect(rx, ry, rx + 0.14 * w, ry + 0.08 * h,
                                Material.of(hsv_colour(rng, (0.5, 1.0), (0.6, 1.0)), warm - 1, 0.1))
            if scene.night:
                scene.lights.shops.append((x0, y0, x1, y1))
        else:
            c.line((x0 + 0.5 * w, y0 + 0.08 * h), (x0 + 0.5 * w, y1 - 0.08 * h), max(1.0, 0.03 * w), line)
            c.fill_rect(x0 + 0.6 * w, y0 + 0.3 * h, x0 + 0.8 * w, y0 + 0.4 * h,
                        Material.of((230, 200, 40), warm, 0.4))
    elif item.kind == "scooter":
        r = max(1.0, 0.22 * h)
        tyre = Material.of((25, 25, 25), cl.ambient + rng.uniform(0, 3), 0.9)
        for wx in (x0 + r, x1 - r):
            c.fill_ellipse((wx, y1 - r), (r, r), tyre)
        body = np.array([[x0 + 0.15 * w, y1 - 1.2 * r], [x0 + 0.3 * w, y0 + 0.35 * h], [x1 - 0.25 * w, y0 + 0.35 * h],
                         [x1 - 0.1 * w, y1 - 1.2 * r]])
        c.fill_poly(body, Material.of(colour, cl.ambient + rng.uniform(0, 2), 0.6))
        c.line((x1 - 0.2 * w, y0 + 0.35 * h), (x1 - 0.25 * w, y0), max(1.0, 0.04 * h),
               Material.of((60, 60, 65), cl.ambient, 0.5))
        c.fill_rect(x0 + 0.3 * w, y0 + 0.5 * h, x0 + 0.65 * w, y1 - 0.9 * r, Material.of((45, 45, 48), warm + 4, 0.6))
    elif item.kind == "dog":
        label_map = np.zeros((int(h) + 7, int(w) + 7), np.uint8)
        dog(label_map, 3, 3, h, rng)
        palette = figure_palette(rng, cl)
        fur = Palette(palette.rgb.copy(), palette.temp.copy(), palette.absorb.copy())
        fur.temp[SKIN] = cl.skin + 2.0
        composite(c, rng, label_map, int(x0) - 3, int(y0) - 3, [fur], sunlit=None)
    else:  # meter / controller box on a post
        c.fill_rect(x0 + 0.35 * w, y0 + 0.3 * h, x1 - 0.35 * w, y1, Material.of((100, 100, 105), cl.ambient, 0.5))
        c.fill_rect(x0, y0, x1, y0 + 0.35 * h, Material.of(colour, warm, 0.5))


def draw_decoy(scene: Scene, rng: np.random.Generator, item: Distractor, shading: float) -> None:
    """A person-like shape that is not a person: a printed poster, a mannequin behind a shop window,
    a reflection in glass. RGB shows a figure; thermal shows only the board or the pane."""
    c, cl = scene.canvas, scene.climate
    x0, y0, x1, y1 = item.box
    w, h = x1 - x0, y1 - y0
    fig_h = h * rng.uniform(0.78, 0.9)
    pad = 3
    ox, oy = int(math.floor(x0)) - pad, int(math.floor(y0)) - pad
    label_map = np.zeros((int(math.ceil(h)) + 2 * pad + 1, int(math.ceil(w)) + 2 * pad + 1), np.uint8)
    walker(label_map, (x0 + x1) / 2 - ox, y1 - fig_h - oy - 0.04 * h, fig_h, rng, bare_skin(cl))
    if item.kind == "poster":
        board = Material.of(np.array([(240, 238, 230), (245, 225, 150), (190, 215, 235)][rng.integers(3)]),
                            cl.ambient + rng.uniform(-1, 1.5), 0.35)
        c.fill_rect(x0, y0, x1, y1, board)
        palette = decoy_palette(rng, board.temp, board.absorb)
        composite(c, rng, label_map, ox, oy, [palette], shading=0.5 * shading, light_side=scene.light_side,
                  thermal=False)
        band = Material.of(hsv_colour(rng, (0.5, 0.9), (0.3, 0.8)), board.temp, board.absorb)
        c.fill_rect(x0, y1 - 0.12 * h, x1, y1, band)
        return
    pane = Material.of((48, 58, 74), cl.ambient - rng.uniform(1, 4), 0.1)
    if item.kind == "mannequin":
        interior = hsv_colour(rng, (0.05, 0.4), (0.35, 0.6))
        c.fill_rect(x0, y0, x1, y1, Material.of(interior, pane.temp, pane.absorb))
        palette = decoy_palette(rng, pane.temp, pane.absorb)
        palette.rgb[SKIN] = palette.rgb[HAIR] = (226, 218, 208)  # a pale, bald figure
        palette.rgb[TOP] = hsv_colour(rng, (0.3, 0.9), (0.4, 0.95))
        composite(c, rng, label_map, ox, oy, [palette], shading=shading, light_side=scene.light_side, thermal=False)
        region = c.window(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        if region is not None:
            c.rgb[region] = c.rgb[region] * 0.85 + scene.sky_rgb * 0.08
        if scene.night:
            scene.lights.shops.append((x0, y0, x1, y1))
    else:  # a reflection: a faint mirrored figure on a dark pane
        c.fill_rect(x0, y0, x1, y1, Material.of(np.asarray(pane.rgb) * 0.7 + scene.sky_rgb * 0.3, pane.temp,
                                                pane.absorb))
        palette = decoy_palette(rng, pane.temp, pane.absorb)
        composite(c, rng, label_map[:, ::-1].copy(), ox, oy, [palette], opacity=rng.uniform(0.3, 0.5),
                  blur=1.0, thermal=False)
    frame = Material.of((105, 108, 112), cl.ambient, 0.5)
    post = max(1.0, 0.03 * h)
    c.fill_rect(x0 - post, y0 - post, x1 + post, y0, frame)
    c.fill_rect(x0 - post, y0, x0, y1, frame)
    c.fill_rect(x1, y0, x1 + post, y1, frame)
