"""What is in a set of SNANA inputs: per unit and in total, for `scone inspect`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scone_assets.config import SconeConfig
from scone_assets.snana.model import SnanaReadError
from scone_assets.snana.read import Discovery, load_labels, read_unit


def summarize(found: Discovery, config: SconeConfig | None = None) -> dict[str, Any]:
    labels = load_labels(config.labels_path) if config else None
    files: list[dict[str, Any]] = []
    errors = [{"file": e.path, "error": e.problem} for e in found.errors]
    total_types: Counter[str] = Counter()
    total_skipped: Counter[str] = Counter()
    bands: set[str] = set()
    n_total = 0
    for unit in found.units:
        try:
            lcs = read_unit(unit, config, labels)
        except SnanaReadError as exc:
            errors.append({"file": exc.path, "error": exc.problem})
            continue
        errors += [{"file": e.path, "error": e.problem} for e in lcs.file_errors]
        types = lcs.counts_by_type()
        skipped = lcs.skipped_by_reason()
        files.append({
            "unit": unit.key,
            "source": lcs.source,
            "light_curves": len(lcs),
            "types": types,
            "bands": lcs.bands,
            "survey": lcs.survey,
            "data": "simulated" if lcs.is_sim else "real",
            "skipped": skipped,
            "warnings": lcs.warnings,
        })
        n_total += len(lcs)
        total_types.update(types)
        total_skipped.update(skipped)
        bands.update(lcs.bands)
    return {
        "files": files,
        "total": {
            "light_curves": n_total,
            "types": dict(sorted(total_types.items())),
            "bands": sorted(bands),
            "skipped": dict(total_skipped),
            "bad_files": len(errors),
        },
        "errors": errors,
    }


def format_summary(summary: dict[str, Any]) -> str:
    def types_str(t: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in t.items()) or "-"

    lines = []
    for f in summary["files"]:
        lines.append(f"{f['source']}")
        lines.append(f"  light curves: {f['light_curves']}  ({f['data']}, survey {f['survey'] or '?'})")
        lines.append(f"  types: {types_str(f['types'])}")
        lines.append(f"  bands: {''.join(f['bands']) if all(len(b) == 1 for b in f['bands']) else ' '.join(f['bands'])}")
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
    for e in summary["errors"]:
        lines.append(f"  ERROR {e['file']}: {e['error']}")
    return "\n".join(lines)
