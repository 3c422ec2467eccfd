"""A synthetic RGB-thermal pedestrian dataset written in the KAIST layout.

The generator draws street scenes twice, once as an RGB camera and once as a thermal camera, and
writes a root that :class:`rgbt.data.kaist.KaistSource` (and every tool reading KAIST) opens with
no special path::

    images/setXX/VYYY/{visible,lwir}/IZZZZZ.jpg
    annotations/setXX/VYYY/IZZZZZ.txt                     bbGt version 3, thermal frame
    annotations_paired/setXX/VYYY/{visible,lwir}/IZZZZZ.txt   KAIST-Paired: same objects, same order
    imageSets/{train,test}.txt
    synthetic.json                                        parameters, version, per-frame (dx, dy)

What the scenes hold, and why:

* pedestrians with a head, torso, arms and legs (not rectangles), warm in thermal, dressed in
  random colours in RGB; heights follow KAIST's test distribution (log-normal, median ~52 px at
  640x512) scaled by ``width / 640``, so the 55 px "reasonable" threshold (scaled the same way)
  falls inside the distribution;
* the four KAIST labels: ``person``, ``people`` (overlapping groups), ``cyclist`` (rider on a
  bicycle) and ``person?`` (small, blurred, low contrast); partial / heavy occlusion (occluder
  objects drawn over the lower part or one side, ``occ`` 1 / 2, visible box in ``vx vy vw vh``);
* cluttered backgrounds from one scene layout rendered per modality: sky, road, buildings with
  windows, trees, poles and cars (warm engines and wheels in thermal), plus smooth noise textures
  that are partly shared and partly independent between the modalities;
* camera effects: blur and noise; at night (sets 03 and 09) the RGB camera is dark, low-contrast
  and noisy with a few light sources, while the thermal camera renders exactly as by day;
* a per-frame RGB misalignment ``(dx, dy)`` (+dx moves RGB content right, +dy down, relative to
  thermal), mostly a few pixels and at most ``max_shift``. Paired visible boxes are the thermal
  boxes plus ``(dx, dy)`` exactly, and may reach up to ``max_shift`` px outside the RGB frame.

Every frame is drawn from its own seed ``(seed, set, video, frame)``, so the number of worker
processes never changes the output and the same arguments give byte-identical files (OpenCV's
JPEG encoder is deterministic at a fixed quality).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.bbgt import BbGtObject, write_bbgt
from rgbt.data.errors import DataFormatError, read_text
from rgbt.data.imageio import write_image
from rgbt.data.jsonfields import as_int, as_list, as_number, as_object, as_str, check_unique, get, load_json
from rgbt.data.kaist import FrameId, annotation_path, image_path, paired_annotation_path, parse_frame_id
from rgbt.outlock import LOCK_NAME

#: Bumped whenever the renderer changes its output; stored in the manifest.
VERSION = 1
#: Manifest file name at the dataset root.
MANIFEST_NAME = "synthetic.json"
#: Default frame size: half of KAIST's 640x512 in each axis. People are then 14-100 px tall, enough
#: for a recognisable head / torso / legs, and a CPU trains a small detector on it in minutes.
DEFAULT_WIDTH, DEFAULT_HEIGHT = 320, 256
#: KAIST frame width: object sizes and the default misalignment scale with ``width / KAIST_WIDTH``.
KAIST_WIDTH = 640
#: Default largest |dx|, |dy| at 640 px width (KAIST pairs are off by a few pixels).
KAIST_MAX_SHIFT = 6.0
#: Frames per video folder (``V000``, ``V001``, ...).
FRAMES_PER_VIDEO = 50
#: JPEG quality of every written image.
JPEG_QUALITY = 90
#: KAIST set ids used per split: (day set, night set).
SPLIT_SETS: dict[str, tuple[int, int]] = {"train": (0, 3), "test": (6, 9)}
#: Object label probabilities (KAIST test set: person 80%, people 14%, person? 4%, cyclist 2%;
#: the rarer labels are boosted so a few dozen frames already hold every label).
_LABEL_PROBS: dict[str, float] = {"person": 0.70, "people": 0.13, "cyclist": 0.08, "person?": 0.09}
#: Occlusion level probabilities (KAIST: 81% none, 13% partial, 6% heavy; boosted likewise).
_OCCLUSION_PROBS = (0.68, 0.20, 0.12)
#: Objects per frame, 0..6.
_COUNT_PROBS = (0.08, 0.18, 0.22, 0.2, 0.15, 0.1, 0.07)


# --------------------------------------------------------------------------------------------
# Parameters and frame plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines a synthetic root's content (stored in the manifest).

    ``max_shift`` is the largest RGB misalignment in pixels (at this width).
    """

    n_train: int
    n_test: int
    seed: int
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    max_shift: float = KAIST_MAX_SHIFT * DEFAULT_WIDTH / KAIST_WIDTH
    lwir_channels: int = 3
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.n_train < 0 or self.n_test < 0 or self.n_train + self.n_test == 0:
            raise ValueError(f"need n_train, n_test >= 0 and at least one frame, got {self.n_train}, {self.n_test}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.width < 32 or self.height < 32:
            raise ValueError(f"frames must be at least 32x32 pixels, got {self.width}x{self.height}")
        if not 0 <= self.max_shift <= min(self.width, self.height) / 4:
            raise ValueError(f"max_shift must be in [0, {min(self.width, self.height) / 4}], got {self.max_shift}")
        if self.lwir_channels not in (1, 3):
            raise ValueError(f"lwir_channels must be 1 or 3, got {self.lwir_channels}")

    @property
    def scale(self) -> float:
        """Object-size scale relative to KAIST's 640 px width."""
        return self.width / KAIST_WIDTH


def frame_plan(n_train: int, n_test: int) -> list[tuple[str, str]]:
    """Frame ids and splits: ``[(setXX/VYYY/IZZZZZ, split), ...]`` in list order.

    Each split's first ``ceil(n / 2)`` frames are day (set00 / set06), the rest night (set03 /
    set09), so :attr:`rgbt.data.kaist.FrameId.period` reads the period from the set id; videos
    hold :data:`FRAMES_PER_VIDEO` frames each.
    """
    plan = []
    for split, n in (("train", n_train), ("test", n_test)):
        day_set, night_set = SPLIT_SETS[split]
        n_day = (n + 1) // 2
        for k in range(n):
            set_id, j = (day_set, k) if k < n_day else (night_set, k - n_day)
            plan.append((str(FrameId(set_id, j // FRAMES_PER_VIDEO, j % FRAMES_PER_VIDEO)), split))
    return plan


def _frame_rng(seed: int, frame_id: str, stream: int) -> np.random.Generator:
    fid = parse_frame_id(frame_id)
    return np.random.default_rng([seed, fid.set, fid.video, fid.frame, stream])


def frame_shift(seed: int, frame_id: str, max_shift: float) -> tuple[float, float]:
    """The true RGB misalignment ``(dx, dy)`` of one frame, in pixels, multiples of 0.25.

    Horizontal offsets are wider than vertical ones (sigma 0.4 and 0.25 of ``max_shift``), both
    clipped to ``[-max_shift, max_shift]``: most frames are off by a few pixels, few by the maximum.
    """
    if max_shift <= 0:
        return 0.0, 0.0
    rng = _frame_rng(seed, frame_id, 1)
    dx, dy = rng.normal(0.0, [0.4 * max_shift, 0.25 * max_shift])
    # Quarter pixels are exact in binary floating point, so paired boxes add up exactly; the clip
    # keeps them inside the range (+ 0.0 turns -0.0 into 0.0 for a tidy manifest).
    dx = float(np.clip(round(dx * 4) / 4, -max_shift, max_shift)) + 0.0
    dy = float(np.clip(round(dy * 4) / 4, -max_shift, max_shift)) + 0.0
    return dx, dy


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@dataclass
class SyntheticFrame:
    """One rendered frame.

    Attributes:
        frame_id: ``setXX/VYYY/IZZZZZ``.
        rgb: ``(H, W, 3)`` uint8 RGB image (content shifted by ``shift``).
        thermal: ``(H, W)`` uint8 thermal image.
        objects: bbGt objects in the thermal frame (integer ``x y w h``).
        shift: the RGB misalignment ``(dx, dy)`` in pixels.
    """

    frame_id: str
    rgb: np.ndarray
    thermal: np.ndarray
    objects: list[BbGtObject]
    shift: tuple[float, float]

    def rgb_objects(self) -> list[BbGtObject]:
        """The same objects in the RGB frame: boxes (and non-empty visible boxes) offset by ``shift``."""
        dx, dy = self.shift
        out = []
        for obj in self.objects:
            x, y, w, h = obj.box
            vx, vy, vw, vh = obj.visible
            visible = (vx + dx, vy + dy, vw, vh) if vw > 0 and vh > 0 else obj.visible
            out.append(BbGtObject(obj.label, (x + dx, y + dy, w, h), obj.occlusion, visible, obj.ignore, obj.angle))
        return out


@dataclass
class _Scene:
    """Float32 canvases of both modalities, larger than the frame by ``margin`` on every side so
    the shifted RGB crop never runs out of content; coordinates are canvas pixels."""

    rng: np.random.Generator
    rgb: np.ndarray  # (Hc, Wc, 3) float32, RGB order, 0-255
    thermal: np.ndarray  # (Hc, Wc) float32, 0-255
    margin: int
    scale: float
    night: bool
    horizon: int = 0
    lights: list[tuple[float, float, float, tuple[float, float, float]]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.thermal.shape[:2]


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field of roughly unit variance with features about ``cell`` pixels wide."""
    gh, gw = max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _hsv_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    """A random RGB colour (float32 0-255) with hue uniform and saturation / value in ranges."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _fill_rect(scene: _Scene, x0: float, y0: float, x1: float, y1: float, rgb: Sequence[float], t: float) -> None:
    """Fill a rectangle in both modalities (clipped to the canvas)."""
    h, w = scene.shape
    xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
    ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
    if xa < xb and ya < yb:
        scene.rgb[ya:yb, xa:xb] = rgb
        scene.thermal[ya:yb, xa:xb] = t


def _draw_background(scene: _Scene) -> None:
    """Sky, ground, road markings, buildings, trees, poles, parked / moving cars, textures."""
    rng, s = scene.rng, scene.scale
    hc, wc = scene.shape
    horizon = int(hc * rng.uniform(0.33, 0.5))
    scene.horizon = horizon
    rows = np.arange(hc, dtype=np.float32)[:, None]

    # Sky: brighter towards the horizon in RGB; cold (dark) in thermal.
    sky = np.array([(135, 170, 215), (185, 190, 198), (160, 185, 215)][rng.integers(3)], np.float32)
    ramp = (rows[:horizon] / max(horizon, 1))[..., None]
    scene.rgb[:horizon] = sky * (0.85 + 0.2 * ramp)
    scene.thermal[:horizon] = rng.uniform(30, 55) + 25 * ramp[..., 0]

    # Ground: asphalt, warmer than the sky in thermal; a sidewalk wedge on one side.
    asphalt = rng.uniform(85, 120)
    scene.rgb[horizon:] = asphalt * np.array([1.0, 1.0, rng.uniform(0.98, 1.06)], np.float32)
    scene.thermal[horizon:] = rng.uniform(105, 145)
    vp = wc * rng.uniform(0.3, 0.7)
    side = rng.choice([-1, 1])
    edge_bottom = vp + side * wc * rng.uniform(0.3, 0.8)
    walk = np.array([[vp, horizon], [edge_bottom, hc], [wc if side > 0 else 0, hc], [wc if side > 0 else 0, horizon]])
    walk_rgb = rng.uniform(140, 175)
    cv2.fillPoly(scene.rgb, [walk.astype(np.int32)], (walk_rgb, walk_rgb, walk_rgb * 0.97))
    cv2.fillPoly(scene.thermal, [walk.astype(np.int32)], float(rng.uniform(95, 130)))
    # Dashed lane marking converging to the vanishing point: painted, so visible in RGB only.
    lane_bottom = vp - side * wc * rng.uniform(0.05, 0.4)
    for k in range(8):
        a, b = (k + 0.2) / 8, (k + 0.6) / 8
        p0 = (vp + (lane_bottom - vp) * a**2, horizon + (hc - horizon) * a**2)
        p1 = (vp + (lane_bottom - vp) * b**2, horizon + (hc - horizon) * b**2)
        width = max(1, int(round(6 * s * (a + b))))
        cv2.line(scene.rgb, tuple(map(int, p0)), tuple(map(int, p1)), (215, 215, 205), width)

    # Buildings along the horizon with window grids; some windows heated (thermal) / lit (night RGB).
    x = -rng.uniform(0, 0.1) * wc
    while x < wc:
        bw = wc * rng.uniform(0.1, 0.3)
        if rng.random() < 0.8:
            top = horizon - horizon * rng.uniform(0.25, 0.95)
            bottom = horizon + hc * rng.uniform(0.0, 0.03)
            colour = np.array([(150, 90, 70), (170, 165, 155), (120, 125, 135), (200, 190, 170)][rng.integers(4)])
            colour = colour * rng.uniform(0.75, 1.15)
            t_wall = rng.uniform(85, 130)
            _fill_rect(scene, x, top, x + bw, bottom, colour, t_wall)
            step = max(3.0, 28 * s * rng.uniform(0.7, 1.3))
            win = step * rng.uniform(0.35, 0.6)
            glass = np.array((60, 70, 85)) * rng.uniform(0.7, 1.4)
            for wy in np.arange(top + step * 0.5, bottom - step * 0.7, step):
                for wx in np.arange(x + step * 0.4, x + bw - win - 1, step):
                    heated = rng.random() < 0.25
                    _fill_rect(scene, wx, wy, wx + win, wy + win, glass, t_wall + (rng.uniform(20, 45) if heated
                                                                                   else -rng.uniform(5, 20)))
                    if scene.night and rng.random() < 0.2:
                        scene.lights.append((wx + win / 2, wy + win / 2, win * 0.6, (255, 225, 150)))
        x += bw + wc * rng.uniform(0, 0.08)

    # Trees: trunk + overlapping crowns; leaves are cooler than walls in thermal.
    for _ in range(rng.integers(0, 5)):
        tx, base = rng.uniform(0, wc), horizon + rng.uniform(0, 0.25) * (hc - horizon)
        th = (base - horizon + 20 * s) * rng.uniform(2.0, 3.5)
        trunk_w = max(1.0, th * 0.06)
        _fill_rect(scene, tx - trunk_w / 2, base - th * 0.6, tx + trunk_w / 2, base, (85, 65, 45), rng.uniform(90, 110))
        leaf = np.array((rng.uniform(30, 80), rng.uniform(90, 140), rng.uniform(30, 60)))
        t_leaf = rng.uniform(65, 95)
        for _ in range(rng.integers(2, 5)):
            cx, cy = tx + rng.normal(0, th * 0.12), base - th * rng.uniform(0.6, 0.9)
            axes = (max(1, int(th * rng.uniform(0.15, 0.3))), max(1, int(th * rng.uniform(0.12, 0.22))))
            cv2.ellipse(scene.rgb, (int(cx), int(cy)), axes, 0, 0, 360, tuple(leaf * rng.uniform(0.8, 1.2)), -1)
            cv2.ellipse(scene.thermal, (int(cx), int(cy)), axes, 0, 0, 360, float(t_leaf + rng.normal(0, 5)), -1)

    # Poles and street lamps (lamps glow at night).
    for _ in range(rng.integers(0, 3)):
        px, base = rng.uniform(0, wc), horizon + rng.uniform(0.05, 0.5) * (hc - horizon)
        ph = (base - horizon + 10 * s) * rng.uniform(2.5, 4.0)
        pw = max(1.0, ph * 0.02)
        _fill_rect(scene, px - pw / 2, base - ph, px + pw / 2, base, (90, 90, 95), rng.uniform(80, 100))
        if scene.night:
            scene.lights.append((px, base - ph, max(2.0, ph * 0.06), (255, 235, 190)))

    # Street furniture (bins, bollards, signs, hydrants); some are warm: hard negatives in thermal.
    for _ in range(rng.integers(0, 5)):
        fx, base = rng.uniform(0, wc), horizon + rng.uniform(0.02, 0.6) * (hc - horizon)
        fh = (base - horizon + 5 * s) * rng.uniform(0.3, 0.9)
        fw = fh * rng.uniform(0.25, 0.8)
        warm = rng.uniform(150, 210) if rng.random() < 0.35 else rng.uniform(80, 125)
        _fill_rect(scene, fx, base - fh, fx + fw, base, _hsv_colour(rng, (0.0, 0.8), (0.2, 0.9)), warm)

    # Cars on the road, sized by depth like the people.
    for _ in range(rng.integers(0, 4)):
        bottom = horizon + (hc - horizon) * rng.uniform(0.15, 1.0)
        ch = (bottom - horizon) * rng.uniform(0.5, 0.8)
        cw = ch * rng.uniform(1.4, 2.6)
        _draw_car(scene, rng.uniform(-0.2, 1.0) * wc, bottom, cw, ch)

    # Textures: one shared smooth field (same materials look alike) plus independent ones.
    shared = _smooth_noise(rng, hc, wc, max(4.0, 40 * s))
    fine_rgb = _smooth_noise(rng, hc, wc, max(1.5, 3 * s))
    fine_t = _smooth_noise(rng, hc, wc, max(1.5, 4 * s))
    own_rgb = _smooth_noise(rng, hc, wc, max(3.0, 25 * s))
    scene.rgb += (9 * shared + 6 * own_rgb + 5 * fine_rgb)[..., None]
    scene.thermal += 7 * shared + 4 * _smooth_noise(rng, hc, wc, max(3.0, 30 * s)) + 2.5 * fine_t


def _draw_car(scene: _Scene, x: float, bottom: float, cw: float, ch: float) -> tuple[float, float, float, float]:
    """Side-view car; warm engine and wheels in thermal. Returns its ``(x0, y0, x1, y1)`` extent."""
    rng = scene.rng
    paint = _hsv_colour(rng, (0.0, 0.8), (0.2, 0.95))
    t_body = rng.uniform(105, 135)
    body_top = bottom - ch * 0.62
    _fill_rect(scene, x, body_top, x + cw, bottom - ch * 0.12, paint, t_body)
    cabin = np.array([[x + cw * 0.2, body_top], [x + cw * 0.3, bottom - ch], [x + cw * 0.72, bottom - ch],
                      [x + cw * 0.85, body_top]], np.int32)
    cv2.fillPoly(scene.rgb, [cabin], tuple(float(c) for c in paint))
    cv2.fillPoly(scene.thermal, [cabin], float(t_body))
    glass = np.array([[x + cw * 0.27, body_top], [x + cw * 0.33, bottom - ch * 0.92],
                      [x + cw * 0.7, bottom - ch * 0.92], [x + cw * 0.8, body_top]], np.int32)
    cv2.fillPoly(scene.rgb, [glass], (55, 65, 80))
    cv2.fillPoly(scene.thermal, [glass], float(rng.uniform(55, 80)))
    front_left = rng.random() < 0.5
    ex0 = x if front_left else x + cw * 0.7
    if rng.random() < 0.7:  # engine running: the hood glows in thermal
        scene.thermal[max(0, int(body_top)):max(0, int(bottom - ch * 0.12)),
                      max(0, int(ex0)):max(0, int(ex0 + cw * 0.3))] += rng.uniform(40, 80)
    r = max(1, int(ch * 0.2))
    for wx in (x + cw * 0.2, x + cw * 0.8):
        centre = (int(wx), int(bottom - r))
        cv2.circle(scene.rgb, centre, r, (25, 25, 25), -1)
        cv2.circle(scene.thermal, centre, r, float(rng.uniform(140, 185)), -1)
    if scene.night:
        lx = x + (0.02 * cw if front_left else 0.98 * cw)
        colour = (255, 250, 220) if front_left else (255, 40, 30)  # headlight or tail light
        scene.lights.append((lx, bottom - ch * 0.4, max(1.5, ch * 0.1), colour))
    return x, bottom - ch, x + cw, bottom


# Part ids of a figure's label map.
_SKIN, _HAIR, _TOP, _LEGS, _SHOES, _METAL, _TYRE = 1, 2, 3, 4, 5, 6, 7


def _line(img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], part: int, width: float) -> None:
    cv2.line(img, (int(round(p0[0])), int(round(p0[1]))), (int(round(p1[0])), int(round(p1[1]))), part,
             max(1, int(round(width))))


def _walker(label_map: np.ndarray, cx: float, top: float, h: float, rng: np.random.Generator) -> None:
    """Draw a standing / walking person of height ``h`` (top of head at ``top``) into a label map."""
    r = max(1.0, 0.065 * h)
    lean = rng.normal(0, 0.01) * h
    head = (cx + lean, top + r)
    cv2.circle(label_map, (int(round(head[0])), int(round(head[1]))), int(round(r)), _SKIN, -1)
    if r >= 2:  # hair on the upper half of the head
        cv2.ellipse(label_map, (int(round(head[0])), int(round(head[1]))), (int(round(r)), int(round(r))), 0, 180, 360,
                    _HAIR, -1)
    shoulder, hip = top + 0.17 * h, top + rng.uniform(0.5, 0.56) * h
    sw, hw = rng.uniform(0.22, 0.27) * h, rng.uniform(0.16, 0.2) * h
    _line(label_map, (cx + lean, top + 2 * r - 1), (cx, shoulder), _SKIN, 0.05 * h)
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
        _line(label_map, hip_pt, foot, _LEGS, 0.075 * h)
        cv2.ellipse(label_map, (int(round(foot[0] + sign * 0.01 * h)), int(round(top + h - 0.025 * h))),
                    (max(1, int(0.035 * h)), max(1, int(0.02 * h))), 0, 0, 360, _SHOES, -1)
    cv2.fillPoly(label_map, [np.round(torso).astype(np.int32)], _TOP)
    swing = rng.uniform(-0.07, 0.07) * h
    for sign in (-1, 1):
        s0 = (cx + sign * (sw / 2 - 0.02 * h), shoulder + 0.02 * h)
        hand = (cx + sign * (sw / 2 + 0.01 * h + swing), top + 0.5 * h)
        _line(label_map, s0, hand, _TOP, 0.05 * h)
        cv2.circle(label_map, (int(round(hand[0])), int(round(hand[1]))), max(1, int(0.025 * h)), _SKIN, -1)
    if rng.random() < 0.2:  # bag
        bx = cx + rng.choice([-1, 1]) * sw * 0.45
        cv2.rectangle(label_map, (int(bx - 0.05 * h), int(top + 0.35 * h)), (int(bx + 0.05 * h), int(top + 0.5 * h)),
                      _METAL, -1)


def _rider(label_map: np.ndarray, x0: float, top: float, h: float, rng: np.random.Generator) -> float:
    """Draw a cyclist whose box starts at ``x0`` (head at ``top``, wheels touching ``top + h``).

    Returns the drawing's width.
    """
    wheel = 0.19 * h
    base = top + h
    facing = rng.choice([-1, 1])
    width = 0.95 * h
    rear, front = (x0 + wheel, x0 + width - wheel) if facing > 0 else (x0 + width - wheel, x0 + wheel)
    for wx in (rear, front):
        cv2.circle(label_map, (int(round(wx)), int(round(base - wheel))), max(1, int(round(wheel))), _TYRE,
                   max(1, int(round(0.03 * h))))
    seat = (rear + facing * 0.25 * h, base - 0.5 * h)
    crank = ((rear + front) / 2 - facing * 0.03 * h, base - wheel)
    bar = (front - facing * 0.05 * h, base - 0.58 * h)
    for a, b in ((seat, crank), (crank, (rear, base - wheel)), (seat, (rear, base - wheel)), (crank, bar),
                 (bar, (front, base - wheel)), (seat, bar)):
        _line(label_map, a, b, _METAL, 0.025 * h)
    hip = (seat[0], seat[1] - 0.03 * h)
    shoulder = (hip[0] + facing * 0.14 * h, top + 0.17 * h)
    r = max(1.0, 0.065 * h)
    head = (shoulder[0] + facing * 0.04 * h, top + r)
    _line(label_map, hip, shoulder, _TOP, 0.14 * h)
    _line(label_map, shoulder, bar, _TOP, 0.045 * h)
    knee = (hip[0] + facing * 0.18 * h, hip[1] + 0.05 * h)
    phase = rng.uniform(0, 2 * math.pi)
    pedal = (crank[0] + 0.08 * h * math.cos(phase), crank[1] + 0.08 * h * math.sin(phase))
    _line(label_map, hip, knee, _LEGS, 0.07 * h)
    _line(label_map, knee, pedal, _LEGS, 0.06 * h)
    cv2.circle(label_map, (int(round(head[0])), int(round(head[1]))), int(round(r)), _SKIN, -1)
    return width


def _figure_palette(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-part RGB colours ``(8, 3)`` and thermal values ``(8,)`` of one figure (index = part id)."""
    skin = np.array([(235, 195, 165), (200, 150, 110), (140, 95, 65), (95, 65, 45)][rng.integers(4)], np.float32)
    hair = np.array([(30, 25, 20), (70, 50, 30), (150, 120, 70), (110, 110, 110)][rng.integers(4)], np.float32)
    top_colour = _hsv_colour(rng, (0.0, 0.9), (0.15, 0.95))
    legs = np.array([(40, 50, 80), (30, 30, 35), (90, 90, 95), (160, 140, 100), (60, 70, 110)][rng.integers(5)],
                    np.float32) * rng.uniform(0.8, 1.2)
    rgb = np.stack([np.zeros(3), skin, hair, top_colour, legs, (35, 30, 30), (70, 70, 75), (25, 25, 25)]).astype(
        np.float32)
    body = rng.uniform(185, 230)
    thermal = np.array([0, body + 15, body - 20, body - rng.uniform(5, 35), body - rng.uniform(10, 35), body - 45,
                        rng.uniform(80, 110), rng.uniform(70, 95)], np.float32)
    return np.clip(rgb, 0, 255), np.clip(thermal, 0, 255)


def _composite(scene: _Scene, label_map: np.ndarray, x0: int, y0: int, palettes: list[tuple[np.ndarray, np.ndarray]],
               owner: np.ndarray | None = None, blur: float = 0.5, opacity: float = 1.0) -> None:
    """Paint a label map (placed with its top-left at canvas ``(x0, y0)``) into both modalities.

    ``owner`` gives, per pixel, which palette (figure) coloured it; edges are softened by a
    Gaussian of ``blur`` pixels, and ``opacity`` < 1 blends the figure into the background.
    """
    hc, wc = scene.shape
    ph, pw = label_map.shape
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(wc, x0 + pw), min(hc, y0 + ph)
    if xa >= xb or ya >= yb:
        return
    labels = label_map[ya - y0:yb - y0, xa - x0:xb - x0]
    owners = owner[ya - y0:yb - y0, xa - x0:xb - x0] if owner is not None else np.zeros_like(labels)
    rgb_lut = np.stack([p[0] for p in palettes])  # (F, 8, 3)
    t_lut = np.stack([p[1] for p in palettes])  # (F, 8)
    colour = rgb_lut[owners, labels]
    heat = t_lut[owners, labels]
    # Cloth folds and skin shading: a little texture on the figure itself.
    folds = _smooth_noise(scene.rng, yb - ya, xb - xa, max(1.5, 0.08 * ph))
    colour = colour * (1 + 0.08 * folds[..., None])
    heat = heat + 4 * folds
    alpha = (labels > 0).astype(np.float32) * opacity
    if blur > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
        colour = cv2.GaussianBlur(colour, (0, 0), blur)
        heat = cv2.GaussianBlur(heat, (0, 0), blur)
        # Blurring the colour with the zero background darkens edges: renormalise by the coverage.
        coverage = cv2.GaussianBlur((labels > 0).astype(np.float32), (0, 0), blur)[..., None]
        colour = colour / np.maximum(coverage, 1e-3)
        heat = heat / np.maximum(coverage[..., 0], 1e-3)
    region_rgb = scene.rgb[ya:yb, xa:xb]
    region_t = scene.thermal[ya:yb, xa:xb]
    region_rgb += (colour - region_rgb) * alpha[..., None]
    region_t += (heat - region_t) * alpha


@dataclass
class _Placed:
    """An object laid out in canvas coordinates, before drawing."""

    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (canvas pixels)
    occlusion: int = 0
    visible: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1, empty when unoccluded
    occluder: tuple[str, float, float, float, float] | None = None  # kind, x0, y0, x1, y1
    members: list[tuple[float, float]] = field(default_factory=list)  # people: (centre x, height) each


def _sample_height(rng: np.random.Generator, label: str, scale: float, frame_h: int) -> float:
    """Object height in pixels: KAIST's log-normal height distribution (median ~52 px at 640x512) scaled."""
    if label == "person?":
        h = rng.uniform(22, 42)
    else:
        h = math.exp(rng.normal(math.log(55.0), 0.45))
    return float(np.clip(h * scale, 5, 0.8 * frame_h))


def _draw_object(scene: _Scene, obj: _Placed) -> None:
    """Draw a person / people / cyclist / person? (and its occluder)."""
    rng = scene.rng
    x0, y0, x1, y1 = obj.box
    h = y1 - y0
    pad = 3
    ox, oy = int(math.floor(x0)) - pad, int(math.floor(y0)) - pad
    pw, ph = int(math.ceil(x1 - x0)) + 2 * pad + 1, int(math.ceil(h)) + 2 * pad + 1
    label_map = np.zeros((ph, pw), np.uint8)
    top = y0 - oy
    if obj.label == "people":
        owner = np.zeros((ph, pw), np.uint8)
        palettes = []
        for k, (mx, mh) in enumerate(obj.members):
            member = np.zeros_like(label_map)
            _walker(member, mx - ox, y1 - mh - oy, mh, rng)
            drawn = member > 0
            label_map[drawn] = member[drawn]
            owner[drawn] = k
            palettes.append(_figure_palette(rng))
        _composite(scene, label_map, ox, oy, palettes, owner)
    elif obj.label == "cyclist":
        _rider(label_map, x0 - ox, top, h, rng)
        _composite(scene, label_map, ox, oy, [_figure_palette(rng)])
    else:
        _walker(label_map, (x0 + x1) / 2 - ox, top, h, rng)
        if obj.label == "person?":
            _composite(scene, label_map, ox, oy, [_figure_palette(rng)], blur=rng.uniform(0.9, 1.6),
                       opacity=rng.uniform(0.45, 0.75))
        else:
            _composite(scene, label_map, ox, oy, [_figure_palette(rng)])
    if obj.occluder is not None:
        _draw_occluder(scene, *obj.occluder)


def _draw_occluder(scene: _Scene, kind: str, x0: float, y0: float, x1: float, y1: float) -> None:
    """A wall, bush, car or pole covering part of an object, in both modalities."""
    rng = scene.rng
    if kind == "car":
        height = y1 - y0
        _draw_car(scene, x0, y1 + 0.15 * height, x1 - x0, height * 1.15)
        _fill_rect(scene, x0, y0 + 0.1 * height, x1, y1, _hsv_colour(rng, (0.0, 0.7), (0.2, 0.9)),
                   rng.uniform(110, 140))
    elif kind == "bush":
        leaf = np.array((rng.uniform(30, 70), rng.uniform(80, 130), rng.uniform(25, 50)))
        _fill_rect(scene, x0, y0, x1, y1, leaf, rng.uniform(70, 95))
        cx, cw = (x0 + x1) / 2, (x1 - x0) / 2
        for _ in range(3):
            ex = cx + rng.uniform(-0.6, 0.6) * cw
            axes = (max(1, int(cw * 0.4)), max(1, int((y1 - y0) * 0.25)))
            cv2.ellipse(scene.rgb, (int(ex), int(y0)), axes, 0, 180, 360, tuple(leaf * rng.uniform(0.8, 1.2)), -1)
            cv2.ellipse(scene.thermal, (int(ex), int(y0)), axes, 0, 180, 360, float(rng.uniform(70, 95)), -1)
    else:  # wall, fence or pole: a textured slab
        colour = np.array([(160, 155, 150), (120, 100, 80), (90, 95, 100)][rng.integers(3)]) * rng.uniform(0.8, 1.2)
        _fill_rect(scene, x0, y0, x1, y1, colour, rng.uniform(95, 135))
        if kind == "fence":
            step = max(2.0, (x1 - x0) / 8)
            for bx in np.arange(x0 + step / 2, x1, step):
                _fill_rect(scene, bx, y0, bx + max(1.0, step * 0.2), y1, colour * 0.6, rng.uniform(85, 100))


def _layout_objects(scene: _Scene, frame_h: int, frame_w: int) -> list[_Placed]:
    """Choose labels, sizes, positions and occluders; objects never overlap one another's footprint."""
    rng, s, m = scene.rng, scene.scale, scene.margin
    n = rng.choice(len(_COUNT_PROBS), p=_COUNT_PROBS)
    labels, probs = list(_LABEL_PROBS), list(_LABEL_PROBS.values())
    footprints: list[tuple[float, float, float, float]] = []
    placed: list[_Placed] = []
    for _ in range(n):
        label = str(rng.choice(labels, p=probs))
        for _attempt in range(15):
            h = _sample_height(rng, label, s, frame_h)
            members: list[tuple[float, float]] = []
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
            # Perspective: feet lower in the frame for taller (nearer) people.
            foot = scene.horizon - m + h * rng.uniform(0.8, 1.6)
            foot = float(np.clip(round(foot), h, frame_h))
            x = float(rng.integers(0, int(frame_w - width) + 1))
            box = (x + m, foot - h + m, x + width + m, foot + m)
            occlusion = int(rng.choice(3, p=_OCCLUSION_PROBS)) if label != "person?" else 0
            occluder, visible = None, (0.0, 0.0, 0.0, 0.0)
            if occlusion:
                frac = rng.uniform(0.15, 0.45) if occlusion == 1 else rng.uniform(0.5, 0.8)
                if rng.random() < 0.75:  # from below: car, bush, wall, fence
                    cut = box[3] - round(frac * h)
                    kinds = ["bush", "wall", "fence"] + (["car"] if h > 12 else [])
                    margin = round(width * rng.uniform(0.1, 0.6))
                    occluder = (str(rng.choice(kinds)), box[0] - margin, cut, box[2] + margin, box[3] + 1)
                    visible = (box[0], box[1], box[2], cut)
                else:  # from one side: pole, wall corner
                    cut_w = round(frac * width)
                    if rng.random() < 0.5:
                        occluder = ("wall", box[0] - round(0.2 * width), box[1] - round(0.1 * h), box[0] + cut_w,
                                    box[3] + 1)
                        visible = (box[0] + cut_w, box[1], box[2], box[3])
                    else:
                        occluder = ("wall", box[2] - cut_w, box[1] - round(0.1 * h), box[2] + round(0.2 * width),
                                    box[3] + 1)
                        visible = (box[0], box[1], box[2] - cut_w, box[3])
            foot_print = box if occluder is None else (
                min(box[0], occluder[1]), min(box[1], occluder[2]), max(box[2], occluder[3]), max(box[3], occluder[4]))
            if any(_intersects(foot_print, other, gap=2.0) for other in footprints):
                continue
            if label == "people":
                members = [(box[0] + off + 0.205 * mh, mh) for off, mh in zip(offsets, heights)]
            obj = _Placed(label, box, occlusion, visible, occluder, members)
            footprints.append(foot_print)
            placed.append(obj)
            break
    # Painter's order: far (feet higher in the frame) first.
    return sorted(placed, key=lambda o: o.box[3])


def _intersects(a: Sequence[float], b: Sequence[float], gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _camera_rgb(rng: np.random.Generator, rgb: np.ndarray, night: bool) -> np.ndarray:
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


def _night(scene: _Scene) -> None:
    """Darken the RGB canvas (low light, low contrast) and add light sources with glows."""
    rng = scene.rng
    gain = rng.uniform(0.12, 0.22)
    mean = float(scene.rgb.mean())
    scene.rgb *= gain
    scene.rgb += (mean * gain - scene.rgb) * 0.3 + rng.uniform(3, 8)
    if scene.lights:
        glow = np.zeros_like(scene.rgb)
        for x, y, r, colour in scene.lights:
            cv2.circle(glow, (int(x), int(y)), max(1, int(r)), colour, -1)
        halo = cv2.GaussianBlur(glow, (0, 0), max(1.0, 8 * scene.scale))
        scene.rgb += glow * 0.8 + halo * 0.8


def _camera_thermal(rng: np.random.Generator, thermal: np.ndarray) -> np.ndarray:
    """Optics blur, noise, column fixed-pattern noise and a global gain offset; returns uint8."""
    thermal = cv2.GaussianBlur(thermal, (0, 0), rng.uniform(0.5, 1.0))
    h, w = thermal.shape
    thermal = thermal + rng.standard_normal((h, w), dtype=np.float32) * rng.uniform(1.5, 3.0)
    thermal = thermal + rng.standard_normal((1, w), dtype=np.float32) * 1.0 + rng.uniform(-8, 8)
    return np.clip(thermal + 0.5, 0, 255).astype(np.uint8)


def render_frame(
    seed: int, frame_id: str, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
    max_shift: float = KAIST_MAX_SHIFT * DEFAULT_WIDTH / KAIST_WIDTH, shift: tuple[float, float] | None = None,
) -> SyntheticFrame:
    """Render one frame (deterministic in ``seed`` and ``frame_id``).

    Args:
        seed: dataset seed (>= 0).
        frame_id: ``setXX/VYYY/IZZZZZ``; sets 00-02 / 06-08 are day, the others night.
        width, height: frame size in pixels.
        max_shift: largest RGB misalignment, pixels.
        shift: override the frame's misalignment ``(dx, dy)`` (the scene is unchanged: the same
            seed and frame with another shift gives the same thermal image and moved RGB content).
    """
    fid = parse_frame_id(frame_id)
    dx, dy = frame_shift(seed, frame_id, max_shift) if shift is None else (float(shift[0]), float(shift[1]))
    margin = int(math.ceil(max(max_shift, abs(dx), abs(dy)))) + 2
    hc, wc = height + 2 * margin, width + 2 * margin
    scene = _Scene(
        rng=_frame_rng(seed, frame_id, 0),
        rgb=np.zeros((hc, wc, 3), np.float32),
        thermal=np.zeros((hc, wc), np.float32),
        margin=margin,
        scale=width / KAIST_WIDTH,
        night=fid.period == "night",
    )
    _draw_background(scene)
    placed = _layout_objects(scene, height, width)
    for obj in placed:
        _draw_object(scene, obj)
    if scene.night:
        _night(scene)
    thermal = _camera_thermal(scene.rng, scene.thermal[margin:margin + height, margin:margin + width])
    # RGB content moves by (+dx, +dy): output pixel (x, y) shows canvas pixel (x + margin - dx, y + margin - dy).
    warp = np.array([[1, 0, dx - margin], [0, 1, dy - margin]], np.float64)
    rgb = cv2.warpAffine(scene.rgb, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rgb = _camera_rgb(scene.rng, rgb, scene.night)
    objects = []
    for obj in placed:
        x0, y0, x1, y1 = (v - margin for v in obj.box)
        visible = (0.0, 0.0, 0.0, 0.0)
        if obj.occlusion:
            vx0, vy0, vx1, vy1 = (v - margin for v in obj.visible)
            visible = (vx0, vy0, vx1 - vx0, vy1 - vy0)
        objects.append(BbGtObject(obj.label, (x0, y0, x1 - x0, y1 - y0), obj.occlusion, visible))
    return SyntheticFrame(str(fid), rgb, thermal, objects, (dx, dy))


# --------------------------------------------------------------------------------------------
# Writing a root
# --------------------------------------------------------------------------------------------


def _frame_files(root: Path, frame_id: str) -> list[Path]:
    return [
        image_path(root, frame_id, "rgb"),
        image_path(root, frame_id, "thermal"),
        annotation_path(root, frame_id),
        paired_annotation_path(root, frame_id, "rgb"),
        paired_annotation_path(root, frame_id, "thermal"),
    ]


def write_frame(root: str | os.PathLike[str], frame: SyntheticFrame, lwir_channels: int = 3) -> None:
    """Write one frame's images and annotations atomically (images first, annotations last)."""
    root = Path(root)
    fid = frame.frame_id
    write_image(image_path(root, fid, "rgb"), frame.rgb, JPEG_QUALITY)
    lwir = cv2.merge([frame.thermal] * 3) if lwir_channels == 3 else frame.thermal
    write_image(image_path(root, fid, "thermal"), lwir, JPEG_QUALITY)
    write_bbgt(paired_annotation_path(root, fid, "rgb"), frame.rgb_objects())
    write_bbgt(paired_annotation_path(root, fid, "thermal"), frame.objects)
    write_bbgt(annotation_path(root, fid), frame.objects)


def build_manifest(params: SyntheticParams) -> dict[str, Any]:
    """The manifest content: parameters plus every frame's split, period and true ``(dx, dy)``."""
    frames = []
    for frame_id, split in frame_plan(params.n_train, params.n_test):
        dx, dy = frame_shift(params.seed, frame_id, params.max_shift)
        frames.append({"frame_id": frame_id, "split": split, "period": parse_frame_id(frame_id).period,
                       "dx": dx, "dy": dy})
    return {"generator": "rgbt.data.synthetic", **asdict(params), "scale": params.scale,
            "jpeg_quality": JPEG_QUALITY, "frames": frames}


#: Manifest keys holding :class:`SyntheticParams` fields, with the json type each must have.
_PARAM_KEYS: dict[str, str] = {
    "n_train": "int", "n_test": "int", "seed": "int", "width": "int", "height": "int",
    "max_shift": "number", "lwir_channels": "int", "version": "int",
}


def _check_manifest(data: Any, path: Path) -> dict[str, Any]:
    """The manifest, checked: its parameters make a valid :class:`SyntheticParams` and its frames
    are ``{frame_id, split, period, dx, dy}`` records of distinct KAIST frame ids."""
    manifest = as_object(data, path, "the top level")
    values = {}
    for key, kind in _PARAM_KEYS.items():
        value = get(manifest, key, path, "the top level")
        values[key] = as_int(value, path, key) if kind == "int" else as_number(value, path, key)
    try:
        SyntheticParams(**values)
    except ValueError as err:
        raise DataFormatError(path, None, f"parameters out of range: {err}") from None
    frame_ids = []
    for k, entry in enumerate(as_list(get(manifest, "frames", path, "the top level"), path, "frames")):
        where = f"frames[{k}]"
        frame = as_object(entry, path, where)
        frame_id = as_str(get(frame, "frame_id", path, where), path, f"{where}.frame_id")
        try:
            frame_ids.append(str(parse_frame_id(frame_id)))
        except ValueError as err:
            raise DataFormatError(path, None, f"{where}.frame_id: {err}") from None
        split = get(frame, "split", path, where)
        if not isinstance(split, str) or split not in SPLIT_SETS:
            raise DataFormatError(path, None, f"{where}.split must be one of {list(SPLIT_SETS)}, got {split!r}")
        period = get(frame, "period", path, where)
        if period not in ("day", "night"):
            raise DataFormatError(path, None, f"{where}.period must be 'day' or 'night', got {period!r}")
        for key in ("dx", "dy"):
            as_number(get(frame, key, path, where), path, f"{where}.{key}")
    check_unique(frame_ids, path, "frames", "frame_id")
    return manifest


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``ROOT/synthetic.json``, checked (parameters in range, distinct frames, finite shifts).

    Raises:
        FileNotFoundError: no manifest; DataFormatError: not valid json, or a field out of its domain
        (naming the key and the value).
    """
    path = Path(root) / MANIFEST_NAME
    return _check_manifest(load_json(path), path)


def check_synthetic_root(root: str | os.PathLike[str]) -> None:
    """Refuse a synthetic root whose generation did not finish (``rgbt synth`` was interrupted).

    The generator writes the manifest first, then the frames (each file atomically), then the
    image-set lists, so a root holding ``synthetic.json`` is complete when every frame of the
    manifest has its five files and both lists hold the manifest's frames. A folder without a
    manifest is not a synthetic root and passes.

    Raises:
        DataFormatError: at the manifest, saying what is missing and how to finish the root.
    """
    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        return
    manifest = read_manifest(root)
    plan = [(str(frame["frame_id"]), str(frame["split"])) for frame in manifest["frames"]]
    unfinished = [frame_id for frame_id, _split in plan if not all(p.is_file() for p in _frame_files(root, frame_id))]
    problems = []
    if unfinished:
        problems.append(f"{len(unfinished)} of {len(plan)} frames are incomplete (e.g. {unfinished[0]})")
    for split in SPLIT_SETS:
        path = root / "imageSets" / f"{split}.txt"
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif read_text(path) != _image_set_text(plan, split):
            problems.append(f"{path} does not list the manifest's {split} frames")
    if problems:
        raise DataFormatError(
            root / MANIFEST_NAME, None,
            "synthetic root generation did not finish: " + "; ".join(problems)
            + "; re-run `rgbt synth` with the same arguments to finish it",
        )


def _manifest_json(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1) + "\n"


def _image_set_text(plan: list[tuple[str, str]], split: str) -> str:
    return "".join(f"{frame_id}\n" for frame_id, s in plan if s == split)


def is_valid_synthetic_root(out: str | os.PathLike[str], params: SyntheticParams) -> bool:
    """True when ``out`` holds a complete synthetic root generated with ``params`` (same version).

    Checks the manifest equals what ``params`` produce, the image-set lists, and that every frame
    file exists (files are written atomically, so existing files are complete).
    """
    out = Path(out)
    try:
        if read_manifest(out) != json.loads(_manifest_json(build_manifest(params))):
            return False
    except (FileNotFoundError, DataFormatError):
        return False
    plan = frame_plan(params.n_train, params.n_test)
    for split in ("train", "test"):
        path = out / "imageSets" / f"{split}.txt"
        if not path.is_file() or path.read_bytes() != _image_set_text(plan, split).encode():
            return False
    return all(p.is_file() for frame_id, _split in plan for p in _frame_files(out, frame_id))


def _render_and_write(task: tuple[str, int, str, int, int, float, int]) -> str:
    root, seed, frame_id, width, height, max_shift, lwir_channels = task
    write_frame(root, render_frame(seed, frame_id, width, height, max_shift), lwir_channels)
    return frame_id


def _init_worker() -> None:
    # One OpenCV thread per process: the pool already uses every core.
    cv2.setNumThreads(1)


def generate_synthetic(
    out: str | os.PathLike[str],
    n_train: int,
    n_test: int,
    seed: int = 0,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    max_shift: float | None = None,
    workers: int = 0,
    lwir_channels: int = 3,
    progress: bool = True,
) -> Path:
    """Write a synthetic KAIST-layout root (see the module docstring) and return its path.

    Re-running with the same arguments is a no-op when the root is complete, and fills in the
    missing frames after an interruption (every file is written atomically).

    Args:
        out: destination folder (created; must be empty or hold a synthetic root with the same parameters).
        n_train, n_test: frames in ``imageSets/train.txt`` (set00 day / set03 night) and ``test.txt``
            (set06 / set09), half day and half night each.
        seed: dataset seed (>= 0); the output is a function of the arguments only.
        width, height: frame size in pixels (default 320x256, half KAIST; 640x512 works too).
        max_shift: largest RGB misalignment in pixels; ``None``: 6 px at 640 width, scaled with ``width``.
        workers: worker processes (0: render in this process); never changes the output. They are
            started with the ``spawn`` method, so a script calling this with ``workers > 0`` must do
            so under ``if __name__ == "__main__":``.
        lwir_channels: 3 (gray stored as 3 equal channels, like the KAIST release) or 1.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: bad parameters, or ``out`` is non-empty and not a synthetic root with these parameters.
    """
    if max_shift is None:
        max_shift = KAIST_MAX_SHIFT * width / KAIST_WIDTH
    params = SyntheticParams(n_train, n_test, seed, width, height, float(max_shift), lwir_channels)
    out = Path(out)
    manifest_text = _manifest_json(build_manifest(params))
    if (out / MANIFEST_NAME).is_file():
        existing = read_manifest(out)
        expected = json.loads(manifest_text)
        if existing != expected:
            keys = [k for k in expected if k != "frames" and existing.get(k) != expected[k]] or ["frames"]
            raise ValueError(
                f"{out} holds a synthetic dataset with other parameters (differs in {', '.join(keys)}); "
                "choose another output folder or delete it"
            )
        if is_valid_synthetic_root(out, params):
            return out
    elif out.exists() and (not out.is_dir() or any(p.name != LOCK_NAME for p in out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder or a synthetic dataset root")
    # The manifest goes first: it marks the folder as ours, so an interrupted run can resume.
    atomic_write_text(out / MANIFEST_NAME, manifest_text)
    plan = frame_plan(n_train, n_test)
    todo = [fid for fid, _split in plan if not all(p.is_file() for p in _frame_files(out, fid))]
    tasks = [(str(out), seed, fid, width, height, float(max_shift), lwir_channels) for fid in todo]
    from tqdm import tqdm

    # disable=None hides the bar when stderr is not a terminal.
    bar = tqdm(total=len(tasks), desc="synth", unit="frame", disable=None if progress else True)
    try:
        if workers > 0 and len(tasks) > 1:
            # spawn, not fork: a forked child inherits OpenCV's / torch's thread-pool state and can
            # deadlock in its first parallel call (seen under pytest after other tests used cv2).
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context, initializer=_init_worker) as pool:
                for _ in pool.map(_render_and_write, tasks, chunksize=4):
                    bar.update()
        else:
            for task in tasks:
                _render_and_write(task)
                bar.update()
    finally:
        bar.close()
    for split in ("train", "test"):
        atomic_write_text(out / "imageSets" / f"{split}.txt", _image_set_text(plan, split))
    return out
