"""SNANA type codes and the class names the classifier learns.

Every type, however it was spelled (`Ia`, `SNIIP`, `Ib/c`, `SN Type = IIn`),
is reduced to one class name so that SCONE's binary task (SNIa vs the rest)
and the categorical task see the same labels across simulations and data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

IA = "SNIa"
UNKNOWN = "unknown"
NON_IA = "nonIa"

# SNANA's default GENTYPE map (modern simulations).
SNANA_DEFAULT_TYPES: dict[int, str] = {
    1: IA, 101: IA, 10: IA, 110: IA,
    2: "SNIax", 102: "SNIax", 11: "SNIax", 111: "SNIax",
    20: "SNII", 21: "SNII", 22: "SNII", 23: "SNII", 120: "SNII", 121: "SNII", 122: "SNII", 123: "SNII",
    30: "SNIbc", 31: "SNIbc", 32: "SNIbc", 33: "SNIbc",
    130: "SNIbc", 131: "SNIbc", 132: "SNIbc", 133: "SNIbc",
    3: "SLSN-I", 103: "SLSN-I", 40: "SLSN-I", 140: "SLSN-I",
    4: "KN", 104: "KN",
    91: "SNIa-91bg", 191: "SNIa-91bg",
}

# SNPCC 2010 tags (Kessler et al. 2010, SIMGEN_PUBLIC_DES README).
SNPCC_TYPES: dict[int, str] = {
    1: "Ia", 2: "II", 3: "Ib/c", 21: "IIn", 22: "IIP", 23: "IIL", 32: "Ib", 33: "Ic",
}

_CLASS_PATTERNS: list[tuple[str, str]] = [
    (r"91BG", "SNIa-91bg"),
    (r"IAX", "SNIax"),
    (r"SLSN", "SLSN-I"),
    (r"^(SN)?IA([-_ ]?(NORM|NORMAL)?)?$|SALT|^IA\b", IA),
    (r"KN|KILONOVA", "KN"),
    (r"^(SN)?(IIP|IIN|IIL\d?|IIB|II|IIL|IIIL\d?)\b|^(SN)?II", "SNII"),
    (r"^(SN)?(IB/C|IBC|IB|IC)(-BL)?\b|^(SN)?I[BC]", "SNIbc"),
    (r"^NONIA$|^NON1A$", NON_IA),
]


def class_name(name: str) -> str:
    """Reduce any SNANA/SNPCC/README type spelling to one class name."""
    raw = str(name).strip()
    if not raw:
        return UNKNOWN
    key = raw.upper().replace(" ", "")
    for pattern, cls in _CLASS_PATTERNS:
        if re.search(pattern, key):
            return cls
    return raw


def type_name_for(
    code: int | None,
    *,
    readme_map: Mapping[int, str] | None = None,
    config_map: Mapping[int, str] | None = None,
    default_map: Mapping[int, str] = SNANA_DEFAULT_TYPES,
) -> str:
    """Name a type code: the sim README, then the config, then SNANA's defaults."""
    if code is None:
        return UNKNOWN
    for mapping in (readme_map, config_map, default_map):
        if mapping and code in mapping:
            return class_name(mapping[code])
    return UNKNOWN


def merged_names(type_names, as_ia: Iterable[str] = ()) -> np.ndarray:
    """Class names with those in `as_ia` renamed SN Ia: the config's `count_as_ia`, for
    labels that count, say, 91bg-like SNe as SNe Ia."""
    names = np.asarray(type_names, dtype=object).astype(str).astype(object)
    as_ia = list(as_ia)
    if as_ia:
        names[np.isin(names, as_ia)] = IA
    return names
