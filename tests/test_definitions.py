import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]


def test_code_location_loads():
    from scone_assets.definitions import defs

    assert isinstance(defs, dg.Definitions)
    assert len(list(defs.resolve_all_asset_specs())) == 10  # 6 + the survey_like group's 4


def test_dg_check_defs(tmp_path):
    dg_bin = Path(sys.executable).parent / "dg"
    assert dg_bin.exists(), "dagster-dg-cli is a declared dependency"
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(tmp_path)}
    res = subprocess.run([str(dg_bin), "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "All definitions loaded successfully" in res.stdout + res.stderr
