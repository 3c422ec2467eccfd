"""Registration of RGB to thermal: estimate, pool and apply the transform between the two cameras.

:mod:`~rgbt.align.features` makes the cross-modal structure images, :mod:`~rgbt.align.correlate`
matches them (NCC searches, ECC refinement), :mod:`~rgbt.align.estimate` is the per-frame
:func:`estimate` (a pure function of two images), :mod:`~rgbt.align.pool` pools a sequence's
estimates robustly, :mod:`~rgbt.align.warp` warps RGB images and boxes into the thermal frame and
:mod:`~rgbt.align.transform` holds the conventions of the 3x3 ``H`` (thermal pixel -> RGB pixel).
Nothing here reads a config or a file: :mod:`rgbt.engine.align` runs it over datasets.
"""

from rgbt.align.estimate import estimate
from rgbt.align.pool import pool_registrations, sequence_of
from rgbt.align.result import STATUSES, Registration
from rgbt.align.transform import MODELS
from rgbt.align.warp import boxes_to_thermal, warp_to_thermal

__all__ = ["estimate", "pool_registrations", "sequence_of", "STATUSES", "Registration", "MODELS",
           "boxes_to_thermal", "warp_to_thermal"]
