"""A synthetic RGB-thermal pedestrian dataset written in the KAIST layout.

The generator paints street scenes once, on a canvas that holds for every pixel what each camera
needs (colour, temperature, solar absorptivity, sunshine), and renders it twice: as an RGB camera
and as a thermal camera. It writes a root that :class:`rgbt.data.kaist.KaistSource` (and every
tool reading KAIST) opens with no special path::

    images/setXX/VYYY/{visible,lwir}/IZZZZZ.jpg
    annotations/setXX/VYYY/IZZZZZ.txt                     bbGt version 3, thermal frame
    annotations_paired/setXX/VYYY/{visible,lwir}/IZZZZZ.txt   KAIST-Paired: same objects, same order
    imageSets/{train,test}.txt
    synthetic.json                                        parameters, effects, version, per-frame (dx, dy)

What the scenes hold, and why (``datasets/synthetic/README.md`` measures it against real KAIST):

* pedestrians with a head, torso, arms and legs, heights from KAIST's test distribution
  (a log-normal fit: half of them 55 px or taller at 640x512) scaled by ``width / 640``; the four KAIST labels
  (``person``, ``people`` groups, ``cyclist``, small blurred ``person?``); partial / heavy
  occlusion by opaque occluders (``occ`` 1 / 2, visible box in ``vx vy vw vh``);
* a street per frame (sky, road, sidewalk, buildings, shop fronts, trees, poles, furniture, cars)
  whose thermal appearance follows the frame's climate (:mod:`rgbt.data.synthetic_climate`);
* the effects of :class:`~rgbt.data.synthetic_effects.SyntheticEffects`, each switchable: thermal
  crossover on warm days, night thermal unlike day thermal, warm clutter, cold person-like decoys,
  shaded RGB pedestrians with cast shadows, night lighting with lamp pools and headlight glare,
  occluders that only one camera sees (glass, smoke);
* camera models (:mod:`rgbt.data.synthetic_camera`): a thermal camera with automatic gain, blur
  and noise; an RGB camera, dark, noisy and low-contrast at night (sets 03 and 09);
* a per-frame RGB misalignment ``(dx, dy)`` (+dx moves RGB content right, +dy down, relative to
  thermal), mostly a few pixels and at most ``max_shift``. Paired visible boxes are the thermal
  boxes plus ``(dx, dy)`` exactly, and may reach up to ``max_shift`` px outside the RGB frame.

The code is split by concept: :mod:`~rgbt.data.synthetic_canvas` (the layered canvas),
:mod:`~rgbt.data.synthetic_climate` (temperatures), :mod:`~rgbt.data.synthetic_figures`
(pedestrian shapes and palettes), :mod:`~rgbt.data.synthetic_scene` (the street),
:mod:`~rgbt.data.synthetic_objects` (pedestrians, clutter, decoys, occluders),
:mod:`~rgbt.data.synthetic_camera` (the cameras) and this module (parameters, one frame, a root).

Every frame is drawn from its own seeds ``(seed, set, video, frame, stream)``, one stream per
concern (scene, misalignment, climate, modal occluders, clutter, decoys, night lighting, cameras),
so the number of worker processes never changes the output, the same arguments give byte-identical
files (OpenCV's JPEG encoder is deterministic at a fixed quality), and switching an effect off
leaves the annotated objects of every frame unchanged.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
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
from rgbt.data.synthetic_camera import night_rgb, rgb_camera, thermal_camera
from rgbt.data.synthetic_canvas import Canvas
from rgbt.data.synthetic_climate import Climate
from rgbt.data.synthetic_effects import SyntheticEffects
from rgbt.data.synthetic_objects import (
    CLUTTER_KINDS,
    DECOY_KINDS,
    assign_modal_occluders,
    draw_clutter,
    draw_decoy,
    draw_object,
    layout_distractors,
    layout_objects,
)
from rgbt.data.synthetic_scene import Scene, draw_background
from rgbt.outlock import LOCK_NAME

#: Bumped whenever the renderer changes its output; stored in the manifest.
VERSION = 2
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
#: Per-frame random streams (the last seed word): one per concern, so one effect's draws never move another's.
STREAM_SCENE, STREAM_SHIFT, STREAM_CLIMATE, STREAM_MODAL, STREAM_CLUTTER, STREAM_DECOYS, STREAM_NIGHT, STREAM_CAMERA = \
    range(8)


# --------------------------------------------------------------------------------------------
# Parameters and frame plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines a synthetic root's content (stored in the manifest).

    ``max_shift`` is the largest RGB misalignment in pixels (at this width); ``effects`` the
    strengths of the modelled effects (:class:`~rgbt.data.synthetic_effects.SyntheticEffects`).
    """

    n_train: int
    n_test: int
    seed: int
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    max_shift: float = KAIST_MAX_SHIFT * DEFAULT_WIDTH / KAIST_WIDTH
    lwir_channels: int = 3
    version: int = VERSION
    effects: SyntheticEffects = field(default_factory=SyntheticEffects)

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
        if not isinstance(self.effects, SyntheticEffects):
            raise ValueError(f"effects must be a SyntheticEffects, got {type(self.effects).__name__}")

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
    rng = _frame_rng(seed, frame_id, STREAM_SHIFT)
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


def render_frame(
    seed: int, frame_id: str, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
    max_shift: float = KAIST_MAX_SHIFT * DEFAULT_WIDTH / KAIST_WIDTH, shift: tuple[float, float] | None = None,
    effects: SyntheticEffects | None = None,
) -> SyntheticFrame:
    """Render one frame (deterministic in ``seed``, ``frame_id`` and the other arguments).

    Args:
        seed: dataset seed (>= 0).
        frame_id: ``setXX/VYYY/IZZZZZ``; sets 00-02 / 06-08 are day, the others night.
        width, height: frame size in pixels.
        max_shift: largest RGB misalignment, pixels.
        shift: override the frame's misalignment ``(dx, dy)`` (the scene is unchanged: the same
            seed and frame with another shift gives the same thermal image and moved RGB content).
        effects: effect strengths (default: :class:`~rgbt.data.synthetic_effects.SyntheticEffects()`).
    """
    effects = SyntheticEffects() if effects is None else effects
    fid = parse_frame_id(frame_id)
    dx, dy = frame_shift(seed, frame_id, max_shift) if shift is None else (float(shift[0]), float(shift[1]))
    margin = int(math.ceil(max(max_shift, abs(dx), abs(dy)))) + 2
    night = fid.period == "night"

    def stream(k: int) -> np.random.Generator:
        return _frame_rng(seed, frame_id, k)

    climate = Climate.draw(stream(STREAM_CLIMATE), night, effects.crossover, effects.night_thermal)
    scene = Scene(Canvas(height + 2 * margin, width + 2 * margin), climate, margin, width / KAIST_WIDTH, night)
    rng = stream(STREAM_SCENE)
    draw_background(scene, rng)
    placed = layout_objects(scene, rng, height, width)
    assign_modal_occluders(placed, stream(STREAM_MODAL), effects.modal_occluders)
    for obj in placed:
        draw_object(scene, rng, obj, effects.person_shading)
    # Clutter and decoys stand clear of every pedestrian's footprint, so they never change a person.
    taken = [obj.footprint for obj in placed]
    clutter_rng, decoy_rng = stream(STREAM_CLUTTER), stream(STREAM_DECOYS)
    for item in layout_distractors(scene, clutter_rng, effects.warm_clutter, CLUTTER_KINDS, taken, height, width):
        draw_clutter(scene, clutter_rng, item)
    for item in layout_distractors(scene, decoy_rng, effects.cold_decoys, DECOY_KINDS, taken, height, width):
        draw_decoy(scene, decoy_rng, item, effects.person_shading)

    canvas = scene.canvas
    temperature = canvas.temp + climate.sun * canvas.absorb * canvas.sunlit
    # Shadows: direct sun is most of daylight on a sunny day, nothing under an overcast sky.
    colours = canvas.rgb * (1.0 - 0.55 * climate.sunshine * (1.0 - canvas.sunlit))[..., None]
    if night:
        colours = night_rgb(stream(STREAM_NIGHT), colours, canvas.sky, scene.lights, effects.night_lighting,
                            scene.scale)
    camera_rng = stream(STREAM_CAMERA)
    thermal = thermal_camera(camera_rng, temperature[margin:margin + height, margin:margin + width], scene.scale,
                             effects.night_thermal if night else 0.0)
    # RGB content moves by (+dx, +dy): output pixel (x, y) shows canvas pixel (x + margin - dx, y + margin - dy).
    warp = np.array([[1, 0, dx - margin], [0, 1, dy - margin]], np.float64)
    rgb = cv2.warpAffine(colours, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rgb = rgb_camera(camera_rng, rgb, night)
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


def _render_and_write(task: tuple[str, int, str, int, int, float, int, SyntheticEffects]) -> str:
    root, seed, frame_id, width, height, max_shift, lwir_channels, effects = task
    write_frame(root, render_frame(seed, frame_id, width, height, max_shift, effects=effects), lwir_channels)
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
    effects: SyntheticEffects | None = None,
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
        effects: effect strengths (default: the KAIST-like defaults of
            :class:`~rgbt.data.synthetic_effects.SyntheticEffects`; ``SyntheticEffects.none()`` for none).

    Raises:
        ValueError: bad parameters, or ``out`` is non-empty and not a synthetic root with these parameters.
    """
    if max_shift is None:
        max_shift = KAIST_MAX_SHIFT * width / KAIST_WIDTH
    effects = SyntheticEffects() if effects is None else effects
    params = SyntheticParams(n_train, n_test, seed, width, height, float(max_shift), lwir_channels, effects=effects)
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
    tasks = [(str(out), seed, fid, width, height, float(max_shift), lwir_channels, effects) for fid in todo]
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
