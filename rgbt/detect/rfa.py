"""Region feature alignment (RFA): a fusion Faster R-CNN that re-pools RGB features per region.

The idea is AR-CNN's (Zhang et al., "Weakly Aligned Cross-Modal Learning for Multispectral Pedestrian
Detection", ICCV 2019): when the cameras drift, the fused features of an object mix its thermal
appearance with RGB content from the wrong place, and no fixed fusion can undo an offset that
changes from frame to frame. So, per region of interest, the detector *predicts* where the object's
RGB content lies relative to its thermal box, from both modalities' features around the region, and
takes the RGB features from there before the box head.

How it is built here, on the halfway detector (:func:`rgbt.detect.build_fusion_detector`, per-stage
``concat`` fusion), so that it starts as, and can fall back to, exactly that detector:

* both trunks' stage features ``C2..C5`` (before fusion) are projected to the pyramid width by 1x1
  convolutions, giving a sensed (RGB) map ``R`` and a reference (thermal) map ``T`` per level;
* for each RoI ``b`` (thermal-frame box), both maps are RoI-aligned over the *context box*, ``b``
  enlarged ``context`` times about its centre, into ``(P, P)`` patches (``P = output_size * context``);
* an offset head (a 1x1 and a strided 3x3 convolution on the concatenated patches, then two linear
  layers; a quarter of the pyramid width, so it costs less than the box head) predicts
  ``t = (tx, ty)``, the RGB offset as fractions of the RoI's width and height, bounded by
  ``max_offset`` (``t = max_offset * tanh(.)``); the last layer starts at zero, so ``t = 0``.
  RoI Align is linear, so the head's 1x1 convolution runs on the maps before pooling (exactly the
  same result): a quarter of the channels is pooled instead of both maps in full;
* the fused RoI features ``F = pool(P_fused, b)`` (what halfway fusion's box head reads) are corrected by
  the RGB map read at the shifted box minus the same map read at the box itself::

      F' = F + g(R, b + t * (w, h)) - g(R, b)

  with ``g`` the bilinear reading at the ``output_size x output_size`` bin centres of a box, on the
  pyramid level the FPN rule gives the RoI (:func:`torch.nn.functional.grid_sample`, differentiable
  in ``t``). With ``t = 0`` the two terms are the same computation, so ``F' = F`` exactly: a zero
  offset is plain halfway fusion;
* supervision: for the sampled positive proposals whose ground truth has a paired RGB box
  (KAIST-Paired ``annotations_paired/``, the synthetic benchmark), a smooth-L1 loss ``loss_offset`` on
  ``t`` against ``(c_rgb - c_thermal) / (w, h)`` of the proposal (centres of the paired boxes). Training
  with ``augment.shift_rgb`` moves the paired boxes with the RGB image, so the offsets seen in
  training span the shifts. Without paired boxes the detection loss alone trains the offsets (through
  the resampling), more weakly.

Region-level fusion (``model.align: rfa_region``), closer to AR-CNN, where the modalities meet only at
the regions: the image-level pyramid, the RPN and the box head's base features are the reference
(thermal) stream's alone (:class:`SelectFusion` in place of the per-stage fusion), the sensed stream
gets a pyramid of its own (``sensed_fpn``, started from the RGB-only detector's pyramid by
:meth:`RFAFasterRCNN.warm_start_aliases`), and the region features are::

      F' = F_T + mix(g(P_R, b + t * (w, h)))

with ``mix`` a 1x1 convolution that starts at zero, so the detector begins as exactly the thermal
detector (what ``model.fusion_init: thermal`` gives halfway fusion). A shifted RGB image then reaches
nothing but the regions' RGB term: proposals and the thermal features stay as they are, and the
offset head, which reads both pyramids over the context box, can move the RGB reading back.

A frame-level prior (``model.align_prior: registration``): the offsets of one object's region are
hard to find from that region alone across modalities (small pedestrians, different appearance),
while a whole frame holds plenty of shared structure. With the prior, every frame of the batch is
first registered (:func:`rgbt.align.estimate`, shift model, the registration ``rgbt align`` runs;
a frame that cannot be registered, e.g. with its RGB blacked out, gets no prior), and each region
reads its RGB features at ``t = prior / (w, h) + t_head``: the offset head learns the per-region
residual (zero at the start), the offset loss supervises the sum. The prior is not differentiable
and runs on the CPU (NumPy / OpenCV), once per frame.

Signs follow rgbt's convention: ``t > 0`` means the RGB content lies right of / below the thermal
box, as a perturbation ``shift:dx,dy`` with ``dx, dy > 0`` moves it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign

from rgbt.detect.backbone import split_modalities
from rgbt.detect.heads import FusionFasterRCNN, IgnoreAwareRoIHeads, check_detection_inputs

#: Frame-level priors of the region offsets (``model.align_prior``).
PRIORS: tuple[str, ...] = ("none", "registration")

#: Region-level alignment modes of :func:`rgbt.detect.build_fusion_detector` (``none``: plain fusion;
#: ``rfa``: halfway fusion corrected per region; ``rfa_region``: fusion at the regions only).
ALIGNS: tuple[str, ...] = ("none", "rfa", "rfa_region")


class SelectFusion(nn.Module):
    """A "fusion" that keeps one stream's features (``rfa_region``: the image-level pyramid is the
    reference stream's). Forward: list of ``(B, C, H, W)`` -> the ``stream``-th one, unchanged."""

    def __init__(self, stream: int) -> None:
        super().__init__()
        self.stream = int(stream)

    def forward(self, streams: Sequence[Tensor]) -> Tensor:
        return streams[self.stream]

    def pass_through(self, stream: int) -> None:
        """Already passes stream :attr:`stream` through (what ``model.fusion_init`` asks of a fusion).

        Raises:
            ValueError: ``stream`` is another stream.
        """
        if stream != self.stream:
            raise ValueError(f"this region-level fusion keeps stream {self.stream} at the image level, "
                             f"not stream {stream}")


class RegionFeatureAlignment(nn.Module):
    """Per-RoI RGB offset prediction and re-pooling (see the module docstring).

    Args:
        sensed_channels: widths of the sensed (RGB) trunk's stages, finest first.
        reference_channels: widths of the reference (thermal) trunk's stages.
        level_names: the pyramid level name of each stage (``p2..p5``), as the fused features have them.
        channels: width of the fused RoI features (the pyramid width).
        output_size: side of the fused RoI features (7, Faster R-CNN's).
        context: side of the context box over the RoI's (2: offsets up to half the box stay inside).
        hidden: width of the offset head's linear layer.
        max_offset: largest predicted offset, as a fraction of the RoI's width / height.
        region: region-level fusion (``rfa_region``, see the module docstring): the sensed stream gets a
            pyramid of its own (``sensed_fpn``), the reference maps are the detector's (reference-only)
            pyramid levels, and the output is ``fused + mix(g(P_R, b + t))``.

    Forward:
        ``fused`` ``(R, channels, S, S)``, ``sensed``: the sensed trunk's stage features (list of
        ``(B, C_i, H_i, W_i)``), ``reference``: the reference trunk's stage features, or with ``region``
        the pyramid levels ``(B, channels, H_i, W_i)``; ``boxes``: per image ``(R_b, 4)`` xyxy RoIs in
        pixels of the (transformed) batch, ``image_shapes``: per image ``(h, w)``. Returns
        ``(fused', t)``: ``(R, channels, S, S)`` corrected features and ``(R, 2)`` offsets (fractions
        of width, height). ``prior`` (optional, ``(R, 2)``, fractions of width, height) is added to the
        head's offsets before the RGB features are read (``model.align_prior``).
    """

    def __init__(
        self,
        sensed_channels: Sequence[int],
        reference_channels: Sequence[int],
        level_names: Sequence[str],
        channels: int,
        output_size: int = 7,
        context: float = 2.0,
        hidden: int = 256,
        max_offset: float = 0.5,
        region: bool = False,
    ) -> None:
        super().__init__()
        if not len(sensed_channels) == len(reference_channels) == len(level_names) > 0:
            raise ValueError(f"one width per level needed: sensed {list(sensed_channels)}, reference "
                             f"{list(reference_channels)}, levels {list(level_names)}")
        if context <= 1 or output_size < 1 or channels < 1 or hidden < 1:
            raise ValueError(f"need context > 1 and positive sizes, got context={context}, output_size="
                             f"{output_size}, channels={channels}, hidden={hidden}")
        # The shifted RoI must stay inside its context patch.
        if not 0 < max_offset <= (context - 1) / 2:
            raise ValueError(f"max_offset must be in (0, {(context - 1) / 2}] for context {context}, got {max_offset}")
        self.level_names = list(level_names)
        self.output_size = int(output_size)
        self.context = float(context)
        self.max_offset = float(max_offset)
        self.patch_size = int(math.ceil(output_size * context))
        self.region = bool(region)
        if self.region:
            self.sensed_fpn = FeaturePyramidNetwork(list(sensed_channels), channels)
            # The RGB term starts at zero: the detector begins as the reference stream's detector.
            self.mix = nn.Conv2d(channels, channels, 1)
            nn.init.zeros_(self.mix.weight)
            nn.init.zeros_(self.mix.bias)
        else:
            self.sensed_proj = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in sensed_channels)
            self.reference_proj = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in reference_channels)
        self.pool = MultiScaleRoIAlign(self.level_names, output_size=self.patch_size, sampling_ratio=2)
        reduced = (self.patch_size + 1) // 2
        # A narrow head: it runs on every sampled RoI (1024 per batch of two), at twice the box head's side.
        width = max(8, channels // 4)
        self.offset_convs = nn.Sequential(
            nn.Conv2d(2 * channels, width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.offset_fc = nn.Linear(width * reduced * reduced, hidden)
        self.offset_out = nn.Linear(hidden, 2)
        # The detector starts as halfway fusion: every predicted offset is exactly 0.
        nn.init.zeros_(self.offset_out.weight)
        nn.init.zeros_(self.offset_out.bias)

    def context_boxes(self, boxes: Tensor) -> Tensor:
        """``(N, 4)`` xyxy boxes enlarged ``context`` times about their centres."""
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) * (self.context / 2)
        return torch.cat([centre - half, centre + half], dim=1)

    def project(self, sensed: Sequence[Tensor], reference: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """The maps the module reads, each ``(B, channels, H_i, W_i)``: the RGB maps ``R_i`` and the
        thermal maps ``T_i``; the trunks' stage features projected to the pyramid width, or with
        :attr:`region` the sensed stream's own pyramid and the reference pyramid levels as given."""
        if self.region:
            return list(self.sensed_fpn(OrderedDict(zip(self.level_names, sensed))).values()), list(reference)
        return ([proj(x) for proj, x in zip(self.sensed_proj, sensed)],
                [proj(x) for proj, x in zip(self.reference_proj, reference)])

    def offset_features(self, sensed_maps: Sequence[Tensor], reference_maps: Sequence[Tensor], boxes: list[Tensor],
                        image_shapes: list[tuple[int, int]]) -> Tensor:
        """``(R, width, P, P)``: the offset head's first layer (a 1x1 convolution over both modalities'
        patches of the context boxes) with its ReLU.

        RoI Align is linear in the features, so the 1x1 convolution (without its bias) runs on the
        maps before pooling: ``conv(pool([T, R])) = pool(conv_nobias([T, R])) + bias`` exactly, and
        only ``width`` channels (a quarter of the pyramid's) are pooled instead of ``2 * channels``.
        """
        first = self.offset_convs[0]
        maps = OrderedDict((name, F.conv2d(torch.cat([t, r], dim=1), first.weight))
                           for name, t, r in zip(self.level_names, reference_maps, sensed_maps))
        pooled = self.pool(maps, [self.context_boxes(b) for b in boxes], image_shapes)
        return F.relu(pooled + first.bias.view(1, -1, 1, 1))

    def offsets(self, features: Tensor) -> Tensor:
        """``(R, 2)`` offsets ``t`` in ``[-max_offset, max_offset]`` (fractions of the RoI's width, height)
        from :meth:`offset_features`."""
        x = self.offset_convs[2:](features)
        x = F.relu(self.offset_fc(x.flatten(1)))
        return self.max_offset * torch.tanh(self.offset_out(x))

    @staticmethod
    def levels(boxes: Tensor, scales: Sequence[float]) -> Tensor:
        """``(N,)`` index into ``scales`` (feature pixels per batch pixel of each level, finest first) of
        the level each xyxy box (batch pixels) is read from, by the FPN rule: level ``k`` (stride
        ``2^k``) for ``k = floor(4 + log2(sqrt(area) / 224))``, clamped to the levels there are."""
        size = ((boxes[:, 2] - boxes[:, 0]).clamp(min=1e-3) * (boxes[:, 3] - boxes[:, 1]).clamp(min=1e-3)).sqrt()
        finest = -math.log2(scales[0])
        level = torch.floor(4 + torch.log2(size / 224) + 1e-6) - finest
        return level.clamp(0, len(scales) - 1).to(torch.int64)

    def sample(self, maps: Sequence[Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]],
               offsets: Sequence[Tensor]) -> list[Tensor]:
        """The projected RGB maps read bilinearly at the ``S x S`` bin centres of each RoI moved by each
        of ``offsets`` (each ``(R, 2)``, fractions of the RoI's width and height), from the RoI's pyramid
        level (zero outside the map): one ``(R, channels, S, S)`` tensor per offset. Differentiable in
        the offsets and the maps. ``boxes``: per image ``(R_b, 4)`` xyxy in batch pixels."""
        size, variants = self.output_size, len(offsets)
        total = sum(len(b) for b in boxes)
        out = maps[0].new_zeros(variants, total, maps[0].shape[1], size, size)
        steps = (torch.arange(size, device=out.device, dtype=out.dtype) + 0.5) / size
        # Feature pixels per batch pixel of each level (a power of 2, as torchvision's poolers infer it).
        longest = max(h for h, _ in image_shapes)
        scales = [2.0 ** round(math.log2(m.shape[-2] / longest)) for m in maps]
        moved = torch.stack(list(offsets))  # (V, R, 2)
        start = 0
        for k, rois in enumerate(boxes):
            n = len(rois)
            if n == 0:
                continue
            wh = rois[:, 2:] - rois[:, :2]
            corner = rois[:, :2] + moved[:, start:start + n] * wh  # (V, n, 2): top-left of each moved RoI
            xs = corner[..., 0, None] + steps * wh[:, 0, None]  # (V, n, S) bin centres, batch pixels
            ys = corner[..., 1, None] + steps * wh[:, 1, None]
            level = self.levels(rois, scales)
            for index, (feature, scale) in enumerate(zip(maps, scales)):
                chosen = torch.nonzero(level == index).flatten()
                if len(chosen) == 0:
                    continue
                m = len(chosen)
                # align_corners=False: -1 / +1 are the outer edges of the map's first / last pixel.
                gx = (xs[:, chosen] * scale / feature.shape[-1] * 2 - 1)[:, :, None, :].expand(-1, -1, size, -1)
                gy = (ys[:, chosen] * scale / feature.shape[-2] * 2 - 1)[:, :, :, None].expand(-1, -1, -1, size)
                grid = torch.stack([gx, gy], dim=-1).reshape(1, variants * m * size, size, 2)
                read = F.grid_sample(feature[k:k + 1], grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False)  # (1, C, V * m * S, S)
                read = read.reshape(feature.shape[1], variants, m, size, size).permute(1, 2, 0, 3, 4)
                out[:, start + chosen] = read
            start += n
        return list(out.unbind(0))

    def forward(self, fused: Tensor, sensed: Sequence[Tensor], reference: Sequence[Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]], prior: Tensor | None = None) -> tuple[Tensor, Tensor]:
        sensed_maps, reference_maps = self.project(sensed, reference)
        t = self.offsets(self.offset_features(sensed_maps, reference_maps, boxes, image_shapes))
        if prior is not None:
            t = t + prior
        if self.region:
            (moved,) = self.sample(sensed_maps, boxes, image_shapes, [t])
            return fused + self.mix(moved), t
        moved, here = self.sample(sensed_maps, boxes, image_shapes, [t, torch.zeros_like(t)])
        return fused + (moved - here), t


def region_priors(priors: Sequence[Tensor], boxes: Sequence[Tensor]) -> Tensor:
    """``(R, 2)``: each image's prior offset ``(dx, dy)`` (px, ``(2,)`` per image) over the width and
    height of each of its ``(R_b, 4)`` xyxy boxes, the images' boxes concatenated."""
    parts = [prior.to(b).expand(len(b), 2) / (b[:, 2:] - b[:, :2]).clamp(min=1e-3) for prior, b in zip(priors, boxes)]
    return torch.cat(parts) if parts else torch.zeros(0, 2)


def frame_priors(rgb: Sequence[Tensor], thermal: Sequence[Tensor]) -> list[Tensor]:
    """Per frame, the RGB offset ``(dx, dy)`` (px, float32 ``(2,)``) that registering it finds
    (:func:`rgbt.align.estimate`, shift model, default search range): where its thermal centre lands in
    the RGB image, minus the centre; ``(0, 0)`` for a frame that cannot be registered.

    Args:
        rgb: per frame ``(3, H, W)``, values in ``[0, 1]``.
        thermal: per frame ``(1, H, W)``, values in ``[0, 1]``.
    """
    from rgbt.align.estimate import estimate

    def pixels(image: Tensor) -> Tensor:
        return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()

    out = []
    for colour, heat in zip(rgb, thermal):
        found = estimate(pixels(colour).permute(1, 2, 0).contiguous().numpy(), pixels(heat)[0].numpy(), "shift")
        out.append(torch.tensor([found.dx, found.dy] if found.ok else [0.0, 0.0], dtype=torch.float32))
    return out


def offset_targets(proposals: Tensor, matched_boxes: Tensor, matched_rgb: Tensor) -> Tensor:
    """``(R, 2)`` offset targets of proposals: the centre of each matched object's RGB box minus the
    centre of its thermal box, over the proposal's width and height."""
    size = (proposals[:, 2:] - proposals[:, :2]).clamp(min=1e-3)
    delta = (matched_rgb[:, :2] + matched_rgb[:, 2:]) / 2 - (matched_boxes[:, :2] + matched_boxes[:, 2:]) / 2
    return delta / size


class _AlignHook:
    """The :data:`~rgbt.detect.heads.RegionHook` of one forward pass: applies the alignment module with
    this batch's stream features and, in training, computes ``loss_offset`` from paired boxes."""

    def __init__(self, align: RegionFeatureAlignment, sensed: Sequence[Tensor], reference: Sequence[Tensor],
                 targets: list[dict[str, Tensor]] | None, loss_weight: float,
                 priors: list[Tensor] | None = None) -> None:
        self.align, self.sensed, self.reference = align, sensed, reference
        self.targets, self.loss_weight, self.priors = targets, loss_weight, priors

    def __call__(self, pooled: Tensor, proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                 matched_idxs: list[Tensor] | None, labels: list[Tensor] | None) -> tuple[Tensor, dict[str, Tensor]]:
        prior = None if self.priors is None else region_priors(self.priors, proposals)
        aligned, t = self.align(pooled, self.sensed, self.reference, proposals, image_shapes, prior)
        if matched_idxs is None or labels is None or self.targets is None:
            return aligned, {}
        predicted, wanted = [], []
        for k, (props, idxs, labs, target) in enumerate(zip(proposals, matched_idxs, labels, self.targets)):
            start = sum(len(p) for p in proposals[:k])
            if "boxes_rgb" not in target:
                continue
            # The same split as the RoI heads' sampling: matched indices point into the non-ignore objects.
            keep = ~target["ignore"] if "ignore" in target else torch.ones_like(target["labels"], dtype=torch.bool)
            boxes, rgb = target["boxes"][keep], target["boxes_rgb"][keep]
            positive = labs > 0
            if not bool(positive.any()) or len(boxes) == 0:
                continue
            index = idxs[positive]
            predicted.append(t[start:start + len(props)][positive])
            wanted.append(offset_targets(props[positive], boxes[index], rgb[index]))
        if not predicted:
            return aligned, {"loss_offset": t.sum() * 0.0}
        target_t = torch.cat(wanted).clamp(-self.align.max_offset, self.align.max_offset)
        loss = F.smooth_l1_loss(torch.cat(predicted), target_t, beta=1.0 / 9, reduction="mean")
        return aligned, {"loss_offset": self.loss_weight * loss}


class RFAFasterRCNN(FusionFasterRCNN):
    """Halfway-fusion Faster R-CNN with region feature alignment (see the module docstring).

    Args:
        backbone: a two-trunk :class:`~rgbt.detect.backbone.MultiStreamBackbone` (per-stage fusion).
        rpn, roi_heads, transform: as :class:`~rgbt.detect.heads.FusionFasterRCNN` (``roi_heads`` an
            :class:`~rgbt.detect.heads.IgnoreAwareRoIHeads`).
        align: the :class:`RegionFeatureAlignment`.
        sensed, reference: the backbone's trunk indices of the sensed (RGB) and reference (thermal) stream.
        offset_loss_weight: weight of ``loss_offset``.
        prior: ``none`` or ``registration`` (a frame-level prior for the offsets, see the module docstring).

    Forward: as :class:`~rgbt.detect.heads.FusionFasterRCNN`; targets may carry ``boxes_rgb`` ``(N, 4)``
    (the same objects in the RGB frame), which supervise the offsets; training adds ``loss_offset``
    (0 for a batch without paired boxes).
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: IgnoreAwareRoIHeads, transform: nn.Module,
                 align: RegionFeatureAlignment, sensed: int, reference: int, offset_loss_weight: float = 1.0,
                 prior: str = "none") -> None:
        super().__init__(backbone, rpn, roi_heads, transform)
        if offset_loss_weight < 0:
            raise ValueError(f"offset_loss_weight must be >= 0, got {offset_loss_weight}")
        if prior not in PRIORS:
            raise ValueError(f"unknown align prior {prior!r}; known: {', '.join(PRIORS)}")
        self.prior = prior
        self.align = align
        self.sensed, self.reference = int(sensed), int(reference)
        self.offset_loss_weight = float(offset_loss_weight)

    def _prepare(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None):  # type: ignore[no-untyped-def]
        original = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        if targets is not None:
            targets = [_scale_rgb_boxes(t, o, s) for t, o, s in zip(targets, original, batch.image_sizes)]
        streams = self.backbone.all_stream_features(batch.tensors)
        return original, batch, targets, streams

    def _reference_maps(self, streams: Sequence[Sequence[Tensor]], features: Mapping[str, Tensor]) -> list[Tensor]:
        """What the module reads for the reference stream: its stage features, or with region-level
        fusion the (reference-only) pyramid levels the RoIs are pooled from."""
        if self.align.region:
            return [features[name] for name in self.backbone.stage_level_names]
        return list(streams[self.reference])

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):  # type: ignore[override]
        check_detection_inputs(images, targets, self.backbone.in_channels, self.training)
        original, batch, targets, streams = self._prepare(images, targets)
        features = self.backbone.fuse_streams(streams)
        proposals, proposal_losses = self.rpn(batch, features, targets)
        hook = _AlignHook(self.align, streams[self.sensed], self._reference_maps(streams, features), targets,
                          self.offset_loss_weight, self._priors(images, original, batch.image_sizes))
        detections, detector_losses = self.roi_heads(features, proposals, batch.image_sizes, targets, hook)
        if self.training:
            return {**proposal_losses, **detector_losses}
        return self.transform.postprocess(detections, batch.image_sizes, original)

    @torch.no_grad()
    def region_offsets(self, images: list[Tensor], boxes: list[Tensor]) -> list[Tensor]:
        """The RGB offset the model predicts for given thermal-frame boxes (e.g. the ground truth), in
        pixels of the input images: per image ``(N, 2)`` ``(dx, dy)``, the RGB box centre minus the
        thermal one (compare with KAIST-Paired boxes). Runs in evaluation mode."""
        was_training = self.training
        self.eval()
        try:
            check_detection_inputs(images, None, self.backbone.in_channels, False)
            original, batch, _targets, streams = self._prepare(images, None)
            scales = [(s[1] / o[1], s[0] / o[0]) for o, s in zip(original, batch.image_sizes)]
            scaled = [b * b.new_tensor([sx, sy, sx, sy]) for b, (sx, sy) in zip(boxes, scales)]
            # Only region-level fusion reads the pyramid here; halfway RFA reads the trunks' features.
            features = self.backbone.fuse_streams(streams) if self.align.region else {}
            reference_maps = self._reference_maps(streams, features)
            sensed, reference = self.align.project(streams[self.sensed], reference_maps)
            t = self.align.offsets(self.align.offset_features(sensed, reference, scaled, batch.image_sizes))
            priors = self._priors(images, original, batch.image_sizes)
            if priors is not None:
                t = t + region_priors(priors, scaled)
            out, start = [], 0
            for b in boxes:
                size = (b[:, 2:] - b[:, :2]).clamp(min=1e-3)
                out.append(t[start:start + len(b)] * size)
                start += len(b)
            return out
        finally:
            self.train(was_training)

    def _priors(self, images: list[Tensor], original: list[tuple[int, int]],
                sizes: list[tuple[int, int]]) -> list[Tensor] | None:
        """Per image the frame prior in pixels of the (transformed) batch, or ``None`` without one."""
        if self.prior == "none":
            return None
        names = list(self.backbone.trunks)
        parts = [split_modalities(image, self.backbone.modality_channels) for image in images]
        found = frame_priors([p[names[self.sensed]] for p in parts], [p[names[self.reference]] for p in parts])
        return [p * p.new_tensor([s[1] / o[1], s[0] / o[0]]) for p, o, s in zip(found, original, sizes)]

    def warm_start_aliases(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Tensors of a trained detector's ``state`` under names of this model that
        :func:`rgbt.engine.detector_builder.warm_start` would not match by name: with region-level
        fusion, a single-stream detector of the sensed modality (the RGB-only detector) gives its
        pyramid to the sensed stream's own (``align.sensed_fpn``). Empty otherwise."""
        if not self.align.region:
            return {}
        sensed = list(self.backbone.trunks)[self.sensed]
        trunks = {key.split(".")[2] for key in state if key.startswith("backbone.trunks.")}
        if trunks != {sensed}:
            return {}
        prefix = "backbone.fpn."
        return {"align.sensed_fpn." + key[len(prefix):]: value for key, value in state.items()
                if key.startswith(prefix) and not key.startswith(prefix + "extra_blocks.")}


def _scale_rgb_boxes(target: dict[str, Tensor], original: tuple[int, int], size: tuple[int, int]) -> dict[str, Tensor]:
    """``boxes_rgb`` resized like the transform resized ``boxes`` (it leaves other keys alone)."""
    if "boxes_rgb" not in target or tuple(original) == tuple(size):
        return target
    sx, sy = size[1] / original[1], size[0] / original[0]
    return {**target, "boxes_rgb": target["boxes_rgb"] * target["boxes_rgb"].new_tensor([sx, sy, sx, sy])}


def add_region_alignment(
    detector: FusionFasterRCNN,
    reference: str = "thermal",
    offset_loss_weight: float = 1.0,
    *,
    context: float = 2.0,
    hidden: int = 256,
    max_offset: float = 0.5,
    region: bool = False,
    prior: str = "none",
) -> RFAFasterRCNN:
    """The RFA detector over a halfway detector's parts (they are shared, not copied): with the offset
    head's zero start it computes exactly what ``detector`` does. With ``region`` (region-level fusion,
    ``rfa_region``) the backbone's per-stage fusion modules are replaced by :class:`SelectFusion` of the
    reference stream, and with the zero start of ``mix`` the model computes what a detector of the
    reference stream alone with the same trunk, pyramid and heads does.

    Args:
        detector: a two-stream Faster R-CNN from :func:`rgbt.detect.build_detector` over a
            :class:`~rgbt.detect.backbone.MultiStreamBackbone` with per-stage fusion.
        reference: the reference modality (its trunk name); the other stream is the sensed one.
        offset_loss_weight, context, hidden, max_offset, region, prior: see :class:`RFAFasterRCNN` and
            :class:`RegionFeatureAlignment`.

    Raises:
        ValueError: not a Faster R-CNN over two trunks, one of which is ``reference``.
    """
    if not isinstance(detector, FusionFasterRCNN) or not isinstance(detector.roi_heads, IgnoreAwareRoIHeads):
        raise ValueError(f"region feature alignment needs a Faster R-CNN fusion detector, got "
                         f"{type(detector).__name__}")
    backbone = detector.backbone
    names = list(getattr(backbone, "trunks", {}))
    if len(names) != 2 or reference not in names:
        raise ValueError(f"region feature alignment needs two streams, one of them {reference!r} (per-stage "
                         f"fusion: concat, sum or gate); the backbone has trunks {names}")
    ref = names.index(reference)
    sensed = 1 - ref
    output_size = detector.roi_heads.box_roi_pool.output_size
    align = RegionFeatureAlignment(
        backbone.trunks[names[sensed]].out_channels, backbone.trunks[reference].out_channels,
        backbone.stage_level_names, backbone.out_channels, output_size=int(output_size[0]), context=context,
        hidden=hidden, max_offset=max_offset, region=region,
    )
    if region:
        backbone.fusions = nn.ModuleList(SelectFusion(ref) for _ in backbone.fusions)
        backbone.fusion = "region"
    return RFAFasterRCNN(backbone, detector.rpn, detector.roi_heads, detector.transform, align, sensed, ref,
                         offset_loss_weight, prior)
