"""Writer round trips, and every kind of bad or drifted SNANA input, on real files on disk."""

import gzip

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from conftest import write_table

from scone_assets.snana.lightcurves import SnanaReadError
from scone_assets.snana.read import discover_paths, read_unit
from scone_assets.snana.write import write_fits_pair, write_list, write_readme


def make_sim(n=5, nobs=(4, 6, 3, 5, 1), snid_kind=int):
    rng = np.random.default_rng(0)
    snids = [snid_kind(1000 + i) if snid_kind is int else f"SN{i:03d}" for i in range(n)]
    meta = pd.DataFrame({
        "SNID": snids, "SNTYPE": [101] * n, "SIM_GENTYPE": [1, 20, 32, 1, 1][:n],
        "PEAKMJD": 60000.0 + np.arange(n), "MWEBV": rng.uniform(0, 0.1, n),
        "REDSHIFT_FINAL": rng.uniform(0.1, 0.8, n), "REDSHIFT_FINAL_ERR": np.full(n, 0.01),
    })
    rows = []
    for s, k in zip(snids, nobs, strict=True):
        for j in range(k):
            rows.append((s, 59990.0 + 3 * j, "griz"[j % 4], float(rng.normal(100, 10)), 5.0 + j))
    obs = pd.DataFrame(rows, columns=["SNID", "MJD", "FLT", "FLUXCAL", "FLUXCALERR"])
    return meta, obs


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("kind", [int, str])
def test_round_trip(tmp_path, gz, kind):
    meta, obs = make_sim(snid_kind=kind)
    ext = ".FITS.gz" if gz else ".FITS"
    write_fits_pair(tmp_path / f"S_HEAD{ext}", tmp_path / f"S_PHOT{ext}", meta, obs, survey="DES", gz=gz)
    write_readme(tmp_path, "S", gentype_to_name={1: ("Ia", "SALT3"), 20: ("nonIa", "SNIIP"), 32: ("nonIa", "SNIb")},
                 filters={"g": 4800.0, "r": 6400.0, "i": 7800.0, "z": 9200.0}, stat_summary={"NLC": 5})
    write_list(tmp_path, "S", [f"S_HEAD{ext}"])
    if gz:
        with gzip.open(tmp_path / f"S_HEAD{ext}") as fh:
            assert fh.read(6) == b"SIMPLE"
    unit = discover_paths([str(tmp_path)]).units[0]
    lcs = read_unit(unit)
    assert lcs.survey == "DES" and lcs.is_sim and not lcs.warnings
    assert lcs.band_to_wave == {"g": 4800.0, "r": 6400.0, "i": 7800.0, "z": 9200.0}  # README wins
    assert list(lcs.meta.SNID) == list(meta.SNID[:4])  # the 1-observation object is skipped...
    assert lcs.skipped == [(meta.SNID[4], "single observation")]  # ...and counted
    assert list(lcs.meta.TYPE_NAME) == ["SNIa", "SNII", "SNIbc", "SNIa"]
    np.testing.assert_allclose(lcs.meta.PEAKMJD, meta.PEAKMJD[:4])
    np.testing.assert_allclose(lcs.meta.REDSHIFT_FINAL, meta.REDSHIFT_FINAL[:4], rtol=1e-6)
    kept = obs[obs.SNID.isin(lcs.meta.SNID)].reset_index(drop=True)
    np.testing.assert_allclose(lcs.obs.MJD, kept.MJD)
    np.testing.assert_allclose(lcs.obs.FLUXCAL, kept.FLUXCAL, rtol=1e-6)
    assert list(lcs.obs.BAND) == list(kept.FLT)
    h = fits.getdata(tmp_path / f"S_HEAD{ext}")
    assert list(h["PTROBS_MIN"]) == [1, 6, 13, 17, 23] and list(h["NOBS"]) == [4, 6, 3, 5, 1]


def _phot_columns(obs, separators=True, band_col="FLT", err_col="FLUXCALERR", extra=None):
    mjd, band, flux, err, snid = [], [], [], [], []
    groups = list(obs.groupby("SNID", sort=False))
    for i, (s, g) in enumerate(groups):
        mjd += list(g.MJD)
        band += list(g.FLT)
        flux += list(g.FLUXCAL)
        err += list(g.FLUXCALERR)
        snid += [s] * len(g)
        if separators and i < len(groups) - 1:
            mjd.append(-777.0)
            band.append("-")
            flux.append(0.0)
            err.append(0.0)
            snid.append(s)
    cols = {"MJD": np.array(mjd), band_col: np.array(band), "FLUXCAL": np.array(flux), err_col: np.array(err)}
    if extra == "snid":
        cols["SNID"] = np.array(snid)
    return cols


def _head_columns(meta, obs, pointers=None):
    nobs = obs.groupby("SNID", sort=False).size().reindex(meta.SNID).to_numpy()
    cols = {c: meta[c].to_numpy() for c in meta.columns}
    cols["NOBS"] = nobs
    if pointers is not None:
        cols["PTROBS_MIN"], cols["PTROBS_MAX"] = pointers
    return cols


def test_missing_separators_split_by_nobs_with_warning(tmp_path):
    meta, obs = make_sim(nobs=(4, 6, 3, 5, 2))
    write_table(tmp_path / "X_HEAD.FITS", _head_columns(meta, obs, pointers=(np.full(5, 900), np.full(5, 990))),
                header={"SURVEY": "DES"})  # places the bands; unplaceable ones would be dropped
    write_table(tmp_path / "X_PHOT.FITS", _phot_columns(obs, separators=False))
    lcs = read_unit(discover_paths([str(tmp_path)]).units[0])
    assert any("split by NOBS" in w for w in lcs.warnings)
    assert any("PTROBS pointers are inconsistent" in w for w in lcs.warnings)
    assert list(lcs.meta.NOBS) == [4, 6, 3, 5, 2]
    np.testing.assert_allclose(lcs.obs.FLUXCAL, obs.FLUXCAL)


def test_unexplainable_rows_fail_the_file_with_a_clear_error(tmp_path):
    meta, obs = make_sim(nobs=(4, 6, 3, 5, 2))
    head = _head_columns(meta, obs)
    head["NOBS"] = head["NOBS"] + 1  # NOBS no longer explains the rows, no separators either
    write_table(tmp_path / "X_HEAD.FITS", head)
    write_table(tmp_path / "X_PHOT.FITS", _phot_columns(obs, separators=False))
    with pytest.raises(SnanaReadError, match=r"X_PHOT.FITS: cannot locate light curves: 5 objects"):
        read_unit(discover_paths([str(tmp_path)]).units[0])


def test_drifted_formats_band_err_spelling_full_names_snid_join_vectors_zp(tmp_path):
    meta, obs = make_sim(nobs=(4, 6, 3, 5, 2), snid_kind=str)
    obs = obs.assign(FLT="DES-" + obs.FLT)
    head = {c: meta[c].to_numpy() for c in meta.columns}
    head["HOSTGALz_QUANTILES"] = np.ones((5, 3))  # a float vector column
    head["SNID"] = np.array([f"  {s} " for s in meta.SNID])  # padded strings
    write_table(tmp_path / "Y_HEAD.FITS.gz", head, header={"ZP_FLUXCAL": 30.0})
    # PHOT carries SNID, BAND and FLUXCAL_ERR; no pointers, no NOBS
    write_table(tmp_path / "Y_PHOT.FITS.gz", _phot_columns(obs, band_col="BAND", err_col="FLUXCAL_ERR", extra="snid"),
                header={"ZP_FLUXCAL": 30.0})
    lcs = read_unit(discover_paths([str(tmp_path)]).units[0])
    assert list(lcs.meta.SNID) == list(meta.SNID)
    assert lcs.bands == ["g", "i", "r", "z"] and lcs.band_names["g"] == "DES-g"
    assert lcs.band_to_wave["g"] == 4828.0  # DES table via the full name
    # ZP 30 -> fluxes rescaled to SNANA's 27.5
    np.testing.assert_allclose(lcs.obs.FLUXCAL, obs.FLUXCAL * 10 ** (-0.4 * 2.5), rtol=1e-6)


def test_empty_phot_gives_zero_light_curves(tmp_path):
    meta, obs = make_sim()
    write_table(tmp_path / "E_HEAD.FITS", _head_columns(meta, obs))
    write_table(tmp_path / "E_PHOT.FITS", {"MJD": np.array([], float), "FLT": np.array([], "U1"),
                                           "FLUXCAL": np.array([], float), "FLUXCALERR": np.array([], float)})
    lcs = read_unit(discover_paths([str(tmp_path)]).units[0])
    assert len(lcs) == 0 and lcs.skipped_by_reason() == {"no observations": 5}


def test_bad_files_are_named_and_the_rest_are_read(tmp_path, des_sim):
    import shutil

    # the DES_ prefix names the survey (these files have no SURVEY key), so its bands are placed
    shutil.copy(des_sim / "DES_Ia-0001_HEAD.FITS", tmp_path / "DES_A_HEAD.FITS")
    shutil.copy(des_sim / "DES_Ia-0001_PHOT.FITS", tmp_path / "DES_A_PHOT.FITS")
    (tmp_path / "B_PHOT.FITS").write_bytes(b"x")  # PHOT without HEAD
    data = (des_sim / "DES_Ia-0001_PHOT.FITS").read_bytes()
    shutil.copy(des_sim / "DES_Ia-0001_HEAD.FITS", tmp_path / "C_HEAD.FITS")
    (tmp_path / "C_PHOT.FITS").write_bytes(data[: len(data) // 3])  # truncated
    (tmp_path / "D_HEAD.FITS").write_text("this is not FITS")
    (tmp_path / "D_PHOT.FITS").write_text("this is not FITS")
    meta, obs = make_sim()
    write_table(tmp_path / "F_HEAD.FITS", _head_columns(meta, obs))
    write_table(tmp_path / "F_PHOT.FITS", {"MJD": obs.MJD.to_numpy(), "FLT": obs.FLT.to_numpy()})

    from scone_assets.snana.summary import summarize

    summary = summarize(discover_paths([str(tmp_path)]))
    assert [f["light_curves"] for f in summary["files"]] == [200]
    errors = {e["file"].rsplit("/", 1)[-1]: e["error"] for e in summary["errors"]}
    assert errors["B_PHOT.FITS"] == "PHOT file has no matching HEAD file"
    assert "damaged FITS" in errors["C_PHOT.FITS"] or "truncated" in errors["C_PHOT.FITS"]
    assert errors["D_HEAD.FITS"].startswith("not a FITS file")
    assert errors["F_PHOT.FITS"] == "PHOT table is missing required column(s): FLUXCAL, FLUXCALERR or FLUXCAL_ERR"


TEXT = """SURVEY: DES
SNID: {snid}
SNTYPE: 1
FILTERS: griz
MWEBV: 0.0227 MW E(B-V)
REDSHIFT_FINAL: 0.0130 +- 0.005 (SPEC-Z, HELIO)
PEAKMJD: 56200.0
SIM_COMMENT: SN Type = IIn , MODEL = x
NOBS: 3
NVAR: 6
VARLIST: FLUXCALERR FLT MJD FIELD FLUXCAL SNR
OBS: 1.5 g 56190.0 NULL 10.0 6.6
OBS: 2.5 r 56195.0 NULL 20.0 8.0
OBS: 3.5 i 56201.0 NULL 30.0 8.5
END:
"""


def test_text_columns_come_from_varlist_and_bad_text_is_skipped(tmp_path):
    (tmp_path / "a.dat").write_text(TEXT.format(snid=11))
    with gzip.open(tmp_path / "b.snana.dat.gz", "wt") as fh:
        fh.write(TEXT.format(snid="2019lbi"))
    (tmp_path / "c.DAT").write_text("SNID: 5\nOBS: 1 2 3\n")  # no VARLIST
    unit = discover_paths([str(tmp_path)]).units[0]
    lcs = read_unit(unit)
    assert list(lcs.meta.SNID) == [11, "2019lbi"]
    assert list(lcs.meta.TYPE_NAME) == ["SNII", "SNII"]
    row = lcs.meta.iloc[0]
    assert (row.REDSHIFT_FINAL, row.REDSHIFT_FINAL_ERR, row.MWEBV) == (0.013, 0.005, 0.0227)
    first = lcs.obs[lcs.obs.SNID == 11]
    assert list(first.MJD) == [56190.0, 56195.0, 56201.0]
    assert list(first.FLUXCAL) == [10.0, 20.0, 30.0] and list(first.FLUXCALERR) == [1.5, 2.5, 3.5]
    assert len(lcs.file_errors) == 1
    assert lcs.file_errors[0].path.endswith("c.DAT")
    assert "OBS row before any VARLIST" in lcs.file_errors[0].problem
