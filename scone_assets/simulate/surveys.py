"""Survey presets: bands, seasons, cadence and depth.

Numbers and their sources:
- DES (Kessler et al. 2015, AJ 150, 172; Abbott et al. 2019): griz, five
  ~6-month seasons from 2013 August, about 7-day cadence in every band, single
  epoch 5-sigma depth about 23.5 (shallow fields) to 24.5 (deep fields, about
  a fifth of the area); effective wavelengths as DES-SN5YR.
- LSST WFD (Ivezic et al. 2019, ApJ 873, 111, table 2): ugrizY single-visit
  5-sigma depths 23.9/25.0/24.7/24.0/23.3/22.1, a visit every ~3 nights in a
  ~6-month season, filters chosen unevenly (u and g rarer).
- Low redshift (PS1: Chambers et al. 2016, 3pi single-epoch depth about 22;
  ZTF: Bellm et al. 2019, depth about 20.5 with a 3-day cadence in g and r):
  PS1 griz plus ZTF g r, z < 0.2, all objects with spectroscopic redshifts.
"""

from __future__ import annotations

from dataclasses import dataclass

from scone_assets.bands import SURVEY_BANDS


@dataclass(frozen=True)
class Band:
    letter: str  # SNANA one-letter id
    full_name: str  # written in the PHOT FLT column
    wave: float  # effective wavelength, A
    width: float  # Gaussian throughput sigma, A
    depth: float  # mean single-epoch 5-sigma limiting magnitude
    weight: float = 1.0  # one band per visit: its share of visits; else: chance it is taken on a visit


@dataclass(frozen=True)
class Survey:
    name: str
    bands: tuple[Band, ...]
    first_season_mjd: float
    n_seasons: int
    season_length: float
    cadence: float  # days between visits
    all_bands_per_visit: bool
    window: tuple[float, float]  # observations kept from peak+window[0] to peak+window[1] (obs-frame d)
    z_max: dict[str, float]  # per class, beyond which nothing is detected
    z_min: float = 0.01
    deep_fraction: float = 0.0
    deep_gain: float = 0.0  # magnitudes deeper in deep fields
    weather_loss: float = 0.2
    spec_fraction: float = 0.2
    photoz_sigma: float = 0.03  # sigma_z / (1+z) of host photo-z
    photoz_outliers: float = 0.03
    mwebv_mean: float = 0.03


def _bands(survey: str, widths: dict[str, float], depths: dict[str, float],
           weights: dict[str, float] | None = None) -> tuple[Band, ...]:
    table = SURVEY_BANDS[survey]
    return tuple(Band(b, f"{survey}-{b}", table[b], widths[b], depths[b], (weights or {}).get(b, 1.0))
                 for b in depths)


_CC_Z = {"SNII": 1.0, "SNIbc": 1.0, "SNIax": 0.9, "SNIa-91bg": 0.9}

SURVEYS: dict[str, Survey] = {
    "des": Survey(
        name="DES",
        bands=_bands("DES", {"g": 520, "r": 560, "i": 590, "z": 480},
                     {"g": 23.9, "r": 24.0, "i": 23.9, "z": 23.6}),
        first_season_mjd=56535.0, n_seasons=5, season_length=180.0, cadence=6.5,
        all_bands_per_visit=True, window=(-1e9, 1e9),
        z_max={"SNIa": 1.3, "SLSN-I": 2.5, **_CC_Z}, deep_fraction=0.2, deep_gain=0.7,
        spec_fraction=0.25, weather_loss=0.15,
    ),
    "lsst": Survey(
        name="LSST",
        bands=_bands("LSST", {"u": 230, "g": 590, "r": 550, "i": 520, "z": 480, "Y": 350},
                     {"u": 23.9, "g": 25.0, "r": 24.7, "i": 24.0, "z": 23.3, "Y": 22.1},
                     {"u": 0.06, "g": 0.09, "r": 0.22, "i": 0.22, "z": 0.20, "Y": 0.21}),
        first_season_mjd=60800.0, n_seasons=10, season_length=180.0, cadence=1.4,
        all_bands_per_visit=False, window=(-150.0, 450.0),
        z_max={"SNIa": 1.4, "SLSN-I": 3.0, **{k: v + 0.2 for k, v in _CC_Z.items()}},
        spec_fraction=0.1, photoz_sigma=0.04,
    ),
    "lowz": Survey(
        name="LOWZ",
        bands=(Band("g", "PS1-g/g", 4866.0, 570, 22.0, 0.35), Band("r", "PS1-r/r", 6215.0, 600, 21.9, 0.35),
               Band("i", "PS1-i/i", 7545.0, 560, 21.7, 0.35), Band("z", "PS1-z/z", 8679.0, 470, 21.3, 0.35),
               Band("G", "ZTF-g/G", 4746.0, 540, 20.6), Band("R", "ZTF-r/R", 6366.0, 650, 20.5)),
        first_season_mjd=58300.0, n_seasons=3, season_length=240.0, cadence=3.0,
        all_bands_per_visit=True, window=(-40.0, 150.0),
        z_max={"SNIa": 0.2, "SLSN-I": 0.2, "SNII": 0.1, "SNIbc": 0.12, "SNIax": 0.1, "SNIa-91bg": 0.1},
        z_min=0.005, spec_fraction=1.0, mwebv_mean=0.05,
    ),
}


def get_survey(name: str) -> Survey:
    key = str(name).strip().lower()
    if key not in SURVEYS:
        from scone_assets.simulate.classes import SimulationError

        raise SimulationError(f"unknown survey {name!r}; presets: {', '.join(sorted(SURVEYS))}")
    return SURVEYS[key]
