"""Fusion pedestrian detectors: multi-stream backbones and ignore-aware torchvision heads.

Images are stacked modality channels (``('rgb', 'thermal')`` -> ``[r, g, b, t]``), float in [0, 1];
boxes are float xyxy pixels of the thermal frame; see :mod:`rgbt.detect.detector` for the contract.
"""

from rgbt.detect.backbone import MultiStreamBackbone, build_backbone
from rgbt.detect.detector import (
    ARCHS,
    LateFusionDetector,
    build_detector,
    build_fusion_detector,
    build_late_fusion_detector,
    fuse_detections,
)
from rgbt.detect.rfa import RFAFasterRCNN, add_region_alignment
from rgbt.detect.trunk import build_trunk

__all__ = [
    "ARCHS",
    "LateFusionDetector",
    "MultiStreamBackbone",
    "RFAFasterRCNN",
    "add_region_alignment",
    "build_backbone",
    "build_detector",
    "build_fusion_detector",
    "build_late_fusion_detector",
    "build_trunk",
    "fuse_detections",
]
