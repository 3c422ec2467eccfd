"""Run configuration: nested dataclasses hold every default; YAML files override what differs.

A config file names only the keys it changes; ``--set a.b=value`` overrides on the command line
(the value is read as YAML, so ``--set train.lr=1e-3`` and ``--set data.modalities=[rgb,thermal]``
work). Unknown keys fail with a "did you mean" hint. :func:`save_config` writes the resolved
config into a run directory so every result can be traced to its settings.

Modules never see these objects: builders read plain values out of them. A default that is the
library's own (the flow's size, its loss weights, the style-bank momentum) is not restated here:
the field takes it from the module that defines it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rgbt.atomic import atomic_write_text
from rgbt.translate.flow import DEFAULT_AFFINE, DEFAULT_HIDDEN, DEFAULT_N_BLOCKS, DEFAULT_N_FLOWS
from rgbt.translate.losses import DEFAULT_MS_SSIM, DEFAULT_W_L1, DEFAULT_W_NLL, DEFAULT_W_SSIM
from rgbt.translate.transfer import DEFAULT_MOMENTUM

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid (unknown key, wrong type, unreadable YAML)."""


# --------------------------------------------------------------------------------------------
# Sections shared by every job
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Where the frames come from and which modalities a model sees."""

    root: str = ""  # dataset root (KAIST layout, FLIR release, or a folder of pairs); --data overrides
    format: str = "auto"  # auto | kaist | flir | pairs: how to read `root`
    train_set: str = "train"  # image-set name (ROOT/imageSets/<name>.txt) or path for training
    val_set: str = "test"  # image-set name or path used for periodic evaluation
    modalities: list[str] = field(default_factory=lambda: ["rgb", "thermal"])  # streams fed to the model
    fake_rgb_root: str = ""  # folder written by `rgbt translate`; needed when modalities has fake_rgb
    aligned_rgb_root: str = ""  # folder written by `rgbt align --write-aligned`; needed for aligned_rgb
    classes: list[str] = field(default_factory=lambda: ["person"])  # positive classes (FLIR: person car bicycle)
    period: str = "all"  # all | day | night: restrict frames by time of day
    workers: int = 2  # DataLoader worker processes


@dataclass
class OptimConfig:
    """Optimiser, schedule and loop settings."""

    epochs: int = 10  # passes over the training list
    max_steps: int = 0  # stop after this many steps when > 0 (tests, quick runs)
    batch_size: int = 4  # images per step per process
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-4  # AdamW / SGD weight decay
    optimizer: str = "adamw"  # adamw | sgd
    momentum: float = 0.9  # SGD momentum
    warmup_steps: int = 100  # linear warm-up from lr/100 to lr
    schedule: str = "cosine"  # cosine | step | constant after warm-up
    grad_clip: float = 10.0  # max gradient norm; 0 disables clipping
    amp: bool = False  # mixed precision on CUDA (bf16 where supported, else fp16 with a scaler)
    seed: int = 0  # seeds python, numpy and torch
    eval_every: int = 1  # evaluate every N epochs; 0 disables periodic evaluation
    log_every: int = 10  # steps between CSV log rows
    save_every: int = 200  # steps between RUN/last.pt saves (besides epoch ends and interruptions); 0: epoch ends only
    device: str = "auto"  # auto | cpu | cuda | cuda:N


# --------------------------------------------------------------------------------------------
# Translator
# --------------------------------------------------------------------------------------------


@dataclass
class TranslatorModelConfig:
    """Architecture of the thermal-to-RGB translator."""

    model: str = "flow"  # flow | pix2pixhd | adain | gatys ...: see rgbt.engine.translator_builder.TRANSLATORS
    n_blocks: int = DEFAULT_N_BLOCKS  # squeeze + steps blocks (spatial factor 2**n_blocks)
    n_flows: int = DEFAULT_N_FLOWS  # flow steps per block
    hidden: int = DEFAULT_HIDDEN  # channels of each coupling network (pix2pixhd: of the generator's first layer)
    affine: bool = DEFAULT_AFFINE  # affine coupling with a bounded scale instead of additive
    transfer: str = "adain"  # adain | wct: latent statistics matching
    alpha: float = 1.0  # style strength in [0, 1]
    bank_momentum: float = DEFAULT_MOMENTUM  # EMA momentum of the day/night latent statistics banks
    weights: str = ""  # local checkpoint or weights file to start from (never downloaded)
    n_downsample: int = 3  # pix2pixhd: stride-2 convolutions of the global generator
    n_residual: int = 9  # pix2pixhd: residual blocks of the global generator
    local_enhancers: int = 0  # pix2pixhd: full-resolution local enhancers around the global generator (paper: 1)
    local_residual: int = 3  # pix2pixhd: residual blocks of each local enhancer
    disc_hidden: int = 64  # pix2pixhd: channels of each discriminator's first layer
    disc_layers: int = 3  # pix2pixhd: stride-2 layers per PatchGAN discriminator
    disc_scales: int = 2  # pix2pixhd: discriminators at successive half resolutions
    steps: int = 100  # gatys: optimisation iterations per translated batch
    init: str = "content"  # gatys: start the optimised image from the content (thermal) or from noise
    optimizer: str = "adam"  # gatys: adam | lbfgs
    step_size: float = 0.02  # gatys: Adam learning rate / L-BFGS step length, in [0, 1] pixel units
    pool: str = "max"  # gatys: VGG pooling, max | avg (the paper's average-pooling option)
    style_dim: int = 8  # munit: length of a style code
    mlp_dim: int = 256  # munit: width of the MLP that maps a style code to the decoder's AdaIN parameters


@dataclass
class TranslatorLossConfig:
    """Weights of the weight-free translator objective."""

    l1: float = DEFAULT_W_L1  # L1 between fake and real RGB
    ssim: float = DEFAULT_W_SSIM  # (1 - SSIM) term
    ms_ssim: bool = DEFAULT_MS_SSIM  # use MS-SSIM instead of SSIM (needs frames >= 160 px)
    tv: float = 0.05  # gradient / checkerboard penalty
    nll: float = DEFAULT_W_NLL  # negative log-likelihood from the log-det (bits/dim)
    vgg_weights: str = ""  # local VGG-19 weights for the optional ArtFlow-parity perceptual loss
    content: float = 0.0  # VGG content-loss weight (needs vgg_weights)
    style: float = 0.0  # VGG style-loss weight (needs vgg_weights)
    gan: float = 1.0  # pix2pixhd: LSGAN term of the generator
    feat_match: float = 10.0  # pix2pixhd: discriminator feature-matching term
    method_content: float = 1.0  # adain/gatys: weight of the method's own VGG content loss (vgg_weights or random)
    method_style: float = 10.0  # adain/gatys: weight of the method's own VGG style loss
    recon_image: float = 10.0  # munit: within-domain image reconstruction (L1)
    recon_content: float = 1.0  # munit: cross-domain content-code reconstruction (L1)
    recon_style: float = 1.0  # munit: cross-domain style-code reconstruction (L1)
    detector: float = 0.0  # flow: weight of a frozen detector's loss on the fake RGB (needs detector_checkpoint)
    detector_checkpoint: str = ""  # flow: the frozen detector, a `rgbt train-detector` RUN/best.pt (e.g. RGB only)


@dataclass
class TranslatorConfig:
    """Everything `rgbt train-translator` needs."""

    data: DataConfig = field(default_factory=lambda: DataConfig(period="day"))
    model: TranslatorModelConfig = field(default_factory=TranslatorModelConfig)
    loss: TranslatorLossConfig = field(default_factory=TranslatorLossConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    crop: list[int] = field(default_factory=lambda: [256, 320])  # training crop (height, width)
    val_frames: int = 8  # day frames of data.val_set scored (PSNR/SSIM vs paired RGB) at each evaluation
    bank_frames: int = 64  # RGB frames per period of data.train_set that set the style bank after training; 0: keep EMA


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


@dataclass
class DetectorModelConfig:
    """Architecture of the fusion detector."""

    arch: str = "fasterrcnn"  # fasterrcnn | retinanet | fcos
    trunk: str = "resnet18"  # resnet18 | resnet34 | resnet50 | mobilenet_v3_large | mobilenet_v3_small
    fusion: str = "concat"  # concat (halfway) | sum | gate | early | late
    align: str = "none"  # none | rfa | rfa_region: region feature alignment (fasterrcnn, two streams with thermal)
    align_loss_weight: float = 1.0  # weight of the RFA offset loss (paired RGB boxes supervise it)
    align_max_offset: float = 0.5  # largest RFA offset, a fraction of the region's width / height
    align_prior: str = "none"  # none | registration: each frame's registered offset starts the RFA offsets
    fpn_channels: int = 128  # channels of every pyramid level
    trainable_layers: int = 5  # trunk stages that train (all: the model starts from scratch)
    weights: dict[str, str] = field(default_factory=dict)  # modality -> local trunk weights file
    init_from: list[str] = field(default_factory=list)  # detector checkpoints whose matching tensors start the model
    fusion_init: str = ""  # concat fusion starts passing this modality through (with init_from: as its detector)
    min_size: int = 512  # resize so the short side is this (512: KAIST's native size, no upscaling)
    max_size: int = 640  # cap on the long side
    anchor_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])  # one per level
    aspect_ratios: list[float] = field(default_factory=lambda: [2.0, 2.5])  # box height / width
    score_thresh: float = 0.01  # keep low-score boxes: miss-rate curves need them
    detections_per_img: int = 100  # enough for FPPI up to 1
    image_mean: list[float] = field(default_factory=list)  # per input channel; empty: 0.5 everywhere
    image_std: list[float] = field(default_factory=list)  # per input channel; empty: 0.25 everywhere
    width_mult: float = 1.0  # trunk channel multiplier (below 1: narrow trunks for tests and ablations)
    norm: str = "batch"  # trunk normalisation: batch | group | frozen (frozen: fine-tuning from weights)
    representation_size: int = 1024  # width of Faster R-CNN's two-layer box head
    rpn_batch_size: int = 256  # anchors sampled per image for the RPN loss
    roi_batch_size: int = 512  # proposals sampled per image for the box-head loss
    proposals: list[int] = field(default_factory=lambda: [2000, 1000])  # RPN proposals kept (train, test)


@dataclass
class TrainIgnoreConfig:
    """Which training objects of KAIST-layout data become ignore regions (FLIR: only labels outside classes)."""

    min_height: float = 50.0  # boxes lower than this (pixels of the annotation frame) are ignored; 0: off
    max_occlusion: int = 1  # occlusion above this level (0 none, 1 partial, 2 heavy) is ignored; 2: off


@dataclass
class AugmentConfig:
    """Paired augmentation during detector training."""

    hflip: float = 0.5  # probability of a horizontal flip (both modalities and boxes)
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # random rescale range
    color: float = 0.0  # probability of colour jitter on RGB (per modality, photometric)
    shift_rgb: float = 0.0  # misalignment augmentation: max random RGB shift in pixels (0: off)
    shift_rgb_prob: float = 1.0  # probability that a sample's RGB is shifted (the others stay aligned)
    modality_dropout: float = 0.0  # probability of blacking out one input modality of a sample (fusion only; 0: off)


@dataclass
class DetectorConfig:
    """Everything `rgbt train-detector` needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: DetectorModelConfig = field(default_factory=DetectorModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    ignore: TrainIgnoreConfig = field(default_factory=TrainIgnoreConfig)
    train: OptimConfig = field(default_factory=lambda: OptimConfig(optimizer="sgd", lr=0.01))


# --------------------------------------------------------------------------------------------
# Loading, overriding, saving
# --------------------------------------------------------------------------------------------


def _hint(key: str, options: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, options, n=1)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    return f"; known keys: {', '.join(options)}"


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field annotation, converting where YAML is looser (int -> float)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _merge(annotation(), value, where)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: {value!r} matches none of {annotation}")
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(annotation) or (Any, Any)
        return {
            _coerce(k, key_type, where): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()
        }
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        # YAML 1.1 reads "1e-3" (no dot) as a string.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {value!r}") from None
    if annotation is type(None) and value is None:
        return None
    if annotation is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got {value!r}")
    return value


def _merge(base: T, updates: dict[str, Any], where: str = "") -> T:
    types_ = _field_types(type(base))
    for key, value in updates.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in types_:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"unknown config key {name!r}{_hint(str(key), list(types_), prefix)}")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            setattr(base, key, _merge(current, value, name))
        else:
            setattr(base, key, _coerce(value, types_[key], name))
    return base


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (plain PyYAML keeps the last value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` keys may be overridden: YAML's merge rule, resolved by the base class
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = first_line.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            line = key_node.start_mark.line + 1
            if earlier is not None:
                raise _DuplicateKey(line, f"duplicate key {key!r} (first given on line {earlier})")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    """A repeated mapping key found by :class:`_StrictLoader`, at a 1-based line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _load_yaml(text: str) -> Any:
    """``text`` parsed with :class:`_StrictLoader` (safe types only, no repeated keys)."""
    return yaml.load(text, Loader=_StrictLoader)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into ``(['a', 'b'], value)``, the value read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except _DuplicateKey as err:
        raise ConfigError(f"override {text!r}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err})") from None
    return key.strip().split("."), value


def apply_overrides(config: T, overrides: list[str] | None) -> T:
    """Apply ``--set key.sub=value`` overrides in order."""
    for text in overrides or []:
        path, value = parse_override(text)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        _merge(config, nested)
    return config


def load_config(cls: type[T], path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> T:
    """Build a config: dataclass defaults, then the YAML file at ``path``, then ``overrides``.

    Raises:
        ConfigError: unreadable YAML, a key given twice in one mapping (``file:line``), an unknown key
            (with a "did you mean" hint), a wrong type.
    """
    config = cls()
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = _load_yaml(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
        except _DuplicateKey as err:
            raise ConfigError(f"{path}:{err.line}: {err}") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
        try:
            _merge(config, data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    return apply_overrides(config, overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain dicts and lists (what is written to YAML)."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from :func:`config_to_dict` output (e.g. stored in a checkpoint)."""
    return _merge(cls(), data)


def save_config(config: Any, run_dir: str | os.PathLike[str], name: str = "config.yaml") -> Path:
    """Write the resolved config into a run directory and return the file path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(run_dir / name, yaml.safe_dump(config_to_dict(config), sort_keys=False))
