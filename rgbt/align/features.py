"""Cross-modal structure images: what an RGB and a thermal image of one scene have in common.

Intensities do not correspond across the two cameras (a warm pedestrian is bright in thermal and
any colour in RGB; the sky is dark in thermal and bright in RGB), but the *places* where the
scene changes do: object outlines, poles, road edges, the skyline. A structure image keeps only
those places:

    m = |grad(G_sigma * I)|                  gradient magnitude (Sobel after a Gaussian blur)
    s = sqrt(m / (box_31(m) + median(m)))    local contrast normalisation, compressed

The local normalisation (a 31 px box mean) makes a faint edge in a dark region count as much as
a strong one in a bright region, since the two cameras see very different contrasts; the global
median in the denominator keeps nearly flat regions near zero instead of amplifying their noise;
the square root keeps a few very strong edges (headlights, the sun) from dominating the
correlation. Edge polarity is discarded (a magnitude), because thermal and RGB often disagree on
which side of an edge is brighter.

RGB images are reduced to luminance first. A *valid mask* marks the RGB pixels that hold image
content: a perturbed or pre-warped RGB image has a zero-filled border that is not part of the
scene, and its artificial edge must not be matched.

Every function takes and returns numpy arrays: images ``uint8`` ``(H, W)`` or ``(H, W, 3)`` RGB,
structure images ``float32`` ``(H, W)`` >= 0, masks ``uint8`` ``(H, W)`` in {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Gaussian blur before the gradient, in pixels of the level it is computed on.
SIGMA = 1.0
#: Side of the box window of the local contrast normalisation, in pixels.
NORM_WINDOW = 31
#: Grey level (max over channels) at or below which a pixel can be zero fill (exact 0 after a
#: warp; a little above after JPEG coding).
FILL_LEVEL = 3
#: A dark edge region is fill only when the rest of the frame is convex: its area falls short of its
#: convex hull's by at most this many pixels times the hull's perimeter ...
FILL_TOLERANCE = 1.0
#: ... and at least this fraction of the frame.
FILL_MIN_CONTENT = 0.25
#: Pixels of a zero-filled border that are also dropped from the valid mask (the blur and the
#: gradient of the structure image see this far across the artificial edge).
BORDER_ERODE = 2
#: An image whose intensities vary by less than this standard deviation (grey levels) is flat.
FLAT_STD = 1.0
#: Noise-adaptive blur of the coarse search level: sigma = clip(NOISE_BLUR * noise std, SIGMA, MAX_BLUR).
NOISE_BLUR = 0.6
MAX_BLUR = 3.0
#: A pixel is structure when :func:`gradient_magnitude` reaches this value: a step edge of about
#: 1.3 grey levels (Sobel gains 8 on a unit ramp; a sigma-1 blur spreads a step over ~2.5 px).
STRUCTURE_GRADIENT = 4.0


def luminance(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 luminance of an RGB image (BT.601 weights); a 2-D image is returned as is."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def gradient_magnitude(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``(H, W)`` float32 ``|grad|`` of a grey image after a Gaussian blur of ``sigma`` px (Sobel 3x3)."""
    plane = image.astype(np.float32)
    if sigma > 0:
        plane = cv2.GaussianBlur(plane, (0, 0), sigma)
    gx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def noise_level(image: np.ndarray) -> float:
    """Standard deviation (grey levels) of the sensor noise of a grey image, by Immerkaer's estimator
    (the mean absolute response to the 3x3 difference of two Laplacians, which cancels smooth content):
    under 2 for a day frame, 4-7 for a dark, amplified night RGB frame."""
    plane = luminance(image).astype(np.float32)
    if min(plane.shape) < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(plane, -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def coarse_sigma(image: np.ndarray) -> float:
    """The blur (px) of a structure image made for the coarse search of ``image``: :data:`SIGMA` on
    clean images, growing with the noise (:func:`noise_level`) up to :data:`MAX_BLUR`, so the noise
    of a dark night RGB frame does not hide the faint outlines that tell apart the repeated
    candidates of its few bright structures (lit windows of a facade)."""
    return float(min(MAX_BLUR, max(SIGMA, NOISE_BLUR * noise_level(image))))


def structure_image(image: np.ndarray, mask: np.ndarray | None = None, sigma: float = SIGMA) -> np.ndarray:
    """The structure image of one RGB or thermal image (see the module docstring).

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8 (or float) image.
        mask: optional ``(H, W)`` valid mask; structure outside it is set to 0.
        sigma: blur (px) before the gradient.

    Returns:
        ``(H, W)`` float32, >= 0; all zeros for a flat image.
    """
    magnitude = gradient_magnitude(luminance(image), sigma)
    if mask is not None:
        magnitude *= mask
    # The median of every 4th pixel of every 4th row: as good a floor, 16 times cheaper.
    sample = magnitude[::4, ::4] if mask is None else magnitude[::4, ::4][mask[::4, ::4] > 0]
    floor = float(np.median(sample)) if sample.size else 0.0
    local = cv2.boxFilter(magnitude, -1, (NORM_WINDOW, NORM_WINDOW))
    return np.sqrt(magnitude / (local + floor + 1e-3)).astype(np.float32)


def valid_mask(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 mask of the pixels holding image content.

    The zero fill a shift, rotation, scale or pre-warp leaves is (near) black (<= :data:`FILL_LEVEL`),
    touches the frame edge, and leaves the content a convex region (the frame seen through an affine
    map, cut by the frame). So the dark pixels connected to the frame edge are fill when what remains
    is convex (up to :data:`FILL_TOLERANCE` px along its outline) and at least
    :data:`FILL_MIN_CONTENT` of the frame; fill and :data:`BORDER_ERODE` px beyond it get 0. Dark scene
    content touching the edge (a night sky behind trees) leaves an irregular, non-convex remainder
    and stays valid; so does a nearly black frame.
    """
    plane = rgb.max(axis=2) if rgb.ndim == 3 else rgb
    dark = (plane <= FILL_LEVEL).astype(np.uint8)
    full = np.ones(plane.shape, np.uint8)
    if not (dark[0].any() or dark[-1].any() or dark[:, 0].any() or dark[:, -1].any()):
        return full
    _count, labels = cv2.connectedComponents(dark, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    fill = np.isin(labels, edge)
    content = (~fill).astype(np.uint8)
    area = int(content.sum())
    if area < FILL_MIN_CONTENT * content.size:
        return full
    contours, _ = cv2.findContours(content, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    # Areas of the outline polygons (through pixel centres) against the hull's: a warped frame edge is
    # a staircase, which falls short of its hull by about half a pixel along its length.
    deficit = float(cv2.contourArea(hull)) - sum(float(cv2.contourArea(c)) for c in contours)
    if deficit > FILL_TOLERANCE * float(cv2.arcLength(hull, True)):
        return full
    if BORDER_ERODE > 0:
        size = 2 * BORDER_ERODE + 1
        content = cv2.erode(content, np.ones((size, size), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return content


def structure_fraction(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of the (valid) pixels whose :func:`gradient_magnitude` reaches :data:`STRUCTURE_GRADIENT`:
    0 for a flat or black image, a few per cent for a night RGB frame with a few lights, most of a
    textured day frame. Sensor noise counts as structure here (it is told apart by the correlation
    score, not by this test)."""
    strong = gradient_magnitude(luminance(image)) >= STRUCTURE_GRADIENT
    if mask is not None:
        valid = mask > 0
        return float(strong[valid].mean()) if valid.any() else 0.0
    return float(strong.mean())


def is_flat(image: np.ndarray, mask: np.ndarray | None = None) -> bool:
    """Whether the (valid part of the) image varies by less than :data:`FLAT_STD` grey levels."""
    grey = luminance(image)
    values = grey[mask > 0] if mask is not None else grey
    return values.size == 0 or float(values.std()) < FLAT_STD


@dataclass
class StructurePyramid:
    """Structure images and valid masks of one image at levels ``0..L`` (level ``l``: size / 2^l).

    Attributes:
        structure: ``structure[l]`` ``(H_l, W_l)`` float32.
        mask: ``mask[l]`` ``(H_l, W_l)`` uint8, 1 where the level's pixel is entirely made of valid
            full-resolution pixels.
        coarse: the coarsest level's structure with the noise-adaptive blur of :func:`coarse_sigma`
            (the same array as ``structure[-1]`` on a clean image), for the coarse search only.
    """

    structure: list[np.ndarray]
    mask: list[np.ndarray]
    coarse: np.ndarray

    @property
    def levels(self) -> int:
        """Number of levels (``L + 1``)."""
        return len(self.structure)


def build_pyramid(image: np.ndarray, levels: int, mask: np.ndarray | None = None) -> StructurePyramid:
    """Structure images of ``image`` at ``levels`` levels: the image is reduced with :func:`cv2.pyrDown`
    (which averages away noise) and the structure computed at every level.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.
        levels: >= 1.
        mask: optional valid mask of ``image`` (``None``: every pixel valid).
    """
    plane = luminance(image).astype(np.float32)
    valid = (np.ones(plane.shape, np.float32) if mask is None else mask.astype(np.float32))
    structures, masks = [], []
    for level in range(levels):
        if level:
            plane = cv2.pyrDown(plane)
            valid = cv2.pyrDown(valid)
        # A level pixel is valid only when its whole footprint was: pyrDown blends the border in.
        binary = (valid > 0.999).astype(np.uint8)
        structures.append(structure_image(plane, binary) if mask is not None else structure_image(plane))
        masks.append(binary)
    sigma = coarse_sigma(plane)
    coarse = structures[-1] if sigma <= SIGMA else structure_image(plane, None if mask is None else masks[-1], sigma)
    return StructurePyramid(structures, masks, coarse)
