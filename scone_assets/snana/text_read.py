"""SNANA TEXT light curves (`*.DAT`, `*.dat`, `*.snana.dat`, optionally gzipped).

`KEY: value` header lines, then `VARLIST:` naming the columns of the `OBS:`
rows, then `END:`. Columns are found by name from VARLIST, never by position,
because surveys write them in different orders.
"""

from __future__ import annotations

import re

import fsspec
import numpy as np

from scone_assets.snana.lightcurves import SnanaReadError, clean_snid

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SIM_TYPE = re.compile(r"SN\s*Type\s*=\s*([^,\s]+)", re.IGNORECASE)


def _first_number(text: str | None) -> float:
    if text is None:
        return np.nan
    m = _NUMBER.search(text)
    return float(m.group()) if m else np.nan


def _value_and_error(text: str | None) -> tuple[float, float]:
    """`0.0130 +- 0.005 (SPEC-Z, HELIO)` -> (0.013, 0.005)."""
    if text is None:
        return np.nan, np.nan
    value = _first_number(text)
    err = np.nan
    if "+-" in text:
        err = _first_number(text.split("+-", 1)[1])
    return value, err


def _host_redshifts(header: dict[str, str]) -> dict[str, float]:
    """HOSTGAL_SPECZ/_PHOTOZ and their errors: `HOSTGAL_SPECZ: 0.12 +- 0.001` or a separate
    `_ERR` line; the SNPCC-era files spell the photo-z `HOST_GALAXY_PHOTO-Z`. YSE DR1 writes
    its vetted host's redshift, `VETTED_HOST_GALAXY_REDSHIFT: 0.0158 +- 0.005 (HOST-Z, HELIO)`
    (-99 when unknown): a column of its own (read.Z_COLUMNS says where it ranks)."""
    out = {}
    for col, alts in (("HOSTGAL_SPECZ", ("HOSTGAL_SPECZ",)),
                      ("HOSTGAL_PHOTOZ", ("HOSTGAL_PHOTOZ", "HOST_GALAXY_PHOTO-Z")),
                      ("VETTED_HOST_GALAXY_REDSHIFT", ("VETTED_HOST_GALAXY_REDSHIFT",))):
        text = next((header[a] for a in alts if a in header), None)
        value, err = _value_and_error(text)
        if f"{col}_ERR" in header:
            err = _first_number(header[f"{col}_ERR"])
        out[col], out[f"{col}_ERR"] = value, err
    return out


def read_text_file(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Header fields and observation columns of one TEXT light curve."""
    try:
        with fsspec.open(path, "rt", compression="infer", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise SnanaReadError(path, "file does not exist") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SnanaReadError(path, f"cannot be read ({exc})") from None

    header: dict[str, str] = {}
    varlist: list[str] | None = None
    rows: list[list[str]] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        key, _, rest = line.partition(":")
        key = key.strip()
        if key == "VARLIST":
            varlist = rest.split()
        elif key == "OBS":
            if varlist is None:
                raise SnanaReadError(path, f"line {lineno}: OBS row before any VARLIST")
            values = rest.split()
            if len(values) != len(varlist):
                raise SnanaReadError(
                    path, f"line {lineno}: OBS row has {len(values)} values but VARLIST names {len(varlist)}"
                )
            rows.append(values)
        elif key == "END":
            break
        elif key not in header:
            header[key] = rest.strip()
    if varlist is None:
        raise SnanaReadError(path, "no VARLIST line: not an SNANA TEXT light curve")
    if "SNID" not in header:
        raise SnanaReadError(path, "no SNID header line")
    nobs = _first_number(header.get("NOBS"))
    if np.isfinite(nobs) and int(nobs) != len(rows):
        # a file cut at a line boundary parses cleanly; only NOBS shows what is missing
        raise SnanaReadError(path, f"NOBS is {int(nobs)} but the file has {len(rows)} OBS rows "
                                   "(cut short, or rows added?)")

    def col(*names: str) -> str:
        for n in names:
            if n in varlist:
                return n
        raise SnanaReadError(path, f"VARLIST has no {' or '.join(names)} column (has {' '.join(varlist)})")

    idx = {name: varlist.index(col(*alts)) for name, alts in (
        ("MJD", ("MJD",)), ("BAND", ("FLT", "BAND")), ("FLUXCAL", ("FLUXCAL",)),
        ("FLUXCALERR", ("FLUXCALERR", "FLUXCAL_ERR")))}
    table = np.array(rows, dtype=object).reshape(len(rows), len(varlist))
    try:
        obs = {
            "MJD": table[:, idx["MJD"]].astype(np.float64),
            "BAND": np.array([b.strip() for b in table[:, idx["BAND"]]], dtype=object),
            "FLUXCAL": table[:, idx["FLUXCAL"]].astype(np.float64),
            "FLUXCALERR": table[:, idx["FLUXCALERR"]].astype(np.float64),
        }
    except ValueError as exc:
        raise SnanaReadError(path, f"non-numeric value in OBS rows ({exc})") from None

    z, z_err = _value_and_error(header.get("REDSHIFT_FINAL"))
    if "REDSHIFT_FINAL_ERR" in header:
        z_err = _first_number(header["REDSHIFT_FINAL_ERR"])
    sim_type = _SIM_TYPE.search(header.get("SIM_COMMENT", ""))
    host = _host_redshifts(header)
    fields = {
        "SNID": clean_snid(int(header["SNID"].split()[0]) if header["SNID"].split()[0].isdigit()
                           else header["SNID"].split()[0]),
        "SNTYPE": _first_number(header.get("SNTYPE")),
        "SIM_GENTYPE": _first_number(header.get("SIM_GENTYPE", header.get("SIM_TYPE_INDEX"))),
        "SIM_COMMENT_TYPE": sim_type.group(1) if sim_type else None,
        "SIM_MODEL_NAME": (header.get("SIM_MODEL") or "").split()[0] if header.get("SIM_MODEL") else None,
        "PEAKMJD": _first_number(header.get("PEAKMJD")),
        "SEARCH_PEAKMJD": _first_number(header.get("SEARCH_PEAKMJD")),
        "SIM_PEAKMJD": _first_number(header.get("SIM_PEAKMJD")),
        "MWEBV": _first_number(header.get("MWEBV")),
        "REDSHIFT_FINAL": z,
        "REDSHIFT_FINAL_ERR": z_err,
        **host,
        "NOBS": _first_number(header.get("NOBS")),
        "FAKE": _first_number(header.get("FAKE")),
        "SURVEY": (header.get("SURVEY") or "").split()[0] if header.get("SURVEY") else None,
        "IS_SIM_HINT": any(k.startswith("SIM_") for k in header),
    }
    return fields, obs
