"""Band names and their effective wavelengths.

Heatmaps live in wavelength space, so every band must be placed. Sources, in
order: the simulation README's `FILTERS` block, the config's `band_to_wave`,
the band's own full name (`DES-g`, `CSP-r/c`: its system's table, else the
generic letter), the survey's table. Bands left unplaced are returned, so the
reader drops (and counts) only their observations. A full name outranks the
survey table because combined real data sets (DES-SN5YR LOWZ) reuse letters:
there `r` is CfA3 `V`, not DES `r`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Effective (mean) wavelengths in Angstrom.
SURVEY_BANDS: dict[str, dict[str, float]] = {
    # DES-SN5YR filter means with atmosphere (DES Collaboration 2024, as quoted in SCONE).
    "DES": {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0},
    # LSST baseline throughputs, mean wavelengths (SVO Filter Profile Service, LSST/LSST.*).
    "LSST": {"u": 3671.0, "g": 4827.0, "r": 6223.0, "i": 7546.0, "z": 8691.0, "Y": 9712.0},
    # Pan-STARRS1 (Tonry et al. 2012, ApJ 750, 99, table 4).
    "PS1": {"g": 4866.0, "r": 6215.0, "i": 7545.0, "z": 8679.0, "y": 9633.0},
    # SDSS (Doi et al. 2010, AJ 139, 1628).
    "SDSS": {"u": 3562.0, "g": 4719.0, "r": 6185.0, "i": 7500.0, "z": 8961.0},
    # ZTF (Bellm et al. 2019, PASP 131, 018002; SVO Palomar/ZTF.*).
    "ZTF": {"g": 4746.0, "r": 6366.0, "i": 7829.0},
    # Young Supernova Experiment DR1 (Aleo et al. 2023): Pan-STARRS1 griz, ZTF g and r as X and Y.
    "YSE": {"g": 4866.0, "r": 6215.0, "i": 7545.0, "z": 8679.0, "X": 4746.0, "Y": 6366.0},
    # Nancy Grace Roman Space Telescope (NGRST, formerly WFIRST): SCONE's table, from
    # create_heatmaps/helpers.py `get_band_to_wave` (survey NGRST/ROMAN/WFIRST; K added
    # by R. Kessler 4.2024), letters R Z Y J H F K for the F062 ... F213 filters.
    "NGRST": {"R": 6296.73, "Z": 8744.77, "Y": 10653.88, "J": 12975.72, "H": 15848.21, "F": 18475.41,
              "K": 21255.00},
}
SURVEY_ALIASES = {"PS1MD": "PS1", "PANSTARRS": "PS1", "FOUNDATION": "PS1", "LSST_WFD": "LSST",
                  "ROMAN": "NGRST", "WFIRST": "NGRST"}

# Filter letters of common photometric systems (Bessell 1990 UBVRI; SDSS ugriz;
# CSP natural-system V variants o/m/n; 2MASS/CSP YJHK), for full names like `CSP-r`.
GENERIC_FILTERS: dict[str, float] = {
    "U": 3600.0, "B": 4380.0, "V": 5450.0, "R": 6410.0, "I": 7980.0,
    "u": 3562.0, "g": 4719.0, "r": 6185.0, "i": 7500.0, "z": 8961.0,
    "o": 5400.0, "m": 5400.0, "n": 5400.0,
    "Y": 10350.0, "y": 9633.0, "J": 12350.0, "j": 12350.0, "H": 16620.0, "h": 16620.0,
    "K": 21590.0, "k": 21590.0,
}


# AB minus Vega magnitude of the filters SNANA data sets give on a Vega-based system:
# Johnson-Cousins UBVRI and NIR JHK (Blanton & Roweis 2007, AJ 133, 734, table 1), Y
# (Hewett et al. 2006, MNRAS 367, 454), CSP's V variants o/m/n as V and its second NIR
# camera's y/j/h as Y/J/H. SDSS-like ugriz and every survey table above are AB.
VEGA_AB_OFFSETS: dict[str, float] = {
    "U": 0.79, "B": -0.09, "V": 0.02, "R": 0.21, "I": 0.45, "o": 0.02, "m": 0.02, "n": 0.02,
    "Y": 0.634, "y": 0.634, "J": 0.91, "j": 0.91, "H": 1.39, "h": 1.39, "K": 1.85, "k": 1.85,
}


def ab_minus_own(full: str) -> float:
    """AB minus the band's own magnitude system, 0 for an AB band. A band placed by a
    generic Johnson-Cousins or NIR letter of its full name (`CFA3S-R/x`, `CSP-H/n`) is
    Vega-based, as in DES-SN5YR's LOWZ compilation: its FLUXCAL is 10^(0.4 x this) times
    the AB flux. Bands of a survey table (DES, PS1, ZTF, LSST, Roman, ...) and bare letters
    are AB."""
    base = str(full).strip().split("/")[0]
    if "-" not in base:
        return 0.0
    system, _, letter = base.rpartition("-")
    if survey_table(system):
        return 0.0
    return VEGA_AB_OFFSETS.get(letter, 0.0)


class BandError(ValueError):
    """Bands that cannot be placed in wavelength."""


def band_letter(name: str) -> str:
    """`DES-g` -> `g`, `LSST-z` -> `z`, `CSP-r/c` -> `c` (SNANA's one-letter id)."""
    name = str(name).strip()
    return name[-1:] if name else name


def survey_table(survey: str | None) -> dict[str, float] | None:
    if not survey:
        return None
    key = str(survey).strip().upper()
    key = SURVEY_ALIASES.get(key, key)
    if key in SURVEY_BANDS:
        return SURVEY_BANDS[key]
    for name, table in SURVEY_BANDS.items():
        if key.startswith(name):
            return table
    for alias, name in SURVEY_ALIASES.items():  # ROMAN_HLTDS, WFIRST_DEEP, ...
        if key.startswith(alias):
            return SURVEY_BANDS[name]
    return None


def _from_full_name(full: str) -> float | None:
    """Place `SYS-f` or `SYS-f/x` by the survey table of SYS, else the generic letter."""
    full = full.strip()
    base = full.split("/")[0]
    if "-" not in base:
        return None
    system, _, letter = base.rpartition("-")
    table = survey_table(system)
    if table and letter in table:
        return table[letter]
    return GENERIC_FILTERS.get(letter)


def place_bands(
    bands: Iterable[str],
    *,
    readme_filters: Mapping[str, float] | None = None,
    config_map: Mapping[str, float] | None = None,
    survey: str | None = None,
    full_names: Mapping[str, str] | None = None,
    fallback: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], list[str]]:
    """(placed band -> wavelength, bands left unplaced), first source wins.

    Readers drop only the observations in unplaced bands, so one odd filter does
    not cost a file all its light curves."""
    table = survey_table(survey) or {}
    full_names = full_names or {}
    out: dict[str, float] = {}
    missing: list[str] = []
    for band in sorted(set(bands)):
        full = full_names.get(band, band)
        named = full != band and ("-" in full or "/" in full)
        wave = None
        for mapping in (readme_filters, config_map):
            if mapping and band in mapping:
                wave = float(mapping[band])
                break
        if wave is None and named:
            # an explicit system name (`CFA3K-V/r`) beats a survey guess for the letter `r`
            wave = _from_full_name(full)
        if wave is None and band in table:
            wave = table[band]
        if wave is None and fallback and band in fallback:
            wave = float(fallback[band])
        if wave is None:
            missing.append(band)
        else:
            out[band] = wave
    return out, missing


def resolve_band_to_wave(
    bands: Iterable[str],
    *,
    readme_filters: Mapping[str, float] | None = None,
    config_map: Mapping[str, float] | None = None,
    survey: str | None = None,
    full_names: Mapping[str, str] | None = None,
    fallback: Mapping[str, float] | None = None,
    source: str = "",
) -> dict[str, float]:
    """Place every band; raise naming the bands left over (for callers that need all)."""
    out, missing = place_bands(bands, readme_filters=readme_filters, config_map=config_map,
                               survey=survey, full_names=full_names, fallback=fallback)
    if missing:
        names = [(full_names or {}).get(b, b) for b in missing]
        where = f" in {source}" if source else ""
        raise BandError(
            f"cannot place band(s) {', '.join(names)}{where} in wavelength (survey {survey!r}): "
            "add them to the config's band_to_wave"
        )
    return out
