"""Data a model cannot use honestly, refused before any work: light curves without a
redshift for a with_z model, and SNIDs met twice (one object must be one row)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scone_assets.config import ConfigError, SconeConfig

if TYPE_CHECKING:
    from scone_assets.heatmaps.store import HeatmapCatalog

log = logging.getLogger(__name__)

PLACEHOLDER_Z = -9.0  # what SCONE's records carry for an unknown redshift
SHOW = 5  # SNIDs named in a message


def lacks_redshift(index: pd.DataFrame) -> np.ndarray:
    """True where the index has no usable redshift (REDSHIFT_FINAL, else the host's): NaN, or -9
    kept as a number by a reader."""
    if "z" not in index:
        return np.ones(len(index), bool)
    z = pd.to_numeric(index["z"], errors="coerce").to_numpy(float)
    return ~np.isfinite(z) | (z <= PLACEHOLDER_Z)


def _named(snids, limit: int = SHOW) -> str:
    snids = [str(s) for s in snids]
    more = f" and {len(snids) - limit} more" if len(snids) > limit else ""
    return ", ".join(snids[:limit]) + more


def check_redshift(catalog: HeatmapCatalog, config: SconeConfig, because: str) -> int:
    """Refuse light curves without a redshift for a with_z model, unless the config says
    `missing_redshift: placeholder`; then warn and let SCONE's -9 through. `because` is
    the clause that says why a redshift is needed. Counts objects (an SNID in several
    heatmap sets once) and returns how many lack a redshift."""
    objects = catalog.index.drop_duplicates("SNID")
    missing = lacks_redshift(objects)
    n, total = int(missing.sum()), len(objects)
    if not n:
        return 0
    snids = objects.SNID[missing].astype(str)
    if config.missing_redshift != "placeholder":
        raise ConfigError(f"{n} of {total} light curves have no redshift (REDSHIFT_FINAL, HOSTGAL_SPECZ or HOSTGAL_PHOTOZ); {because}. "
                          f"Set missing_redshift: placeholder to feed SCONE's -9 instead "
                          f"(SNIDs: {_named(snids)})")
    log.warning("%d of %d light curves have no redshift (REDSHIFT_FINAL, HOSTGAL_SPECZ or HOSTGAL_PHOTOZ); missing_redshift: placeholder "
                "feeds SCONE's %g for them (SNIDs: %s)", n, total, PLACEHOLDER_Z, _named(snids))
    return n


def unique_objects(catalog: HeatmapCatalog, config: SconeConfig, what: str) -> HeatmapCatalog:
    """One heatmap per SNID in one heatmap set, as `duplicate_snids` decides."""
    from scone_assets.heatmaps.store import resolve_duplicates

    return resolve_duplicates(catalog, config.duplicate_snids, what)


def assert_unique_snids(snids, what: str) -> None:
    """A bug guard: a table that reaches disk has one row per object."""
    s = pd.Series(np.asarray(snids, dtype=object)).astype(str)
    dup = s[s.duplicated()].drop_duplicates()
    if len(dup):
        raise AssertionError(f"{what} would list {len(dup)} SNID(s) more than once ({_named(dup)}): a bug, "
                             "since duplicates are resolved before predicting; nothing was written")
