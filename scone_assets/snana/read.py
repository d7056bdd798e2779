"""Read any SNANA input into `LightCurves`, one input unit at a time.

An input unit is what later becomes one Dagster partition: a HEAD/PHOT pair,
or a list of TEXT light curves. Units are found from the three ways SCONE
users name inputs (`input_path`, `metadata_paths` + `lcdata_paths`,
`input_data_paths`); paths may be any fsspec URL. A bad unit, or a bad TEXT
file inside one, is reported and skipped; the rest are read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pandas as pd

from scone_assets.bands import band_letter, place_bands, survey_table
from scone_assets.config import ConfigError, SconeConfig, expand
from scone_assets.snana.fits_read import read_fits_pair
from scone_assets.snana.lightcurves import LightCurves, SnanaReadError
from scone_assets.snana.readme import ReadmeInfo, parse_readme
from scone_assets.snana.text_read import read_text_file
from scone_assets.snana.types import IA, UNKNOWN, class_name, type_name_for

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".dat", ".snana.dat", ".dat.gz", ".snana.dat.gz")
HEAD_RE = re.compile(r"^(?P<stem>.*)HEAD(?P<ext>\.FITS(?:\.GZ)?)$", re.IGNORECASE)
PHOT_RE = re.compile(r"^(?P<stem>.*)PHOT(?P<ext>\.FITS(?:\.GZ)?)$", re.IGNORECASE)
TEXT_FILES_PER_UNIT = 1000
SNANA_FILES = "*_HEAD.FITS/*_PHOT.FITS pairs or TEXT .DAT files"
INPUT_KEYS = "input_path, metadata_paths + lcdata_paths, or input_data_paths"
HOST_Z_COLUMNS = ("HOSTGAL_SPECZ", "HOSTGAL_SPECZ_ERR", "HOSTGAL_PHOTOZ", "HOSTGAL_PHOTOZ_ERR",
                  "VETTED_HOST_GALAXY_REDSHIFT", "VETTED_HOST_GALAXY_REDSHIFT_ERR")
# an object's redshift: the first of these it has (SNANA's own best value, then the host's
# spectroscopic, then its photometric redshift), with the error column beside each. YSE DR1's
# VETTED_HOST_GALAXY_REDSHIFT is the catalogued (NED) redshift of the host the survey vetted, a
# spectroscopic one (its photo-z is PHOTO_Z; 63 of yse_dev's 69 agree with REDSHIFT_FINAL to
# 0.002), so it ranks as a host spec-z, before HOSTGAL_SPECZ (an unvetted, automatic match). A
# redshift, not a label: as legitimate an input as REDSHIFT_FINAL.
Z_COLUMNS = ("REDSHIFT_FINAL", "VETTED_HOST_GALAXY_REDSHIFT", "HOSTGAL_SPECZ", "HOSTGAL_PHOTOZ")
Z_ERR_COLUMNS = {"REDSHIFT_FINAL": "REDSHIFT_FINAL_ERR", "HOSTGAL_SPECZ": "HOSTGAL_SPECZ_ERR",
                 "HOSTGAL_PHOTOZ": "HOSTGAL_PHOTOZ_ERR",
                 "VETTED_HOST_GALAXY_REDSHIFT": "VETTED_HOST_GALAXY_REDSHIFT_ERR"}


def best_redshift(row) -> tuple[float, float, str | None]:
    """(z, z_err, column) of one meta row: the first of Z_COLUMNS known (finite, > 0),
    else (NaN, NaN, None). A missing error stays NaN."""
    for col in Z_COLUMNS:
        z = float(getattr(row, col, np.nan))
        if np.isfinite(z) and z > 0:
            return z, float(getattr(row, Z_ERR_COLUMNS[col], np.nan)), col
    return np.nan, np.nan, None


@dataclass
class InputUnit:
    """One readable unit of SNANA input."""

    key: str
    kind: str  # "fits" | "text"
    files: list[str]  # fits: [head, phot]; text: the light-curve files
    readme: str | None = None
    dataset: str = ""


@dataclass
class Discovery:
    units: list[InputUnit] = field(default_factory=list)
    errors: list[SnanaReadError] = field(default_factory=list)


def _is_text(name: str) -> bool:
    low = name.lower()
    return low.endswith(TEXT_SUFFIXES)


def _safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _unit_key(dataset: str, stem: str) -> str:
    """`<folder>__<stem>`, or the stem alone when it already starts with the folder's name
    (`DES_SIM/DES_SIM-0001_HEAD.FITS` is `DES_SIM-0001`), so names are not said twice."""
    stem = stem.rstrip("_-")
    return _safe_key(stem if stem.startswith(dataset) else f"{dataset}__{stem}")


def _strip_url(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def _fits_parts(name: str) -> tuple[str, tuple[str, str, str]] | None:
    """("HEAD" or "PHOT", (folder, stem, extension)) of a FITS light-curve file name."""
    base = posixpath.basename(name)
    for kind, pattern in (("HEAD", HEAD_RE), ("PHOT", PHOT_RE)):
        if m := pattern.match(base):
            return kind, (posixpath.dirname(name), m.group("stem"), m.group("ext").upper())
    return None


def _toggle_gz(ext: str) -> str:
    return ext[:-3] if ext.upper().endswith(".GZ") else ext + ".GZ"


def _pair_fits(names: list[str], dataset: str, readme: str | None, out: Discovery) -> None:
    """HEAD/PHOT pairs by folder and stem; one may be gzipped and the other not."""
    found: dict[str, dict[tuple[str, str, str], str]] = {"HEAD": {}, "PHOT": {}}
    for name in names:
        if parts := _fits_parts(name):
            found[parts[0]][parts[1]] = name
    heads, phots = found["HEAD"], found["PHOT"]
    paired: set[tuple[str, str, str]] = set()
    for (folder, stem, ext), head in sorted(heads.items()):
        key = next((k for k in ((folder, stem, ext), (folder, stem, _toggle_gz(ext))) if k in phots),
                   None)
        if key is None:
            out.errors.append(SnanaReadError(head, "HEAD file has no matching PHOT file"))
            continue
        paired.add(key)
        unit_key = _unit_key(dataset, stem)
        out.units.append(InputUnit(unit_key, "fits", [head, phots[key]], readme, dataset))
    for key, phot in sorted(phots.items()):
        if key not in paired:
            out.errors.append(SnanaReadError(phot, "PHOT file has no matching HEAD file"))


def _partner_names(path: str) -> list[str]:
    """Where the PHOT of a HEAD file (or the HEAD of a PHOT file) would be: same folder and
    stem, plain or gzipped."""
    base = posixpath.basename(path)
    m = HEAD_RE.match(base) or PHOT_RE.match(base)
    if not m:
        return []
    word = base[len(m.group("stem")) : len(base) - len(m.group("ext"))]
    other = "PHOT" if word.upper() == "HEAD" else "HEAD"
    other = other if word.isupper() else other.lower()
    ext = m.group("ext")
    plain = ext[:-3] if ext.upper().endswith(".GZ") else ext
    exts = dict.fromkeys((ext, plain, plain + ".gz", plain + ".GZ"))
    return [posixpath.join(posixpath.dirname(path), m.group("stem") + other + e) for e in exts]


def _with_partners(files: list[str]) -> list[str]:
    """A HEAD or PHOT file named alone brings its partner from beside it."""
    given = set(files)
    out = list(files)
    for path in files:
        candidates = _partner_names(path)
        if not candidates or given.intersection(candidates):
            continue
        fs, _ = fsspec.core.url_to_fs(path)
        for cand in candidates:
            if fs.exists(fsspec.core.url_to_fs(cand)[1]):
                out.append(cand)
                given.add(cand)
                break
    return out


def _text_units(files: list[str], dataset: str, readme: str | None, out: Discovery) -> None:
    files = sorted(files)
    for i in range(0, len(files), TEXT_FILES_PER_UNIT):
        chunk = files[i : i + TEXT_FILES_PER_UNIT]
        key = _safe_key(f"{dataset}__text_{i // TEXT_FILES_PER_UNIT:04d}")
        out.units.append(InputUnit(key, "text", chunk, readme, dataset))


def _scan_folder(folder: str, out: Discovery) -> None:
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.isdir(root):
        out.errors.append(SnanaReadError(folder, "input folder does not exist"))
        return
    protocol = folder.split("://", 1)[0] + "://" if "://" in folder else ""
    names = [protocol + n if protocol and not n.startswith(protocol) else n
             for n in sorted(fs.ls(root, detail=False))]
    if not protocol:
        names = [os.path.abspath(n) for n in names]
        folder = os.path.abspath(folder)
    dataset = _safe_key(posixpath.basename(root.rstrip("/")))
    readmes = [n for n in names if n.upper().endswith(".README")]
    readme = readmes[0] if readmes else None
    lists = [n for n in names if n.upper().endswith(".LIST")]
    if lists:
        listed = _read_list(lists[0], folder)
        names = listed if listed else names
    texts = [n for n in names if _is_text(n)]
    if not texts and not any(_fits_parts(n) for n in names):
        out.errors.append(SnanaReadError(folder, f"no SNANA files ({SNANA_FILES}) in {folder}"))
        return
    _pair_fits(names, dataset, readme, out)
    if texts:
        _text_units(texts, dataset, readme, out)


def _read_list(list_path: str, folder: str) -> list[str]:
    """Files named by a simulation's `<VERSION>.LIST` (SNANA omits `.gz`), with their PHOT partners."""
    fs, _ = fsspec.core.url_to_fs(folder)
    with fsspec.open(list_path, "rt") as fh:
        entries = [ln.split("#", 1)[0].strip() for ln in fh]
    names = []
    for entry in filter(None, entries):
        wanted = [entry]
        if m := HEAD_RE.match(entry):
            wanted.append(f"{m['stem']}PHOT{m['ext']}")
        for name in wanted:
            path = posixpath.join(folder.rstrip("/"), name)
            if not fs.exists(path) and fs.exists(path + ".gz"):
                path += ".gz"
            names.append(path)
    return names


def _add_paths(paths: list[str], out: Discovery, key: str | None = None) -> None:
    """Folders are scanned, HEAD/PHOT files bring their partner, TEXT files are read.

    `key` is the config key that named the paths, so a missing one is traced to it."""
    loose: list[str] = []
    for p in paths:
        p = _strip_url(expand(p))
        fs, root = fsspec.core.url_to_fs(p)
        if fs.isdir(root):
            _scan_folder(p, out)
        elif not fs.exists(root):
            out.errors.append(SnanaReadError(p, f"{key} {p} does not exist" if key else "path does not exist"))
        else:
            loose.append(p)
    if not loose:
        return
    loose = _with_partners(loose)
    _pair_fits(loose, "files", None, out)
    texts = [n for n in loose if _is_text(n)]
    if texts:
        _text_units(texts, "files", None, out)
    for n in loose:
        if not _is_text(n) and not _fits_parts(n):
            out.errors.append(SnanaReadError(n, f"not an SNANA file (expected {SNANA_FILES})"))


def _unique_keys(out: Discovery) -> None:
    seen: set[str] = set()
    for unit in out.units:
        base, n = unit.key, 1
        while unit.key in seen:
            n += 1
            unit.key = f"{base}_{n}"
        seen.add(unit.key)


def _add_pairs(config: SconeConfig, out: Discovery) -> None:
    """`metadata_paths` + `lcdata_paths`: explicit HEAD/PHOT pairs, each checked to exist."""
    for head, phot in zip(config.metadata_paths or [], config.lcdata_paths or [], strict=True):
        head, phot = _strip_url(head), _strip_url(phot)
        missing = [(k, p) for k, p in (("metadata_paths", head), ("lcdata_paths", phot))
                   if not fsspec.core.url_to_fs(p)[0].exists(fsspec.core.url_to_fs(p)[1])]
        for k, p in missing:
            out.errors.append(SnanaReadError(p, f"{k} entry {p} does not exist"))
        if missing:
            continue
        m = HEAD_RE.match(posixpath.basename(head))
        key = _safe_key(f"files__{m.group('stem').rstrip('_-') if m else posixpath.basename(head)}")
        out.units.append(InputUnit(key, "fits", [head, phot], None, "files"))


def discover(config: SconeConfig) -> Discovery:
    """Every input unit the config names, in a stable order."""
    if not config.has_inputs:
        raise ConfigError(f"the config names no inputs: set {INPUT_KEYS}")
    out = Discovery()
    if config.metadata_paths and config.lcdata_paths:
        _add_pairs(config, out)
    _add_paths(list(config.input_data_paths or []), out, "input_data_paths")
    if config.input_path:
        _add_paths([config.input_path], out, "input_path")
    _unique_keys(out)
    return out


def discover_paths(paths: list[str]) -> Discovery:
    """Units from plain paths (folders, HEAD/PHOT files, TEXT files), as `scone inspect` takes them.

    A HEAD or PHOT file named alone is paired with its partner beside it."""
    out = Discovery()
    _add_paths(paths, out)
    _unique_keys(out)
    return out


def load_readme(path: str | None) -> ReadmeInfo | None:
    if not path:
        return None
    try:
        with fsspec.open(path, "rt", errors="replace") as fh:
            return parse_readme(fh.read())
    except OSError as exc:
        log.warning("cannot read README %s: %s", path, exc)
        return None


def load_labels(path: str | None) -> dict[str, str] | None:
    """`labels_path`: a CSV with SNID and a type column, keyed by SNID as text."""
    if not path:
        return None
    path = expand(path)
    try:
        with fsspec.open(path, "rt") as fh:
            df = pd.read_csv(fh, dtype={"SNID": str})
    except FileNotFoundError:
        raise SnanaReadError(path, "labels file does not exist (labels_path)") from None
    except IsADirectoryError:
        raise SnanaReadError(path, "labels_path is a folder, not a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise SnanaReadError(path, f"labels file cannot be parsed as CSV ({exc})") from None
    if "SNID" not in df.columns:
        raise SnanaReadError(path, f"labels file has no SNID column (columns: {', '.join(df.columns)})")
    type_col = next((c for c in ("TYPE_NAME", "TYPE", "SNTYPE", "SIM_GENTYPE", "type", "label")
                     if c in df.columns), None)
    if type_col is None:
        raise SnanaReadError(path, "labels file has no type column (TYPE_NAME, TYPE, SNTYPE or SIM_GENTYPE)")
    out = {}
    for snid, value in zip(df["SNID"].astype(str).str.strip(), df[type_col], strict=True):
        code = None
        with contextlib.suppress(TypeError, ValueError):
            code = int(value)
        out[snid] = type_name_for(code) if code is not None else class_name(str(value))
    return out


def _col(head: Mapping[str, np.ndarray], n: int, *names: str, default=np.nan) -> np.ndarray:
    for name in names:
        if name in head and head[name] is not None:
            arr = np.asarray(head[name])
            if arr.dtype.kind in "fiu":
                return arr.astype(np.float64)
            return arr
    return np.full(n, default, dtype=np.float64 if isinstance(default, float) else object)


def _missing(values: np.ndarray) -> np.ndarray:
    """SNANA writes -9 (or -99, -999) for an unknown value."""
    v = values.astype(np.float64)
    v[v <= -9] = np.nan
    return v


def head_types(head: Mapping[str, np.ndarray], *, readme: ReadmeInfo | None,
               config: SconeConfig | None, labels: Mapping[str, str] | None
               ) -> tuple[bool, list[int], list[str]]:
    """(is_sim, type codes, type names) of a HEAD table's rows: what a full read gives them,
    from the HEAD alone (the training-set selection counts classes before PHOT is read)."""
    n = len(head["SNID"])
    has_sim_cols = any(k in head for k in ("SIM_GENTYPE", "SIM_TYPE_INDEX")) or bool(
        np.any(_col(head, n, "IS_SIM_HINT", default=False).astype(bool))
    )
    fake = _col(head, n, "FAKE")
    is_sim = bool((readme and readme.is_sim) or has_sim_cols or (n and np.all(fake == 2)))

    sim_code = _col(head, n, "SIM_GENTYPE", "SIM_TYPE_INDEX")
    sntype = _col(head, n, "SNTYPE")
    codes = np.where(np.isfinite(sim_code), sim_code, sntype) if is_sim else sntype
    comment_types = _col(head, n, "SIM_COMMENT_TYPE", default=None)
    models = _col(head, n, "SIM_MODEL_NAME", default=None)
    readme_map = readme.gentype_to_name if readme else None
    config_map = config.sn_type_id_to_name if config else None

    type_codes, type_names = [], []
    for i in range(n):
        code = int(codes[i]) if np.isfinite(codes[i]) else -9
        name = UNKNOWN
        if comment_types[i]:
            name = class_name(comment_types[i])
        elif (readme_map and code in readme_map) or (config_map and code in config_map):
            name = type_name_for(code, readme_map=readme_map, config_map=config_map)
        elif is_sim and models[i] and class_name(str(models[i]).split(".")[0]) == IA:
            name = IA  # SALT2/SALT3 models only make SNe Ia, whatever the type index says
        elif code > 0:
            name = type_name_for(code)
        type_codes.append(code)
        type_names.append(name)
    if labels:
        type_names = [labels.get(str(snid), name) for snid, name in zip(head["SNID"], type_names, strict=True)]
    return is_sim, type_codes, type_names


def assemble(
    source: str,
    head: Mapping[str, np.ndarray],
    obs: pd.DataFrame,
    *,
    survey: str | None,
    band_names: Mapping[str, str],
    readme: ReadmeInfo | None,
    config: SconeConfig | None,
    labels: Mapping[str, str] | None,
    warnings: list[str],
    fallback: Mapping[str, float] | None = None,
    sources: list[str] | None = None,
) -> LightCurves:
    """Shared by FITS and TEXT: type names, peak times, cleaning and skips.

    `sources` names the file of each HEAD row (TEXT units), else every row is `source`."""
    snids = list(head["SNID"])
    n = len(snids)
    is_sim, type_codes, type_names = head_types(head, readme=readme, config=config, labels=labels)

    peak = _missing(_col(head, n, "PEAKMJD"))
    for alt in ("SEARCH_PEAKMJD", "SIM_PEAKMJD"):
        peak = np.where(np.isfinite(peak), peak, _missing(_col(head, n, alt)))
    mwebv = _col(head, n, "MWEBV")
    if "MWEBV" not in head:
        warnings.append(f"{source}: no MWEBV; Milky Way extinction taken as 0")
        mwebv = np.zeros(n)
    meta = pd.DataFrame(
        {
            "SNID": pd.Series(snids, dtype=object),
            "TYPE": np.asarray(type_codes, dtype=np.int64),
            "TYPE_NAME": type_names,
            "PEAKMJD": peak,
            "MWEBV": np.nan_to_num(mwebv.astype(np.float64), nan=0.0),
            "REDSHIFT_FINAL": _missing(_col(head, n, "REDSHIFT_FINAL")),
            "REDSHIFT_FINAL_ERR": _missing(_col(head, n, "REDSHIFT_FINAL_ERR")),
            # host-galaxy redshifts, for objects without REDSHIFT_FINAL (NaN when absent)
            **{c: _missing(_col(head, n, c)) for c in HOST_Z_COLUMNS},
        }
    )
    files = np.asarray(sources if sources is not None else [source] * n, dtype=object)
    obs, first_rows, duplicates = _drop_duplicates(source, meta["SNID"], files, obs, warnings)
    all_obs = obs
    band_to_wave, obs, dropped = _place_bands(
        source, obs, survey=survey, band_names=band_names, readme=readme, config=config,
        fallback=fallback, warnings=warnings)
    n_all = meta["SNID"].map(_obs_counts(all_obs)).fillna(0).astype(np.int64)
    meta["NOBS"] = meta["SNID"].map(_obs_counts(obs)).fillna(0).astype(np.int64)
    meta["SURVEY"] = survey
    meta["SOURCE_FILE"] = files
    skipped: list[tuple[object, str]] = []
    for i, (snid, k_all, k) in enumerate(zip(meta["SNID"], n_all, meta["NOBS"], strict=True)):
        if not first_rows[i]:
            skipped.append((snid, "duplicate SNID in file"))
        elif k_all == 0:
            skipped.append((snid, "no observations"))
        elif k == 0:
            skipped.append((snid, "no placeable band"))
        elif k == 1:
            skipped.append((snid, "single observation"))
    keep = (meta["NOBS"] >= 2).to_numpy() & first_rows
    meta = meta[keep].reset_index(drop=True)
    obs = obs[obs["SNID"].isin(set(meta["SNID"]))].reset_index(drop=True)
    if fallback and band_to_wave:
        lo, hi = min(fallback.values()), max(fallback.values())
        outside = sorted(b for b, w in band_to_wave.items() if not lo - 500 <= w <= hi + 500)
        if outside:
            warnings.append(f"{source}: band(s) {', '.join(outside)} lie outside the wavelengths the model "
                            f"was trained on ({lo:.0f}-{hi:.0f} A)")
    return LightCurves(
        meta=meta, obs=obs, source=source, survey=survey, is_sim=is_sim,
        band_names=dict(band_names), band_to_wave=band_to_wave,
        skipped=skipped, warnings=warnings, dropped_bands=dropped, duplicates=duplicates,
    )


def _obs_counts(obs: pd.DataFrame) -> pd.Series:
    return obs.groupby("SNID", sort=False).size() if len(obs) else pd.Series(dtype=np.int64)


def _drop_duplicates(source: str, snids: pd.Series, files: np.ndarray, obs: pd.DataFrame,
                     warnings: list[str]) -> tuple[pd.DataFrame, np.ndarray, dict[object, list[str]]]:
    """Keep the first object of a repeated SNID and only its observations.

    Readers tag each observation with its HEAD row (`_ROW`), so the second
    object's points are not merged into the first one's light curve."""
    dup = snids.duplicated(keep="first").to_numpy()
    duplicates: dict[object, list[str]] = {}
    if dup.any():
        repeated = snids.duplicated(keep=False).to_numpy()
        for snid, path in zip(snids[repeated], files[repeated], strict=True):
            duplicates.setdefault(snid, []).append(str(path))
        shown = ", ".join(str(s) for s in list(duplicates)[:5]) + (", ..." if len(duplicates) > 5 else "")
        warnings.append(f"{source}: {int(dup.sum())} duplicate SNID(s) (SNID {shown}); "
                        "only the first of each is kept")
    if "_ROW" in obs.columns:
        if dup.any():
            obs = obs[~dup[obs["_ROW"].to_numpy()]]
        obs = obs.drop(columns="_ROW").reset_index(drop=True)
    return obs, ~dup, duplicates


def _place_bands(source: str, obs: pd.DataFrame, *, survey: str | None,
                 band_names: Mapping[str, str], readme: ReadmeInfo | None,
                 config: SconeConfig | None, fallback: Mapping[str, float] | None,
                 warnings: list[str]) -> tuple[dict[str, float], pd.DataFrame, dict[str, int]]:
    """Place the unit's bands; drop and count the observations in bands that cannot be placed,
    so one odd filter costs only its own points, not the file."""
    bands = obs["BAND"].unique().tolist() if len(obs) else []
    placed, missing = place_bands(
        bands,
        readme_filters=readme.filters if readme else None,
        config_map=config.band_to_wave if config else None,
        survey=survey, full_names=band_names, fallback=fallback,
    )
    if not missing:
        return placed, obs, {}
    bad = obs["BAND"].isin(missing).to_numpy()
    counts = obs.loc[bad, "BAND"].value_counts()
    dropped = {str(b): int(counts.get(b, 0)) for b in missing}

    def label(b: str) -> str:
        full = band_names.get(b, b)
        return b if full == b else f"{b} ({full})"

    shown = ", ".join(f"{label(b)}: {n}" for b, n in dropped.items())
    none_left = " (no band could be placed)" if not placed else ""
    warnings.append(
        f"{source}: dropped {int(bad.sum())} observation(s) in band(s) that cannot be placed in "
        f"wavelength (survey {survey!r}){none_left}: {shown}; add them to the config's band_to_wave"
    )
    return placed, obs[~bad].reset_index(drop=True), dropped


def _guess_survey(path: str, explicit: str | None, readme: ReadmeInfo | None, found: str | None) -> str | None:
    if explicit:
        return explicit
    if found:
        return found
    if readme and readme.survey:
        return readme.survey
    token = re.split(r"[_\-.]", posixpath.basename(path))[0].upper()
    return token if survey_table(token) else None


def read_unit(unit: InputUnit, config: SconeConfig | None = None,
              labels: Mapping[str, str] | None = None,
              fallback_band_to_wave: Mapping[str, float] | None = None) -> LightCurves:
    """Read one unit. A FITS unit that cannot be read raises `SnanaReadError`;
    bad TEXT files inside a unit are skipped and listed in `file_errors`."""
    readme = load_readme(unit.readme)
    explicit_survey = config.survey if config else None
    if unit.kind == "fits":
        head_path, phot_path = unit.files
        head, obs, info = read_fits_pair(head_path, phot_path)
        survey = _guess_survey(head_path, explicit_survey, readme, info["survey"])
        lcs = assemble(phot_path, head, obs, survey=survey, band_names=info["band_names"],
                       readme=readme, config=config, labels=labels, warnings=info["warnings"],
                       fallback=fallback_band_to_wave, sources=[head_path] * len(head["SNID"]))
        lcs.source = head_path
        return lcs

    rows: list[dict] = []
    obs_parts: list[pd.DataFrame] = []
    file_errors: list[SnanaReadError] = []
    found_survey = None
    band_names: dict[str, str] = {}
    sources: list[str] = []
    for path in unit.files:
        try:
            fields, cols = read_text_file(path)
        except SnanaReadError as exc:
            file_errors.append(exc)
            continue
        found_survey = found_survey or fields.pop("SURVEY")
        fields.pop("SURVEY", None)
        rows.append(fields)
        sources.append(path)
        for full in set(cols["BAND"]):
            band_names[band_letter(full)] = full
        n_obs = len(cols["MJD"])
        obs_parts.append(pd.DataFrame({
            "SNID": [fields["SNID"]] * n_obs, "_ROW": len(rows) - 1, "MJD": cols["MJD"],
            "BAND": [band_letter(b) for b in cols["BAND"]],
            "FLUXCAL": cols["FLUXCAL"], "FLUXCALERR": cols["FLUXCALERR"],
        }))
    head = {k: np.array([r[k] for r in rows], dtype=object) for k in (rows[0] if rows else {"SNID": []})}
    for k in list(head):
        if k not in ("SNID", "SIM_COMMENT_TYPE", "SIM_MODEL_NAME", "IS_SIM_HINT"):
            head[k] = head[k].astype(np.float64)
    if "SIM_GENTYPE" in head and not np.isfinite(head["SIM_GENTYPE"]).any():
        del head["SIM_GENTYPE"]
    obs = pd.concat(obs_parts, ignore_index=True) if obs_parts else pd.DataFrame(
        columns=["SNID", "MJD", "BAND", "FLUXCAL", "FLUXCALERR"])
    survey = _guess_survey(unit.files[0], explicit_survey, readme, found_survey)
    lcs = assemble(unit.key, head, obs, survey=survey, band_names=band_names, readme=readme,
                   config=config, labels=labels, warnings=[], fallback=fallback_band_to_wave,
                   sources=sources)
    lcs.file_errors = file_errors
    for exc in file_errors:
        lcs.warnings.append(str(exc))
    return lcs


def iter_inputs(config: SconeConfig, units: list[InputUnit] | None = None,
                fallback_band_to_wave: Mapping[str, float] | None = None
                ) -> Iterator[tuple[InputUnit, LightCurves | SnanaReadError]]:
    """Stream every unit: a result, or the error that names the bad file; never stops early."""
    found = discover(config) if units is None else Discovery(units=units)
    labels = load_labels(config.labels_path)
    for err in found.errors:
        yield InputUnit(_safe_key(err.path), "error", [err.path]), err
    for unit in found.units:
        try:
            yield unit, read_unit(unit, config, labels, fallback_band_to_wave)
        except SnanaReadError as exc:
            yield unit, exc
