"""The heatmap store knows what it holds: fingerprints, one grid per store, one writer at
a time, honest exit codes, no half-written unit under a real name, no orphan workers.
Everything runs on real SNANA files (the simulator's and the shared data)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from scone_assets.config import SconeConfig
from scone_assets.heatmaps import store
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.simulate.run import simulate

CLI = [sys.executable, "-m", "scone_assets.cli"]
GRID = {"num_mjd_bins": 30}


def scone(*args: str, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def write_config(path: Path, **keys) -> Path:
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    return path


def images(folder: Path, shape=(32, 30)) -> dict[str, np.ndarray]:
    return {r["snid"]: r["image"] for r in store.read_shard(folder / store.SHARD, shape)}


def test_resimulated_inputs_are_remade_and_equal_a_fresh_run(tmp_path):
    sims = tmp_path / "S"
    simulate(sims, 40, survey="des", seed=1, per_file=20, jobs=1, progress=False)
    cfg = SconeConfig(input_path=str(sims), heatmaps_path=str(tmp_path / "h"), **GRID)
    first = make_heatmaps(cfg, jobs=1, progress=False).results
    assert [r.status for r in first] == ["done", "done"]
    old = images(first[0].folder)

    simulate(sims, 40, survey="des", seed=2, per_file=20, jobs=1, progress=False, force=True)
    again = make_heatmaps(cfg, jobs=1, progress=False).results
    assert [r.status for r in again] == ["remade", "remade"]
    assert "input file S-0001_HEAD.FITS changed" in again[0].reasons
    fresh = make_heatmaps(cfg.model_copy(update={"heatmaps_path": str(tmp_path / "fresh")}), jobs=1,
                          progress=False).results
    new, ref = images(again[0].folder), images(fresh[0].folder)
    assert list(new) == list(ref)
    assert any(k not in old or not np.array_equal(new[k], old[k]) for k in new)  # not the old images
    for snid in ref:
        np.testing.assert_array_equal(new[snid], ref[snid])
    index = pd.read_parquet(again[0].folder / store.INDEX)
    ref_index = pd.read_parquet(fresh[0].folder / store.INDEX)
    assert list(index.TYPE_NAME) == list(ref_index.TYPE_NAME)
    # an unchanged store is reused, not remade
    assert [r.status for r in make_heatmaps(cfg, jobs=1, progress=False).results] == ["already done"] * 2


def test_a_new_labels_file_remakes_and_relabels(snpcc, tmp_path):
    data = tmp_path / "snpcc"
    data.mkdir()
    labels = pd.read_csv(snpcc / "labels.csv")
    names = sorted(p.name for p in snpcc.glob("DES_SN*.DAT"))[:12]
    for name in names:
        shutil.copy(snpcc / name, data / name)
    snids = [str(int(n[6:12])) for n in names]
    mine = labels[labels.SNID.astype(str).isin(snids)][["SNID", "TYPE"]]
    (tmp_path / "a.csv").write_text(mine.to_csv(index=False))
    cfg = SconeConfig(input_path=str(data), heatmaps_path=str(tmp_path / "h"), labels_path=str(tmp_path / "a.csv"),
                      **GRID)
    assert [r.status for r in make_heatmaps(cfg, jobs=1, progress=False).results] == ["done"]
    flipped = mine.assign(TYPE=np.where(mine.TYPE == 1, 20, 1))  # every Ia made a II and back
    (tmp_path / "a.csv").write_text(flipped.to_csv(index=False))
    res = make_heatmaps(cfg, jobs=1, progress=False).results[0]
    assert res.status == "remade" and res.reasons == ["labels_path changed"]
    index = pd.read_parquet(res.folder / store.INDEX).set_index("SNID")
    truth = flipped.set_index(flipped.SNID.astype(str)).TYPE
    ok = index[index.status == "ok"]
    assert len(ok) > 5
    assert all((ok.TYPE_NAME[s] == "SNIa") == (truth[s] == 1) for s in ok.index)


def test_exit_codes_failed_units_bad_text_files_and_empty_heads(des_sim, snpcc, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("DES_Ia-0001_HEAD.FITS", "DES_Ia-0001_PHOT.FITS"):
        shutil.copy(des_sim / name, data / name)
    for i in range(3):  # three broken pairs: 3 of 4 units fail
        (data / f"BROKEN{i}_HEAD.FITS").write_bytes(b"SIMPLE  = garbage")
        (data / f"BROKEN{i}_PHOT.FITS").write_bytes(b"SIMPLE  = garbage")
    cfg = write_config(tmp_path / "c.yml", input_path=data, heatmaps_path=tmp_path / "h", **GRID)
    res = scone("heatmaps", "--config_path", str(cfg), "--jobs", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.count("FAILED ") == 3 and "BROKEN2_HEAD.FITS" in res.stdout
    assert "done         data__DES_Ia-0001 [full]: 200 heatmaps" in res.stdout
    assert "1 unit(s) complete, 3 with failures" in res.stdout

    text = tmp_path / "text"
    text.mkdir()
    files = sorted(snpcc.glob("DES_SN*.DAT"))[:4]
    for f in files:
        shutil.copy(f, text / f.name)
    cut = (text / files[0].name).read_text()
    (text / files[0].name).write_text(cut[: len(cut) // 2].rsplit("\n", 1)[0] + "\nOBS: 5")
    no_varlist = "\n".join(ln for ln in (text / files[1].name).read_text().splitlines()
                           if not ln.startswith("VARLIST"))
    (text / files[1].name).write_text(no_varlist)
    cfg = write_config(tmp_path / "t.yml", input_path=text, heatmaps_path=tmp_path / "ht", **GRID)
    res = scone("heatmaps", "--config_path", str(cfg), "--jobs", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.count("BAD FILE") == 2 and files[1].name in res.stdout
    assert "text_0000 [full]: 2 heatmaps" in res.stdout
    summary = next((tmp_path / "ht" / "full").glob("*/" + store.SUMMARY)).read_text()
    assert "BAD_FILES:" in summary and files[0].name in summary

    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("DES_Ia-0001_HEAD.FITS", "DES_Ia-0001_PHOT.FITS"):
        shutil.copy(des_sim / name, empty / name)
    from astropy.io import fits

    with fits.open(empty / "DES_Ia-0001_HEAD.FITS") as hdul:
        hdul[1] = fits.BinTableHDU(hdul[1].data[:0], header=hdul[1].header)
        hdul.writeto(empty / "EMPTY-0001_HEAD.FITS")
    shutil.copy(empty / "DES_Ia-0001_PHOT.FITS", empty / "EMPTY-0001_PHOT.FITS")
    cfg = write_config(tmp_path / "e.yml", input_path=empty, heatmaps_path=tmp_path / "he", **GRID)
    res = scone("heatmaps", "--config_path", str(cfg), "--jobs", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED       empty__EMPTY-0001 [full]: no light curves in" in res.stdout
    assert not (tmp_path / "he" / "full" / "empty__EMPTY-0001").exists()
    assert store.finished_units(tmp_path / "he") == [tmp_path / "he" / "full" / "empty__DES_Ia-0001"]

    nothing = tmp_path / "nothing"
    nothing.mkdir()
    cfg = write_config(tmp_path / "n.yml", input_path=nothing, heatmaps_path=tmp_path / "hn")
    res = scone("heatmaps", "--config_path", str(cfg))
    assert res.returncode == 2 and res.stderr.strip() == (
        f"error: nothing to do: {nothing}: no SNANA files (*_HEAD.FITS/*_PHOT.FITS pairs or TEXT .DAT "
        f"files) in {nothing}")


def test_duplicate_snids_across_files_are_named(des_sim, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for stem in ("DES_Ia-0001", "DES_COPY-0001"):
        for kind in ("HEAD", "PHOT"):
            shutil.copy(des_sim / f"DES_Ia-0001_{kind}.FITS", data / f"{stem}_{kind}.FITS")
    cfg = write_config(tmp_path / "c.yml", input_path=data, heatmaps_path=tmp_path / "h", **GRID)
    res = scone("heatmaps", "--config_path", str(cfg), "--jobs", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("DUPLICATES"))
    assert "200 SNID(s) in more than one file" in line
    assert "DES_COPY-0001_HEAD.FITS and " in line and "DES_Ia-0001_HEAD.FITS" in line
    catalog = store.load_catalog(store.finished_units(tmp_path / "h"))
    assert len(catalog) == 400 and len(store.duplicate_snids(catalog)) == 200
    first = store.resolve_duplicates(catalog, "first", "test")
    assert len(first) == 200 and set(first.index.unit) == {"data__DES_COPY-0001"}
    assert len(store.resolve_duplicates(catalog, "drop", "test")) == 0
    import tensorflow as tf  # noqa: F401 - records_of reads only the index's records

    seen = [s.decode() for _, s, *_ in store.records_of(first).as_numpy_iterator()]
    assert len(seen) == 200 and len(set(seen)) == 200


def test_two_runs_into_one_store(tmp_path):
    sims = tmp_path / "S"
    simulate(sims, 600, survey="des", seed=4, per_file=600, jobs=1, progress=False)
    a = write_config(tmp_path / "a.yml", input_path=sims, heatmaps_path=tmp_path / "h", num_mjd_bins=100)
    b = write_config(tmp_path / "b.yml", input_path=sims, heatmaps_path=tmp_path / "h", num_mjd_bins=180)
    first = subprocess.Popen([*CLI, "heatmaps", "--config_path", str(a), "--jobs", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "h" / ".scone.lock"
        deadline = time.time() + 60
        while time.time() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.1)
        second = scone("heatmaps", "--config_path", str(b), "--jobs", "1")
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"heatmaps folder {tmp_path / 'h'} is in use by pid {first.pid}" in second.stderr
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    late = scone("heatmaps", "--config_path", str(b), "--jobs", "1")
    assert late.returncode == 2 and "holds 32x100 heatmaps" in late.stderr and "asks for 32x180" in late.stderr
    assert {tuple(store.read_unit_record(f).grid) for f in store.finished_units(tmp_path / "h")} == {(32, 100)}


def _children_when_busy(proc: subprocess.Popen, folder: Path, n: int, timeout: float = 120) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if len(kids) >= n and list(folder.glob(f"*/.*{store.PARTIAL}*")):
            return [k.pid for k in kids]
        time.sleep(0.1)
    raise AssertionError(f"workers did not start: {proc.poll()}")


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopping_heatmaps_leaves_no_worker_and_no_half_unit(tmp_path, sig, code):
    sims = tmp_path / "S"
    simulate(sims, 1500, survey="des", seed=5, per_file=1500, jobs=1, progress=False)
    cfg = write_config(tmp_path / "c.yml", input_path=sims, heatmaps_path=tmp_path / "h")
    proc = subprocess.Popen([*CLI, "heatmaps", "--config_path", str(cfg), "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kids = _children_when_busy(proc, tmp_path / "h", 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in kids if psutil.pid_exists(p)], timeout=10)
    assert not alive, f"workers outlived the parent: {[p.pid for p in alive]}"
    assert not store.finished_units(tmp_path / "h")  # nothing half-made under a real name
    if sig != signal.SIGKILL:
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("scone heatmaps: ")
        assert not list((tmp_path / "h").glob(f"*/.*{store.PARTIAL}*"))
        return
    assert list((tmp_path / "h").glob(f"*/.*{store.PARTIAL}*"))  # SIGKILL leaves the partial unit...
    again = scone("heatmaps", "--config_path", str(cfg), "--jobs", "2")
    assert again.returncode == 0, again.stdout + again.stderr  # ...which the next run removes
    assert not list((tmp_path / "h").glob("*/.*partial*")) and "removed 1 temporary" in again.stderr
    assert store.read_unit_record(store.finished_units(tmp_path / "h")[0]).written > 1400


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_leaves_no_truncated_unit(tmp_path):
    sims = tmp_path / "S"
    simulate(sims, 60, survey="des", seed=6, per_file=30, jobs=1, progress=False)
    disk = tmp_path / "disk"
    disk.mkdir()
    # one unit of 30 heatmaps at 32 x 30 is about 250 kB with its index: the second does not fit
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], check=True)
    try:
        cfg = write_config(tmp_path / "c.yml", input_path=sims, heatmaps_path=disk / "h", **GRID)
        res = scone("heatmaps", "--config_path", str(cfg), "--jobs", "1")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "error: disk full writing" in res.stderr and "Traceback" not in res.stderr
        units = store.finished_units(disk / "h")
        assert [u.name for u in units] == ["S-0001"]
        assert len(images(units[0])) == store.read_unit_record(units[0]).written == 30
        assert not list((disk / "h").glob("*/.*")) or all(
            p.name.endswith(".lock") for p in (disk / "h").glob("*/.*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
