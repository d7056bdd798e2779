"""The reader on real SNANA files from ../shared/data, checked against known values."""

import numpy as np
import pytest
from astropy.io import fits

from scone_assets.snana.read import discover_paths, read_unit


def read_one(folder):
    found = discover_paths([str(folder)])
    assert not found.errors
    assert len(found.units) == 1
    return read_unit(found.units[0])


def test_des_sim_pointers_past_the_end_do_not_misattach(des_sim):
    lcs = read_one(des_sim)
    assert len(lcs) == 200 and lcs.is_sim and lcs.survey == "DES"
    assert lcs.counts_by_type() == {"SNIa": 200}
    assert len(lcs.obs) == 12518  # every non-separator row, none lost
    # the file was cut from a larger simulation: its pointers run past the PHOT table
    assert any("PTROBS pointers are inconsistent" in w and "173 object(s)" in w for w in lcs.warnings)
    first = lcs.obs[lcs.obs.SNID == 1186139]
    assert len(first) == 71
    assert first.MJD.iloc[0] == pytest.approx(56956.203)
    assert first.FLUXCAL.iloc[0] == pytest.approx(1.7827, abs=1e-4)
    # object 4 (SNID 587172) is where pointers first diverge; its rows are the
    # fifth separator segment of the PHOT file, not the rows its pointers name
    phot = fits.getdata(des_sim / "DES_Ia-0001_PHOT.FITS")
    sep = np.flatnonzero(phot["MJD"] == -777)
    seg = phot[sep[3] + 1 : sep[4]]
    obj = lcs.obs[lcs.obs.SNID == 587172]
    assert len(obj) == 68
    np.testing.assert_allclose(obj.MJD.to_numpy(), seg["MJD"])
    np.testing.assert_allclose(obj.FLUXCAL.to_numpy(), seg["FLUXCAL"], rtol=1e-6)
    m = lcs.meta.set_index("SNID").loc[587172]
    assert pytest.approx(56574.19, abs=0.01) == m.PEAKMJD
    assert pytest.approx(0.72273, abs=1e-4) == m.REDSHIFT_FINAL
    assert lcs.band_to_wave == {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0}


def test_lowz_real_gzipped_string_snids_and_named_bands(lowz_real):
    lcs = read_one(lowz_real)
    assert len(lcs) == 342 and not lcs.is_sim
    assert lcs.counts_by_type() == {"SNIa": 342}
    row = lcs.meta.set_index("SNID").loc["2004ef"]
    assert row.NOBS == 310 and pytest.approx(0.029782, abs=1e-6) == row.REDSHIFT_FINAL
    obs = lcs.obs[lcs.obs.SNID == "2004ef"]
    assert obs.MJD.iloc[0] == pytest.approx(53265.15) and obs.BAND.iloc[0] == "p"
    assert obs.FLUXCAL.iloc[0] == pytest.approx(2808.02, abs=0.01)
    # `CFA3K-V/r` is V band, not the DES r the survey name would suggest
    assert lcs.band_names["r"] == "CFA3K-V/r" and lcs.band_to_wave["r"] == 5450.0
    assert lcs.band_names["p"] == "CFA3K-U/p" and lcs.band_to_wave["p"] == 3600.0
    assert lcs.band_to_wave["c"] == 6185.0  # CSP-r/c


def test_lsst_sim_six_bands_and_salt2_model_means_ia(lsst_sim):
    lcs = read_one(lsst_sim)
    assert len(lcs) == 111 and lcs.bands == ["Y", "g", "i", "r", "u", "z"]
    assert lcs.meta.SNID.iloc[0] == "17470927"  # stored as a string, kept as one
    # SIM_TYPE_INDEX 11 would default to SNIax, but SIM_MODEL_NAME is SALT2: SN Ia
    assert set(lcs.meta.TYPE) == {11} and lcs.counts_by_type() == {"SNIa": 111}
    assert lcs.meta.NOBS.iloc[0] == 191 and len(lcs.obs) == 17837


def test_snpcc_text_types_from_sim_comment_and_labels(snpcc):
    found = discover_paths([str(snpcc)])
    assert [u.key for u in found.units][:2] == ["snpcc_dev__text_0000", "snpcc_dev__text_0001"]
    assert sum(len(u.files) for u in found.units) == 7131
    total = {}
    for unit in found.units:
        lcs = read_unit(unit)
        for k, v in lcs.counts_by_type().items():
            total[k] = total.get(k, 0) + v
        if (lcs.meta.SNID == 339520).any():
            row = lcs.meta.set_index("SNID").loc[339520]
            assert row.TYPE_NAME == "SNII" and row.NOBS == 73
            assert pytest.approx(56247.426) == row.PEAKMJD  # SEARCH_PEAKMJD: no PEAKMJD line
            assert pytest.approx(0.34397) == row.REDSHIFT_FINAL
            assert pytest.approx(0.0298) == row.REDSHIFT_FINAL_ERR
            assert pytest.approx(0.0111) == row.MWEBV
            o = lcs.obs[lcs.obs.SNID == 339520]
            assert (o.MJD.iloc[0], o.BAND.iloc[0], o.FLUXCAL.iloc[0]) == (56198.992, "g", 7.824)
    # labels.csv: 1906 Ia; II, IIL, IIP, IIn -> SNII; Ib, Ibc, Ic -> SNIbc
    assert total == {"SNIa": 1906, "SNII": 4236, "SNIbc": 989}


def test_labels_path_overrides_types(snpcc, tmp_path):
    from scone_assets.config import SconeConfig
    from scone_assets.snana.read import load_labels

    labels = tmp_path / "labels.csv"
    labels.write_text("SNID,TYPE\n339520,Ia\n")
    unit = next(u for u in discover_paths([str(snpcc)]).units
                if any(f.endswith("DES_SN339520.DAT") for f in u.files))
    lcs = read_unit(unit, SconeConfig(labels_path=str(labels)), load_labels(str(labels)))
    assert lcs.meta.set_index("SNID").loc[339520].TYPE_NAME == "SNIa"
    # the shipped labels agree with SIM_COMMENT everywhere in this unit
    shipped = load_labels(str(snpcc / "labels.csv"))
    plain = read_unit(unit)
    assert all(shipped[str(s)] == t for s, t in zip(plain.meta.SNID, plain.meta.TYPE_NAME, strict=True))


def test_simulation_folder_list_and_readme(des_sim, lowz_real):
    from scone_assets.config import SconeConfig
    from scone_assets.snana.read import discover

    found = discover(SconeConfig(input_data_paths=[str(lowz_real)]))
    assert [u.key for u in found.units] == ["LOWZ_REAL__DES-SN5YR_LOWZ"]
    assert found.units[0].files[0].endswith("DES-SN5YR_LOWZ_HEAD.FITS.gz")  # .LIST omits .gz
    assert found.units[0].readme.endswith("DES-SN5YR_LOWZ.README")
    found = discover(SconeConfig(
        metadata_paths=[str(des_sim / "DES_Ia-0001_HEAD.FITS")],
        lcdata_paths=[str(des_sim / "DES_Ia-0001_PHOT.FITS")]))
    assert len(found.units) == 1 and len(read_unit(found.units[0])) == 200


def test_any_fsspec_url(des_sim, snpcc):
    import fsspec

    from scone_assets.config import SconeConfig
    from scone_assets.snana.read import discover

    mem = fsspec.filesystem("memory")
    for name in ("DES_Ia-0001_HEAD.FITS", "DES_Ia-0001_PHOT.FITS"):
        mem.pipe(f"/remote/DES/{name}", (des_sim / name).read_bytes())
    mem.pipe("/remote/DES/DES_SN339520.DAT", (snpcc / "DES_SN339520.DAT").read_bytes())
    found = discover(SconeConfig(input_path="memory://remote/DES"))
    assert [u.kind for u in found.units] == ["fits", "text"] and not found.errors
    assert len(read_unit(found.units[0])) == 200
    text = read_unit(found.units[1])
    assert list(text.meta.SNID) == [339520] and text.meta.TYPE_NAME[0] == "SNII"


def test_yse_vetted_host_redshift_is_a_host_spec_z():
    """YSE DR1's VETTED_HOST_GALAXY_REDSHIFT (-99 when unknown) ranks after REDSHIFT_FINAL."""
    from collections import Counter

    from conftest import shared

    from scone_assets.snana.read import best_redshift

    lcs = read_one(shared("yse_dev"))
    assert len(lcs) == 144
    m = lcs.meta.set_index("SNID")
    vetted = m.loc[["2019lbi", "2019uez", "2019yyb"], ["VETTED_HOST_GALAXY_REDSHIFT",
                                                      "VETTED_HOST_GALAXY_REDSHIFT_ERR"]]
    # 2019yyb's is written -99.0000 +- 0.005: unknown
    np.testing.assert_allclose(vetted.to_numpy(), [[0.0158, 0.005], [0.0391, 0.005],
                                                   [np.nan, 0.005]])
    assert best_redshift(m.loc["2019lbi"]) == (pytest.approx(0.013), pytest.approx(0.005),
                                               "REDSHIFT_FINAL")
    # every object has REDSHIFT_FINAL, so none gains a redshift; without it 69 of 144 would
    # still have one, where the SNANA host columns give none
    assert Counter(best_redshift(r)[2] for r in lcs.meta.itertuples()) == {"REDSHIFT_FINAL": 144}
    assert lcs.meta[["HOSTGAL_SPECZ", "HOSTGAL_PHOTOZ"]].isna().all().all()
    no_final = lcs.meta.assign(REDSHIFT_FINAL=np.nan)
    assert Counter(best_redshift(r)[2] for r in no_final.itertuples()) == {
        "VETTED_HOST_GALAXY_REDSHIFT": 69, None: 75}
    lbi = no_final.set_index("SNID").loc["2019lbi"]
    assert best_redshift(lbi) == (pytest.approx(0.0158), pytest.approx(0.005),
                                  "VETTED_HOST_GALAXY_REDSHIFT")
