"""The `scone` commands as a user runs them: exit codes, one-line messages, nothing
replaced or double-counted unasked. Real simulations, real training (1 epoch)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

CLI = [sys.executable, "-m", "scone_assets.cli"]


def scone(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900)


def config(path: Path, **keys) -> str:
    path.write_text("".join(f"{k}: {json.dumps(v) if isinstance(v, list) else v}\n" for k, v in keys.items()))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A simulation, a copy of one of its files under another name (duplicated SNIDs), and
    a model trained with `scone run` on the simulation alone."""
    from scone_assets.simulate.run import simulate

    root = tmp_path_factory.mktemp("outcomes")
    sim = simulate(root / "SIM", 80, survey="des", seed=11, per_file=40, mix="SNIa=0.5,SNII=0.5", jobs=1,
                   progress=False)
    dup = root / "DUP"
    dup.mkdir()
    for kind in ("HEAD", "PHOT"):
        shutil.copy(sim.folder / f"SIM-0001_{kind}.FITS", dup / f"DES_COPY-0001_{kind}.FITS")
    cfg = config(root / "train.yml", input_path=sim.folder, heatmaps_path=root / "heat", output_path=root / "out",
                 num_mjd_bins=30, num_epochs=1, seed=3)
    res = scone("run", "--config_path", cfg, "--jobs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    return root, sim.folder, dup, cfg


def test_a_yaml_list_is_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "list.yml"
    bad.write_text("- input_path: x\n- heatmaps_path: y\n")
    res = scone("heatmaps", "--config_path", str(bad))
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: config file {bad} must be a YAML mapping of keys to values " \
                                 "(its top level is a list)"


def test_training_into_an_existing_model_needs_force(trained):
    root, _, _, cfg = trained
    model = root / "out" / "trained_model"
    before = (model / "model.keras").read_bytes()
    res = scone("train", "--config_path", cfg)
    assert res.returncode == 2 and "use --force to replace it" in res.stderr and str(model) in res.stderr
    assert (model / "model.keras").read_bytes() == before
    res = scone("train", "--config_path", cfg, "--force")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in model.parent.iterdir() if p.name.startswith(".trained_model.")) == [
        ".trained_model.lock"]


def test_duplicate_snids_refused_then_resolved_and_counted_once(trained):
    root, sim, dup, _ = trained
    keys = dict(input_data_paths=[str(sim), str(dup)], heatmaps_path=root / "heat_dup", num_mjd_bins=30,
                num_epochs=1, seed=3)
    cfg = config(root / "dup.yml", **keys, output_path=root / "out_dup")
    heat = scone("heatmaps", "--config_path", cfg, "--jobs", "1")
    assert heat.returncode == 1 and "DUPLICATES   [full] 40 SNID(s) in more than one file" in heat.stdout
    res = scone("train", "--config_path", cfg)
    assert res.returncode == 2, res.stderr
    assert "40 SNID(s) appear more than once" in res.stderr and "DES_COPY-0001_HEAD.FITS" in res.stderr
    assert "SIM-0001_HEAD.FITS" in res.stderr and not (root / "out_dup" / "trained_model").exists()
    cfg = config(root / "dup_first.yml", **keys, output_path=root / "out_first", duplicate_snids="first")
    res = scone("train", "--config_path", cfg)
    assert res.returncode == 0, res.stderr
    model = root / "out_first" / "trained_model"
    meta = json.loads((model / "model_meta.json").read_text())
    split = pd.read_csv(model / "split.csv", dtype={"SNID": str})
    metrics = json.loads((model / "metrics.json").read_text())
    assert len(split) == split.SNID.nunique() == 80
    assert metrics["test"]["n"] == meta["n_test"] == int((split.set == "test").sum())
    # calibrated on the validation objects: the temperature is kept with the model and reported
    assert metrics["calibration"]["temperature"] == meta["temperature"] > 0
    assert 0 <= metrics["calibration"]["ece_test"] <= 1

    predict = config(root / "pdup.yml", input_data_paths=[str(sim), str(dup)], heatmaps_path=root / "heat_dup",
                     num_mjd_bins=30, mode="predict", trained_model=model, output_path=root / "pred",
                     duplicate_snids="first")
    res = scone("predict", "--config_path", predict)
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(root / "pred" / "predictions.csv", dtype={"SNID": str})
    assert len(table) == table.SNID.nunique() == 80


def test_predict_mode_warnings_reach_the_console(trained, lsst_sim):
    root, _, _, _ = trained
    cfg = config(root / "lsst.yml", input_path=lsst_sim, heatmaps_path=root / "heat_lsst", num_mjd_bins=30,
                 mode="predict", trained_model=root / "out" / "trained_model", output_path=root / "pred_lsst")
    res = scone("heatmaps", "--config_path", cfg, "--jobs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    warning = next(ln for ln in res.stderr.splitlines() if "outside the wavelengths the model" in ln)
    assert warning.startswith("WARNING") and "band(s) Y, u lie outside" in warning and "(4828-9181 A)" in warning


def test_a_with_z_model_refuses_data_without_redshift(trained, tmp_path):
    from astropy.io import fits

    root, sim, _, _ = trained
    noz = tmp_path / "NOZ"
    noz.mkdir()
    for kind in ("HEAD", "PHOT"):
        shutil.copy(sim / f"SIM-0002_{kind}.FITS", noz / f"SIM-0002_{kind}.FITS")
    with fits.open(noz / "SIM-0002_HEAD.FITS", mode="update") as hdul:
        hdul[1].data["REDSHIFT_FINAL"][:7] = -9.0
    train = config(tmp_path / "z.yml", input_path=sim, heatmaps_path=root / "heat", output_path=tmp_path / "zout",
                   num_mjd_bins=30, num_epochs=1, seed=3, with_z="true")
    assert scone("train", "--config_path", train).returncode == 0
    predict = config(tmp_path / "p.yml", input_path=noz, heatmaps_path=tmp_path / "heat_noz", num_mjd_bins=30,
                     mode="predict", trained_model=tmp_path / "zout" / "trained_model", output_path=tmp_path / "p")
    res = scone("run", "--config_path", predict, "--jobs", "1")
    assert res.returncode == 2 and "7 of 40 light curves have no redshift" in res.stderr, res.stderr
    assert not (tmp_path / "p" / "predictions.csv").exists()
