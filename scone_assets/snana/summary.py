"""What is in a set of SNANA inputs: per unit and in total, for `scone inspect`.

Besides counts it reports what would make a training set silently wrong: bad
files, and SNIDs that appear in more than one input (or twice in one), since a
repeated SNID mixes two objects' labels and heatmaps under one name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from scone_assets.config import SconeConfig
from scone_assets.outcome import Exit
from scone_assets.snana.lightcurves import LightCurves, SnanaReadError
from scone_assets.snana.read import Discovery, load_labels, read_unit

MAX_SHOWN = 10


def _file_entry(key: str, lcs: LightCurves) -> dict[str, Any]:
    return {
        "unit": key,
        "source": lcs.source,
        "light_curves": len(lcs),
        "types": lcs.counts_by_type(),
        "bands": lcs.bands,
        "survey": lcs.survey,
        "data": "simulated" if lcs.is_sim else "real",
        "skipped": lcs.skipped_by_reason(),
        "dropped_bands": dict(lcs.dropped_bands),
        "warnings": lcs.warnings,
    }


def _record_snids(lcs: LightCurves, seen: dict[str, list[str]]) -> None:
    """Every file each SNID was found in; SNIDs compared as text, so 1000 and "1000" collide."""
    for snid, paths in lcs.duplicates.items():
        seen.setdefault(str(snid), []).extend(paths)
    repeated = {str(s) for s in lcs.duplicates}
    for snid, path in zip(lcs.meta["SNID"], lcs.meta["SOURCE_FILE"], strict=True):
        if str(snid) not in repeated:
            seen.setdefault(str(snid), []).append(str(path))


def summarize(found: Discovery, config: SconeConfig | None = None) -> dict[str, Any]:
    labels = load_labels(config.labels_path) if config else None
    files: list[dict[str, Any]] = []
    errors = [{"file": e.path, "error": e.problem} for e in found.errors]
    seen: dict[str, list[str]] = {}
    for unit in found.units:
        try:
            lcs = read_unit(unit, config, labels)
        except SnanaReadError as exc:
            errors.append({"file": exc.path, "error": exc.problem})
            continue
        errors += [{"file": e.path, "error": e.problem} for e in lcs.file_errors]
        files.append(_file_entry(unit.key, lcs))
        _record_snids(lcs, seen)
    duplicates = [{"snid": snid, "files": paths} for snid, paths in seen.items() if len(paths) > 1]
    total_types: Counter[str] = Counter()
    total_skipped: Counter[str] = Counter()
    total_dropped: Counter[str] = Counter()
    for f in files:
        total_types.update(f["types"])
        total_skipped.update(f["skipped"])
        total_dropped.update(f["dropped_bands"])
    return {
        "files": files,
        "total": {
            "light_curves": sum(f["light_curves"] for f in files),
            "types": dict(sorted(total_types.items())),
            "bands": sorted({b for f in files for b in f["bands"]}),
            "skipped": dict(total_skipped),
            "dropped_bands": dict(sorted(total_dropped.items())),
            "bad_files": len(errors),
            "duplicates": len(duplicates),
        },
        "errors": errors,
        "duplicates": duplicates,
    }


def exit_code(summary: dict[str, Any]) -> Exit:
    """OK: all read cleanly; PARTIAL: some files bad or SNIDs repeated; USAGE: nothing read."""
    if summary["total"]["light_curves"] == 0:
        return Exit.USAGE
    if summary["errors"] or summary["duplicates"]:
        return Exit.PARTIAL
    return Exit.OK


def _duplicate_lines(duplicates: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d in duplicates[:MAX_SHOWN]:
        files = d["files"]
        where = f"{', '.join(files[:-1])} and {files[-1]}"
        lines.append(f"  ERROR duplicate SNID {d['snid']} in {where}")
    if len(duplicates) > MAX_SHOWN:
        lines.append(f"  ... and {len(duplicates) - MAX_SHOWN} more duplicate SNID(s)")
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    def types_str(t: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in t.items()) or "-"

    def bands_str(bands: list[str]) -> str:
        return "".join(bands) if all(len(b) == 1 for b in bands) else " ".join(bands)

    lines = []
    for f in summary["files"]:
        lines.append(f"{f['source']}")
        lines.append(f"  light curves: {f['light_curves']}  ({f['data']}, survey {f['survey'] or '?'})")
        lines.append(f"  types: {types_str(f['types'])}")
        lines.append(f"  bands: {bands_str(f['bands'])}")
        if f["skipped"]:
            lines.append(f"  skipped: {types_str(f['skipped'])}")
        for w in f["warnings"]:
            lines.append(f"  warning: {w}")
    t = summary["total"]
    lines.append("TOTAL")
    lines.append(f"  light curves: {t['light_curves']} in {len(summary['files'])} file(s)")
    lines.append(f"  types: {types_str(t['types'])}")
    lines.append(f"  bands: {' '.join(t['bands'])}")
    lines.append(f"  skipped: {types_str(t['skipped'])}")
    if t["dropped_bands"]:
        lines.append(f"  observations dropped (band cannot be placed): {types_str(t['dropped_bands'])}")
    if t["duplicates"]:
        lines.append(f"  duplicate SNIDs: {t['duplicates']}")
    for e in summary["errors"]:
        lines.append(f"  ERROR {e['file']}: {e['error']}")
    lines += _duplicate_lines(summary["duplicates"])
    return "\n".join(lines)
