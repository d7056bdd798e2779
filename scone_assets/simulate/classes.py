"""Supernova classes the simulator makes, with the published numbers behind them.

Each subtype is a rest-frame model: a peak absolute magnitude (AB, rest-frame
B at 4400 A) with its scatter, a t^2 "fireball" rise lasting `rise` days
(Riess et al. 1999), a decline given as (day, magnitudes below peak) knots,
and a blackbody temperature cooling from `t_peak` to `t_late` on a time scale
`t_tau`, which sets the colour evolution. Sources:

- SN Ia: the default SNIa is not a blackbody but a spectral model (`sed`):
  BayeSN W22 on the Hsiao template, with its own population numbers (see
  sed_ia.py). The blackbody SN Ia, `BLACKBODY_SNIA`, kept for comparison and
  tests: M_B = -19.3 with 0.15 mag scatter after stretch and colour (Tripp
  1998; Scolnic et al. 2018), alpha = 0.14, beta = 3.1 (Betoule et al. 2014);
  rise 18 d (Riess et al. 1999; Hayden et al. 2010); Delta m15(B) = 1.1
  (Phillips 1993); B-V from about 0 at peak to about 1.1 at +30 d.
- SN II-P: M = -16.8 +- 1.0 (Richardson et al. 2014); rise 7-10 d
  (Gonzalez-Gaitan et al. 2015); plateau 80-120 d (Anderson et al. 2014);
  Co-56 tail 0.98 mag / 100 d. As the ejecta cool, metal lines blanket the blue
  and the UV: a blackbody alone leaves B-V near 0.5 (AB) at +50 d where SNe
  II-P reach about 1.0-1.2, and u-g near 1 where they reach about 2 (de Jaeger
  et al. 2018, CSP-I), with most of the change in the first ~40 d. `blanketing` adds
  a * ((5500 A - lambda) / 1000 A)^1.5 magnitudes below 5500 A, a growing
  linearly to its full value at +40 d: a = 0.45 gives B-V +0.5, u-g +0.9,
  g-r +0.3 at +50 d. SNe II-L share it; SNe IIn, kept blue by interaction
  with circumstellar matter, do not. The SN II declines (plateau and linear)
  are V-band ones (Anderson et al. 2014; Faran et al. 2014), so they shape
  the light curve at 5500 A (`shape_wave`) and the colours follow from there:
  shaped at B, the cooling would brighten r by 0.3 and i by 0.6 mag over the
  first 40 d, where SNe II-P stay flat on their plateau.
- SN II-L: M = -17.5 +- 0.9, linear decline about 2.5-3 mag / 100 d
  (Richardson et al. 2014; Faran et al. 2014).
- SN IIn: M = -18.6 +- 1.5, slow rise and decline (Richardson et al. 2014;
  Kiewe et al. 2012).
- SN Ic: spectra, SNANA's eight SN Ic templates (sed_ic.py), with the
  luminosity function below; the blackbody SN Ic, `BLACKBODY_SNIC`, is kept for comparison.
- SN Ib/c: M = -17.5 +- 0.7 (Drout et al. 2011; Richardson et al. 2014);
  rise 12-15 d (Taddia et al. 2015); Delta m15 about 1.1-1.3 (Drout et al. 2011).
- SN Iax: M = -17.0 +- 1.0, rise about 15 d, fast decline (Foley et al.
  2013; Jha 2017).
- SN Ia-91bg: M = -17.5 +- 0.5, Delta m15(B) about 1.9, red (Taubenberger
  et al. 2008; Taubenberger 2017).
- SLSN-I: M = -21.0 +- 0.7 (Gal-Yam 2012; Lunnan et al. 2018); rise 30-50 d
  (Nicholl et al. 2015); hot, about 15,000 K at peak (Inserra et al. 2013).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Subtype:
    name: str  # transient name in the README (SNANA's third column)
    cls: str  # the class the classifier learns
    gentype: int
    m_peak: float
    m_sigma: float
    rise: float
    rise_sigma: float
    decline: tuple[tuple[float, float], ...]  # (rest-frame day after peak, mag below peak)
    t_peak: float  # K
    t_late: float  # K
    t_tau: float  # d
    uv_blanketing: bool = False  # metal-line suppression below 4000 A (thermonuclear, stripped)
    plateau: tuple[float, float] | None = None  # II-P plateau length range, d
    sed: str | None = None  # a spectral model (sed_ia.py, sed_ic.py) instead of the blackbody; None: blackbody
    blanketing: float = 0.0  # SN II line blanketing below 5500 A at +40 d and after, see above
    shape_wave: float = 4400.0  # A: the band whose light curve `decline` (and the plateau) describes


def _ia_decline() -> tuple[tuple[float, float], ...]:
    return ((0, 0.0), (5, 0.2), (15, 1.1), (30, 2.0), (60, 2.9), (100, 3.5), (400, 7.0))


SUBTYPES: dict[str, Subtype] = {s.name: s for s in [
    Subtype("SNIa", "SNIa", 1, -19.3, 0.15, 18.0, 1.5, _ia_decline(), 11000, 5000, 20, True, sed="bayesn-w22"),
    Subtype("SNIIP", "SNII", 20, -16.8, 1.0, 9.0, 2.0, (), 12000, 5800, 12, plateau=(80, 120), blanketing=0.45,
            shape_wave=5500.0),
    Subtype("SNIIn", "SNII", 21, -18.6, 1.5, 25.0, 8.0,
            ((0, 0.0), (50, 1.0), (150, 2.5), (400, 5.0)), 10000, 7000, 60, shape_wave=5500.0),
    Subtype("SNIIL", "SNII", 22, -17.5, 0.9, 11.0, 2.5,
            ((0, 0.0), (100, 2.7), (150, 4.0), (400, 6.5)), 11000, 5500, 25, blanketing=0.45, shape_wave=5500.0),
    Subtype("SNIb", "SNIbc", 32, -17.5, 0.7, 14.0, 1.5,
            ((0, 0.0), (15, 1.2), (40, 2.4), (100, 3.4), (400, 6.5)), 8500, 5000, 20, True),
    Subtype("SNIc", "SNIbc", 33, -17.5, 0.7, 13.0, 1.5,
            ((0, 0.0), (15, 1.3), (40, 2.5), (100, 3.5), (400, 6.5)), 8500, 5000, 18, True, sed="snana-ic"),
    Subtype("SNIax", "SNIax", 11, -17.0, 1.0, 15.0, 2.0,
            ((0, 0.0), (15, 1.6), (40, 2.8), (100, 3.6), (400, 6.5)), 8000, 5000, 15, True),
    Subtype("SNIa-91bg", "SNIa-91bg", 91, -17.5, 0.5, 14.0, 1.0,
            ((0, 0.0), (15, 1.9), (40, 3.0), (100, 3.8), (400, 7.0)), 7000, 4500, 12, True),
    Subtype("SLSN-I", "SLSN-I", 3, -21.0, 0.7, 40.0, 7.0,
            ((0, 0.0), (30, 0.8), (100, 2.2), (400, 6.0)), 15000, 8000, 60),
]}

# The pre-SED SN Ia and SN Ic: blackbodies with a t^2 rise and the decline tables above.
BLACKBODY_SNIA = replace(SUBTYPES["SNIa"], sed=None)
BLACKBODY_SNIC = replace(SUBTYPES["SNIc"], sed=None)

# Default mix of written objects: SNe Ia about 30%, the rest in rough proportion
# to volumetric rates (Li et al. 2011: II 57%, Ibc 26% of core collapse; Iax about
# 30% and 91bg about 15% of the Ia rate, Foley et al. 2013, Srivastav et al. 2017),
# with rare SLSNe kept visible (their volumetric rate is ~1e-3 of CC, Quimby 2013,
# but they are seen to far larger distances).
DEFAULT_MIX: dict[str, float] = {
    "SNIa": 0.30, "SNIIP": 0.30, "SNIIn": 0.05, "SNIIL": 0.05, "SNIb": 0.07, "SNIc": 0.11,
    "SNIax": 0.06, "SNIa-91bg": 0.04, "SLSN-I": 0.02,
}


class SimulationError(ValueError):
    """A simulator input that cannot be used; the message names it."""


def parse_mix(text: str | dict[str, float] | None) -> dict[str, float]:
    """`SNIa=0.5,SNII=0.5` -> subtype fractions. A class name spreads over its
    subtypes in the default proportions. Fractions are renormalised to 1."""
    if text is None:
        return dict(DEFAULT_MIX)
    items = text.items() if isinstance(text, dict) else (
        part.split("=", 1) for part in str(text).split(",") if part.strip())
    out: dict[str, float] = {}
    for item in items:
        try:
            name, value = item
            frac = float(value)
        except ValueError:
            raise SimulationError(f"--mix entries look like NAME=FRACTION, got {'='.join(item)!r}") from None
        name = str(name).strip()
        if frac < 0:
            raise SimulationError(f"--mix fraction for {name} is negative ({frac})")
        if name in SUBTYPES:
            out[name] = out.get(name, 0.0) + frac
            continue
        members = {k: v for k, v in DEFAULT_MIX.items() if SUBTYPES[k].cls == name}
        if not members:
            known = sorted(set(SUBTYPES) | {s.cls for s in SUBTYPES.values()})
            raise SimulationError(f"unknown class {name!r} in --mix; known: {', '.join(known)}")
        total = sum(members.values())
        for k, v in members.items():
            out[k] = out.get(k, 0.0) + frac * v / total
    total = sum(out.values())
    if total <= 0:
        raise SimulationError("--mix fractions sum to zero")
    return {k: v / total for k, v in out.items() if v > 0}
