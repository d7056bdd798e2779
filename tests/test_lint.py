import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    res = subprocess.run([ruff, "check", "scone_assets", "tests", "benchmarks"], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_library_does_not_import_dagster():
    """The library stays independent of Dagster; only definitions.py and defs/ may use it."""
    offenders = []
    for path in (REPO / "scone_assets").rglob("*.py"):
        rel = path.relative_to(REPO / "scone_assets")
        if rel.parts[0] in ("defs", "launchers") or rel.name == "definitions.py":
            continue
        text = path.read_text()
        if "import dagster" in text or "from dagster" in text:
            offenders.append(str(rel))
    assert offenders == []
