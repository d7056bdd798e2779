"""Bad or odd inputs on real SNANA files: each is named and skipped, the rest is read."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from scone_assets.cli import main
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.snana.lightcurves import SnanaReadError
from scone_assets.snana.read import discover, discover_paths, load_labels, read_unit
from scone_assets.snana.summary import format_summary, summarize

HEAD = "DES_Ia-0001_HEAD.FITS"
PHOT = "DES_Ia-0001_PHOT.FITS"


def copy_des(des_sim: Path, folder: Path, stem: str = "DES_Ia-0001") -> tuple[Path, Path]:
    """A copy of the DES_SIM pair; the `DES_` prefix is what names its survey (no SURVEY key)."""
    folder.mkdir(parents=True, exist_ok=True)
    head, phot = folder / f"{stem}_HEAD.FITS", folder / f"{stem}_PHOT.FITS"
    shutil.copy(des_sim / HEAD, head)
    shutil.copy(des_sim / PHOT, phot)
    return head, phot


def rows_of(phot: Path, i: int) -> slice:
    """PHOT rows of object i, between -777 separators (this file's PTROBS pointers are stale)."""
    sep = np.flatnonzero(fits.getdata(phot, 1)["MJD"] == -777.0)
    bounds = np.concatenate([[-1], sep, [len(fits.getdata(phot, 1))]])
    return slice(int(bounds[i]) + 1, int(bounds[i + 1]))


def set_bands(phot: Path, rows: np.ndarray, band: str) -> None:
    with fits.open(phot, mode="update") as hdul:
        hdul[1].data["FLT"][rows] = band


# 1. unplaceable bands: their observations are dropped and counted, not the file


def test_unknown_band_drops_only_its_observations(des_sim, tmp_path):
    base = read_unit(discover_paths([str(des_sim)]).units[0])
    assert len(base) == 200 and not base.dropped_bands
    head, phot = copy_des(des_sim, tmp_path)
    snids = list(fits.getdata(head, 1)["SNID"])
    flt = np.char.strip(fits.getdata(phot, 1)["FLT"].astype(str))
    changed = np.zeros(len(flt), bool)
    changed[rows_of(phot, 0)] = True  # object 0: every point in band q
    one_left = np.arange(len(flt))[rows_of(phot, 1)]
    changed[one_left[1:]] = True  # object 1: one point left
    for i in range(2, 10):  # objects 2-9: their g points
        r = np.zeros(len(flt), bool)
        r[rows_of(phot, i)] = True
        changed |= r & (flt == "g")
    set_bands(phot, changed, "q")
    n_q = int(changed.sum())

    lcs = read_unit(discover_paths([str(tmp_path)]).units[0])
    assert lcs.dropped_bands == {"q": n_q}
    assert set(lcs.band_to_wave) == {"g", "r", "i", "z"}
    assert not (lcs.obs.BAND == "q").any()
    assert (snids[0], "no placeable band") in lcs.skipped
    assert (snids[1], "single observation") in lcs.skipped
    assert len(lcs) == 198 and list(lcs.meta.SNID) == list(base.meta.SNID[2:])
    nobs = dict(zip(lcs.meta.SNID, lcs.meta.NOBS, strict=True))
    base_nobs = dict(zip(base.meta.SNID, base.meta.NOBS, strict=True))
    n_gs = [int((flt[rows_of(phot, i)] == "g").sum()) for i in range(2, 10)]
    assert sum(n_gs) > 50
    for i, n_g in zip(range(2, 10), n_gs, strict=True):
        assert nobs[snids[i]] == base_nobs[snids[i]] - n_g
    for s in snids[10:]:
        assert nobs[s] == base_nobs[s]
    assert len(lcs.obs) == len(base.obs) - n_q - 1  # object 1's one point left goes with it
    warning = next(w for w in lcs.warnings if "cannot be placed" in w)
    assert str(phot) in warning and f"q: {n_q}" in warning and "band_to_wave" in warning


def test_no_placeable_band_still_reads_with_every_light_curve_skipped(des_sim, tmp_path):
    head, phot = copy_des(des_sim, tmp_path)
    flt = np.char.strip(fits.getdata(phot, 1)["FLT"].astype(str))
    real = flt != "-"
    set_bands(phot, real, "q")
    lcs = read_unit(discover_paths([str(head)]).units[0])
    assert len(lcs) == 0 and lcs.band_to_wave == {}
    assert lcs.skipped_by_reason() == {"no placeable band": 200}
    assert lcs.dropped_bands == {"q": int(real.sum())} == {"q": 12717 - 199}
    assert any("no band could be placed" in w and "q: 12518" in w for w in lcs.warnings)


# 2-3. a HEAD or PHOT file named alone finds its partner; input_path may name a file


def test_head_or_phot_alone_finds_its_partner(des_sim, tmp_path):
    for named in (HEAD, PHOT):
        found = discover_paths([str(des_sim / named)])
        assert not found.errors
        assert [u.files for u in found.units] == [[str(des_sim / HEAD), str(des_sim / PHOT)]]
        assert len(read_unit(found.units[0])) == 200
    # partner gzipped, the named file not
    shutil.copy(des_sim / HEAD, tmp_path / HEAD)
    with gzip.open(tmp_path / (PHOT + ".gz"), "wb") as fh:
        fh.write((des_sim / PHOT).read_bytes())
    found = discover_paths([str(tmp_path / HEAD)])
    assert [u.files for u in found.units] == [[str(tmp_path / HEAD), str(tmp_path / (PHOT + ".gz"))]]
    assert len(read_unit(found.units[0])) == 200
    # no partner at all: named
    (tmp_path / "X_HEAD.FITS").write_bytes((des_sim / HEAD).read_bytes())
    found = discover_paths([str(tmp_path / "X_HEAD.FITS")])
    assert not found.units
    assert [e.problem for e in found.errors] == ["HEAD file has no matching PHOT file"]


def test_input_path_may_name_a_file_and_missing_paths_name_their_key(des_sim, snpcc, tmp_path):
    found = discover(SconeConfig(input_path=str(des_sim / HEAD)))
    assert not found.errors and len(found.units) == 1
    assert len(read_unit(found.units[0])) == 200
    found = discover(SconeConfig(input_path=str(snpcc / "DES_SN339520.DAT")))
    assert [u.kind for u in found.units] == ["text"]
    assert list(read_unit(found.units[0]).meta.SNID) == [339520]

    missing = str(tmp_path / "nope")
    found = discover(SconeConfig(input_path=missing))
    assert not found.units and [str(e) for e in found.errors] == [f"{missing}: input_path {missing} does not exist"]
    found = discover(SconeConfig(input_data_paths=[str(des_sim), missing]))
    assert len(found.units) == 1
    assert [e.problem for e in found.errors] == [f"input_data_paths {missing} does not exist"]
    found = discover(SconeConfig(metadata_paths=[missing + "_HEAD.FITS"], lcdata_paths=[str(des_sim / PHOT)]))
    assert not found.units
    assert [e.problem for e in found.errors] == [f"metadata_paths entry {missing}_HEAD.FITS does not exist"]


# 4. nothing to read


def test_folder_without_snana_files_and_config_without_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    for folder in (empty, tmp_path / "notes"):
        found = discover(SconeConfig(input_path=str(folder)))
        assert not found.units and len(found.errors) == 1
        assert found.errors[0].path == str(folder)
        assert found.errors[0].problem == (
            f"no SNANA files (*_HEAD.FITS/*_PHOT.FITS pairs or TEXT .DAT files) in {folder}")
    with pytest.raises(ConfigError, match=r"input_path, metadata_paths \+ lcdata_paths, or input_data_paths"):
        discover(SconeConfig())


# 5. labels_path


def test_labels_path_missing_or_unparseable(tmp_path):
    missing = tmp_path / "labels.csv"
    with pytest.raises(SnanaReadError, match="labels file does not exist") as info:
        load_labels(str(missing))
    assert info.value.path == str(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text('SNID,TYPE\n1,"Ia\n2,II\n')  # an unclosed quote
    with pytest.raises(SnanaReadError, match="cannot be parsed") as info:
        load_labels(str(bad))
    assert info.value.path == str(bad)
    with pytest.raises(SnanaReadError, match="is a folder"):
        load_labels(str(tmp_path))


def test_inspect_with_missing_labels_is_a_usage_error(des_sim, tmp_path, capsys):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"input_path: {des_sim}\nlabels_path: {tmp_path / 'labels.csv'}\n")
    assert main(["inspect", "--config_path", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "labels.csv: labels file does not exist" in err and "Traceback" not in err


# 6. a HEAD table with no rows


def test_head_with_zero_rows_reads_as_zero_light_curves(des_sim, tmp_path):
    for name, keep_phot in (("A", False), ("B", True)):
        head, phot = tmp_path / f"DES_{name}_HEAD.FITS", tmp_path / f"DES_{name}_PHOT.FITS"
        with fits.open(des_sim / HEAD) as h:
            fits.HDUList([h[0], fits.BinTableHDU(h[1].data[:0], h[1].header)]).writeto(head)
        with fits.open(des_sim / PHOT) as p:
            rows = p[1].data if keep_phot else p[1].data[:0]
            fits.HDUList([p[0], fits.BinTableHDU(rows, p[1].header)]).writeto(phot)
        assert len(fits.getdata(head, 1)) == 0
        lcs = read_unit(discover_paths([str(head)]).units[0])
        assert len(lcs) == 0 and lcs.skipped == [] and len(lcs.obs) == 0
        expected = f"{head}: no light curves (the HEAD table has 0 rows)"
        assert (expected + ("; its 12717 PHOT row(s) are ignored" if keep_phot else "")) in lcs.warnings
    summary = summarize(discover_paths([str(tmp_path)]))
    assert [f["light_curves"] for f in summary["files"]] == [0, 0] and not summary["errors"]


# 7. duplicate SNIDs


def test_duplicate_snid_inside_a_fits_file_keeps_only_the_first_objects_points(des_sim, tmp_path):
    base = read_unit(discover_paths([str(des_sim)]).units[0])
    head, _ = copy_des(des_sim, tmp_path)
    with fits.open(head, mode="update") as hdul:
        first = hdul[1].data["SNID"][0]
        hdul[1].data["SNID"][1] = first
    lcs = read_unit(discover_paths([str(head)]).units[0])
    snid = base.meta.SNID[0]
    assert len(lcs) == 199 and (snid, "duplicate SNID in file") in lcs.skipped
    assert lcs.duplicates == {snid: [str(head), str(head)]}
    assert int(lcs.meta.NOBS[0]) == int(base.meta.NOBS[0]) == (snid == lcs.obs.SNID).sum()
    summary = summarize(discover_paths([str(head)]))
    assert summary["duplicates"] == [{"snid": str(snid), "files": [str(head), str(head)]}]


def test_summary_reports_snids_repeated_across_inputs(des_sim, snpcc, tmp_path, capsys):
    copy_des(des_sim, tmp_path / "a")
    copy_des(des_sim, tmp_path / "b", stem="DES_Ia-0002")
    text = tmp_path / "t"
    text.mkdir()
    shutil.copy(snpcc / "DES_SN339520.DAT", text / "x.DAT")
    shutil.copy(snpcc / "DES_SN339520.DAT", text / "y.DAT")
    summary = summarize(discover_paths([str(tmp_path / "a"), str(tmp_path / "b"), str(text)]))
    assert summary["total"]["duplicates"] == 201 == len(summary["duplicates"])
    by_snid = {d["snid"]: d["files"] for d in summary["duplicates"]}
    assert by_snid["339520"] == [str(text / "x.DAT"), str(text / "y.DAT")]
    snid0 = str(fits.getdata(des_sim / HEAD, 1)["SNID"][0]).strip()
    assert by_snid[snid0] == [str(tmp_path / "a" / HEAD), str(tmp_path / "b" / "DES_Ia-0002_HEAD.FITS")]
    lines = format_summary(summary).splitlines()
    dup_lines = [ln for ln in lines if "ERROR duplicate SNID" in ln]
    assert len(dup_lines) == 10
    assert f"  ERROR duplicate SNID {snid0} in {tmp_path / 'a' / HEAD} and " \
           f"{tmp_path / 'b' / 'DES_Ia-0002_HEAD.FITS'}" in lines
    assert "  ... and 191 more duplicate SNID(s)" in lines
    assert main(["inspect", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "  duplicate SNIDs: 200" in capsys.readouterr().out


# 8. `scone inspect` exit codes


def _cut_mid_line(src: Path, dst: Path) -> None:
    text = src.read_text()
    start = text.index("\nOBS:", len(text) // 2) + 1
    end = text.index("\n", start)
    dst.write_text(text[: (start + end) // 2])


def test_inspect_exit_codes(des_sim, snpcc, tmp_path, capsys):
    assert main(["inspect", str(des_sim)]) == 0
    out = capsys.readouterr().out
    assert "light curves: 200 in 1 file(s)" in out and "ERROR" not in out

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(snpcc / "DES_SN339520.DAT", mixed / "DES_SN339520.DAT")
    _cut_mid_line(snpcc / "DES_SN000172.DAT", mixed / "DES_SN000172.DAT")
    raw = gzip.compress((snpcc / "DES_SN000642.DAT").read_bytes())
    (mixed / "DES_SN000642.DAT.gz").write_bytes(raw[: len(raw) // 2])
    (mixed / "DES_SN000742.DAT").write_text("SURVEY: DES\nSNID: 742\nNOBS: 0\nEND:\n")
    assert main(["inspect", str(mixed)]) == 1
    out = capsys.readouterr().out
    assert "light curves: 1 in 1 file(s)" in out
    errors = [ln for ln in out.splitlines() if ln.startswith("  ERROR")]
    assert len(errors) == 3
    assert any(str(mixed / "DES_SN000172.DAT") in e and "OBS row has" in e for e in errors)
    assert any(str(mixed / "DES_SN000642.DAT.gz") in e and "cannot be read" in e for e in errors)
    assert any(str(mixed / "DES_SN000742.DAT") in e and "no VARLIST" in e for e in errors)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["inspect", str(empty)]) == 2
    captured = capsys.readouterr()
    assert f"ERROR {empty}: no SNANA files" in captured.out
    assert f"no light curves could be read from {empty}" in captured.err
    assert main(["inspect", "--json", str(tmp_path / "missing")]) == 2
    assert "path does not exist" in capsys.readouterr().out


def test_text_file_cut_at_a_line_boundary_is_caught_by_nobs(snpcc, tmp_path):
    lines = (snpcc / "DES_SN000172.DAT").read_text().splitlines(keepends=True)
    last_obs = max(i for i, ln in enumerate(lines) if ln.startswith("OBS:"))
    (tmp_path / "DES_SN000172.DAT").write_text("".join(lines[:last_obs]))
    shutil.copy(snpcc / "DES_SN339520.DAT", tmp_path / "DES_SN339520.DAT")
    lcs = read_unit(discover_paths([str(tmp_path)]).units[0])
    assert list(lcs.meta.SNID) == [339520]
    assert len(lcs.file_errors) == 1 and "OBS rows (cut short" in lcs.file_errors[0].problem


def test_yse_bands_are_placed_from_the_survey_table():
    from conftest import shared

    lcs = read_unit(discover_paths([str(shared("yse_dev"))]).units[0])
    assert len(lcs) == 144 and not lcs.dropped_bands and not lcs.skipped
    assert lcs.band_to_wave == {"X": 4746.0, "Y": 6366.0, "g": 4866.0, "i": 7545.0, "r": 6215.0, "z": 8679.0}
