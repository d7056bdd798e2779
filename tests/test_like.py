"""`scone simulate --like`: a labelled simulation of the survey in some real data, taken
from the data alone. On the shared real sets (yse_dev, LOWZ_REAL)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from scone_assets.simulate.classes import SimulationError
from scone_assets.simulate.like import model_from_inputs
from scone_assets.simulate.run import simulate
from scone_assets.snana.read import discover_paths, read_unit

CLI = [sys.executable, "-m", "scone_assets.cli"]


def read_all(folder: Path):
    return [read_unit(u) for u in discover_paths([str(folder)]).units]


def gaps(lcs_list) -> np.ndarray:
    out = []
    for lcs in lcs_list:
        for _, obs in lcs.iter_lightcurves():
            nights = np.unique(np.floor(obs.MJD.to_numpy()))
            out.append(np.diff(nights))
    return np.concatenate(out)


def binned_errors(real, sim, band: str) -> tuple[list[float], list[float]]:
    """Median FLUXCALERR of the real and the simulated observations in one band, in five
    bins of equal count up to the 90th percentile of the real fluxes."""
    r, s = (pd.concat([lcs.obs for lcs in x]) for x in (real, sim))
    r, s = r[r["BAND"].eq(band)], s[s["BAND"].eq(band)]
    edges = np.quantile(r.FLUXCAL, np.linspace(0, 0.9, 6))  # the brightest tenth: too few, too spread

    def medians(obs: pd.DataFrame) -> list[float]:
        which = np.digitize(obs.FLUXCAL.to_numpy(), edges)  # 1..5 inside the bins
        return [float(np.median(obs.FLUXCALERR.to_numpy()[which == k])) for k in range(1, 6)]

    return medians(r), medians(s)


@pytest.fixture(scope="module")
def yse_like(tmp_path_factory):
    from conftest import shared

    yse = shared("yse_dev")
    out = tmp_path_factory.mktemp("like") / "YSE_LIKE"
    res = simulate(out, 600, seed=3, per_file=300, jobs=1, progress=False, like=model_from_inputs([str(yse)]))
    return yse, res


def test_like_yse_matches_the_survey(yse_like):
    yse, res = yse_like
    real, sim = read_all(yse), read_all(res.folder)
    assert res.n_written == sum(len(s) for s in sim) == 600
    # the survey's own bands, placed where the reader places them
    assert sim[0].band_to_wave == real[0].band_to_wave == {"X": 4746.0, "g": 4866.0, "r": 6215.0, "Y": 6366.0,
                                                            "i": 7545.0, "z": 8679.0}
    assert sim[0].survey == "YSE"
    # observing sequences are real ones: every simulated night is a night of the data
    real_nights = {int(n) for lcs in real for n in np.floor(lcs.obs.MJD)}
    sim_nights = {int(n) for lcs in sim for n in np.floor(lcs.obs.MJD)}
    assert sim_nights <= real_nights
    g_real, g_sim = gaps(real), gaps(sim)
    assert abs(np.median(g_sim) - np.median(g_real)) <= 0.25 * np.median(g_real)
    # the error-vs-flux relation per band: the median FLUXCALERR in five flux bins within 25%. (A fit's sky floor no longer compares: yse_dev holds only S/N >= 4,
    # and so, cut alike, does its simulation, so no observation is sky alone.)
    for band in ("g", "r", "X", "Y", "i"):
        (real_err, sim_err) = binned_errors(real, sim, band)
        assert sim_err == pytest.approx(real_err, rel=0.25), band
    # the photometry floor: yse_dev publishes only S/N >= 4 (its MASK_USED says SNR >= 4)
    snr_real = np.concatenate([(lcs.obs.FLUXCAL / lcs.obs.FLUXCALERR).to_numpy() for lcs in real])
    snr_sim = np.concatenate([(lcs.obs.FLUXCAL / lcs.obs.FLUXCALERR).to_numpy() for lcs in sim])
    assert snr_real.min() == pytest.approx(4.0, abs=0.01)
    assert snr_sim.min() >= 4.0 and np.quantile(snr_sim, 0.05) < 5.0
    # PEAKMJD made as the data's: YSE's is its brightest observation's time
    for lcs_list in (real, sim):
        at_brightest = [abs(row.PEAKMJD - obs.MJD.to_numpy()[np.argmax(obs.FLUXCAL.to_numpy())]) < 0.01
                        for lcs in lcs_list for row, obs in lcs.iter_lightcurves()]
        assert np.mean(at_brightest) >= 0.99
    # redshifts from the data's REDSHIFT_FINAL (median 0.068 for yse_dev)
    z_real = np.concatenate([lcs.meta.REDSHIFT_FINAL.to_numpy() for lcs in real])
    z_sim = np.concatenate([lcs.meta.REDSHIFT_FINAL.to_numpy() for lcs in sim])
    assert np.median(z_real) == pytest.approx(0.068, abs=0.002)
    # drawn from the data's, then thinned by detection and the selection limit: they keep
    # nearly every SN Ia (median within 20%: smoothed, then thinned) and the fainter classes'
    # nearer objects
    is_ia = np.concatenate([(lcs.meta.TYPE_NAME == "SNIa").to_numpy() for lcs in sim])
    assert np.median(z_sim[is_ia]) == pytest.approx(np.median(z_real), rel=0.2)
    assert 0.5 * np.median(z_real) < np.median(z_sim[~is_ia]) < 0.8 * np.median(z_real)
    assert np.quantile(z_sim, 0.9) < 2 * np.quantile(z_real, 0.9)
    assert np.all(z_sim > 0)  # every simulated object has a redshift (<= 0 reads as none)
    readme = (res.folder / f"{res.version}.README").read_text()
    assert ("like: redshifts of 144 objects (median 0.068), smoothed in ln(1+z): REDSHIFT_FINAL 144, "
            "VETTED_HOST_GALAXY_REDSHIFT 0, HOSTGAL_SPECZ 0, HOSTGAL_PHOTOZ 0, none 0") in readme
    assert "like: observing sequences (times, bands, per-observation sky floor): 144 real objects" in readme
    # and says how the written redshifts differ from the data's, with the numbers of the files
    lo, mid, hi = np.quantile(z_sim, [0.1, 0.5, 0.9])
    assert (f"like: written redshifts: median {mid:.3f}, 10-90% {lo:.3f}-{hi:.3f}, against the data's "
            "median 0.068, 10-90% 0.022-0.120") in readme
    assert mid < 0.8 * np.median(z_real)
    # the selection: yse_dev's 2% quantile of its objects' brightest observations is FLUXCAL 763.7
    assert ("like: selection: an object is kept when its brightest observation reaches the 2% quantile of the "
            "data's brightest observations, per survey: YSE FLUXCAL 763.7 (mag 20.29)") in readme
    brightest_sim = np.concatenate([lcs.obs.groupby("SNID").FLUXCAL.max().to_numpy() for lcs in sim])
    assert brightest_sim.min() >= 763.6
    assert ("like: photometry floor: observations under the 0.1% quantile of the data's S/N are dropped when "
            "it is positive (the survey publishes only detections), per survey: YSE S/N 4.01 (cut)") in readme
    assert ("like: PEAKMJD written as the data's: the brightest observation's time where it is that for at "
            "least 50% of a survey's objects, else the true peak within a day; per survey: YSE 99% at the "
            "brightest observation (brightest observation)") in readme
    # and how its light curves compare with the data's, each side computed here from its files
    def shapes(lcs_list) -> dict[str, np.ndarray]:
        rows = [(len(obs), obs.MJD.min() - row.PEAKMJD, obs.MJD.max() - row.PEAKMJD,
                 27.5 - 2.5 * np.log10(obs.FLUXCAL.max())) for lcs in lcs_list for row, obs in lcs.iter_lightcurves()]
        return dict(zip(("n", "first", "last", "mag"), np.array(rows, float).T, strict=True))

    def q(v: np.ndarray, fmt: str) -> str:
        return " / ".join(format(float(x), fmt) for x in np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9]))

    d, s = shapes(real), shapes(sim)
    assert len(d["n"]) == 144 and len(s["n"]) == 600
    assert q(d["n"], ".0f") == "14 / 25 / 46 / 78 / 113"  # yse_dev's, from its files
    for what, key, fmt in (("observations per light curve", "n", ".0f"),
                           ("first observation, days from PEAKMJD", "first", ".0f"),
                           ("last observation, days from PEAKMJD", "last", ".0f"),
                           ("brightest observation, mag (27.5 - 2.5 log10 FLUXCAL)", "mag", ".2f")):
        assert f"like:   {what}: data {q(d[key], fmt)}; simulation {q(s[key], fmt)}" in readme, what


def test_like_never_reads_labels_and_is_deterministic(yse_like, tmp_path):
    yse, res = yse_like
    from conftest import scrambled_yse

    scrambled = scrambled_yse(yse, tmp_path / "yse_scrambled")
    again = simulate(tmp_path / "YSE_LIKE", 600, seed=3, per_file=300, jobs=2, progress=False,
                     like=model_from_inputs([str(scrambled)]))
    for a, b in zip(sorted(res.folder.glob("*.FITS")), sorted(again.folder.glob("*.FITS")), strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name
    other = simulate(tmp_path / "SEED4" / "YSE_LIKE", 600, seed=4, per_file=300, jobs=1, progress=False,
                     like=model_from_inputs([str(yse)]))
    assert (other.folder / "YSE_LIKE-0001_PHOT.FITS").read_bytes() != (res.folder / "YSE_LIKE-0001_PHOT.FITS").read_bytes()


def test_like_lowz_fits_from_the_cli(lowz_real, tmp_path):
    out = tmp_path / "LOWZ_LIKE"
    res = subprocess.run([*CLI, "simulate", "--out", str(out), "--like", str(lowz_real), "--n", "300",
                          "--per-file", "300", "--seed", "2", "--jobs", "1", "--mix", "SNIa=0.5,SNIIP=0.5"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "survey model from 342 real light curves" in res.stdout and "wrote 300 light curves" in res.stdout
    assert (f"for the survey's data, train on {out} with `augment_copies: 2`, `with_z: false` and predict with "
            "`class_prior: data`") in res.stdout  # the settings measured on real survey data
    real, sim = read_all(lowz_real), read_all(out)
    assert set(sim[0].band_to_wave) <= set(real[0].band_to_wave) and len(sim[0].band_to_wave) >= 5
    assert sim[0].counts_by_type() == {"SNII": 150, "SNIa": 150}
    # LOWZ's photometry holds almost nothing under S/N 2.2 (0.1% quantile), and its PEAKMJD is a
    # fit (19% of objects' at their brightest observation): the simulation cuts alike and
    # writes the true peak within a day
    readme = next(out.glob("*.README")).read_text()
    assert "DES5YR_LOWZ_COMBINED S/N 2.20 (cut)" in readme
    # the console shows how the simulation compares with the data, as the README does
    # (LOWZ_REAL's 342 light curves: 20.1 / 34.25 / 72.5 / 144.5 / 239.8 observations)
    shown = [line.strip() for line in res.stdout.splitlines() if line.startswith("  observations per light curve")]
    assert len(shown) == 1 and shown[0].startswith("observations per light curve: data 20 / 34 / 72 / 144 / 240; ")
    assert f"like:   {shown[0]}" in readme
    assert "DES5YR_LOWZ_COMBINED 19% at the brightest observation (true peak)" in readme
    snr = np.concatenate([(lcs.obs.FLUXCAL / lcs.obs.FLUXCALERR).to_numpy() for lcs in sim])
    assert snr.min() >= 2.19
    head = fits.getdata(next(out.glob("*_HEAD.FITS")))
    offsets = head["PEAKMJD"] - head["SIM_PEAKMJD"]
    assert np.abs(offsets).max() < 5 and 0.5 < np.std(offsets) < 1.5
    # LOWZ's Johnson-Cousins and NIR bands are Vega-based (bands.ab_minus_own): written so
    assert ("CFA3S-R/x +0.21, CFA3S-I/y +0.45, CSP-y/k +0.63, CSP-Y/j +0.63, CSP-J/l +0.91, CSP-j/m +0.91, "
            "CSP-H/n +1.39") in readme
    assert "CSP-g/b" not in readme.split("magnitude systems:")[1].splitlines()[0]  # SDSS-like: AB
    # CSP i - Y at peak, SNe Ia: real LOWZ (a published SN Ia sample) 0.02; on AB the
    # simulation's would be 0.6-0.7 bluer
    real_iy, sim_iy = peak_colour(real, "d", "j"), peak_colour(sim, "d", "j", type_name="SNIa")
    assert len(real_iy) == 67 and len(sim_iy) >= 10
    assert np.median(real_iy) == pytest.approx(0.02, abs=0.01)
    assert abs(np.median(sim_iy) - np.median(real_iy)) < 0.25


def peak_colour(lcs_list, b1: str, b2: str, type_name: str | None = None) -> np.ndarray:
    """Per object, the median b1 - b2 of observations in both bands within 1.5 d of each
    other and 5 d of PEAKMJD."""
    out = []
    for lcs in lcs_list:
        for row, obs in lcs.iter_lightcurves():
            if type_name is not None and type_name != row.TYPE_NAME:
                continue
            t, b, f = obs.MJD.to_numpy() - row.PEAKMJD, obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy()
            one, two = (b == b1) & (np.abs(t) < 5), (b == b2) & (np.abs(t) < 5)
            pairs = [(f1, f[two][np.argmin(np.abs(t[two] - t1))]) for t1, f1 in zip(t[one], f[one], strict=True)
                     if two.any() and np.min(np.abs(t[two] - t1)) < 1.5]
            c = [-2.5 * np.log10(a / c) for a, c in pairs if a > 0 and c > 0]
            if c:
                out.append(float(np.median(c)))
    return np.array(out)


def test_like_bad_input(yse_like, tmp_path):
    yse, _ = yse_like
    few = tmp_path / "few"
    few.mkdir()
    for f in sorted(yse.glob("*.snana.dat"))[:12]:
        shutil.copy(f, few / f.name)
    with pytest.raises(SimulationError, match="at least 20 light curves .* gave 12"):
        model_from_inputs([str(few)])

    noz = tmp_path / "noz"
    noz.mkdir()
    for f in sorted(yse.glob("*.snana.dat"))[:30]:
        lines = [ln for ln in f.read_text().splitlines()
                 if not ln.startswith(("REDSHIFT_FINAL", "VETTED_HOST_GALAXY_REDSHIFT"))]
        (noz / f.name).write_text("\n".join(lines) + "\n")
    res = subprocess.run([*CLI, "simulate", "--out", str(tmp_path / "NOZ"), "--like", str(noz), "--n", "50",
                          "--per-file", "50", "--jobs", "1"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert ("carry no redshift (REDSHIFT_FINAL, VETTED_HOST_GALAXY_REDSHIFT, HOSTGAL_SPECZ, HOSTGAL_PHOTOZ); "
            "redshifts are drawn from a "
            "volumetric rate") in res.stderr
    sim = read_all(tmp_path / "NOZ")
    assert np.all(np.isnan(sim[0].meta.REDSHIFT_FINAL))  # no redshift in, none out

    odd = tmp_path / "odd"
    odd.mkdir()
    for f in sorted(yse.glob("*.snana.dat"))[:25]:
        text = f.read_text().replace("SURVEY:  YSE", "SURVEY:  NOWHERE")
        (odd / f.name).write_text(text)
    res = subprocess.run([*CLI, "simulate", "--out", str(tmp_path / "ODD"), "--like", str(odd), "--n", "50"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "cannot be placed in wavelength" in res.stderr and "band_to_wave" in res.stderr
    assert not (tmp_path / "ODD").exists()


def test_like_host_redshifts_fits(des_sim, tmp_path):
    """REDSHIFT_FINAL, else HOSTGAL_SPECZ, else HOSTGAL_PHOTOZ, per object; SNANA's -9 and -99 are missing."""
    data = tmp_path / "hostz"
    data.mkdir()
    with fits.open(des_sim / "DES_Ia-0001_HEAD.FITS", memmap=False) as hdul:
        head = hdul[1].data
        final, specz, photoz = (np.array(head[c], dtype=np.float64) for c in
                                ("REDSHIFT_FINAL", "HOSTGAL_SPECZ", "HOSTGAL_PHOTOZ"))
        head["REDSHIFT_FINAL"][60:100] = -9.0
        head["REDSHIFT_FINAL"][100:] = -99.0
        head["HOSTGAL_SPECZ"][140:] = -9.0
        hdul.writeto(data / "DES_Ia-0001_HEAD.FITS")
    shutil.copy(des_sim / "DES_Ia-0001_PHOT.FITS", data)
    assert len(read_all(data)[0]) == 200
    model = model_from_inputs([str(data)])
    want = np.concatenate([final[:60], specz[60:140], photoz[140:]])
    np.testing.assert_array_equal(model.z, want)
    assert np.median(want) == pytest.approx(0.5725, abs=1e-4)
    line = ("redshifts of 200 objects (median 0.573), smoothed in ln(1+z): REDSHIFT_FINAL 60, "
            "VETTED_HOST_GALAXY_REDSHIFT 0, HOSTGAL_SPECZ 80, HOSTGAL_PHOTOZ 60, none 0")
    assert line in model.provenance
    res = simulate(tmp_path / "HOSTZ", 40, seed=1, per_file=40, jobs=1, progress=False, like=model)
    assert f"like: {line}" in (res.folder / "HOSTZ.README").read_text()


def test_like_host_redshifts_text(yse_like, tmp_path):
    """TEXT headers: `HOSTGAL_SPECZ: z +- err`, or a separate `HOSTGAL_PHOTOZ_ERR:` line."""
    yse, _ = yse_like
    orig, data = tmp_path / "orig", tmp_path / "hostz"
    orig.mkdir()
    data.mkdir()
    for i, f in enumerate(sorted(yse.glob("*.snana.dat"))[:30]):
        shutil.copy(f, orig / f.name)
        lines = []
        for ln in f.read_text().splitlines():
            if ln.startswith("VETTED_HOST_GALAXY_REDSHIFT:"):  # it would rank before HOSTGAL_*
                continue
            if ln.startswith("REDSHIFT_FINAL:"):
                z, _, err = ln.split(":", 1)[1].split()[:3]
                ln = (f"HOSTGAL_SPECZ: {z} +- {err}" if i < 20 else
                      f"HOSTGAL_SPECZ: -9.0 +- -9.0\nHOSTGAL_PHOTOZ: {z}\nHOSTGAL_PHOTOZ_ERR: {err}")
            lines.append(ln)
        (data / f.name).write_text("\n".join(lines) + "\n")
    real = read_all(orig)[0].meta
    meta = read_all(data)[0].meta
    assert meta.REDSHIFT_FINAL.isna().all()
    np.testing.assert_array_equal(meta.HOSTGAL_SPECZ[:20], real.REDSHIFT_FINAL[:20])
    np.testing.assert_array_equal(meta.HOSTGAL_SPECZ_ERR[:20], real.REDSHIFT_FINAL_ERR[:20])
    assert meta.HOSTGAL_SPECZ[20:].isna().all()
    np.testing.assert_array_equal(meta.HOSTGAL_PHOTOZ[20:], real.REDSHIFT_FINAL[20:])
    np.testing.assert_array_equal(meta.HOSTGAL_PHOTOZ_ERR[20:], real.REDSHIFT_FINAL_ERR[20:])
    model = model_from_inputs([str(data)])
    np.testing.assert_array_equal(model.z, real.REDSHIFT_FINAL.to_numpy())
    assert any(p.endswith("REDSHIFT_FINAL 0, VETTED_HOST_GALAXY_REDSHIFT 0, HOSTGAL_SPECZ 20, HOSTGAL_PHOTOZ 10, "
                                             "none 0") for p in model.provenance)


DES_WAVES = {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0}  # as the reader places DES_SIM's bands
LSST_WAVES = {"u": 3671.0, "g": 4827.0, "r": 6223.0, "i": 7546.0, "z": 8691.0, "Y": 9712.0}



def test_heatmaps_take_the_host_redshift_without_redshift_final(tmp_path):
    """with_z heatmaps: REDSHIFT_FINAL, else HOSTGAL_SPECZ, else HOSTGAL_PHOTOZ (as --like does);
    the index says which column each object's redshift came from."""
    from conftest import shared

    from scone_assets.config import config_from_dict
    from scone_assets.heatmaps.run import make_heatmaps
    from scone_assets.heatmaps.store import load_catalogs

    data = tmp_path / "hostz"
    data.mkdir()
    files = sorted(shared("yse_dev").glob("*.snana.dat"))[:6]
    want = {}
    for i, f in enumerate(files):
        lines = []
        for ln in f.read_text().splitlines():
            if ln.startswith("SNID:"):
                snid = ln.split()[1]
            if ln.startswith("VETTED_HOST_GALAXY_REDSHIFT:") and i:  # it would rank before HOSTGAL_*
                continue
            if ln.startswith("REDSHIFT_FINAL:") and i:
                z, _, err = ln.split(":", 1)[1].split()[:3]
                ln = (f"HOSTGAL_SPECZ: {z} +- {err}" if i < 4 else
                      f"HOSTGAL_SPECZ: -9.0 +- -9.0\nHOSTGAL_PHOTOZ: {z}\nHOSTGAL_PHOTOZ_ERR: {err}")
                want[snid] = (float(z), float(err), "HOSTGAL_SPECZ" if i < 4 else "HOSTGAL_PHOTOZ")
            elif ln.startswith("REDSHIFT_FINAL:"):
                z, _, err = ln.split(":", 1)[1].split()[:3]
                want[snid] = (float(z), float(err), "REDSHIFT_FINAL")
            lines.append(ln)
        (data / f.name).write_text("\n".join(lines) + "\n")
    cfg = config_from_dict({"input_path": str(data), "heatmaps_path": str(tmp_path / "h"), "survey": "YSE",
                            "num_mjd_bins": 40, "num_wavelength_bins": 16})
    assert make_heatmaps(cfg, jobs=1, progress=False).ok
    index = load_catalogs(cfg.heatmaps_path, ["full"])["full"].index.set_index("SNID")
    assert sorted(index.index) == sorted(want)
    for snid, (z, err, col) in want.items():
        assert (index.z[snid], index.z_err[snid], index.z_source[snid]) == (z, err, col)
    assert sorted(index.z_source) == ["HOSTGAL_PHOTOZ", "HOSTGAL_PHOTOZ", "HOSTGAL_SPECZ", "HOSTGAL_SPECZ",
                                      "HOSTGAL_SPECZ", "REDSHIFT_FINAL"]

def test_like_a_mix_of_surveys_keeps_each_surveys_bands(des_sim, lsst_sim, yse_like, tmp_path):
    """DES and LSST share letters at other wavelengths (r 6435 / 6223 A); g, 1 A apart, is one band."""
    real = {"DES": read_all(des_sim)[0], "LSST": read_all(lsst_sim)[0]}
    assert real["DES"].band_to_wave == DES_WAVES and real["LSST"].band_to_wave == LSST_WAVES
    model = model_from_inputs([str(des_sim), str(lsst_sim)])
    res = simulate(tmp_path / "MIX", 300, seed=5, per_file=300, jobs=1, progress=False, like=model)
    sim = read_all(res.folder)[0]
    # the first input keeps its letters; LSST's colliding r, i, z get free ids, named as LOWZ names them
    want = {"u": 3671.0, "g": 4828.0, "a": 6223.0, "r": 6435.0, "b": 7546.0, "i": 7828.0, "c": 8691.0,
            "z": 9181.0, "Y": 9712.0}
    assert sim.band_to_wave == want
    assert sim.band_names == {"u": "LSST-u", "g": "DES-g", "a": "LSST-r/a", "r": "DES-r", "b": "LSST-i/b",
                              "i": "DES-i", "c": "LSST-z/c", "z": "DES-z", "Y": "LSST-Y"}
    (res.folder / "MIX.README").unlink()  # the names alone place every band too
    assert read_all(res.folder)[0].band_to_wave == want
    # every simulated object is observed in one survey's bands, on that survey's nights
    nights = {k: set(np.floor(lcs.obs.MJD).astype(int)) for k, lcs in real.items()}
    waves = {k: set(lcs.band_to_wave.values()) for k, lcs in real.items()}
    seen = {"DES": 0, "LSST": 0}
    for _, obs in sim.iter_lightcurves():
        home = [k for k in real if set(np.floor(obs.MJD).astype(int)) <= nights[k]]
        assert len(home) == 1
        k = home[0]
        assert all(min(abs(sim.band_to_wave[b] - y) for y in waves[k]) <= 1.0 for b in set(obs.BAND)), k
        seen[k] += 1
    assert seen["DES"] + seen["LSST"] == 300 and min(seen.values()) > 60  # 200 and 111 real sequences
    assert ("observing sequences (times, bands, per-observation sky floor): 311 real objects (DES 200, "
            "LSST 111), each in its own survey's bands") in model.provenance
    # YSE's PS1 griz and DES griz collide in every letter: YSE (first) keeps them
    yse, _ = yse_like
    both = model_from_inputs([str(yse), str(des_sim)])
    assert dict(zip(both.names, both.waves, strict=True)) == {
        "YSE-X": 4746.0, "DES-g/a": 4828.0, "YSE-g": 4866.0, "YSE-r": 6215.0, "YSE-Y": 6366.0, "DES-r/b": 6435.0,
        "YSE-i": 7545.0, "DES-i/c": 7828.0, "YSE-z": 8679.0, "DES-z/d": 9181.0}


def test_a_short_training_on_a_like_simulation_beats_chance_on_real_yse(yse_like, tmp_path):
    """Trained on the simulation only; yse_dev's labels are used to score, never to fit."""
    from scone_assets.config import SconeConfig
    from scone_assets.heatmaps.run import make_heatmaps
    from scone_assets.heatmaps.store import load_catalogs
    from scone_assets.model import metrics
    from scone_assets.model.predict import predict
    from scone_assets.model.train import train

    yse, _ = yse_like
    sims = simulate(tmp_path / "TRAIN", 1500, seed=8, per_file=750, jobs=2, progress=False,
                    like=model_from_inputs([str(yse)]))
    grid = {"num_mjd_bins": 60}
    cfg = SconeConfig(input_path=str(sims.folder), heatmaps_path=str(tmp_path / "h_sim"), num_epochs=25, seed=1,
                      **grid)
    assert make_heatmaps(cfg, jobs=2, progress=False).ok
    train(cfg, load_catalogs(cfg.heatmaps_path, ["full"]), tmp_path / "model", progress=False)
    real = SconeConfig(input_path=str(yse), heatmaps_path=str(tmp_path / "h_real"), mode="predict",
                       trained_model=str(tmp_path / "model"), **grid)
    assert make_heatmaps(real, jobs=2, progress=False).ok
    table = predict(real, load_catalogs(real.heatmaps_path, ["full"])["full"], tmp_path / "model",
                    tmp_path / "predictions.csv")
    labels = pd.read_csv(yse / "labels.csv", dtype={"SNID": str}).set_index("SNID")
    y = labels.loc[table.SNID, "IS_IA"].to_numpy().astype(int)
    p = table.PROB_SCONE.to_numpy()
    chance = max(y.mean(), 1 - y.mean())  # 98 of 144 are SNe Ia: 0.68 by always saying Ia
    assert len(table) == 144 and chance == pytest.approx(98 / 144)
    print(f"yse_dev: accuracy {np.mean((p >= 0.5) == y):.3f}, AUC {metrics.roc_auc(y, p):.3f}")
    assert np.mean((p >= 0.5) == y) > chance + 0.05
    assert metrics.roc_auc(y, p) > 0.8


def test_like_mix_is_rates_times_what_the_survey_keeps(yse_like):
    """Without --mix, a --like simulation holds each class as often as it explodes
    (volumetric rates) times the share the survey's detection and selection keep."""
    from scone_assets.simulate.rates import VOLUMETRIC_RATES, survey_mix

    yse, res = yse_like
    fractions, kept = survey_mix(model_from_inputs([str(yse)]), 3)
    assert set(kept) == set(VOLUMETRIC_RATES)
    # at yse_dev's redshifts nearly every SN Ia passes; a fainter SN II-P often does not
    assert kept["SNIa"] > 0.9 and 0.3 < kept["SNIIP"] < 0.7 and kept["SNIIP"] < kept["SNIIn"]
    weights = {k: VOLUMETRIC_RATES[k] * kept[k] for k in kept}
    assert fractions == pytest.approx({k: w / sum(weights.values()) for k, w in weights.items()})
    # written as exact quotas of the 600 (largest remainders)
    assert sum(res.counts.values()) == 600
    for name, frac in fractions.items():
        assert abs(res.counts.get(name, 0) - frac * 600) < 1, name
    readme = (res.folder / f"{res.version}.README").read_text()
    assert f"SNIa {VOLUMETRIC_RATES['SNIa']:.4f} x {kept['SNIa']:.3f}" in readme
    # the 02cx-like share of SNe Ia is LOSS's 5%, not the presets' default mix's 20%
    assert res.counts.get("SNIax", 0) < 0.1 * res.counts["SNIa"]


def test_a_written_spectroscopic_redshift_is_never_zero_or_below():
    """Noise that would take a redshift to or below zero, which readers take for "none", is
    not applied: a 20,000-object yse_dev-like simulation once held an object at z = 0.0013
    written as -0.0003, and a with_z training on it stopped."""
    from scone_assets.simulate.generate import spectroscopic_redshift

    assert spectroscopic_redshift(0.0013, -0.0016) == 0.0013
    assert spectroscopic_redshift(0.0013, -0.0013) == 0.0013
    assert spectroscopic_redshift(0.0013, -0.0005) == pytest.approx(0.0008)
    assert spectroscopic_redshift(0.068, 0.0004) == pytest.approx(0.0684)


def test_ia_dust_tau_sets_the_sn_ia_host_dust_and_is_recorded(yse_like, tmp_path):
    """`--ia-dust-tau`: a survey's own SN Ia host-dust scale, in the model's digest (so a
    folder made with another is refused, not resumed) and in the simulation's README."""
    from scone_assets.simulate.like import SurveyModel

    yse, _ = yse_like
    model = model_from_inputs([str(yse)])
    assert model.with_ia_dust(None) is model
    dusty = model.with_ia_dust(1.0)
    assert dusty.ia_av_tau == 1.0 and dusty.digest() != model.digest()
    (tmp_path / "m.npz").write_bytes(dusty.to_bytes())
    assert SurveyModel.load(tmp_path / "m.npz").ia_av_tau == 1.0
    (tmp_path / "d.npz").write_bytes(model.to_bytes())
    with np.load(tmp_path / "d.npz") as d:
        assert "ia_av_tau" not in d  # a model without it keeps the digest existing simulations hold
    for bad in (0.0, -0.3, float("nan"), 6.0):
        with pytest.raises(SimulationError, match="--ia-dust-tau must be a host A_V scale"):
            model.with_ia_dust(bad)

    av = {}
    for name, m in (("BAYESN", model), ("DUSTY", dusty)):
        simulate(tmp_path / name, 300, seed=5, per_file=300, jobs=1, progress=False, mix="SNIa=1", like=m)
        with fits.open(tmp_path / name / f"{name}-0001_HEAD.FITS") as hdul:
            av[name] = np.asarray(hdul[1].data["SIM_AV"], float)
    # the written (detected) SNe Ia: means near the drawn scales 0.252 and 1.0 (0.26 and 0.79
    # here: selection removes more of the most extinguished at 1.0)
    assert 0.15 < av["BAYESN"].mean() < 0.3 and av["DUSTY"].mean() > 0.5
    assert (av["DUSTY"] > 1.5).sum() > 10 * max(1, (av["BAYESN"] > 1.5).sum())
    readme = (tmp_path / "DUSTY" / "DUSTY.README").read_text()
    assert "SN Ia host dust: A_V ~ Exponential(1) mag (--ia-dust-tau)" in readme
    assert "--ia-dust-tau" not in (tmp_path / "BAYESN" / "BAYESN.README").read_text()
    with pytest.raises(SimulationError, match="differs in: like"):
        simulate(tmp_path / "DUSTY", 300, seed=5, per_file=300, jobs=1, progress=False, mix="SNIa=1", like=model)

    res = subprocess.run([*CLI, "simulate", "--out", str(tmp_path / "PRESET"), "--n", "10", "--ia-dust-tau", "0.5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "--ia-dust-tau sets a --like simulation's SN Ia host dust" in res.stderr
    assert not (tmp_path / "PRESET").exists()


def test_like_config_takes_the_configs_inputs(yse_like, lowz_real, tmp_path):
    """`--like-config`: the survey data named by a SCONE config's inputs give the same survey
    model as the same data named on the command line (`SurveyModel.same_data`)."""
    from scone_assets.simulate.like import SurveyModel
    from scone_assets.simulate.run import LIKE_MODEL

    yse, res = yse_like
    config = tmp_path / "predict.yml"
    config.write_text(f"input_path: {yse}\nmode: predict\ntrained_model: {tmp_path / 'model'}\n")
    out = tmp_path / "CFG_LIKE"
    run = subprocess.run([*CLI, "simulate", "--out", str(out), "--like-config", str(config), "--n", "50",
                          "--per-file", "50", "--jobs", "1", "--mix", "SNIa=1"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "survey model from 144 real light curves" in run.stdout and "wrote 50 light curves" in run.stdout
    saved = SurveyModel.load(out / LIKE_MODEL)
    assert saved.same_data(SurveyModel.load(res.folder / LIKE_MODEL))
    assert saved.digest() != SurveyModel.load(res.folder / LIKE_MODEL).digest()  # the sources are named otherwise
    assert not saved.same_data(model_from_inputs([str(lowz_real)]))


def test_like_pairs_each_sequence_with_its_own_redshift(yse_like, tmp_path):
    """A simulated object takes the redshift of the real object whose sequence it borrows:
    yse_dev publishes only detections, so a near object's sequence is long and a far one's
    short, and random pairs gave light curves shorter than the data's (BENCHMARKS.md)."""
    from dataclasses import replace

    from scone_assets.simulate.classes import SUBTYPES
    from scone_assets.simulate.generate import simulate_batch_like
    from scone_assets.simulate.like import SurveyModel, draw_redshifts

    yse, res = yse_like
    model = model_from_inputs([str(yse)])
    assert len(model.seq_z) == model.n_objects == 144 and np.all(np.isfinite(model.seq_z))
    np.testing.assert_array_equal(np.sort(model.seq_z), np.sort(model.z))  # the same redshifts, per sequence
    (tmp_path / "m.npz").write_bytes(model.to_bytes())
    np.testing.assert_array_equal(SurveyModel.load(tmp_path / "m.npz").seq_z, model.seq_z)
    assert ("redshifts paired with sequences: a simulated object takes the redshift of the object whose sequence "
            "it borrows (smoothed), 144 of 144 sequences have one; on the others, a random object's") \
        in (res.folder / f"{res.version}.README").read_text()

    x = np.log1p(model.z)
    width = 1.06 * np.std(x) * len(x) ** -0.2  # Silverman's, in ln(1 + z)
    borrowed = np.random.default_rng(0).integers(0, 144, 20000)
    z = draw_redshifts(model, 20000, np.random.default_rng(1), borrowed)
    d = np.log1p(z) - np.log1p(model.seq_z[borrowed])
    inside = np.log1p(model.seq_z[borrowed]) > np.log1p(0.5 * model.z.min()) + 3 * width  # not reflected
    assert np.std(d[inside]) == pytest.approx(width, rel=0.05)
    # the marginal is the data's, smoothed, as without pairing
    unpaired = draw_redshifts(model, 20000, np.random.default_rng(1))
    assert np.median(z) == pytest.approx(np.median(unpaired), rel=0.05)
    # a model saved before sequences had their redshift draws them apart
    old = replace(model, seq_z=np.zeros(0))
    np.testing.assert_array_equal(draw_redshifts(old, 20000, np.random.default_rng(1), borrowed), unpaired)

    # in the simulation: the object keeps its sequence's redshift, and so nearly as many observations
    b = simulate_batch_like(SUBTYPES["SNIa"], model, 2000, np.random.default_rng(2))
    own = model.seq_z[b.params["borrowed"]]
    assert np.corrcoef(np.log1p(b.params["z"]), np.log1p(own))[0, 1] > 0.9
    n_real = np.array([len(obs) for lcs in read_all(yse) for _, obs in lcs.iter_lightcurves()])
    n_sim = b.mask[b.detected].sum(axis=1)  # published observations of the kept SNe Ia
    b_old = simulate_batch_like(SUBTYPES["SNIa"], old, 2000, np.random.default_rng(2))
    n_old = b_old.mask[b_old.detected].sum(axis=1)
    # the longest light curves (90% quantile): data 113, paired 100, unpaired 78
    assert np.quantile(n_sim, 0.9) > 0.85 * np.quantile(n_real, 0.9) > np.quantile(n_old, 0.9)
    assert np.quantile(n_sim, 0.75) > np.quantile(n_old, 0.75) + 5


def test_like_report_of_a_model_saved_without_brightest_observations(yse_like, tmp_path):
    """A survey model saved before it kept each object's brightest observation (an older
    simulation folder) still gets its comparison: that row says none, the others stand."""
    import dataclasses

    from scone_assets.simulate.like import SurveyModel
    from scone_assets.simulate.like_report import compare, plot_shapes, shape_table
    from scone_assets.simulate.run import LIKE_MODEL

    _, res = yse_like
    model = SurveyModel.load(res.folder / LIKE_MODEL)
    assert res.compared is not None and len(res.compared.sim.n_obs) == 600 and res.compared.sim.n_obs.min() >= 2
    assert shape_table(compare(res.head_files, model)) == shape_table(res.compared)  # what the README was made of
    old = compare(res.head_files, dataclasses.replace(model, brightest=np.zeros(0)))
    full, partial = shape_table(res.compared), shape_table(old)
    assert full[:3] == partial[:3] and full[0][1] == "14 / 25 / 46 / 78 / 113"
    assert partial[3][1] == "none" and partial[3][2] == full[3][2] != "none"
    png = plot_shapes(old, tmp_path / "shapes.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
