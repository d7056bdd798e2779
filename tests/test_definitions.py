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
    # 3 per partition set, balanced_catalog, trained_model, promoted_model, predictions, and
    # the survey_like group's 5
    assert len(list(defs.resolve_all_asset_specs())) == 15


def test_dg_check_defs(tmp_path):
    dg_bin = Path(sys.executable).parent / "dg"
    assert dg_bin.exists(), "dagster-dg-cli is a declared dependency"
    shutil.copy(REPO / "scone_assets" / "defs" / "dagster_demo.yaml", tmp_path / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(tmp_path)}
    res = subprocess.run([str(dg_bin), "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "All definitions loaded successfully" in res.stdout + res.stderr


def test_heatmap_yield_counts_losses_not_the_asked_for_selection():
    from scone_assets.defs.checks import heatmap_yield

    prescaled = heatmap_yield(10, {"prescale": 90, "non-positive-definite matrix": 1})
    assert prescaled.passed and prescaled.metadata["skipped_fraction"].value == round(1 / 11, 4)
    assert prescaled.metadata["left_out_by_selection"].value == 90
    assert heatmap_yield(0, {"not in snid_select_files": 12}).passed  # a unit the list leaves empty
    assert not heatmap_yield(7, {"non-positive-definite matrix": 3}).passed  # 30% lost
    assert not heatmap_yield(0, {}).passed
