"""Export trained rgbt models to ONNX (``rgbt export``), for onnxruntime, TensorRT and other runtimes.

Detectors (checkpoints of ``rgbt train-detector``) become one graph:

* input ``image``: ``(C, H, W)`` float32 in [0, 1], one frame with its modalities stacked along the
  channels in the model's modality order (``rgb`` + ``thermal`` -> ``[r, g, b, t]``), thermal-frame
  geometry; ``H`` and ``W`` are dynamic for frames of the traced aspect ratio (the graph resizes
  internally as the PyTorch model does, and which of torchvision's ``min_size`` / ``max_size``
  limits applies is decided at tracing): export with ``height`` / ``width`` of your frames (the
  default 512 x 640 covers every KAIST and FLIR 640 x 512 frame at any scale);
* outputs ``boxes`` ``(D, 4)`` float32 xyxy pixels of the input frame, ``scores`` ``(D,)`` in [0, 1],
  ``labels`` ``(D,)`` int64 (``k`` is the ``k``-th of the model's classes, 1-based).

The flow translator (checkpoints of ``rgbt train-translator`` with ``model.model: flow``) becomes
two graphs, one per direction, with the style as an input (latent AdaIN statistics):

* ``forward``: ``thermal`` ``(B, 1, H, W)`` in [0, 1], ``style_mean`` / ``style_std`` ``(B, C')`` ->
  ``fake_rgb`` ``(B, 3, H, W)`` in [0, 1] (clamped);
* ``inverse``: ``fake_rgb`` ``(B, 3, H, W)``, ``content_mean`` / ``content_std`` ``(B, C')`` ->
  ``thermal`` ``(B, 1, H, W)``: the flow run backwards with the thermal frame's own statistics,
  which gives the thermal frame back (the round trip of ``rgbt translate-eval``) when the fake RGB
  was not clamped;
* ``H`` and ``W`` are fixed at export (``height`` / ``width``; padding to the flow's multiple is
  traced for that size), ``B`` is dynamic. The style bank's day/night statistics are written beside
  the graphs as JSON (``mean`` / ``std`` lists, one value per latent channel), and each graph
  carries them and the model's conventions in its metadata.

Exporting needs the ``onnx`` extra (``pip install 'rgbt[onnx]'``); checking the graphs against
PyTorch needs ``onnxruntime`` too (in the same extra).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rgbt.atomic import atomic_write_bytes, atomic_write_text
from rgbt.config import DetectorConfig
from rgbt.engine.checkpoint import load_checkpoint
from rgbt.engine.detector_builder import load_detector_checkpoint
from rgbt.engine.run import run_config_class
from rgbt.engine.translator_builder import load_translator
from rgbt.translate.transfer import adain
from rgbt.translate.translator import FlowTranslator

#: ONNX operator set of the exported graphs (onnxruntime >= 1.12 runs it).
DEFAULT_OPSET = 17


class _DetectorGraph(nn.Module):
    """One stacked frame in, ``(boxes, scores, labels)`` out: the traced form of a detector."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model([image])[0]
        return out["boxes"], out["scores"], out["labels"]


class _FlowForward(nn.Module):
    """Thermal + latent AdaIN statistics -> fake RGB."""

    def __init__(self, translator: FlowTranslator, height: int, width: int) -> None:
        super().__init__()
        self.translator = translator
        self.size = (height, width)

    def forward(self, thermal: Tensor, style_mean: Tensor, style_std: Tensor) -> Tensor:
        z, _, _ = self.translator.flow.encode(self.translator.thermal_to_input(thermal))
        return self.translator.flow.decode(adain(z, style_mean, style_std), self.size).clamp(0.0, 1.0)


class _FlowInverse(nn.Module):
    """Fake RGB + the thermal frame's latent statistics -> thermal (the flow run backwards)."""

    def __init__(self, translator: FlowTranslator, height: int, width: int) -> None:
        super().__init__()
        self.translator = translator
        self.size = (height, width)

    def forward(self, fake_rgb: Tensor, content_mean: Tensor, content_std: Tensor) -> Tensor:
        z, _, _ = self.translator.flow.encode(fake_rgb)
        x = self.translator.flow.decode(adain(z, content_mean, content_std), self.size)
        return x.mean(dim=1, keepdim=True)


def checkpoint_kind(path: str | os.PathLike[str]) -> str:
    """``detector`` or ``translator``: which trainer wrote checkpoint ``path`` (read from its config).

    Raises:
        ValueError: the file holds no rgbt run config.
    """
    state = load_checkpoint(path)
    kind = run_config_class(state.get("config") if isinstance(state, dict) else None)
    if kind is None:
        raise ValueError(f"{path}: not an rgbt checkpoint (no run config inside); expected last.pt / best.pt of "
                         "`rgbt train-detector` or `rgbt train-translator`")
    return "detector" if kind is DetectorConfig else "translator"


def _onnx_bytes(module: nn.Module, args: tuple[Tensor, ...], input_names: list[str], output_names: list[str],
                dynamic_axes: dict[str, dict[int, str]], opset: int) -> bytes:
    buffer = io.BytesIO()
    module.eval()
    # Frozen parameters and one warm-up pass: the flow's 1x1 convolutions then trace their cached, fused
    # weights (constants) instead of the LU algebra that builds them, which has no ONNX equivalent (aten::diag).
    module.requires_grad_(False)
    with torch.no_grad():
        module(*args)
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns about every Python-side shape computation; the tests compare the graph with PyTorch.
        warnings.simplefilter("ignore")
        # PRESERVE: switching modes again would drop the warmed-up caches.
        torch.onnx.export(module, args, buffer, opset_version=opset, dynamo=False, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return buffer.getvalue()


def _with_metadata(data: bytes, metadata: dict[str, Any]) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    return model.SerializeToString()


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ValueError("exporting to ONNX needs the onnx package: pip install 'rgbt[onnx]'") from None


def export_detector(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], height: int = 512,
                    width: int = 640, opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Write the detector of ``checkpoint`` as one ONNX graph at ``out`` (see the module docstring).

    ``height`` x ``width`` is the size of the example frame the graph is traced with; the exported
    input size stays dynamic for frames of that aspect ratio. Returns what was written (path,
    inputs, outputs, classes, modalities).
    """
    _require_onnx()
    model, config, _ = load_detector_checkpoint(checkpoint)
    modalities = list(config.data.modalities)
    channels = model.backbone.in_channels if hasattr(model, "backbone") else None
    if channels is None:
        raise ValueError(f"{checkpoint}: late-fusion detectors ({config.model.fusion}) cannot be exported as one "
                         "graph; export each modality's detector instead")
    example = torch.rand(channels, height, width, generator=torch.Generator().manual_seed(0))
    data = _onnx_bytes(_DetectorGraph(model), (example,), ["image"], ["boxes", "scores", "labels"],
                       {"image": {1: "height", 2: "width"}, "boxes": {0: "detections"},
                        "scores": {0: "detections"}, "labels": {0: "detections"}}, opset)
    metadata = {"rgbt_kind": "detector", "modalities": modalities, "classes": list(config.data.classes),
                "input": f"image ({channels}, H, W) float32 in [0, 1], modalities stacked in order {modalities}",
                "outputs": "boxes (D, 4) xyxy pixels, scores (D,), labels (D,) 1-based class index"}
    path = atomic_write_bytes(out, _with_metadata(data, metadata))
    return {"kind": "detector", "files": [str(path)], "modalities": modalities, "classes": list(config.data.classes),
            "input_channels": channels, "opset": opset}


def export_translator(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], height: int = 512,
                      width: int = 640, opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Write the flow translator of ``checkpoint`` as ``OUT_forward.onnx``, ``OUT_inverse.onnx`` and
    ``OUT_styles.json`` (``out`` minus its ``.onnx`` suffix is ``OUT``); see the module docstring.

    Raises:
        ValueError: the checkpoint is not a flow translator (the baselines have no inverse and are
            not exported), or a size that is not positive.
    """
    _require_onnx()
    if height < 1 or width < 1:
        raise ValueError(f"--height and --width must be positive, got {height}x{width}")
    loaded = load_translator(checkpoint, device="cpu")
    translator = loaded.translator.requires_grad_(False)
    if not isinstance(translator, FlowTranslator):
        raise ValueError(f"{checkpoint}: only the flow translator is exported "
                         f"(this is model.model={loaded.config.model.model})")
    stem = Path(out)
    stem = stem.with_suffix("") if stem.suffix == ".onnx" else stem
    generator = torch.Generator().manual_seed(0)
    thermal = torch.rand(1, 1, height, width, generator=generator)
    with torch.no_grad():
        z, _, _ = translator.flow.encode(translator.thermal_to_input(thermal))
    latent = z.shape[1]
    mean, std = torch.zeros(1, latent), torch.ones(1, latent)
    batch = {0: "batch"}
    styles = {period: {"mean": m.flatten().tolist(), "std": s.flatten().tolist()}
              for period in translator.bank.periods if translator.bank.count(period) > 0
              for m, s in [translator.bank.stats(period, 1)]}
    common = {"rgbt_kind": "flow_translator", "height": str(height), "width": str(width),
              "latent_channels": str(latent), "styles": styles}
    forward = _onnx_bytes(_FlowForward(translator, height, width), (thermal, mean, std),
                          ["thermal", "style_mean", "style_std"], ["fake_rgb"],
                          {"thermal": batch, "style_mean": batch, "style_std": batch, "fake_rgb": batch}, opset)
    fake = torch.rand(1, translator.channels, height, width, generator=generator)
    inverse = _onnx_bytes(_FlowInverse(translator, height, width), (fake, mean, std),
                          ["fake_rgb", "content_mean", "content_std"], ["thermal"],
                          {"fake_rgb": batch, "content_mean": batch, "content_std": batch, "thermal": batch}, opset)
    files = [
        atomic_write_bytes(f"{stem}_forward.onnx", _with_metadata(forward, {**common, "direction": "forward"})),
        atomic_write_bytes(f"{stem}_inverse.onnx", _with_metadata(inverse, {**common, "direction": "inverse"})),
        atomic_write_text(f"{stem}_styles.json", json.dumps(styles, indent=1) + "\n"),
    ]
    return {"kind": "translator", "files": [str(f) for f in files], "height": height, "width": width,
            "latent_channels": latent, "styles": sorted(styles), "opset": opset}


def export_checkpoint(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], height: int = 512,
                      width: int = 640, opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Export a detector or flow-translator checkpoint, whichever ``checkpoint`` is."""
    kind = checkpoint_kind(checkpoint)
    export = export_detector if kind == "detector" else export_translator
    return export(checkpoint, out, height=height, width=width, opset=opset)
