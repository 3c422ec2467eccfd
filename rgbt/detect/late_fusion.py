"""Late fusion baseline: one single-modality detector per modality, detections fused per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import box_iou

from rgbt.data.sample import MODALITY_CHANNELS
from rgbt.detect.backbone import split_modalities
from rgbt.detect.heads import check_detection_inputs

#: Fusion methods of :func:`fuse_detections`.
FUSE_METHODS: tuple[str, ...] = ("vote", "nms")


def fuse_detections(
    detections: Sequence[tuple[Tensor, Tensor, Tensor]],
    iou_thresh: float = 0.55,
    method: str = "vote",
    max_detections: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fuse the detections of several sources (modalities) for one image.

    Greedy clustering: all detections are visited in descending score order; an unassigned detection
    opens a cluster that takes every still unassigned detection of the same label whose IoU with it is
    >= ``iou_thresh`` (from any source, itself included).

    * ``vote`` (score-aware weighted box voting): the fused box is the score-weighted mean of the
      cluster's boxes; the fused score is the mean over *all* sources of each source's best score in
      the cluster (0 for a source that has none), so a person seen by both modalities outranks one
      seen by a single modality with the same confidence.
    * ``nms``: cross-source non-maximum suppression; the cluster keeps its top box and score.

    Args:
        detections: one ``(boxes (N_i, 4) float xyxy pixels, scores (N_i,) in [0, 1], labels (N_i,)
            int64)`` per source; all sources describe the same image frame.
        iou_thresh: clustering IoU threshold in ``[0, 1]``.
        method: one of :data:`FUSE_METHODS`.
        max_detections: keep at most this many fused detections (highest scores); ``None`` keeps all.

    Returns:
        ``(boxes (D, 4), scores (D,), labels (D,))`` sorted by descending score.
    """
    if method not in FUSE_METHODS:
        raise ValueError(f"unknown fusion method {method!r}; known: {', '.join(FUSE_METHODS)}")
    if not 0 <= iou_thresh <= 1:
        raise ValueError(f"iou_thresh must be in [0, 1], got {iou_thresh}")
    if len(detections) == 0:
        raise ValueError("fuse_detections needs at least one source")
    for i, (boxes, scores, labels) in enumerate(detections):
        n = boxes.shape[0]
        if boxes.shape != (n, 4) or scores.shape != (n,) or labels.shape != (n,):
            raise ValueError(
                f"source {i}: expected boxes (N, 4), scores (N,), labels (N,), got "
                f"{tuple(boxes.shape)}, {tuple(scores.shape)}, {tuple(labels.shape)}"
            )
    boxes = torch.cat([d[0] for d in detections]).float()
    scores = torch.cat([d[1] for d in detections]).float()
    labels = torch.cat([d[2] for d in detections])
    sources = torch.cat(
        [torch.full((d[0].shape[0],), i, dtype=torch.int64) for i, d in enumerate(detections)]
    )
    sources = sources.to(boxes.device)
    num_sources = len(detections)

    order = torch.argsort(scores, descending=True)
    boxes, scores, labels, sources = boxes[order], scores[order], labels[order], sources[order]
    same = (box_iou(boxes, boxes) >= iou_thresh) & (labels[:, None] == labels[None, :])
    assigned = torch.zeros(len(scores), dtype=torch.bool, device=boxes.device)
    out_boxes, out_scores, out_labels = [], [], []
    for i in range(len(scores)):
        if assigned[i]:
            continue
        members = same[i] & ~assigned
        assigned |= members
        if method == "nms":
            out_boxes.append(boxes[i])
            out_scores.append(scores[i])
        else:
            weights = scores[members]
            out_boxes.append((boxes[members] * weights[:, None]).sum(dim=0) / weights.sum().clamp(min=1e-12))
            best = torch.zeros(num_sources, dtype=scores.dtype, device=scores.device)
            best.scatter_reduce_(0, sources[members], weights, reduce="amax")
            out_scores.append(best.sum() / num_sources)
        out_labels.append(labels[i])
    if not out_scores:
        return boxes.new_zeros((0, 4)), scores.new_zeros((0,)), labels.new_zeros((0,))
    fused_boxes, fused_scores, fused_labels = (
        torch.stack(out_boxes),
        torch.stack(out_scores),
        torch.stack(out_labels),
    )
    keep = torch.argsort(fused_scores, descending=True)
    if max_detections is not None:
        keep = keep[:max_detections]
    return fused_boxes[keep], fused_scores[keep], fused_labels[keep]


class LateFusionDetector(nn.Module):
    """Run one single-modality detector per modality and fuse their detections.

    Args:
        detectors: modality name -> detector taking that modality's ``(C_m, H, W)`` images (e.g. built
            by :func:`rgbt.detect.detector.build_detector` on a single-modality backbone). The mapping
            order is the channel stacking order of the input.
        iou_thresh, method: see :func:`fuse_detections`.
        detections_per_img: cap on fused detections per image.
        modality_channels: modality -> channels; default :data:`rgbt.data.sample.MODALITY_CHANNELS` of each
            name.

    Forward: ``images`` list of stacked ``(sum C_m, H, W)`` float in ``[0, 1]``; ``targets`` as for
    every :mod:`rgbt.detect` detector (each modality is trained on the same boxes, which live in the
    thermal frame). Training returns every detector's losses keyed ``'<modality>/<loss name>'``;
    evaluation returns per image ``{'boxes' (D, 4) xyxy pixels, 'scores' (D,), 'labels' (D,)}``.
    """

    def __init__(
        self,
        detectors: Mapping[str, nn.Module],
        iou_thresh: float = 0.55,
        method: str = "vote",
        detections_per_img: int = 100,
        modality_channels: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        if len(detectors) < 2:
            raise ValueError(f"late fusion needs at least two detectors, got {list(detectors)}")
        if method not in FUSE_METHODS:
            raise ValueError(f"unknown fusion method {method!r}; known: {', '.join(FUSE_METHODS)}")
        if modality_channels is None:
            unknown = [m for m in detectors if m not in MODALITY_CHANNELS]
            if unknown:
                raise ValueError(f"unknown modality {unknown[0]!r}; pass modality_channels")
            modality_channels = {m: MODALITY_CHANNELS[m] for m in detectors}
        if list(modality_channels) != list(detectors):
            raise ValueError(
                f"modality_channels {list(modality_channels)} must follow detectors {list(detectors)}"
            )
        self.detectors = nn.ModuleDict(detectors)
        self.modality_channels = dict(modality_channels)
        self.modalities = tuple(self.modality_channels)
        self.in_channels = sum(self.modality_channels.values())
        self.iou_thresh = iou_thresh
        self.method = method
        self.detections_per_img = detections_per_img

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        check_detection_inputs(images, targets, self.in_channels, self.training)
        parts = [split_modalities(image, self.modality_channels) for image in images]
        outputs = {
            name: detector([part[name] for part in parts], targets) for name, detector in self.detectors.items()
        }
        if self.training:
            return {
                f"{name}/{key}": value for name, losses in outputs.items() for key, value in losses.items()
            }
        results = []
        for i in range(len(images)):
            per_source = [(o[i]["boxes"], o[i]["scores"], o[i]["labels"]) for o in outputs.values()]
            boxes, scores, labels = fuse_detections(
                per_source, self.iou_thresh, self.method, self.detections_per_img
            )
            results.append({"boxes": boxes, "scores": scores, "labels": labels})
        return results
