"""The one columnar form every SNANA input is read into."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ZP_FLUXCAL = 27.5


class SnanaReadError(ValueError):
    """A file that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass
class LightCurves:
    """Light curves of one SNANA input (a HEAD/PHOT pair or TEXT file list)."""

    meta: pd.DataFrame
    obs: pd.DataFrame
    source: str
    survey: str | None = None
    is_sim: bool = False
    band_names: dict[str, str] = field(default_factory=dict)
    band_to_wave: dict[str, float] = field(default_factory=dict)
    skipped: list[tuple[object, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    file_errors: list[SnanaReadError] = field(default_factory=list)
    # band -> observations dropped because the band cannot be placed in wavelength
    dropped_bands: dict[str, int] = field(default_factory=dict)
    # SNID -> files it appears in, for SNIDs seen more than once in this input (first one kept)
    duplicates: dict[object, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def bands(self) -> list[str]:
        return sorted(self.obs["BAND"].unique().tolist()) if len(self.obs) else []

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.skipped))

    def counts_by_type(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.meta["TYPE_NAME"].value_counts().sort_index().items()}

    def iter_lightcurves(self):
        """Yield (meta row, obs frame) per light curve, in file order, without copying the table."""
        if not len(self.meta):
            return
        snids = self.obs["SNID"].to_numpy()
        # observations are stored contiguously per object, in meta order
        boundaries = np.flatnonzero(snids[1:] != snids[:-1]) + 1
        starts = np.concatenate([[0], boundaries])
        ends = np.concatenate([boundaries, [len(snids)]])
        by_snid = {snids[s]: (s, e) for s, e in zip(starts, ends, strict=True)}
        for row in self.meta.itertuples(index=False):
            s, e = by_snid[row.SNID]
            yield row, self.obs.iloc[s:e]


def empty_obs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "SNID": pd.Series(dtype=object),
            "MJD": pd.Series(dtype=float),
            "BAND": pd.Series(dtype=object),
            "FLUXCAL": pd.Series(dtype=float),
            "FLUXCALERR": pd.Series(dtype=float),
        }
    )


def clean_snid(value: object) -> object:
    """SNIDs as SNANA stores them: ints stay ints, strings are stripped and stay strings."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        return int(value)
    return value
