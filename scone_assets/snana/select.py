"""SCONE's training-set selection: which objects of the inputs get heatmaps.

Three keys, with SCONE's meaning (its run.py: `create_snid_select_file`):

- `snid_select_files`: SNANA FITRES (or SIMGEN DUMP) files; only the SNIDs they list
  are kept. For simulations a FITRES file is used only when its `VERSION_PHOTOMETRY`
  names an input folder (the SNANA VERSION), and its SNIDs select only in the folders
  it names, so SNID 5 of one version never selects SNID 5 of another. For real data
  every file applies to every unit.
- without them, a simulation folder's own `<VERSION>.DUMP[.gz]` with a `FLAG_ACCEPT`
  column keeps only the accepted events (SIMGEN_DUMPALL lists the rejected ones too).
  No DUMP, or no FLAG_ACCEPT: everything is kept (SCONE exits; our simulator writes none).
- `prescale_heatmaps` / `nevt_select_heatmaps` (train mode, simulations only): keep an
  object when `SNID % prescale == 0`, per class (SNe Ia, the rest); nevt gives the
  prescales `int(n_class / n_wanted + 0.5)` (at least 1) from the per-class totals of the
  selected inputs. A SNID that is not an integer is prescaled by its stable 63-bit
  BLAKE2b hash (`store.record_id`, the TFRecord `id`), so re-runs keep the same objects.

Classes come from this project's type mapping (`types.IA`), read from the HEAD tables
only (no PHOT), so the totals match the objects heatmaps are made for.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import fsspec
import numpy as np
import pandas as pd

from scone_assets.config import ConfigError, SconeConfig
from scone_assets.snana.lightcurves import LightCurves, SnanaReadError, clean_snid

log = logging.getLogger(__name__)

VERSION_KEY = "VERSION_PHOTOMETRY:"
VERSION_LINES = 10  # SCONE looks for VERSION_PHOTOMETRY in a FITRES file's first 10 lines
FLAG_ACCEPT = "FLAG_ACCEPT"
ROW_KEYS = ("SN:", "ROW:")

NOT_SELECTED = "not in snid_select_files"
NOT_IN_DUMP = "not in SIMGEN DUMP"
REJECTED = "FLAG_ACCEPT=0"
PRESCALED = "prescale"


class SelectionError(ConfigError):
    """A selection file or setting that cannot be used; the message names the file."""


def snid_key(value: object) -> str:
    """SNIDs as text, so an int CID in one file matches a string SNID in another
    (`"0042"`, `42` and `42.0` are one SNID)."""
    value = clean_snid(value)
    text = str(value).strip()
    body = text[1:] if text[:1] in "+-" else text
    return str(int(text)) if body.isdigit() else text


def prescale_number(snid: object) -> int:
    """The integer `SNID % prescale` is taken of: the SNID, or its stable hash if not an integer."""
    from scone_assets.heatmaps.store import record_id

    return record_id(snid_key(snid))


# ------------------------------------------------------------------ reading the lists

def _open_text(path: str):
    """Plain or gzipped text, local or any fsspec URL."""
    return fsspec.open(path, "rt", compression="gzip" if path.lower().endswith(".gz") else None,
                       errors="replace")


_VERSION = re.compile(re.escape(VERSION_KEY) + r"\s*(\S+)")


def read_versions(path: str) -> tuple[str, ...] | None:
    """The `VERSION_PHOTOMETRY:` of a FITRES file (a comma list), from its first 10 lines."""
    try:
        with _open_text(path) as fh:
            for i, line in enumerate(fh):
                if i >= VERSION_LINES:
                    break
                if m := _VERSION.search(line):
                    return tuple(v for v in m.group(1).split(",") if v)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SelectionError(f"snid_select_files entry {path} cannot be read ({exc})") from None
    return None


def read_table(path: str) -> pd.DataFrame:
    """An SNANA key-value table (`VARNAMES:` then `SN:` rows; `#` starts a comment), all text."""
    names: list[str] | None = None
    rows: list[list[str]] = []
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, 1):
                words = line.split("#", 1)[0].split()
                if not words:
                    continue
                if words[0] == "VARNAMES:":
                    if names is not None and words[1:] != names:
                        raise SelectionError(f"{path} line {n}: a second VARNAMES row with other columns")
                    names = words[1:]
                elif words[0] in ROW_KEYS:
                    if names is None:
                        raise SelectionError(f"{path} line {n}: an {words[0]} row before VARNAMES")
                    if len(words) - 1 != len(names):
                        raise SelectionError(f"{path} line {n}: {len(words) - 1} values for "
                                             f"{len(names)} VARNAMES")
                    rows.append(words[1:])
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SelectionError(f"snid_select_files entry {path} cannot be read ({exc})") from None
    if names is None:
        raise SelectionError(f"{path}: no VARNAMES row; expected an SNANA FITRES or SIMGEN DUMP table")
    if "CID" not in names:
        raise SelectionError(f"{path}: no CID column (VARNAMES: {' '.join(names)})")
    return pd.DataFrame(rows, columns=names, dtype=str)


@dataclass(frozen=True)
class SnidList:
    """The SNIDs one FITRES or DUMP file selects, and where they apply."""

    path: str
    kind: Literal["FITRES", "DUMP"]
    versions: tuple[str, ...]  # the input VERSIONs it applies to; () = every unit
    snids: tuple[str, ...]  # accepted rows, in file order (repeats kept for the duplicate check)
    rejected: frozenset[str] = frozenset()  # FLAG_ACCEPT == 0 rows
    has_flag_accept: bool = False
    sha256: str = ""

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def applies_to(self, version: str) -> bool:
        return not self.versions or version in self.versions

    def stamp(self) -> str:
        """How a unit's fingerprint names this list: a change of its content remakes the unit."""
        return f"{self.path} sha256:{self.sha256[:16]}"


def is_dump(path: str) -> bool:
    return ".DUMP" in posixpath.basename(path).upper()


def read_snid_list(path: str, versions: tuple[str, ...] = ()) -> SnidList:
    """Rows with FLAG_ACCEPT == 1 when that column exists (SCONE, Jan 2026), else every row."""
    from scone_assets.heatmaps.store import file_fingerprint

    table = read_table(path)
    cids = [snid_key(c) for c in table["CID"]]
    rejected: frozenset[str] = frozenset()
    has_flag = FLAG_ACCEPT in table.columns
    if has_flag:
        try:
            flags = np.array([int(float(f)) for f in table[FLAG_ACCEPT]])
        except ValueError:
            raise SelectionError(f"{path}: FLAG_ACCEPT holds a value that is not a number") from None
        rejected = frozenset(c for c, f in zip(cids, flags, strict=True) if f != 1)
        cids = [c for c, f in zip(cids, flags, strict=True) if f == 1]
    kind: Literal["FITRES", "DUMP"] = "DUMP" if is_dump(path) else "FITRES"
    log.info("read %d (of %d) rows from %s %s", len(cids), len(table), kind, path)
    return SnidList(path, kind, versions, tuple(cids), rejected, has_flag, file_fingerprint(path)["sha256"])


# ------------------------------------------------------------------ what the inputs hold

@dataclass(frozen=True)
class UnitObjects:
    """One unit's objects as its HEAD table names them: SNID and whether it is a SN Ia."""

    key: str
    version: str
    is_sim: bool
    snids: tuple[str, ...]
    is_ia: tuple[bool, ...]


def unit_version(files: list[str]) -> str:
    """The SNANA VERSION of a unit: the name of the folder its HEAD (or first) file is in."""
    return posixpath.basename(posixpath.dirname(str(files[0]).rstrip("/")))


def unit_objects(unit, config: SconeConfig, labels: Mapping[str, str] | None) -> UnitObjects:
    """Type names exactly as `read_unit` gives them, from the HEAD table alone (FITS);
    TEXT units are read whole (their header is in each file)."""
    from scone_assets.snana import read as snana_read
    from scone_assets.snana.fits_read import read_fits_head
    from scone_assets.snana.types import IA

    version = unit_version(unit.files)
    if unit.kind != "fits":
        lcs = snana_read.read_unit(unit, config, labels)  # objects it skips have no type: not counted
        return UnitObjects(unit.key, version, lcs.is_sim, tuple(snid_key(s) for s in lcs.meta["SNID"]),
                           tuple(t == IA for t in lcs.meta["TYPE_NAME"]))
    head = read_fits_head(unit.files[0])
    is_sim, _, names = snana_read.head_types(head, readme=snana_read.load_readme(unit.readme),
                                             config=config, labels=labels)
    # a repeated SNID counts once, its first row, as the full read keeps it
    first = ~pd.Series(head["SNID"]).duplicated().to_numpy()
    return UnitObjects(unit.key, version, is_sim, tuple(snid_key(s) for s in head["SNID"][first]),
                       tuple(t == IA for t, f in zip(names, first, strict=True) if f))


# ------------------------------------------------------------------ the selection

@dataclass(frozen=True)
class UnitSelection:
    """What keeps one unit's objects out of its heatmaps; recorded in its fingerprint."""

    keep: frozenset[str] | None = None  # None: no SNID list applies (keep all)
    rejected: frozenset[str] = frozenset()  # FLAG_ACCEPT=0 rows of the lists that apply
    missing_reason: str = NOT_SELECTED
    prescale: tuple[int, int] | None = None  # (Ia, nonIa); None in predict mode and for data
    lists: tuple[str, ...] = ()  # `SnidList.stamp()` of every list behind `keep`

    @property
    def active(self) -> bool:
        return self.keep is not None or self.prescale is not None

    def settings(self) -> dict:
        """The fingerprint entries (lists, not tuples, so they compare equal after JSON)."""
        key = "simgen_dump" if self.missing_reason == NOT_IN_DUMP else "snid_select_files"
        return {key: list(self.lists) if self.keep is not None else None,
                "prescale_heatmaps": list(self.prescale) if self.prescale else None}

    def reason(self, snid: str, is_ia: bool, is_sim: bool) -> str | None:
        """Why an object is left out, or None when it is kept."""
        if self.keep is not None and snid not in self.keep:
            return REJECTED if snid in self.rejected else self.missing_reason
        if self.prescale and is_sim:
            ps = self.prescale[0] if is_ia else self.prescale[1]
            if ps > 1 and prescale_number(snid) % ps != 0:
                return PRESCALED
        return None


@dataclass(frozen=True)
class Selection:
    """The selection of one run, decided once for every unit before heatmaps are made."""

    by_unit: Mapping[str, UnitSelection] = field(default_factory=dict)
    by_version: Mapping[str, UnitSelection] = field(default_factory=dict)  # units whose HEAD failed
    default: UnitSelection = UnitSelection()  # units planned without their HEAD (prescale alone)
    prescale: tuple[int, int] | None = None
    totals: tuple[tuple[int, int], tuple[int, int]] | None = None  # (Ia, nonIa) before, after

    def for_unit(self, key: str, files: list[str] | None = None) -> UnitSelection:
        if key in self.by_unit:
            return self.by_unit[key]
        version = unit_version(files) if files else None
        return self.by_version.get(version, self.default) if version else self.default


def apply(lcs: LightCurves, sel: UnitSelection) -> tuple[LightCurves, Counter[str]]:
    """The light curves `sel` keeps; every one left out joins `skipped` with its reason."""
    from scone_assets.snana.types import IA

    if not sel.active or not len(lcs):
        return lcs, Counter()
    meta = lcs.meta
    reasons = [sel.reason(snid_key(s), t == IA, lcs.is_sim)
               for s, t in zip(meta["SNID"], meta["TYPE_NAME"], strict=True)]
    keep = np.array([r is None for r in reasons], dtype=bool)
    dropped = Counter(r for r in reasons if r is not None)
    if not dropped:
        return lcs, dropped
    kept_meta = meta[keep].reset_index(drop=True)
    obs = lcs.obs[lcs.obs["SNID"].isin(set(kept_meta["SNID"]))].reset_index(drop=True)
    skipped = list(lcs.skipped) + [(s, r) for s, r in zip(meta["SNID"], reasons, strict=True) if r]
    return replace(lcs, meta=kept_meta, obs=obs, skipped=skipped), dropped


def _class_counts(objects: Iterable[UnitObjects], keep) -> tuple[int, int]:
    n_ia = n_non = 0
    for u in objects:
        for snid, ia in zip(u.snids, u.is_ia, strict=True):
            if keep(u, snid, ia):
                n_ia += ia
                n_non += not ia
    return n_ia, n_non


def nevt_prescales(totals: tuple[int, int], wanted: tuple[int, int]) -> tuple[int, int]:
    """SCONE's prescales for `wanted` (Ia, nonIa) events out of `totals`: int(n/wanted + 0.5), >= 1."""
    return tuple(max(1, int(n / w + 0.5)) for n, w in zip(totals, wanted, strict=True))  # type: ignore[return-value]


def dump_file(folder: str) -> str | None:
    """`<folder>/<VERSION>.DUMP` or `.DUMP.gz`, the SIMGEN dump SNANA writes beside a simulation."""
    fs, root = fsspec.core.url_to_fs(folder)
    version = posixpath.basename(root.rstrip("/"))
    for name in (f"{version}.DUMP", f"{version}.DUMP.gz"):
        path = posixpath.join(folder.rstrip("/"), name)
        if fs.exists(posixpath.join(root.rstrip("/"), name)):
            return path
    return None


def _check_duplicates(lists: list[SnidList], objects: list[UnitObjects], is_sim: bool) -> None:
    """SCONE's check: for data any SNID listed twice; for simulations a SNID listed twice
    within the SNe Ia or within the rest (Ia and non-Ia sims are made apart and may share
    SNIDs). A listed SNID's class is what the inputs it applies to say it is."""
    where: dict[tuple[str, str], list[str]] = {}
    for lst in lists:
        if not is_sim:
            for snid in lst.snids:
                where.setdefault(("Data", snid), []).append(lst.name)
            continue
        classes: dict[str, set[str]] = {}
        for u in objects:
            if lst.applies_to(u.version):
                for snid, ia in zip(u.snids, u.is_ia, strict=True):
                    classes.setdefault(snid, set()).add("SIM-Ia" if ia else "SIM-nonIa")
        for snid in lst.snids:
            for cls in classes.get(snid, ()):
                where.setdefault((cls, snid), []).append(lst.name)
    dups = {k: v for k, v in where.items() if len(v) > 1}
    labels = ["Data"] if not is_sim else ["SIM-Ia", "SIM-nonIa"]
    for label in labels:
        n_all = sum(len(v) for (c, _), v in where.items() if c == label)
        n_dup = sum(len(v) - 1 for (c, _), v in dups.items() if c == label)
        log.info("found %d duplicates from %d %s events%s", n_dup, n_all, label, " ==> ERROR" if n_dup else "")
    if dups:
        shown = "; ".join(f"{cls} SNID {snid} in {', '.join(files)}"
                          for (cls, snid), files in sorted(dups.items())[:5])
        more = f"; and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise SelectionError(f"snid_select_files list {len(dups)} SNID(s) more than once "
                             f"({shown}{more}); one object must be listed once")


def plan(config: SconeConfig, units: list, labels: Mapping[str, str] | None) -> Selection:
    """The selection for `units` (all of the config's inputs, so every run agrees)."""
    train = config.mode == "train"
    wanted = config.nevt_select_heatmaps if train else None
    prescale = config.prescale_heatmaps if train else None
    if wanted and prescale:
        log.warning("nevt_select_heatmaps %s wins over prescale_heatmaps %s (as in SCONE)", wanted, prescale)
    if not train and (config.prescale_heatmaps or config.nevt_select_heatmaps):
        log.info("prescale_heatmaps / nevt_select_heatmaps apply in train mode only: not applied")
    folders = {unit_version(u.files): posixpath.dirname(str(u.files[0])) for u in units}
    dumps: dict[str, str] = {}
    if not config.snid_select_files:
        for version, folder in folders.items():
            if path := dump_file(folder):
                dumps[version] = path
            else:
                log.info("no SIMGEN DUMP (%s.DUMP) in %s: every object of %s is kept", version, folder, version)
    if not (config.snid_select_files or dumps or wanted):
        # prescale alone needs no totals: applied to simulations as they are read
        return Selection(default=UnitSelection(prescale=tuple(prescale) if prescale else None),
                         prescale=tuple(prescale) if prescale else None)

    objects: list[UnitObjects] = []
    for unit in units:
        try:
            objects.append(unit_objects(unit, config, labels))
        except SnanaReadError as exc:
            log.warning("selection: cannot read %s (%s); the unit is left to fail on its own", unit.key, exc)
    is_sim = any(u.is_sim for u in objects)
    versions = set(folders)
    lists: list[SnidList] = []
    reason = NOT_SELECTED
    for path in config.snid_select_files or []:
        if not fsspec.core.url_to_fs(path)[0].exists(fsspec.core.url_to_fs(path)[1]):
            raise SelectionError(f"snid_select_files entry {path} does not exist")
        applies: tuple[str, ...] = ()
        if is_sim and is_dump(path):
            stem = posixpath.basename(path).split(".DUMP")[0]
            applies = (stem,) if stem in versions else ()
        elif is_sim:
            named = read_versions(path)
            if named is None:
                raise SelectionError(f"snid_select_files entry {path} has no {VERSION_KEY} in its first "
                                     f"{VERSION_LINES} lines, so it cannot be matched to a simulation VERSION")
            if not versions.intersection(named):
                log.info("skip snid_select_file %s: its VERSION_PHOTOMETRY %s matches none of the "
                         "input versions (%s)", path, ",".join(named), ", ".join(sorted(versions)))
                continue
            applies = tuple(v for v in named if v in versions)
        lists.append(read_snid_list(path, applies))
    for version, path in sorted(dumps.items()):
        lst = read_snid_list(path, (version,))
        if lst.has_flag_accept:
            lists.append(lst)
            reason = NOT_IN_DUMP
        else:
            log.info("SIMGEN DUMP %s has no FLAG_ACCEPT column: every object of %s is kept", path, version)
    _check_duplicates(lists, objects, is_sim)

    keeps: dict[str, tuple[frozenset[str], frozenset[str], tuple[str, ...]] | None] = {}
    for version in versions:
        used = [lst for lst in lists if lst.applies_to(version)]
        if not used and not config.snid_select_files:
            keeps[version] = None
            continue
        if not used:
            log.warning("no snid_select_files entry applies to %s: all its objects are left out", version)
        keeps[version] = (frozenset(s for lst in used for s in lst.snids),
                          frozenset(s for lst in used for s in lst.rejected),
                          tuple(lst.stamp() for lst in used))

    def listed(u: UnitObjects, snid: str, _ia: bool) -> bool:
        k = keeps.get(u.version)
        return k is None or snid in k[0]

    sims = [u for u in objects if u.is_sim]
    before = _class_counts(sims, listed)
    if is_sim:
        log.info("NSIM [Ia, nonIa] = [%d, %d]", *before)
    ps = tuple(prescale) if prescale else None
    if wanted:
        ps = nevt_prescales(before, tuple(wanted))
        log.info("user-defined nevt_select [Ia, nonIa] = %s; computed prescale = %s", list(wanted), list(ps))

    def chosen(version: str, sim: bool) -> UnitSelection:
        k = keeps.get(version)
        return UnitSelection(k[0] if k else None, k[1] if k else frozenset(), reason,
                             ps if sim else None, k[2] if k else ())

    by_unit = {u.key: chosen(u.version, u.is_sim) for u in objects}
    by_version = {v: chosen(v, is_sim) for v in versions}
    after = _class_counts(sims, lambda u, s, ia: by_unit[u.key].reason(s, ia, True) is None)
    if is_sim:
        log.info("NSIM(after prescale) [Ia, nonIa] = [%d, %d]", *after)
    return Selection(by_unit, by_version, UnitSelection(prescale=ps), ps, (before, after))
