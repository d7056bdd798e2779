"""`make demo`'s command on a small embedded default: every asset of the code location is
materialized over every partition of its set (nothing left missing for `make ui` to show),
through the named jobs only, with a promoted model version that made the predictions."""

import os

import dagster as dg
import pandas as pd

from scone_assets.simulate.host_dust import TAUS
from scone_assets.snana.read import discover_paths, read_unit

NAMED_JOBS = {"training_heatmaps_job", "survey_heatmaps_job", "train_job", "predict_job", "like_job",
              "like_predict_job", "like_dust_job"}


def _true_ia_fraction(folder) -> float:
    """The demo survey's true SN Ia share, from its simulated types (never shown to the like flow)."""
    meta = pd.concat([read_unit(u).meta for u in discover_paths([str(folder)]).units])
    return round(float((meta.TYPE_NAME.str.strip() == "SNIa").mean()), 3)


def test_demo_leaves_every_asset_materialized_through_named_jobs(demo):
    out, ui_env, res = demo
    assert f"model version v0001 in {out / 'platform' / 'models' / 'versions' / 'v0001'}" in res.stdout
    assert "promoted: v0001" in res.stdout
    assert "E0000" not in res.stderr and "telemetry" not in (res.stdout + res.stderr).lower()
    assert ui_env["DAGSTER_HOME"] == str(out / "dagster_home") and ui_env["SCONE_LIKE_N"] == "300"

    os.environ["DAGSTER_HOME"] = ui_env["DAGSTER_HOME"]
    try:
        from scone_assets.definitions import build_defs

        defs = build_defs(ui_env["SCONE_TRAIN_CONFIG"], ui_env["SCONE_PREDICT_CONFIG"],
                          ui_env["SCONE_OUTPUT_ROOT"])
        with dg.DagsterInstance.get() as instance:
            sets = {name: set(instance.get_dynamic_partitions(name)) for name in ("training_sims", "survey_data")}
            assert sets == {"training_sims": {"DEMO_DES-0001"},
                            "survey_data": {"DEMO_SURVEY-0001"}}
            for spec in defs.resolve_all_asset_specs():
                if spec.partitions_def is None:
                    assert instance.get_latest_materialization_event(spec.key), spec.key
                else:
                    done = instance.get_materialized_partitions(spec.key)
                    assert done == sets[spec.partitions_def.name], spec.key
            runs = instance.get_runs()
            assert {r.job_name for r in runs} == NAMED_JOBS  # never Dagster's unnamed asset job
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            checks = [e.dagster_event.event_specific_data for r in runs
                      for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
            assert {(c.asset_key.to_user_string(), c.check_name) for c in checks} == {
                ("training_heatmaps", "heatmap_yield"), ("survey_heatmaps", "heatmap_yield"),
                ("balanced_catalog", "class_balance"), ("trained_model", "accuracy_floor"),
                ("like_host_dust", "dust_in_use_matches_the_fit")}
            assert all(c.passed for c in checks if c.check_name != "dust_in_use_matches_the_fit")
            # the like model (300 light curves, 20 epochs, the survey settings) estimates the survey's
            # SN Ia fraction without its types (class_prior: data); the simulated survey holds 30 of 100
            truth = _true_ia_fraction(out / "data" / "DEMO_SURVEY")
            assert truth == 0.30
            pred = instance.fetch_materializations(dg.AssetKey("like_predictions"), limit=1).records[0]
            pred = {k: v.value for k, v in pred.event_log_entry.asset_materialization.metadata.items()}
            assert pred["class_prior"] == "data" and abs(pred["estimated_ia_fraction"] - truth) < 0.08
            like = instance.get_latest_materialization_event(dg.AssetKey("like_model")).asset_materialization
            assert like.metadata["augment_copies"].value == 2
            # the dust fit is made with that fraction, from the survey's 84 colours near peak
            dust = instance.get_latest_materialization_event(dg.AssetKey("like_host_dust")).asset_materialization
            dust = {k: v.value for k, v in dust.metadata.items()}
            assert dust["ia_fraction"] == pred["estimated_ia_fraction"] and dust["data_colours"] == 84
            assert dust["ia_fraction_from"] == "class_prior: data estimates of 1 partition(s), weighed by light curves"
            check = next(c for c in checks if c.check_name == "dust_in_use_matches_the_fit")
            assert check.severity == dg.AssetCheckSeverity.WARN and dust["fitted_tau"] in TAUS
            # 84 colours can tell little: a warning only when the fit rules the scale in use out
            assert dust["advice"].startswith(("the scale in use fits", "the data cannot tell") if check.passed
                                             else "set the scone resource's like_ia_dust_tau")
    finally:
        os.environ.pop("DAGSTER_HOME", None)
    table = pd.read_csv(out / "platform" / "predict" / "predictions.csv")
    assert len(table) == 100 and set(table.MODEL_VERSION) == {"v0001"}
