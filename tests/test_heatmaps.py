"""GP heatmaps: parity of the two back-ends on real SNANA light curves, the grid,
skips, shards, re-runs, and bad files."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scone_assets.config import SconeConfig
from scone_assets.extinction import ccm89
from scone_assets.heatmaps import HeatmapError
from scone_assets.heatmaps.augment import NO_SIGNAL
from scone_assets.heatmaps.gp import fit_fast, fit_george, predict_fast, predict_george
from scone_assets.heatmaps.grid import (
    GridSpec,
    SkipLightCurve,
    correct_milky_way,
    prepare,
    trigger_mjd,
)
from scone_assets.heatmaps.kernels import exp_neg_array
from scone_assets.heatmaps.linalg import TRI_INV_BLOCK, tri_inv_lower
from scone_assets.heatmaps.make import NO_FLUX_PEAK, PEAK_RATIO_LIMIT
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.heatmaps.store import INDEX, SHARD, SUMMARY, decode_image, read_shard, record_id
from scone_assets.simulate.run import simulate
from scone_assets.snana.read import discover_paths, read_unit
from scone_assets.snana.write import write_fits_pair

DES = {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0}


@pytest.mark.parametrize("folder,n", [("DES_SIM", 15), ("LSST_SIM", 8), ("LOWZ_REAL", 8)])
def test_backends_agree_on_real_light_curves(folder, n, request):
    path = request.getfixturevalue({"DES_SIM": "des_sim", "LSST_SIM": "lsst_sim", "LOWZ_REAL": "lowz_real"}[folder])
    lcs = read_unit(discover_paths([str(path)]).units[0])
    spec = GridSpec()
    agree_params, agree_image = 0, 0
    for row, obs in list(lcs.iter_lightcurves())[:n]:
        p = prepare(obs.MJD.to_numpy(), obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy(), obs.FLUXCALERR.to_numpy(),
                    lcs.band_to_wave, row.PEAKMJD, spec)
        ff, fg = fit_fast(p.t, p.w, p.flux, p.err), fit_george(p.t, p.w, p.flux, p.err)
        agree_params += np.all(np.abs(np.exp(ff.params - fg.params) - 1) < 0.05)
        mf, sf = predict_fast(p.t, p.w, p.flux, p.err, ff.params, p.grid_t, spec.wavelengths)
        mg, sg = predict_george(p.t, p.w, p.flux, p.err, fg.params, p.grid_t, spec.wavelengths)
        assert mf.shape == (32, 180) and sf.shape == (32, 180)
        peak = np.abs(p.flux).max()
        agree_image += np.median(np.abs(mf - mg)) < 0.01 * peak and np.median(np.abs(sf - sg)) < 0.01 * peak
        # with the same hyperparameters, every pixel matches george (no float32 shortcuts)
        mg2, sg2 = predict_george(p.t, p.w, p.flux, p.err, ff.params, p.grid_t, spec.wavelengths)
        assert np.max(np.abs(mf - mg2)) < 1e-6 * peak and np.max(np.abs(sf - sg2)) < 1e-6 * peak
        # the fit's last factorisation, reused by the prediction, is the one at its optimum
        assert ff.factor is not None
        mr, sr = predict_fast(p.t, p.w, p.flux, p.err, ff.params, p.grid_t, spec.wavelengths, factor=ff.factor)
        assert np.max(np.abs(mr - mf)) < 1e-9 * peak and np.max(np.abs(sr - sf)) < 1e-9 * peak
    assert agree_params >= 0.95 * n and agree_image >= 0.95 * n


def test_blocked_triangular_inverse_on_a_long_light_curve(lowz_real):
    """LOWZ's longest light curve takes many blocks of the compiled triangular inverse."""
    lcs = read_unit(discover_paths([str(lowz_real)]).units[0])
    row, obs = max(lcs.iter_lightcurves(), key=lambda item: len(item[1]))
    p = prepare(obs.MJD.to_numpy(), obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy(), obs.FLUXCALERR.to_numpy(),
                lcs.band_to_wave, row.PEAKMJD, GridSpec())
    n = len(p.t)
    assert n == 538 and n % TRI_INV_BLOCK != 0  # 536 observations and two anchors; a partial block too
    s = np.sqrt(3.0 * ((p.t[:, None] - p.t) ** 2 / 400.0 + (p.w[:, None] - p.w) ** 2 / 6000.0**2))
    k = 1e4 * (1 + s) * np.exp(-s) + np.diag(p.err**2)
    chol = np.linalg.cholesky(k)
    flat = np.asfortranarray(chol).T.ravel()  # the flat memory of the F-ordered factor
    assert tri_inv_lower(flat, n) == 0
    linv = np.tril(flat.reshape(n, n).T)
    assert np.max(np.abs(linv @ chol - np.eye(n))) < 1e-8
    assert np.allclose(linv, np.linalg.inv(chol), rtol=0, atol=1e-9 * np.abs(linv).max())
    singular = np.asfortranarray(np.tril(np.ones((40, 40)))).T.ravel()
    singular[7 * 40 + 7] = 0.0
    assert tri_inv_lower(singular, 40) == 8  # LAPACK's 1-based index of the zero pivot


def test_compiled_exponential_is_within_one_ulp():
    """`exp_neg` (the kernel's vectorised exp) against the C library, over every
    distance a kernel sees, up to where it returns 0."""
    import math

    rng = np.random.default_rng(3)
    s = np.concatenate([[0.0, 1e-300, 0.5 * np.log(2), 1.0, 700.0, 707.99],
                        rng.uniform(0, 1, 200_000), rng.uniform(0, 708, 200_000)])
    out = np.empty_like(s)
    exp_neg_array(s, out)
    ref = np.array([math.exp(-v) for v in s])
    assert np.max(np.abs(out - ref) / np.spacing(ref)) <= 1.0
    beyond = np.array([708.0, 745.0, 1e6, np.inf, np.nan])
    out = np.empty_like(beyond)
    exp_neg_array(beyond, out)
    assert np.all(out[:4] == 0.0) and np.isnan(out[4])  # a NaN distance is not hidden


def test_prepare_anchors_grid_and_configured_bins():
    mjd = np.array([100.0, 110.0, 120.0, 130.0, 140.0])
    band = np.array(["g", "r", "i", "z", "Q"])  # Q is not a known band: dropped
    flux = np.array([10.0, 50.0, 40.0, 20.0, 5.0])
    err = np.ones(5)
    spec = GridSpec(num_wavelength_bins=16, num_mjd_bins=40)
    p = prepare(mjd, band, flux, err, DES, 115.0, spec)
    assert p.n_obs == 4
    assert list(p.t[-2:]) == [0.0, 230.0] and list(p.w[-2:]) == [7828.0, 7828.0]  # third band: i
    assert list(p.flux[-2:]) == [0.0, 0.0] and list(p.err[-2:]) == [0.1, 0.1]
    assert len(p.grid_t) == 40 and p.grid_t[0] == 85.0 and p.grid_t[-1] == 265.0
    assert len(spec.wavelengths) == 16 and spec.wavelengths[0] == 3000 and spec.wavelengths[-1] == 10100
    # without a usable peak the grid spans the light curve
    p = prepare(mjd, band, flux, err, DES, np.nan, spec)
    assert p.grid_t[0] == 100.0 and p.grid_t[-1] == 130.0


def test_trigger_and_early_window():
    mjd = np.array([0.0, 10.0, 10.5, 12.0, 20.0, 30.0, 60.0])
    flux = np.array([1.0, 60.0, 70.0, 80.0, 90.0, 50.0, 30.0])
    err = np.full(7, 10.0)  # S/N > 5 from day 10; trigger is the first more than a day later: 12
    assert trigger_mjd(mjd, flux, err) == 12.0
    p = prepare(mjd, np.array(["g", "r", "i", "z", "g", "r", "i"]), flux, err, DES, 20.0, GridSpec(), early_days=5.0)
    assert p.n_obs == 4  # days 0, 10, 10.5, 12: within [12 - 20, 12 + 5]
    assert p.grid_t[0] == -8.0 and p.grid_t[-1] == 17.0
    with pytest.raises(SkipLightCurve, match="no trigger"):
        prepare(mjd, np.array(["g"] * 7), np.ones(7), err, DES, 20.0, GridSpec(), early_days=5.0)


@pytest.mark.parametrize("flux,err,band,peak,reason", [
    ([1.0, np.nan, np.inf], [1.0, 1.0, 1.0], "ggg", 1.0, "non-finite values"),
    ([1.0, 2.0, 3.0], [1.0, 0.0, 1.0], "ggg", 1.0, "zero or negative flux errors"),
    ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], "gQQ", 1.0, "fewer than 2 observations in known bands"),
    ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], "ggg", 900.0, "peak outside the data"),
])
def test_bad_light_curves_are_skipped_with_a_reason(flux, err, band, peak, reason):
    with pytest.raises(SkipLightCurve, match=reason):
        prepare(np.array([0.0, 1.0, 2.0]), np.array(list(band)), np.array(flux), np.array(err), DES, peak, GridSpec())


def test_milky_way_correction_modes():
    waves = np.array([4000.0, 8000.0])
    mean, std = np.full((2, 3), 100.0), np.full((2, 3), 10.0)
    a = ccm89(waves, 0.1)
    m, s = correct_milky_way(mean, std, 0.1, waves, "flux")
    np.testing.assert_allclose(m[:, 0], 100 * 10 ** (0.4 * a))
    np.testing.assert_allclose(s[:, 0], 10 * 10 ** (0.4 * a))
    m, s = correct_milky_way(mean, std, 0.1, waves, "scone")  # the reference's unit error, for comparison
    np.testing.assert_allclose(m[:, 0], 100 + a)
    # CCM89 anchors: A_V = 3.1 E(B-V) at 5500 A, A_B ~ 4.1 E(B-V) at 4400 A
    assert ccm89(np.array([5495.0]), 1.0)[0] == pytest.approx(3.1, rel=0.01)
    assert ccm89(np.array([4400.0]), 1.0)[0] == pytest.approx(4.1, rel=0.03)


def test_scone_float64_images_decode():
    img = np.arange(32 * 180 * 2, dtype=np.float64)
    out = decode_image(img.tobytes(), (32, 180))
    assert out.dtype == np.float32 and out[1, 2, 1] == img.reshape(32, 180, 2)[1, 2, 1]
    assert record_id(1186139) == 1186139 and record_id("2019lbi") == record_id("2019lbi") > 0


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("hm") / "HMSIM"
    simulate(out, 40, survey="des", seed=3, per_file=20, jobs=1, progress=False)
    return out


def test_shards_index_summary_and_reruns(sim_folder, tmp_path):
    cfg = SconeConfig(input_path=str(sim_folder), heatmaps_path=str(tmp_path / "h"), num_mjd_bins=60)
    res = make_heatmaps(cfg, jobs=2, progress=False).results
    assert [r.unit for r in res] == ["HMSIM-0001", "HMSIM-0002"]
    assert all(r.status == "done" for r in res)
    folder = res[0].folder
    index = pd.read_parquet(folder / INDEX)
    ok = index[index.status == "ok"]
    assert res[0].written == len(ok) and len(index) == 20
    records = list(read_shard(folder / SHARD, (32, 60)))
    assert len(records) == len(ok)
    assert [r["snid"] for r in records] == list(ok.SNID)
    assert [r["label"] for r in records] == [int(t == "SNIa") for t in ok.TYPE_NAME]
    assert records[0]["image"].shape == (32, 60, 2) and np.all(records[0]["image"][..., 1] >= 0)
    assert records[0]["z"] == pytest.approx(ok.z.iloc[0], rel=1e-6)
    summary = (folder / SUMMARY).read_text()
    assert "PROCESS_RATE:" in summary and "N_LC:" in summary and "GP_BACKEND:     fast" in summary
    # a finished unit is not redone; another grid is refused; --force starts the store again
    again = make_heatmaps(cfg, jobs=1, progress=False).results
    assert [r.status for r in again] == ["already done", "already done"]
    other = SconeConfig(input_path=str(sim_folder), heatmaps_path=str(tmp_path / "h"), num_mjd_bins=50)
    with pytest.raises(HeatmapError, match="holds 32x60 heatmaps .* asks for 32x50"):
        make_heatmaps(other, jobs=1, progress=False)
    keep = tmp_path / "h" / "trained_model" / "model.keras"  # a model kept beside the heatmaps
    keep.parent.mkdir()
    keep.write_bytes(b"not a heatmap")
    forced = make_heatmaps(other, jobs=1, progress=False, force=True).results
    assert [r.status for r in forced] == ["done", "done"]
    assert keep.read_bytes() == b"not a heatmap"  # --force remakes heatmaps, nothing else
    assert next(read_shard(forced[0].folder / SHARD, (32, 50)))["image"].shape == (32, 50, 2)


def test_progress_callback_counts_every_light_curve(sim_folder, tmp_path, monkeypatch):
    from scone_assets.heatmaps import run
    from scone_assets.heatmaps.make import start_worker
    from scone_assets.snana.read import discover
    from scone_assets.workers import WorkerPool

    monkeypatch.setattr(run, "PROGRESS_EVERY", 8)  # 20 light curves per unit: calls at 8, 16, end
    cfg = SconeConfig(input_path=str(sim_folder), heatmaps_path=str(tmp_path / "h"), num_mjd_bins=60)
    seen: list[run.HeatmapProgress] = []
    res = make_heatmaps(cfg, jobs=2, progress=False, on_progress=seen.append).results
    for r in res:
        mine = [p for p in seen if p.unit == r.unit]
        assert [p.done for p in mine] == [8, 16, 20] and {p.total for p in mine} == {20}
        assert mine[-1].done == r.written + sum(r.skipped.values()) and mine[-1].eta_seconds == 0
        assert all(p.heatmap_set == "full" and p.rate > 0 for p in mine)
    p = seen[0]
    assert str(p) == p.text() == (f"HMSIM-0001 [full]: 8/20 light curves, {p.rate:.1f}/s, "
                                  f"ETA {p.eta_seconds:.0f} s")
    # the Dagster path: one unit, remade with force; one job makes chunks of 5, counted per chunk
    seen.clear()
    with WorkerPool(1, start_worker) as pool:
        one = run.heatmaps_for_unit(discover(cfg).units[1], cfg, pool, force=True, on_progress=seen.append)
    assert one[0].status == "remade" and [(p.unit, p.done) for p in seen] == [
        ("HMSIM-0002", 10), ("HMSIM-0002", 20)]  # the end was just reported: not twice


def test_string_snids_early_sets_and_a_bad_file(lowz_real, tmp_path):
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    for name in ("DES-SN5YR_LOWZ_HEAD.FITS.gz", "DES-SN5YR_LOWZ_PHOT.FITS.gz"):
        shutil.copy(lowz_real / name, data / name)
    (data / "BROKEN_HEAD.FITS").write_bytes(b"SIMPLE  = garbage")
    (data / "BROKEN_PHOT.FITS").write_bytes(b"SIMPLE  = garbage")
    cfg = SconeConfig(input_path=str(data), heatmaps_path=str(tmp_path / "h"), early_lightcurves=[5, 50])
    res = make_heatmaps(cfg, jobs=2, progress=False).results
    by = {(r.unit, r.heatmap_set): r for r in res}
    assert by[("data__BROKEN", "early_5d")].status == "failed"
    assert "BROKEN_HEAD.FITS" in by[("data__BROKEN", "early_5d")].error
    good5, good50 = by[("data__DES-SN5YR_LOWZ", "early_5d")], by[("data__DES-SN5YR_LOWZ", "early_50d")]
    assert good5.status == good50.status == "done"
    assert good5.written + sum(good5.skipped.values()) == 342
    # two 50-day fits collapse in wavelength (log l_w^2 is free, as SCONE leaves it; 2008bf's
    # goes to -98): a zero mean under a prior-sized std, no flux peak, so not written
    assert good50.skipped == {"fewer than 2 observations in the early window": 1, NO_FLUX_PEAK: 2}
    assert good50.written + 2 >= good5.written > 200
    index = pd.read_parquet(good50.folder / INDEX)
    assert set(index.SNID[index.status == NO_FLUX_PEAK]) == {"2005na", "2008bf"}
    assert "2004ef" in set(index.SNID) and set(index.early_days.dropna()) == {50.0}
    rec = next(r for r in read_shard(good50.folder / SHARD, (32, 180)) if r["snid"] == "2004ef")
    assert rec["id"] == record_id("2004ef") and rec["type_name"] == "SNIa" and rec["label"] == 1


def test_light_curves_without_a_flux_peak_are_skipped_and_counted(des_sim, tmp_path):
    """Real DES light curves with every FLUXCAL made <= 0: the GP mean's only positive values
    are overshoot, and normalising by that peak would blow values up. They are skipped as a
    loss of the data's own (neither asked for nor a GP failure); the others are written."""
    lcs = read_unit(discover_paths([str(des_sim)]).units[0])
    keep, flip = [1186139, 12032621, 8579242], [33199178, 587172, 12619794]
    meta = lcs.meta[lcs.meta.SNID.isin(keep + flip)]
    obs = lcs.obs[lcs.obs.SNID.isin(keep + flip)].copy()
    edited = obs.SNID.isin(flip)
    obs.loc[edited, "FLUXCAL"] = -obs.loc[edited, "FLUXCAL"].abs()
    data = tmp_path / "data"
    data.mkdir()
    write_fits_pair(data / "NOPEAK_HEAD.FITS", data / "NOPEAK_PHOT.FITS",
                    meta[["SNID", "PEAKMJD", "MWEBV", "REDSHIFT_FINAL"]].assign(SNTYPE=1),
                    obs[["SNID", "MJD", "BAND", "FLUXCAL", "FLUXCALERR"]], survey="DES")
    # copies that change nothing: the augmented set sees the same images, under its own reason
    cfg = SconeConfig(input_path=str(data), heatmaps_path=str(tmp_path / "h"), augment_copies=1,
                      augment_drop_fraction=0.0, augment_error_scale=(1.0, 1.0),
                      augment_peak_shift_days=0.0)
    run = make_heatmaps(cfg, jobs=1, progress=False)
    by = {r.heatmap_set: r for r in run.results}
    full, copies = by["full"], by["augmented"]
    assert full.skipped == {NO_FLUX_PEAK: 3} and full.written == 3
    assert full.selected_out == 0 and full.gp_failures == 0 and run.ok
    assert copies.skipped == {NO_SIGNAL: 3} and copies.written == 3
    index = pd.read_parquet(full.folder / INDEX)
    assert sorted(index.SNID[index.status == NO_FLUX_PEAK]) == sorted(map(str, flip))
    assert f"  {NO_FLUX_PEAK}:       3" in (full.folder / SUMMARY).read_text()
    images = [r["image"] for r in read_shard(full.folder / SHARD, (32, 180))]
    assert len(images) == 3 and all(np.isfinite(im).all() for im in images)
    ratios = [np.abs(im).max() / im[..., 0].max() for im in images]
    assert all(1 <= r < 1.1 for r in ratios) and PEAK_RATIO_LIMIT == 10.0


def test_cli_heatmaps(sim_folder, tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"input_path: {sim_folder}\nheatmaps_path: {tmp_path / 'h'}\n")
    res = subprocess.run([sys.executable, "-m", "scone_assets.cli", "heatmaps", "--config_path", str(cfg),
                          "--jobs", "1", "--backend", "george"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "done         HMSIM-0001 [full]:" in res.stdout and "heatmaps/min" in res.stdout
    assert "GP_BACKEND:     george" in (tmp_path / "h/full/HMSIM-0001" / SUMMARY).read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(f"input_path: {sim_folder}\n")
    res = subprocess.run([sys.executable, "-m", "scone_assets.cli", "heatmaps", "--config_path", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "heatmaps_path is required" in res.stderr
