"""The model folder: written whole or not at all, never replaced unasked, one writer at a
time; with_z models refuse data without redshift; one object, one prediction row."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from conftest import shared

from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.heatmaps.store import load_catalogs
from scone_assets.locking import FolderBusy
from scone_assets.model import folder as mf
from scone_assets.model.checks import assert_unique_snids
from scone_assets.model.folder import ModelExistsError, ModelMeta, load_trained, read_meta, writing
from scone_assets.model.predict import predict
from scone_assets.model.train import train
from scone_assets.simulate.run import simulate

GRID = {"num_wavelength_bins": 16, "num_mjd_bins": 40}
YSE_BANDS = {"g": 4866.0, "r": 6215.0, "i": 7545.0, "z": 8679.0, "X": 4746.0, "Y": 6366.0}  # PS1 griz, ZTF g r


def _catalog(cfg: SconeConfig):
    make_heatmaps(cfg, jobs=1, progress=False)
    return load_catalogs(cfg.heatmaps_path, ["full"])["full"]


def _cfg(root: Path, name: str, **kw) -> SconeConfig:
    return SconeConfig(**({"heatmaps_path": str(root / f"h_{name}"), "num_epochs": 2, "seed": 4} | GRID | kw))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if mf.PARTIAL in p.name or mf.RETIRED in p.name)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """80 simulated objects (two files of 40); a copy of the first file alone (40 duplicated
    SNIDs); a copy of the whole simulation whose first 10 objects have REDSHIFT_FINAL -9."""
    root = tmp_path_factory.mktemp("folder")
    sim = simulate(root / "SIM", 80, survey="des", seed=7, per_file=40, mix="SNIa=0.5,SNII=0.5", jobs=1,
                   progress=False)
    heads = sorted(p for p in sim.folder.iterdir() if "_HEAD" in p.name)
    assert len(heads) == 2
    dup = root / "DUP"
    dup.mkdir()
    for p in sim.folder.iterdir():
        if p.name.startswith(heads[0].name.split("_HEAD")[0]):
            shutil.copy(p, dup / p.name)
    noz = root / "NOZ"
    shutil.copytree(sim.folder, noz)
    with fits.open(noz / heads[0].name, mode="update") as hdul:
        hdul[1].data["REDSHIFT_FINAL"][:10] = -9.0
        lacking = [str(s).strip() for s in hdul[1].data["SNID"][:10]]
    cats = {
        "sim": _catalog(_cfg(root, "sim", input_path=str(sim.folder))),
        "noz": _catalog(_cfg(root, "noz", input_path=str(noz))),
        "dup": _catalog(_cfg(root, "dup", input_data_paths=[str(sim.folder), str(dup)])),
    }
    assert len(cats["sim"]) == 80 and len(cats["dup"]) == 120
    return root, cats, lacking


# ------------------------------------------------------------------ the folder, without training

def test_meta_round_trips_and_refuses_what_predicting_cannot_use(tmp_path):
    meta = ModelMeta(["nonIa", "SNIa"], False, True, (16, 40), {"g": 4828.0}, ["full"], "memory", ["x"], 8, 1, 1, 2.5)
    again = ModelMeta.from_json(meta.to_json())
    assert again == meta and again.shape == (16, 40)
    with pytest.raises(ConfigError, match="lacks with_z, shape"):
        ModelMeta.from_json('{"classes": ["a"], "categorical": true}', "m.json")
    with pytest.raises(ConfigError, match="shape must be"):
        ModelMeta.from_json('{"classes": [], "categorical": false, "with_z": false, "shape": [16]}')
    with pytest.raises(ConfigError, match="has no model.keras"):
        read_meta(tmp_path)
    (tmp_path / mf.MODEL_FILE).write_bytes(b"x")
    with pytest.raises(ConfigError, match="has no model_meta.json"):
        load_trained(tmp_path)


def test_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out" / "trained_model"
    with pytest.raises(RuntimeError, match="boom"), writing(target) as part:
        assert part.parent == target.parent and part.name.startswith(".trained_model.partial-")
        (part / mf.MODEL_FILE).write_bytes(b"half")
        raise RuntimeError("boom")
    assert not target.exists() and _leftovers(target.parent) == []

    with writing(target) as part:
        (part / mf.MODEL_FILE).write_bytes(b"first")
    assert (target / mf.MODEL_FILE).read_bytes() == b"first"
    with pytest.raises(ModelExistsError, match=f"model folder {target} already holds a model; use --force"), \
            writing(target):
        pass
    with writing(target, force=True) as part:
        (part / mf.MODEL_FILE).write_bytes(b"second")
    assert (target / mf.MODEL_FILE).read_bytes() == b"second" and _leftovers(target.parent) == []


def test_a_failed_swap_restores_the_old_model(tmp_path, monkeypatch):
    target = tmp_path / "m"
    with writing(target) as part:
        (part / mf.MODEL_FILE).write_bytes(b"old")
    real = os.replace

    def failing(src, dst):
        if mf.PARTIAL in str(src):
            raise OSError(errno.EXDEV, "rename failed")
        return real(src, dst)

    monkeypatch.setattr(mf.os, "replace", failing)
    with pytest.raises(OSError, match="rename failed"), writing(target, force=True) as part:
        (part / mf.MODEL_FILE).write_bytes(b"new")
    assert (target / mf.MODEL_FILE).read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_second_training_into_one_folder_stops_with_folder_busy(data, tmp_path):
    root, cats, _ = data
    target = tmp_path / "m"
    busy = f"model folder {target}: its lock .* is in use by pid {os.getpid()}"
    with writing(target) as part:
        with pytest.raises(FolderBusy, match=busy):
            train(_cfg(root, "sim"), {"full": cats["sim"]}, target, progress=False)
        assert not target.exists() and list(part.iterdir()) == []  # the refused run wrote nothing
        assert [p.name for p in tmp_path.iterdir() if mf.PARTIAL in p.name] == [part.name]


@pytest.mark.parametrize("first, second", [("predict", "train"), ("train", "predict")])
def test_train_and_predict_do_not_import_each_other(first, second):
    code = (f"import sys, scone_assets.model.{first}; "
            f"sys.exit(int('scone_assets.model.{second}' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0


def test_unique_snid_guard():
    assert_unique_snids(["1", "2", "3"], "t")
    with pytest.raises(AssertionError, match=r"t would list 2 SNID\(s\) more than once \(1, 3\)"):
        assert_unique_snids(["1", "2", "1", "3", "3"], "t")


# ------------------------------------------------------------------ training into the folder

def test_existing_model_is_kept_unless_forced(data, tmp_path):
    root, cats, _ = data
    target = tmp_path / "m"
    train(_cfg(root, "sim"), {"full": cats["sim"]}, target, progress=False)
    before = _digest(target)
    assert {mf.MODEL_FILE, mf.META_FILE, mf.CONFIG_FILE, mf.HISTORY_FILE, mf.SPLIT_FILE, mf.METRICS_FILE,
            *mf.PICTURES} <= set(before)
    assert read_meta(target).n_test == 8
    with pytest.raises(ModelExistsError, match="use --force to replace it"):
        train(_cfg(root, "sim", num_epochs=500), {"full": cats["sim"]}, target, progress=False)  # refused at once
    assert _digest(target) == before
    train(_cfg(root, "sim", seed=5), {"full": cats["sim"]}, target, progress=False, force=True)
    after = _digest(target)
    assert after[mf.CONFIG_FILE] != before[mf.CONFIG_FILE] and "seed: 5" in (target / mf.CONFIG_FILE).read_text()
    assert _leftovers(tmp_path) == []


def test_full_disk_leaves_no_model_and_no_partial_folder(data, tmp_path):
    """A real full disk: the model folder's parent is a 64 KB tmpfs, smaller than model.keras."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the monkeypatched variant below still runs)")
    root, cats, _ = data
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs as root and must mount a tmpfs: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        with pytest.raises(OSError) as err:
            train(_cfg(root, "sim"), {"full": cats["sim"]}, disk / "m", progress=False)
        assert err.value.errno == errno.ENOSPC
        frames = [f.name for f in traceback.extract_tb(err.value.__traceback__)]
        assert frames.index("save_model") > frames.index("_train_into")  # keras' model.save ran out of room
        assert not (disk / "m").exists() and _leftovers(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_save_failing_half_way_keeps_the_old_model_byte_identical(data, tmp_path, monkeypatch):
    import keras

    root, cats, _ = data
    target = tmp_path / "m"
    train(_cfg(root, "sim"), {"full": cats["sim"]}, target, progress=False)
    before = _digest(target)

    def half_then_enospc(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", half_then_enospc)
    with pytest.raises(OSError, match="No space left"):
        train(_cfg(root, "sim", seed=9), {"full": cats["sim"]}, target, progress=False, force=True)
    assert _digest(target) == before and _leftovers(tmp_path) == []


# ------------------------------------------------------------------ redshift

@pytest.fixture(scope="module")
def with_z_model(data):
    root, cats, _ = data
    out = root / "with_z"
    train(_cfg(root, "sim", with_z=True), {"full": cats["sim"]}, out, progress=False)
    assert read_meta(out).with_z
    return out


def test_with_z_training_refuses_objects_without_redshift(data, tmp_path, caplog):
    root, cats, lacking = data
    index = cats["noz"].index
    assert set(index.SNID[~np.isfinite(index.z) | (index.z <= -9)]) == set(lacking)
    with pytest.raises(ConfigError) as err:
        train(_cfg(root, "noz", with_z=True), {"full": cats["noz"]}, tmp_path / "m", progress=False)
    text = str(err.value)
    # (REDSHIFT_FINAL, and whichever host redshifts the readers fall back on)
    assert re.match(r"10 of 80 light curves have no redshift \(REDSHIFT_FINAL[^)]*\); this model is trained "
                    r"with with_z: true\. Set missing_redshift: placeholder to feed SCONE's -9 instead", text)
    assert f"SNIDs: {', '.join(lacking[:5])} and 5 more" in text
    assert not (tmp_path / "m").exists()
    with caplog.at_level(logging.WARNING, logger="scone_assets.model.checks"):
        result = train(_cfg(root, "noz", with_z=True, missing_redshift="placeholder"), {"full": cats["noz"]},
                       tmp_path / "m", progress=False)
    assert "10 of 80 light curves have no redshift" in caplog.text and result["test"]["n"] == 8
    train(_cfg(root, "noz"), {"full": cats["noz"]}, tmp_path / "no_z", progress=False)  # without z: no question


def test_with_z_model_refuses_real_data_whose_redshift_is_unknown(data, with_z_model, tmp_path, caplog):
    """Real YSE light curves, four of them with REDSHIFT_FINAL -9 as SNANA writes an unknown one
    and no host redshift."""
    root, _, _ = data
    yse = shared("yse_dev")
    real = tmp_path / "YSE"
    real.mkdir()
    files = sorted(yse.glob("*.snana.dat"))[:12]
    blanked = []
    for i, p in enumerate(files):
        text = p.read_text()
        if i % 3 == 0:
            line = next(x for x in text.splitlines() if x.startswith("REDSHIFT_FINAL:"))
            text = text.replace(line, "REDSHIFT_FINAL: -9.0000 +- -9.0000")
            # and no host redshift either, which would otherwise stand in for it
            text = "\n".join(x for x in text.splitlines() if not x.startswith("VETTED_HOST_GALAXY_REDSHIFT"))
            blanked.append(p.name.split(".")[0])
        (real / p.name).write_text(text)
    cfg = SconeConfig(mode="predict", trained_model=str(with_z_model), input_path=str(real),
                      heatmaps_path=str(tmp_path / "h"), band_to_wave=YSE_BANDS, **GRID)
    catalog = _catalog(cfg)
    assert len(catalog) == 12
    with pytest.raises(ConfigError) as err:
        predict(cfg, catalog, with_z_model, tmp_path / "p.csv")
    assert re.match(
        r"4 of 12 light curves have no redshift \(REDSHIFT_FINAL[^)]*\); this model was trained with with_z: true\. "
        r"Set missing_redshift: placeholder to feed SCONE's -9 instead", str(err.value))
    assert f"SNIDs: {', '.join(blanked)})" in str(err.value) and not (tmp_path / "p.csv").exists()
    with caplog.at_level(logging.WARNING, logger="scone_assets.model.checks"):
        table = predict(cfg.model_copy(update={"missing_redshift": "placeholder"}), catalog, with_z_model,
                        tmp_path / "p.csv")
    assert "4 of 12 light curves have no redshift" in caplog.text
    written = pd.read_csv(tmp_path / "p.csv", dtype={"SNID": str})
    assert sorted(written.SNID) == sorted(p.name.split(".")[0] for p in files) == sorted(table.SNID)
    assert written.PROB_SCONE.between(0, 1).all()


# ------------------------------------------------------------------ duplicate SNIDs

def test_duplicate_snids_are_refused_or_resolved_in_training(data, tmp_path):
    root, cats, _ = data
    with pytest.raises(ConfigError, match=r"heatmap set full: 40 SNID\(s\) appear more than once \(SNID \S+ in "
                                          r".*SIM.*HEAD.* and .*DUP.*HEAD"):
        train(_cfg(root, "dup"), {"full": cats["dup"]}, tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()
    train(_cfg(root, "dup", duplicate_snids="first"), {"full": cats["dup"]}, tmp_path / "m", progress=False)
    split = pd.read_csv(tmp_path / "m" / mf.SPLIT_FILE, dtype={"SNID": str})
    assert len(split) == 80 and split.SNID.is_unique and set(split.SNID) == set(cats["sim"].index.SNID)


def test_predictions_have_one_row_per_object(data, with_z_model, tmp_path, monkeypatch):
    root, cats, _ = data
    sims = set(cats["sim"].index.SNID)
    dup_snids = set(cats["dup"].index.SNID[cats["dup"].index.SNID.duplicated()])
    assert len(dup_snids) == 40
    cfg = SconeConfig(mode="predict", trained_model=str(with_z_model), **GRID)
    with pytest.raises(ConfigError, match=r"heatmaps to classify: 40 SNID\(s\) appear more than once"):
        predict(cfg, cats["dup"], with_z_model, tmp_path / "e.csv")
    assert not (tmp_path / "e.csv").exists()
    first = predict(cfg.model_copy(update={"duplicate_snids": "first"}), cats["dup"], with_z_model,
                    tmp_path / "f.csv")
    streamed = predict(cfg.model_copy(update={"duplicate_snids": "first", "force_streaming": True}), cats["dup"],
                       with_z_model, tmp_path / "s.csv")
    dropped = predict(cfg.model_copy(update={"duplicate_snids": "drop"}), cats["dup"], with_z_model,
                      tmp_path / "d.csv")
    for table, n, snids in ((first, 80, sims), (streamed, 80, sims), (dropped, 40, sims - dup_snids)):
        assert len(table) == n and table.SNID.is_unique and set(table.SNID) == snids
    on_disk = pd.read_csv(tmp_path / "d.csv", dtype={"SNID": str})
    assert len(on_disk) == 40 and set(on_disk.SNID) == sims - dup_snids

    # the bug guard: were duplicates to slip past the resolution, nothing is written
    import scone_assets.model.predict as predict_module

    monkeypatch.setattr(predict_module, "unique_objects", lambda catalog, config, what: catalog)
    with pytest.raises(AssertionError, match=r"would list 40 SNID\(s\) more than once"):
        predict(cfg, cats["dup"], with_z_model, tmp_path / "g.csv")
    assert not (tmp_path / "g.csv").exists()
