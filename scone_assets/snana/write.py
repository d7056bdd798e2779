"""Write SNANA FITS simulation folders that SNANA tools and this reader both accept.

HEAD/PHOT pairs with 1-based `PTROBS_MIN/MAX` pointers, `NOBS`, and `-777`
separator rows between light curves; a `<VERSION>.README` with a
`DOCUMENTATION:` block (`GENTYPE_TO_NAME`, `FILTERS`, `STAT_SUMMARY`) and a
`<VERSION>.LIST`. Every file is written to a temporary name and renamed, so
an interrupted run never leaves a truncated file that looks complete.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from scone_assets.atomic import atomic_write_bytes, atomic_write_text
from scone_assets.snana.fits_read import SEPARATOR_MJD
from scone_assets.snana.lightcurves import ZP_FLUXCAL


def _column(name: str, values: pd.Series | np.ndarray) -> fits.Column:
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        strs = np.array([str(v) for v in arr])
        width = max(1, max((len(s) for s in strs), default=1))
        return fits.Column(name=name, format=f"{width}A", array=strs)
    if arr.dtype.kind in "iub":
        return fits.Column(name=name, format="K", array=arr.astype(np.int64))
    fmt = "D" if name in ("MJD", "PEAKMJD", "SIM_PEAKMJD", "RA", "DECL") else "E"
    return fits.Column(name=name, format=fmt, array=arr.astype(np.float64))


def _hdul_bytes(columns: list[fits.Column], header: Mapping[str, object], gz: bool) -> bytes:
    primary = fits.PrimaryHDU()
    for key, value in header.items():
        primary.header[f"HIERARCH {key}" if len(key) > 8 else key] = value
    table = fits.BinTableHDU.from_columns(columns)
    buf = io.BytesIO()
    fits.HDUList([primary, table]).writeto(buf)
    data = buf.getvalue()
    return gzip.compress(data, compresslevel=5, mtime=0) if gz else data


def write_fits_pair(
    head_path: str | os.PathLike[str],
    phot_path: str | os.PathLike[str],
    meta: pd.DataFrame,
    obs: pd.DataFrame,
    *,
    survey: str | None = None,
    gz: bool = False,
) -> None:
    """Write one HEAD/PHOT pair; `obs` rows are grouped per SNID in `meta` order."""
    if "SNID" not in meta.columns:
        raise ValueError("meta needs an SNID column")
    band_col = "FLT" if "FLT" in obs.columns else "BAND"
    order = {snid: i for i, snid in enumerate(meta["SNID"])}
    missing = set(obs["SNID"]) - set(order)
    if missing:
        raise ValueError(f"observations for SNIDs not in meta: {sorted(map(str, missing))[:5]}")
    obs = obs.assign(_o=obs["SNID"].map(order)).sort_values("_o", kind="stable")
    nobs = obs.groupby("_o").size().reindex(range(len(meta)), fill_value=0).to_numpy()

    # separator rows between consecutive light curves (none after the last)
    n = len(meta)
    seps = (np.arange(n) < n - 1).astype(int)
    starts = np.concatenate([[0], np.cumsum(nobs + seps)[:-1]]) + 1
    ptr_min = starts
    ptr_max = starts + nobs - 1

    head = meta.copy()
    head["NOBS"] = nobs
    head["PTROBS_MIN"] = ptr_min
    head["PTROBS_MAX"] = ptr_max

    n_rows = int(nobs.sum() + seps.sum())
    mjd = np.full(n_rows, SEPARATOR_MJD)
    flt = np.full(n_rows, "-", dtype=object)
    field = np.full(n_rows, "VOID", dtype=object)
    flux = np.zeros(n_rows)
    err = np.zeros(n_rows)
    rows = np.concatenate([np.arange(a - 1, b) for a, b in zip(ptr_min, ptr_max, strict=True)]) if n else np.array([], int)
    mjd[rows] = obs["MJD"].to_numpy()
    flt[rows] = obs[band_col].astype(str).to_numpy()
    flux[rows] = obs["FLUXCAL"].to_numpy()
    err[rows] = obs["FLUXCALERR"].to_numpy()

    header = {"ZP_FLUXCAL": ZP_FLUXCAL}
    if survey:
        header["SURVEY"] = survey
    head_cols = [_column(c, head[c]) for c in head.columns]
    phot_cols = [
        fits.Column(name="MJD", format="D", array=mjd),
        fits.Column(name="FLT", format=f"{max(2, max((len(str(f)) for f in flt), default=2))}A",
                    array=np.array([str(f) for f in flt])),
        fits.Column(name="FIELD", format="4A", array=np.array([str(f) for f in field])),
        fits.Column(name="FLUXCAL", format="E", array=flux),
        fits.Column(name="FLUXCALERR", format="E", array=err),
    ]
    atomic_write_bytes(head_path, _hdul_bytes(head_cols, header, gz))
    atomic_write_bytes(phot_path, _hdul_bytes(phot_cols, header, gz))


def readme_text(
    version: str,
    *,
    gentype_to_name: Mapping[int, tuple[str, str]],
    filters: Mapping[str, float],
    stat_summary: Mapping[str, object],
    notes: list[str] | None = None,
) -> str:
    """`gentype_to_name` maps GENTYPE -> (Ia|nonIa, transient name), as SNANA writes it."""
    lines = ["DOCUMENTATION:", f"  GENVERSION: {version}", "", "  STAT_SUMMARY:"]
    lines += [f"    {k}: {v}" for k, v in stat_summary.items()]
    lines += ["", "  GENTYPE_TO_NAME:   # GENTYPE-integer    (non)Ia   transient-Name"]
    lines += [f"    {code}:  {tag:6s}  {name}" for code, (tag, name) in sorted(gentype_to_name.items())]
    lines += ["", "  FILTERS:   # mean wavelength (A)"]
    lines += [f"    {band}:  {wave:.1f}" for band, wave in filters.items()]
    if notes:
        lines += ["", "  NOTES:"] + [f"  - {n}" for n in notes]
    lines += ["DOCUMENTATION_END:", ""]
    return "\n".join(lines)


def write_readme(folder: str | os.PathLike[str], version: str, **kwargs) -> Path:
    path = Path(folder) / f"{version}.README"
    atomic_write_text(path, readme_text(version, **kwargs))
    return path


def write_list(folder: str | os.PathLike[str], version: str, head_files: list[str]) -> Path:
    path = Path(folder) / f"{version}.LIST"
    atomic_write_text(path, "".join(f"{Path(f).name.removesuffix('.gz')}\n" for f in head_files))
    return path
