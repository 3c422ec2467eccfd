"""What makes the synthetic benchmark hard: one strength per effect, KAIST-like by default, 0 = off.

Each field names one thing real KAIST frames do that a naive renderer does not, and the value
scales it; :meth:`SyntheticEffects.none` turns them all off (persons glow in thermal, every day is
a cool overcast day, no decoys, flat RGB figures, night RGB uniformly dark, occluders opaque in
both cameras). The values are stored in ``synthetic.json`` under ``effects``. Every effect draws its
random numbers from its own per-frame stream, so switching one effect off leaves the rest of the
scene as it was (same persons, same boxes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class SyntheticEffects:
    """Effect strengths of the synthetic benchmark (see the module docstring).

    Attributes:
        crossover: thermal crossover on warm days, in [0, 1]. Each day frame draws how warm it is:
            the ambient temperature is ``12 + 20 * crossover * u`` degC (``u`` uniform in [0, 1]) and
            sunlit surfaces gain up to ``16 * crossover`` K (less under clouds, none in shadow), while
            clothing stays between ambient and skin temperature: on warm sunny frames persons are
            barely warmer (or colder) than roads and walls. 0: every day frame is a 12 degC overcast
            day, persons stand out as at night.
        night_thermal: how much night thermal differs from day thermal, in [0, 1]. 1: night frames
            draw a cool ambient (4-20 degC), no sun, and roads that keep some of the day's heat. 0:
            night frames draw the day's climate (thermal statistics identical by day and night).
        warm_clutter: mean number per frame (Poisson) of warm non-person objects of pedestrian size
            and about a person's temperature: electrical cabinets, vending machines, parked scooters
            with warm engines, dogs, parking meters. RGB shows each as what it is. 0: none.
        cold_decoys: mean number per frame (Poisson) of person-like shapes that are cold in thermal:
            posters and billboards printed with people, mannequins in shop windows, reflections of
            people in glass. RGB shows a person; thermal shows the board or the glass. 0: none.
        person_shading: strength of the RGB cues that make pedestrians learnable, in [0, 1]: shading
            of the body as a lit solid (top light, a sunny side, darker silhouette edges) and the cast
            shadow on the ground by day. Clothing is KAIST-like either way (mostly dark and neutral,
            some colour, visible skin). 0: flat-coloured figures without shadows.
        night_lighting: strength of night-time lighting in RGB, in [0, 1]: pools of light under
            street lamps and in front of shop windows (a person is visible there and nearly invisible
            elsewhere), headlight beams and headlight glare (bloom and streaks that cover what is
            behind them, in RGB only). 0: night RGB is uniformly dark with point lights only.
        modal_occluders: probability, in [0, 1], that a person stands behind an occluder that only
            one camera sees: glass (a bus shelter or shop window: transparent in RGB, opaque in
            thermal) or smoke / steam (opaque-ish in RGB, transparent in long-wave infrared). The
            person's annotation does not change (the other camera sees it). 0: none.
    """

    crossover: float = 1.0
    night_thermal: float = 1.0
    warm_clutter: float = 1.2
    cold_decoys: float = 0.5
    person_shading: float = 1.0
    night_lighting: float = 1.0
    modal_occluders: float = 0.12

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"effect {item.name} must be a finite number, got {value!r}")
            high = _RANGES[item.name]
            if not 0 <= value <= high:
                raise ValueError(f"effect {item.name} must be in [0, {high:g}], got {value!r}")
            object.__setattr__(self, item.name, float(value))

    @classmethod
    def none(cls) -> SyntheticEffects:
        """Every effect off."""
        return cls(**{item.name: 0.0 for item in fields(cls)})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The effect names, in declaration order."""
        return tuple(item.name for item in fields(cls))


#: Upper bound of each effect (fractions and strengths 1; Poisson means 10 objects per frame).
_RANGES: dict[str, float] = {"crossover": 1.0, "night_thermal": 1.0, "warm_clutter": 10.0, "cold_decoys": 10.0,
                             "person_shading": 1.0, "night_lighting": 1.0, "modal_occluders": 1.0}


def parse_effects(items: Sequence[str], base: SyntheticEffects | None = None) -> SyntheticEffects:
    """Effects from ``NAME=VALUE`` strings (e.g. a command line's ``--effect crossover=0``); ``none`` or
    ``off`` alone turns every effect off first. Unnamed effects keep ``base`` (default: the defaults).

    Raises:
        ValueError: an unknown name, a malformed item or a value out of range (the message names it).
    """
    effects = base or SyntheticEffects()
    changes: dict[str, float] = {}
    for item in items:
        if item.strip().lower() in ("none", "off"):
            effects, changes = SyntheticEffects.none(), {}
            continue
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in SyntheticEffects.names():
            names = ", ".join(SyntheticEffects.names())
            raise ValueError(f"effect {item!r}: expected NAME=VALUE with NAME one of {names}")
        try:
            changes[name] = float(text)
        except ValueError:
            raise ValueError(f"effect {item!r}: {text!r} is not a number") from None
    return replace(effects, **changes)
