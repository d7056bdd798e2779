"""SNANA FITS: a `*_HEAD.FITS[.gz]` + `*_PHOT.FITS[.gz]` pair.

Light curves are located by three independent clues, none trusted blindly:
`PTROBS_MIN/MAX` pointers, `MJD == -777` separator rows, and the HEAD's
`NOBS`. Files cut out of larger simulations keep pointers that run past the
PHOT table, and separators can be missing; SCONE's reader then attaches light
curves to the wrong objects. Here a light curve is assigned only when the
clues agree, or when `NOBS` alone explains every row (with a warning);
otherwise the file fails with the objects named.
"""

from __future__ import annotations

import io
import logging

import fsspec
import numpy as np
import pandas as pd
from astropy.io import fits

from scone_assets.snana.lightcurves import ZP_FLUXCAL, SnanaReadError, clean_snid, empty_obs

log = logging.getLogger(__name__)

SEPARATOR_MJD = -777.0
_SIM_TYPE_COLUMNS = ("SIM_GENTYPE", "SIM_TYPE_INDEX")


def _open_fits(path: str) -> fits.HDUList:
    try:
        with fsspec.open(path, "rb", compression="infer") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise SnanaReadError(path, "file does not exist") from None
    except (OSError, EOFError) as exc:
        raise SnanaReadError(path, f"cannot be read ({exc}); truncated or corrupt gzip?") from None
    if not raw.startswith(b"SIMPLE"):
        raise SnanaReadError(path, "not a FITS file (no SIMPLE card at the start)")
    try:
        hdul = fits.open(io.BytesIO(raw), memmap=False)
        if len(hdul) < 2:
            raise SnanaReadError(path, "FITS file has no binary table extension")
        # touching .data forces the table to be read, so truncation shows here
        _ = hdul[1].data
    except SnanaReadError:
        raise
    except Exception as exc:  # astropy raises many types for damaged files
        raise SnanaReadError(path, f"damaged FITS file ({type(exc).__name__}: {exc})") from None
    return hdul


def _column(data, names: tuple[str, ...]) -> str | None:
    cols = set(data.columns.names) if data is not None else set()
    return next((n for n in names if n in cols), None)


def _scalar_columns(data) -> dict[str, np.ndarray]:
    """Every scalar column, strings decoded and stripped; vector columns dropped."""
    out: dict[str, np.ndarray] = {}
    if data is None:
        return out
    for col in data.columns:
        arr = np.asarray(data[col.name])
        if arr.ndim > 1:
            continue  # e.g. HOSTGALz_* float vectors: not needed, and they break DataFrames
        if arr.dtype.kind in "SU":
            arr = np.char.strip(arr.astype(str))
        elif arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        out[col.name] = arr
    return out


def _segments_by_separator(mjd: np.ndarray) -> list[tuple[int, int]]:
    sep = np.flatnonzero(mjd == SEPARATOR_MJD)
    bounds = np.concatenate([[-1], sep, [len(mjd)]])
    segs = [(int(a) + 1, int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    # a separator at the very start or end leaves an empty segment there
    if segs and segs[0][0] == segs[0][1] and len(sep) and sep[0] == 0:
        segs = segs[1:]
    if segs and segs[-1][0] == segs[-1][1] and len(sep) and sep[-1] == len(mjd) - 1:
        segs = segs[:-1]
    return segs


def _pointer_problems(pmin, pmax, nobs, is_sep, n_rows) -> list[int]:
    """Indices of objects whose pointers cannot be right."""
    bad = []
    prev_end = 0
    for i, (a, b) in enumerate(zip(pmin, pmax, strict=True)):
        a, b = int(a), int(b)
        if b < a and (nobs is None or nobs[i] == 0):
            continue
        if a < 1 or b > n_rows or b < a or a <= prev_end:
            bad.append(i)
            continue
        if nobs is not None and b - a + 1 != int(nobs[i]) or is_sep[a - 1 : b].any():
            bad.append(i)
        prev_end = b
    return bad


def _locate(path, snids, head_cols, mjd, warnings) -> np.ndarray:
    """Object index of every PHOT row (-1 for separators)."""
    n_obj, n_rows = len(snids), len(mjd)
    is_sep = mjd == SEPARATOR_MJD
    nobs = head_cols.get("NOBS")
    owner = np.full(n_rows, -1, dtype=np.int64)

    def name(idx):
        shown = ", ".join(str(snids[i]) for i in idx[:5])
        return f"{len(idx)} object(s) (SNID {shown}{', ...' if len(idx) > 5 else ''})"

    if "PTROBS_MIN" in head_cols and "PTROBS_MAX" in head_cols:
        pmin, pmax = head_cols["PTROBS_MIN"], head_cols["PTROBS_MAX"]
        bad = _pointer_problems(pmin, pmax, nobs, is_sep, n_rows)
        if not bad:
            for i, (a, b) in enumerate(zip(pmin, pmax, strict=True)):
                if b >= a:
                    owner[int(a) - 1 : int(b)] = i
            return owner
        warnings.append(
            f"{path}: PTROBS pointers are inconsistent with the PHOT table for {name(bad)}; "
            "locating light curves by separators and NOBS instead"
        )

    segs = _segments_by_separator(mjd)
    seg_len = np.array([b - a for a, b in segs])
    if len(segs) == n_obj and (nobs is None or np.array_equal(seg_len, nobs)):
        for i, (a, b) in enumerate(segs):
            owner[a:b] = i
        return owner

    if nobs is not None:
        if len(segs) == n_obj:
            wrong = np.flatnonzero(seg_len != nobs)
            warnings.append(f"{path}: separator segments disagree with NOBS for {name(wrong)}")
        data_rows = np.flatnonzero(~is_sep)
        if len(data_rows) == int(np.sum(nobs)):
            ends = np.cumsum(nobs)
            # every separator must fall on an object boundary for NOBS to explain the rows
            sep_positions = np.searchsorted(data_rows, np.flatnonzero(is_sep))
            interior = sep_positions[(sep_positions > 0) & (sep_positions < len(data_rows))]
            if np.isin(interior, ends).all():
                owner[data_rows] = np.repeat(np.arange(n_obj), nobs)
                warnings.append(
                    f"{path}: light curves split by NOBS ({n_obj} objects, "
                    f"{len(segs)} separator segments)"
                )
                return owner
    raise SnanaReadError(
        path,
        f"cannot locate light curves: {n_obj} objects in HEAD, {len(segs)} separator segments, "
        f"{n_rows} PHOT rows"
        + (f", NOBS sums to {int(np.sum(nobs))}" if nobs is not None else ", no NOBS column")
        + "; pointers, separators and NOBS disagree, so no light curve is attached to a guessed object",
    )


def _head(head_path: str) -> tuple[fits.HDUList, dict[str, np.ndarray]]:
    head_hdul = _open_fits(head_path)
    head_hdu = head_hdul[1]
    if head_hdu.data is None:  # NAXIS2 = 0: astropy gives no data, but the columns are declared
        head_cols = {c.name: np.array([]) for c in head_hdu.columns}
    else:
        head_cols = _scalar_columns(head_hdu.data)
    if "SNID" not in head_cols:
        raise SnanaReadError(head_path, "HEAD table has no SNID column")
    head_cols["SNID"] = np.array([clean_snid(s) for s in head_cols["SNID"]], dtype=object)
    return head_hdul, head_cols


def read_fits_head(head_path: str) -> dict[str, np.ndarray]:
    """A HEAD file's scalar columns alone (SNIDs cleaned), without its PHOT file."""
    return _head(head_path)[1]


def read_fits_pair(head_path: str, phot_path: str) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict]:
    """Raw HEAD columns (in HEAD order) and the observation table, SNIDs attached.

    Returns (head columns, obs, info) where info holds `survey`, `zp`, `band_names`,
    `warnings`; type naming and cleaning happen in `read.py`, shared with TEXT.
    """
    head_hdul, head_cols = _head(head_path)
    phot_hdul = _open_fits(phot_path)
    snids = list(head_cols["SNID"])

    hdr = head_hdul[0].header
    phot_hdr = phot_hdul[0].header
    survey = hdr.get("SURVEY") or phot_hdr.get("SURVEY")
    zp = float(hdr.get("ZP_FLUXCAL", phot_hdr.get("ZP_FLUXCAL", ZP_FLUXCAL)))
    warnings: list[str] = []
    info = {"survey": survey.strip() if isinstance(survey, str) else None, "zp": zp,
            "warnings": warnings, "band_names": {}}

    pdata = phot_hdul[1].data
    n_rows = 0 if pdata is None else len(pdata)
    if len(snids) == 0:
        ignored = f"; its {n_rows} PHOT row(s) are ignored" if n_rows else ""
        warnings.append(f"{head_path}: no light curves (the HEAD table has 0 rows){ignored}")
    if n_rows == 0 or len(snids) == 0:
        if n_rows == 0 and len(snids):
            warnings.append(f"{phot_path}: PHOT table is empty; {len(snids)} objects have no observations")
        return head_cols, empty_obs(), info

    band_col = _column(pdata, ("FLT", "BAND"))
    err_col = _column(pdata, ("FLUXCALERR", "FLUXCAL_ERR"))
    missing = [n for n, c in (("MJD", _column(pdata, ("MJD",))), ("FLT or BAND", band_col),
                              ("FLUXCAL", _column(pdata, ("FLUXCAL",))),
                              ("FLUXCALERR or FLUXCAL_ERR", err_col)) if c is None]
    if missing:
        raise SnanaReadError(phot_path, f"PHOT table is missing required column(s): {', '.join(missing)}")

    mjd = np.asarray(pdata["MJD"], dtype=np.float64)
    raw_bands = np.char.strip(np.asarray(pdata[band_col]).astype(str))
    flux = np.asarray(pdata["FLUXCAL"], dtype=np.float64)
    err = np.asarray(pdata[err_col], dtype=np.float64)

    if "SNID" in pdata.columns.names:
        phot_snid = np.array([clean_snid(s) for s in pdata["SNID"]], dtype=object)
        index: dict[object, int] = {}
        for i, s in enumerate(snids):
            index.setdefault(s, i)  # a repeated SNID's rows go to its first (kept) object
        owner = np.array([index.get(s, -1) for s in phot_snid], dtype=np.int64)
        owner[mjd == SEPARATOR_MJD] = -1
        unknown = {s for s, o, m in zip(phot_snid, owner, mjd, strict=True) if o < 0 and m != SEPARATOR_MJD}
        if unknown:
            warnings.append(f"{phot_path}: {len(unknown)} SNID(s) in PHOT have no HEAD row (e.g. {sorted(map(str, unknown))[:3]}); their rows are ignored")
    else:
        owner = _locate(phot_path, snids, head_cols, mjd, warnings)

    keep = owner >= 0
    order = np.argsort(owner[keep], kind="stable")
    owner_k = owner[keep][order]
    letters = np.array([b[-1:] if b else b for b in raw_bands], dtype=object)
    for full, letter in set(zip(raw_bands[keep], letters[keep], strict=True)):
        info["band_names"][letter] = full
    scale = 10 ** (-0.4 * (zp - ZP_FLUXCAL))
    obs = pd.DataFrame(
        {
            "SNID": np.asarray(snids, dtype=object)[owner_k],
            "_ROW": owner_k,  # the HEAD row, so repeated SNIDs keep their points apart
            "MJD": mjd[keep][order],
            "BAND": letters[keep][order],
            "FLUXCAL": flux[keep][order] * scale,
            "FLUXCALERR": err[keep][order] * scale,
        }
    )
    if scale != 1.0:
        warnings.append(f"{phot_path}: ZP_FLUXCAL = {zp}; fluxes rescaled to zero point {ZP_FLUXCAL}")
    return head_cols, obs, info
