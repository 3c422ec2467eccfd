"""The thermal physics of a synthetic frame: ambient temperature, sun, and what each surface emits.

The thermal canvas of a scene holds temperatures in degC, split in two parts that the renderer
keeps per pixel: ``temp`` (the surface without sunshine: ambient plus its own heat) and ``absorb``
(its solar absorptivity, 0..1). The thermal image is ``temp + sun * absorb * sunlit`` mapped to grey
levels by the camera, so on a warm sunny day the air is near skin temperature and sunlit roads and
walls reach that of clothing (thermal crossover), while at night persons stand out more. Skin and
clothing follow the usual clothing-insulation picture: the surface of a garment lies between skin
and air temperature, nearer the air for a thick coat. The defaults are set so that the contrast
statistic of :mod:`rgbt.evaluation.contrast` lands near KAIST's (``datasets/synthetic/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Ambient temperature of a day frame without crossover (an overcast 12 degC day), degC.
COOL_DAY = 12.0
#: Range the warmth of day frames adds to :data:`COOL_DAY` at full crossover, K: KAIST was
#: recorded in the warm season (short sleeves in the RGB frames), so day frames draw 25-32 degC.
WARM_DAY_RISE = (13.0, 20.0)
#: Solar heating of a fully absorbing sunlit surface at full crossover and a cloudless sky, K.
FULL_SUN = 9.0
#: Ambient temperature range of night frames, degC (warm-season nights, as in KAIST).
NIGHT_AMBIENT = (14.0, 26.0)
#: Largest heat a road keeps after sunset, K above ambient.
NIGHT_RETAIN = 3.5
#: Skin surface temperature at 20 degC ambient, degC (it follows ambient a little).
SKIN_AT_20 = 33.0


@dataclass(frozen=True)
class Climate:
    """The conditions of one frame.

    Attributes:
        ambient: air temperature, degC.
        sun: solar heating of a fully absorbing sunlit surface, K (0 at night).
        sunshine: how sunny the frame looks in RGB, 0 (overcast) .. 1 (cloudless); sets the depth of
            shadows. Independent of the crossover strength: crossover only changes thermal.
        clear: sky clearness, 0..1: a clear sky is much colder than the air in long-wave infrared.
        retain: heat a road keeps after sunset, K (0 by day).
        night: the frame's period is night.
    """

    ambient: float
    sun: float
    sunshine: float
    clear: float
    retain: float
    night: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, night: bool, crossover: float, night_thermal: float) -> Climate:
        """The climate of one frame (always five draws from ``rng``, whatever the strengths).

        Args:
            rng: the frame's climate stream.
            night: the frame is a night frame.
            crossover: :attr:`~rgbt.data.synthetic_effects.SyntheticEffects.crossover`.
            night_thermal: :attr:`~rgbt.data.synthetic_effects.SyntheticEffects.night_thermal`.
        """
        warmth, sunshine, clear, night_air, retain = rng.random(5)
        sunshine = 0.2 + 0.8 * sunshine
        day_ambient = COOL_DAY + crossover * (WARM_DAY_RISE[0] + (WARM_DAY_RISE[1] - WARM_DAY_RISE[0]) * warmth)
        day_sun = FULL_SUN * crossover * sunshine
        if not night:
            return cls(day_ambient, day_sun, sunshine, 0.3 + 0.7 * sunshine, 0.0, False)
        ambient_night = NIGHT_AMBIENT[0] + (NIGHT_AMBIENT[1] - NIGHT_AMBIENT[0]) * night_air
        mix = night_thermal
        return cls(
            ambient=(1 - mix) * day_ambient + mix * ambient_night,
            sun=(1 - mix) * day_sun,
            sunshine=0.0,
            clear=(1 - mix) * (0.3 + 0.7 * sunshine) + mix * clear,
            retain=mix * NIGHT_RETAIN * retain,
            night=True,
        )

    @property
    def skin(self) -> float:
        """Skin surface temperature, degC."""
        return SKIN_AT_20 + 0.12 * (self.ambient - 20.0)

    @property
    def sky(self) -> float:
        """Apparent sky temperature, degC (8 K below ambient when overcast, 35 K when clear)."""
        return self.ambient - 8.0 - 27.0 * self.clear

    def garment(self, insulation: float) -> float:
        """Surface temperature of clothing of ``insulation`` in [0, 1] (0: skin-tight, 1: a thick coat), degC."""
        return self.ambient + (1.0 - 0.85 * insulation) * (self.skin - self.ambient)

    def ground(self, keep: float = 1.0) -> float:
        """Temperature of a ground surface without sun, degC: ambient plus ``keep`` times the heat
        kept after sunset."""
        return self.ambient + keep * self.retain
