"""What a simulation README tells the reader: type names and band wavelengths.

Modern SNANA writes a YAML-like `DOCUMENTATION:` block (`GENTYPE_TO_NAME`,
`FILTERS`); the SNPCC-era README lists `Tags for GENTYPE & SNTYPE`. Both are
parsed line by line, because the blocks are not valid YAML (comments,
free-form rows, `DOCUMENTATION_END:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class ReadmeInfo:
    gentype_to_name: dict[int, str] = field(default_factory=dict)
    ia_flags: dict[int, bool] = field(default_factory=dict)
    filters: dict[str, float] = field(default_factory=dict)
    survey: str | None = None
    is_sim: bool | None = None


_HEADER = re.compile(r"^([A-Z][A-Z0-9_]*):\s*(.*)$")
_FILTER_ROW = re.compile(r"^-?\s*([A-Za-z0-9])\s*:?\s+([0-9.]+)")


def parse_readme(text: str) -> ReadmeInfo:
    info = ReadmeInfo()
    section: str | None = None
    for raw in text.splitlines():
        if "Tags for GENTYPE" in raw:
            section, info.is_sim = "TAGS", True
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if section == "FILTERS" and (m := _FILTER_ROW.match(line)):
            info.filters[m.group(1)] = float(m.group(2))
            continue
        if m := _HEADER.match(line):
            section, rest = m.groups()
            if section == "SURVEY" and rest:
                info.survey = rest.split()[0]
            if section in ("GENVERSION", "GENTYPE_TO_NAME"):
                info.is_sim = True
            continue
        row = re.match(r"^(\d+)\s*:\s*(\S+)\s*(\S+)?", line)
        if row and section == "GENTYPE_TO_NAME":
            code, iatag, name = int(row.group(1)), row.group(2), row.group(3)
            info.ia_flags[code] = iatag.lower() == "ia"
            info.gentype_to_name[code] = "SNIa" if iatag.lower() == "ia" else (name or iatag)
        elif row and section == "TAGS":
            info.gentype_to_name[int(row.group(1))] = row.group(2)
    return info
