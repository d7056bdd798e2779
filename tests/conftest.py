"""Shared fixtures. Real SNANA data lives in ../shared/data (CI always has it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCONE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the shared SNANA data, but {path} is missing")
        pytest.skip(f"shared SNANA data not present at {path}")
    return path


@pytest.fixture
def des_sim() -> Path:
    return shared("snana_fits", "DES_SIM")


@pytest.fixture
def lowz_real() -> Path:
    return shared("snana_fits", "LOWZ_REAL")


@pytest.fixture
def lsst_sim() -> Path:
    return shared("snana_fits", "LSST_SIM")


@pytest.fixture
def snpcc() -> Path:
    return shared("snpcc_dev")


def write_table(path: Path, columns: dict[str, np.ndarray], header: dict | None = None) -> Path:
    """A raw FITS table, for building files SNANA-ish but deliberately wrong."""
    cols = []
    for name, arr in columns.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        if arr.dtype.kind in "US":
            fmt = f"{max(1, max(len(str(a)) for a in arr) if len(arr) else 1)}A"
        elif arr.dtype.kind in "iu":
            fmt = "K"
        elif arr.ndim == 2:
            fmt = f"{arr.shape[1]}E"
        else:
            fmt = "D"
        cols.append(fits.Column(name=name, format=fmt, array=arr))
    primary = fits.PrimaryHDU()
    for k, v in (header or {}).items():
        primary.header[f"HIERARCH {k}" if len(k) > 8 else k] = v
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    return path
