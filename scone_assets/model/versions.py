"""Model versions: every training makes a new model folder; one of them is promoted.

The layout under a models root (this module owns it):

    <root>/versions/v0001/        a model folder (folder.py) plus version.json
    <root>/versions/v0002/
    <root>/promoted.json          which version predictions use, and why

A version is never overwritten. A new one (the challenger) replaces the promoted one
(the champion) only when its blocking checks passed and it is not worse on held-out
data both models have never seen: the challenger's test objects minus everything the
champion trained or validated on. Both are scored by the same code on those objects,
so the figures side by side are comparable, whatever either model reported at its
own training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from scone_assets.atomic import atomic_write_text
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.model.folder import SPLIT_FILE

if TYPE_CHECKING:
    from scone_assets.heatmaps.store import HeatmapCatalog

VERSIONS_DIR = "versions"
VERSION_FILE = "version.json"
PROMOTED_FILE = "promoted.json"
_NAME = re.compile(r"^v(\d{4,})$")
MIN_COMMON_TEST = 20  # held-out objects both models must share for a comparison to mean anything
COMPARED = ("auc", "accuracy")  # the challenger may be worse on neither (by more than the tolerance)

Decision = Literal["promoted", "kept"]


@dataclass(frozen=True)
class VersionRecord:
    """What a version was made from and what it scored at its own training."""

    name: str
    created: str  # ISO time, UTC
    run_id: str  # the Dagster run (or "" from the command line)
    training: dict[str, str]  # input unit -> its heatmaps' fingerprint digest
    config_digest: str
    metrics: dict[str, float]  # test accuracy, auc, purity, efficiency (rounded), n_test
    checks: dict[str, bool] = field(default_factory=dict)  # blocking checks: name -> passed

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> VersionRecord:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger scored on the same held-out objects."""

    champion: str
    challenger: str
    n: int  # held-out objects both share
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    tolerance: float
    not_worse: bool
    reason: str

    def table(self) -> str:
        """Markdown: the figures side by side."""
        rows = "\n".join(f"| {k} | {self.champion_metrics[k]:.3f} | {self.challenger_metrics[k]:.3f} |"
                         for k in COMPARED)
        return (f"| on {self.n} held-out objects | champion {self.champion} | challenger "
                f"{self.challenger} |\n|---|---|---|\n{rows}")


def versions_root(root: str | Path) -> Path:
    return Path(root) / VERSIONS_DIR


def version_dir(root: str | Path, name: str) -> Path:
    if not _NAME.match(name):
        raise ConfigError(f"model version {name!r} is not of the form v0001")
    return versions_root(root) / name


def list_versions(root: str | Path) -> list[str]:
    """Finished versions (those with a version.json), oldest first."""
    base = versions_root(root)
    names = [p.name for p in base.iterdir() if _NAME.match(p.name) and (p / VERSION_FILE).is_file()] \
        if base.is_dir() else []
    return sorted(names, key=lambda n: int(n[1:]))


def next_version(root: str | Path, taken: Iterable[str] = ()) -> str:
    """The name after every version folder there is, finished or not, and after `taken` (names
    a remote copy of the root holds): a name is never reused for different weights."""
    base = versions_root(root)
    names = [p.name for p in base.iterdir()] if base.is_dir() else []
    used = [int(m.group(1)) for n in [*names, *taken] if (m := _NAME.match(n.lstrip(".").split(".")[0]))]
    return f"v{max(used, default=0) + 1:04d}"


def write_record(folder: Path, record: VersionRecord) -> None:
    atomic_write_text(folder / VERSION_FILE, record.to_json())


def read_record(folder: str | Path) -> VersionRecord:
    path = Path(folder) / VERSION_FILE
    try:
        return VersionRecord.from_json(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: {Path(folder).name} is not a finished model version") \
            from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a model version record: {exc}") from None


def promoted(root: str | Path) -> str | None:
    """The promoted version's name, or None before the first promotion."""
    path = Path(root) / PROMOTED_FILE
    if not path.is_file():
        return None
    try:
        name = json.loads(path.read_text())["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a promotion record: {exc}") from None
    version_dir(root, name)  # a malformed name is refused, not followed
    return name


def promote(root: str | Path, name: str, reason: str, run_id: str = "") -> None:
    """Point `promoted.json` at a finished version (atomically: readers see the old or the new)."""
    read_record(version_dir(root, name))  # only a finished version can be promoted
    now = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_text(Path(root) / PROMOTED_FILE, json.dumps(
        {"version": name, "promoted": now, "reason": reason, "run_id": run_id}, indent=1))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _held_out(folder: Path, sets: tuple[str, ...]) -> set[str]:
    split = pd.read_csv(folder / SPLIT_FILE, dtype={"SNID": str})
    return set(split.loc[split.set.isin(sets), "SNID"])


def _figures(config: SconeConfig, catalog: HeatmapCatalog, model_dir: Path) -> dict[str, float]:
    """COMPARED figures of one model on `catalog` (one heatmap per object)."""
    from scone_assets.model.metrics import binary_metrics
    from scone_assets.model.predict import score
    from scone_assets.snana.types import IA, merged_names

    table = score(config, catalog, model_dir)
    types = catalog.index.drop_duplicates("SNID").set_index("SNID").TYPE_NAME
    is_ia = merged_names(types.loc[table.SNID.astype(str)].to_numpy(), config.count_as_ia) == IA
    figures = binary_metrics(is_ia, table[config.prob_column_name].to_numpy())
    return {k: round(float(figures[k]), 4) for k in COMPARED}


def compare(config: SconeConfig, catalog: HeatmapCatalog, champion_dir: Path, challenger_dir: Path,
            tolerance: float = 0.0) -> Comparison:
    """Score both models on the challenger's test objects that the champion never trained or
    validated on; the challenger is not worse when it loses no more than `tolerance` on
    each of COMPARED."""
    from scone_assets.heatmaps.store import HeatmapCatalog as Catalog

    champion, challenger = champion_dir.name, challenger_dir.name
    common = _held_out(challenger_dir, ("test",)) - _held_out(champion_dir, ("train", "val"))
    idx = catalog.index
    keep = idx.SNID.astype(str).isin(common).to_numpy()
    n = int(idx.SNID[keep].astype(str).nunique())
    if n < MIN_COMMON_TEST:
        return Comparison(champion, challenger, n, {k: float("nan") for k in COMPARED},
                          {k: float("nan") for k in COMPARED}, tolerance, False,
                          f"only {n} held-out objects are unseen by both {champion} and {challenger} "
                          f"(at least {MIN_COMMON_TEST} are needed to compare them): promote by hand "
                          "if the training data changed on purpose")
    held = Catalog(idx[keep].reset_index(drop=True), catalog.skipped.iloc[0:0], catalog.shape,
                   int(catalog.total_bytes * keep.mean()), catalog.band_to_wave, complete=False)
    old, new = _figures(config, held, champion_dir), _figures(config, held, challenger_dir)
    worse = [k for k in COMPARED if not new[k] >= old[k] - tolerance]
    reason = (f"{challenger} is worse than {champion} on {', '.join(worse)}" if worse else
              f"{challenger} is not worse than {champion} on {n} held-out objects")
    return Comparison(champion, challenger, n, old, new, tolerance, not worse, reason)
