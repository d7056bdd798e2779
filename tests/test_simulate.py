"""The built-in simulator: SNANA folders the reader takes as real SNANA output."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from scone_assets.simulate.classes import BLACKBODY_SNIA, SUBTYPES, SimulationError, parse_mix
from scone_assets.simulate.physics import distance_modulus, observed_mag, rest_frame_mag
from scone_assets.simulate.run import simulate
from scone_assets.snana.read import discover_paths, read_unit
from scone_assets.snana.readme import parse_readme


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.FITS*"))}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "TESTSIM"
    res = simulate(out, 600, survey="des", seed=7, per_file=200, jobs=1, progress=False)
    return out, res


def test_mix_counts_and_reader_round_trip(sim):
    out, res = sim
    assert [h.name for h in res.head_files] == [f"TESTSIM-000{i}_HEAD.FITS" for i in (1, 2, 3)]
    assert res.counts == {"SNIa": 180, "SNIIP": 180, "SNIIn": 30, "SNIIL": 30, "SNIb": 42, "SNIc": 66,
                          "SNIax": 36, "SNIa-91bg": 24, "SLSN-I": 12}
    found = discover_paths([str(out)])
    assert [u.key for u in found.units] == ["TESTSIM-0001", "TESTSIM-0002", "TESTSIM-0003"]
    total = {}
    for unit in found.units:
        lcs = read_unit(unit)
        assert lcs.is_sim and lcs.survey == "DES" and not lcs.warnings and not lcs.skipped
        assert lcs.band_to_wave == {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0}
        for k, v in lcs.counts_by_type().items():
            total[k] = total.get(k, 0) + v
    assert total == {"SNIa": 180, "SNII": 240, "SNIbc": 108, "SNIax": 36, "SNIa-91bg": 24, "SLSN-I": 12}
    info = parse_readme((out / "TESTSIM.README").read_text())
    assert info.gentype_to_name[1] == "SNIa" and info.gentype_to_name[20] == "SNIIP"
    assert (out / "TESTSIM.LIST").read_text().split() == [h.name for h in res.head_files]


def test_every_object_is_detected_and_errors_are_realistic(sim):
    out, _ = sim
    lcs = read_unit(discover_paths([str(out)]).units[0])
    obs = lcs.obs.assign(snr=lcs.obs.FLUXCAL / lcs.obs.FLUXCALERR, night=np.floor(lcs.obs.MJD))
    nights = obs[obs.snr > 5].groupby("SNID").night.nunique()
    assert len(nights) == len(lcs) and nights.min() >= 2
    # sky-noise floor: 5 sigma at about the DES depth (23.4-24.5 mag) -> FLUXCALERR 5-11
    assert 4.0 < obs.FLUXCALERR.median() < 12.0
    assert obs.groupby("SNID").size().median() > 40  # ~7-day cadence over a season in 4 bands
    assert (lcs.meta.REDSHIFT_FINAL > 0).all() and (lcs.meta.MWEBV >= 0).all()


def test_peak_flux_matches_sim_peakmag(sim):
    from astropy.io import fits

    out, _ = sim
    head = fits.getdata(out / "TESTSIM-0001_HEAD.FITS")
    lcs = read_unit(discover_paths([str(out)]).units[0])
    bright = head[head["SIM_PEAKMAG_r"] < 21.5]
    assert len(bright) > 10
    checked = 0
    for row in bright:
        o = lcs.obs[(row["SNID"] == lcs.obs.SNID) & (lcs.obs.BAND == "r")]
        near = o[np.abs(o.MJD - row["SIM_PEAKMJD"]) < 1.5]  # within ~0.2 mag of peak
        if len(near) == 0:
            continue
        expected = 10 ** (-0.4 * row["SIM_PEAKMAG_r"] + 11)
        assert near.FLUXCAL.max() == pytest.approx(expected, rel=0.3)
        checked += 1
    assert checked >= 3


def test_physics_peak_distance_and_time_dilation():
    ia = BLACKBODY_SNIA  # the blackbody model's own numbers (the default SNIa is the SED model)
    params = {"rise": 18.0, "stretch": 1.0, "m_peak": -19.3}
    assert rest_frame_mag(ia, np.array(0.0), params, np.array(4400.0)) == pytest.approx(-19.3)
    assert distance_modulus(np.array(0.1)) == pytest.approx(38.3, abs=0.05)  # flat LCDM, H0=70
    assert np.isinf(rest_frame_mag(ia, np.array(-19.0), params, np.array(4400.0)))  # before explosion
    # Delta m15(B) = 1.1 (Phillips 1993)
    assert rest_frame_mag(ia, np.array(15.0), params, np.array(4400.0)) == pytest.approx(-18.2)

    def mag(z, days):
        p = {"z": np.array([z]), "mu": distance_modulus(np.array([z])), "peak_mjd": np.array([0.0]),
             "rise": np.array([18.0]), "stretch": np.array([1.0]), "m_peak": np.array([-19.3]),
             "host_ebv": np.array([0.0]), "mwebv": np.array([0.0])}
        w = np.array([[4400.0 * (1 + z)]])
        return observed_mag(ia, np.array([[days]]), w, np.array([[1.0]]), p)[0, 0]

    # 15 rest-frame days after peak is 15 (1+z) observed days
    assert mag(0.5, 15 * 1.5) - mag(0.5, 0) == pytest.approx(1.1, abs=0.02)
    # at z=0.5, peak brightness is M + mu - 2.5 log10(1+z) for the redshifted B band
    assert mag(0.5, 0) == pytest.approx(-19.3 + distance_modulus(np.array(0.5)) - 2.5 * np.log10(1.5), abs=0.01)


def test_deterministic_whatever_the_number_of_processes(tmp_path):
    a = simulate(tmp_path / "A", 300, seed=3, per_file=100, jobs=1, progress=False, version="V")
    b = simulate(tmp_path / "B", 300, seed=3, per_file=100, jobs=2, progress=False, version="V")
    assert digest(a.folder) == digest(b.folder) and len(digest(a.folder)) == 6
    c = simulate(tmp_path / "C", 300, seed=4, per_file=100, jobs=1, progress=False, version="V")
    assert digest(c.folder) != digest(a.folder)


def test_lsst_and_lowz_presets_and_gzip(tmp_path):
    lsst = simulate(tmp_path / "L", 60, survey="lsst", seed=1, per_file=60, jobs=1, progress=False, gzip=True)
    lcs = read_unit(discover_paths([str(lsst.folder)]).units[0])
    assert lsst.head_files[0].name == "L-0001_HEAD.FITS.gz"
    assert lcs.bands == ["Y", "g", "i", "r", "u", "z"] and lcs.obs.groupby("SNID").size().median() > 100
    lowz = simulate(tmp_path / "Z", 60, survey="lowz", seed=1, per_file=60, jobs=1, progress=False)
    lcs = read_unit(discover_paths([str(lowz.folder)]).units[0])
    assert lcs.bands == ["G", "R", "g", "i", "r", "z"]
    assert lcs.band_names["G"] == "ZTF-g/G" and lcs.band_to_wave["G"] == 4746.0
    assert lcs.meta.REDSHIFT_FINAL.max() < 0.21


def test_bad_input_and_no_silent_overwrite(tmp_path):
    with pytest.raises(SimulationError, match="unknown survey 'hsc'"):
        simulate(tmp_path / "x", 10, survey="hsc")
    with pytest.raises(SimulationError, match="unknown class 'SNIz'"):
        parse_mix("SNIa=0.5,SNIz=0.5")
    with pytest.raises(SimulationError, match="positive"):
        simulate(tmp_path / "x", 0)
    assert parse_mix("SNIa=1,SNII=1") == pytest.approx({"SNIa": 0.5, "SNIIP": 0.375, "SNIIn": 0.0625, "SNIIL": 0.0625})
    out = tmp_path / "S"
    simulate(out, 20, seed=1, per_file=10, jobs=1, progress=False)
    before = digest(out)
    again = simulate(out, 20, seed=1, per_file=10, jobs=1, progress=False)  # same: resumed, kept
    assert len(again.resumed_files) == 2 and digest(out) == before
    with pytest.raises(SimulationError, match="different simulation .*seed"):
        simulate(out, 20, seed=2, per_file=10, jobs=1, progress=False)
    assert digest(out) == before
    other = tmp_path / "O"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SimulationError, match="not empty"):
        simulate(other, 10, progress=False)
    simulate(out, 10, seed=2, per_file=10, jobs=1, progress=False, force=True)
    assert sorted(digest(out)) == ["S-0001_HEAD.FITS", "S-0001_PHOT.FITS"]


def test_cli_simulate(tmp_path):
    res = subprocess.run([sys.executable, "-m", "scone_assets.cli", "simulate", "--out", str(tmp_path / "C"),
                          "--n", "30", "--per-file", "15", "--seed", "2", "--mix", "SNIa=0.5,SNII=0.5"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "wrote 30 light curves in 2 file(s)" in res.stdout and "SNIa: 15" in res.stdout
    assert "for the survey's data" not in res.stdout  # a preset is not made like any survey
    bad = subprocess.run([sys.executable, "-m", "scone_assets.cli", "simulate", "--out", str(tmp_path / "D"),
                          "--survey", "hsc"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown survey 'hsc'" in bad.stderr


def test_resume_counts_kept_files_and_rewrites_unreadable_ones(sim, tmp_path, caplog):
    """After an interrupted run, the counts and README stats cover the whole folder, not the
    files of the last run; a kept HEAD that cannot be read is written again."""
    import re
    import shutil

    src, fresh = sim
    out = tmp_path / src.name
    shutil.copytree(src, out)
    for part in ("HEAD", "PHOT"):
        (out / f"TESTSIM-0002_{part}.FITS").unlink()
    head3 = out / "TESTSIM-0003_HEAD.FITS"
    head3.write_bytes(head3.read_bytes()[:5000])  # not one of ours any more: cut short
    with caplog.at_level("WARNING", logger="scone_assets.simulate.run"):
        res = simulate(out, 600, survey="des", seed=7, per_file=200, jobs=1, progress=False)
    assert [h.name for h in res.resumed_files] == ["TESTSIM-0001_HEAD.FITS"]
    assert "writing TESTSIM-0003_HEAD.FITS again: cannot read it" in caplog.text
    assert res.counts == fresh.counts and sum(res.counts.values()) == 600
    readme = (out / "TESTSIM.README").read_text()
    stats = {k: int(v) for k, v in re.findall(r"^ {4}NLC_WRITE_(\S+): (\d+)$", readme, re.M)}
    assert stats == res.counts
    assert digest(out) == digest(src)


def test_sn_ia_sed_model():
    """The default SNIa: BayeSN W22 on the Hsiao template (sed_ia.py)."""
    from scone_assets.simulate.sed_ia import f99_a_over_av, model

    sed = model()
    assert sed.w0.shape == sed.w1.shape == (11, 6) and sed.l_sigma.shape == (54, 54)
    assert sed.m0 == pytest.approx(-19.5 + 5 * np.log10(70 / 73.24))  # BayeSN's M0, moved to H0 = 70
    ia = SUBTYPES["SNIa"]
    assert ia.sed is not None and BLACKBODY_SNIA.sed is None

    def b_mag(theta, days, z=0.0, av=0.0):
        z = max(z, 1e-4)
        p = {"z": np.array([z]), "mu": distance_modulus(np.array([z])), "peak_mjd": np.array([0.0]),
             "mwebv": np.array([0.0]), "theta": np.array([theta]), "host_av": np.array([av]),
             "m_peak": np.array([sed.m0]), "sed_eps": np.zeros((1, 11, 6))}
        t = np.atleast_1d(np.asarray(days, float))[None] * (1 + z)
        w = np.full(t.shape, 4400.0 * (1 + z))
        return observed_mag(ia, t, w, 0.08 * w, p)[0] - p["mu"][0] + 2.5 * np.log10(1 + z)

    peak = b_mag(0.0, 0.0)[0]
    assert -19.6 < peak < -19.3
    dm15 = {th: b_mag(th, 15.0)[0] - b_mag(th, 0.0)[0] for th in (-1.0, 0.0, 1.0)}
    assert 0.9 < dm15[0.0] < 1.4 and dm15[-1.0] < dm15[0.0] < dm15[1.0]  # theta ~ -x1 (Mandel et al. 2022)
    assert np.isinf(b_mag(0.0, [-20.5, -25.0])).all()  # no light before explosion
    assert np.isfinite(b_mag(0.0, [-19.5, 60.0, 150.0])).all()  # Hsiao alone outside -10..+40 d
    assert b_mag(0.0, 0.0, z=0.3)[0] == pytest.approx(peak, abs=0.05)  # the redshifted B band
    # host dust: Fitzpatrick (1999) at BayeSN's R_V: E(B-V) about A_V / R_V, A_lambda -> 0 far in the IR
    a = f99_a_over_av(np.array([4400.0, 5500.0, 1e5]), sed.r_v)
    assert a[0] - a[1] == pytest.approx(1 / sed.r_v, rel=0.05) and a[1] == pytest.approx(1.0, abs=0.03)
    assert a[2] < 0.05
    assert b_mag(0.0, 0.0, av=0.5)[0] - peak == pytest.approx(0.5 * (1 + 1 / sed.r_v), abs=0.1)
    # near-infrared second maximum: rest-frame i stops fading between +10 and +30 d
    p = {"theta": np.zeros(1), "host_av": np.zeros(1), "m_peak": np.array([sed.m0]), "sed_eps": np.zeros((1, 11, 6))}
    i_mag = sed.rest_frame_mag(np.array([[10.0, 20.0, 30.0]]), np.full((1, 3), 7600.0), p)[0]
    assert i_mag[1] <= i_mag[0] + 0.1 and i_mag[2] <= i_mag[0] + 0.2


def test_sn_ia_sed_population_draws():
    from scone_assets.simulate.sed_ia import model

    sed = model()
    d = sed.draw(20000, np.random.default_rng(0))
    assert np.mean(d["host_av"]) == pytest.approx(sed.tau_a, rel=0.05) and (d["host_av"] >= 0).all()
    assert np.std(d["theta"]) == pytest.approx(1.0, rel=0.05)
    assert np.std(d["m_peak"]) == pytest.approx(sed.sigma0, rel=0.05)
    eps = d["sed_eps"]
    assert (eps[:, 0] == 0).all() and (eps[:, -1] == 0).all()  # no residual on the edge wavelength knots
    flat = eps[:, 1:-1, :].reshape(len(eps), -1, order="F")
    assert np.cov(flat.T) == pytest.approx(sed.l_sigma @ sed.l_sigma.T, abs=0.01)


def test_sn_ia_sed_needs_the_data_package(monkeypatch):
    import importlib.util

    from scone_assets.simulate import sed_ia

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sed_ia.MissingSEDData, match="make venv"):
        sed_ia._root()


def test_sn_ic_template_model():
    """The default SNIc: SNANA's eight SN Ic templates (sed_ic.py), from the snsedextend wheel's files."""
    from scone_assets.simulate.classes import BLACKBODY_SNIC
    from scone_assets.simulate.sed_ic import TEMPLATES, model

    sed = model()
    ic = SUBTYPES["SNIc"]
    assert ic.sed == "snana-ic" and BLACKBODY_SNIC.sed is None and SUBTYPES["SNIb"].sed is None
    assert [t.name for t in sed.templates] == list(TEMPLATES)
    first = {t.name: (round(float(t.phase[0]), 1), round(float(t.phase[-1]), 1), t.wave[0], t.wave[-1])
             for t in sed.templates}
    # CSP-2004fe's file runs -35.4..+139.5 d, its B peak at -2.0 d and empty spectra before -17.7 d
    assert first["CSP-2004fe"] == (-15.7, 141.5, 2500.0, 9740.0)
    assert first["SNLS-04D4jv"][2:] == (2770.0, 9350.0)
    n = len(TEMPLATES)
    p = {"template": np.arange(n), "m_peak": np.full(n, -17.5), "host_ebv": np.zeros(n)}
    t = np.array([[-40.0, 0.0, 15.0, 30.0, 400.0]] * n)
    b = sed.rest_frame_mag(t, np.full(t.shape, 4400.0), p)
    assert b[:, 1] == pytest.approx(np.full(n, -17.5))  # every template peaks at the drawn M_B at t = 0
    assert np.isinf(b[:, 0]).all()  # before the first phase minus the 10-day rise: no light
    assert ((b[:, 2] > -17.5) & (b[:, 3] > b[:, 2])).all()  # fading after the peak
    assert np.isfinite(b[:, 4]).all() and (b[:, 4] > b[:, 3] + 5).all()  # the late fade past the last phase
    dust = sed.rest_frame_mag(t[:1, 1:2], np.full((1, 1), 4400.0), {**p, "template": np.zeros(1, int),
                                                                     "m_peak": np.full(1, -17.5),
                                                                     "host_ebv": np.full(1, 0.2)})
    assert dust[0, 0] - (-17.5) == pytest.approx(0.2 * 4.1, abs=0.1)  # CCM89 A_B = (R_V + 1) E(B-V)
    d = sed.draw(8000, np.random.default_rng(0))
    assert np.bincount(d["template"], minlength=n).min() > 900  # uniform over the eight
    assert np.mean(d["host_ebv"]) == pytest.approx(0.1, rel=0.05)


def test_simulated_sn_ic_follow_their_templates(tmp_path):
    """Observed through the simulator, an SN Ic is its template redshifted, not the blackbody."""
    from astropy.io import fits

    from scone_assets.simulate.classes import BLACKBODY_SNIC
    from scone_assets.simulate.sed_ic import TEMPLATES, model

    n, z = len(TEMPLATES), 0.02
    p = {"z": np.full(n, z), "mu": distance_modulus(np.full(n, z)), "peak_mjd": np.zeros(n),
         "mwebv": np.zeros(n), "template": np.arange(n), "m_peak": np.full(n, -17.5), "host_ebv": np.zeros(n),
         "rise": np.full(n, 14.0), "stretch": np.ones(n)}
    days = np.array([0.0, 10.0, 30.0])
    mjd = np.broadcast_to(days * (1 + z), (n, 3))
    wave = np.full((n, 3), 6200.0 * (1 + z))
    seen = observed_mag(SUBTYPES["SNIc"], mjd, wave, 0.005 * wave, p) - p["mu"][:, None] + 2.5 * np.log10(1 + z)
    rest = model().rest_frame_mag(np.broadcast_to(days, (n, 3)), np.full((n, 3), 6200.0), p)
    assert seen == pytest.approx(rest, abs=0.05)  # a narrow band at rest-frame r
    blackbody = observed_mag(BLACKBODY_SNIC, mjd, wave, 0.005 * wave, p) - p["mu"][:, None] + 2.5 * np.log10(1 + z)
    assert np.abs(seen[:, 2] - blackbody[:, 2]).max() > 0.5  # the templates' declines are their own

    res = simulate(tmp_path / "IC", 60, survey="lowz", seed=4, mix="SNIc=1", per_file=60, jobs=1, progress=False)
    assert res.counts == {"SNIc": 60}
    head = fits.getdata(res.head_files[0])
    assert set(head["SIM_GENTYPE"]) == {33} and np.isfinite(head["SIM_PEAKMAG_r"]).all()


def test_sn_ic_templates_need_the_data_package(monkeypatch):
    import importlib.util

    from scone_assets.simulate import sed_ic

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sed_ic.MissingTemplateData, match="make venv"):
        sed_ic._root()


def test_sn_ii_colours_and_plateau():
    """SN II-P: V-band plateau (Anderson et al. 2014), flat r and i, and the blue taken by
    line blanketing as the ejecta cool (de Jaeger et al. 2018's colours at +50 d)."""
    sub = SUBTYPES["SNIIP"]
    p = {"rise": np.array([[9.0]]), "stretch": np.array([[1.0]]), "m_peak": np.array([[-16.8]]),
         "plateau": np.array([[100.0]])}
    days = np.array([[0.0, 10.0, 40.0, 50.0]])

    def mag(wave: float) -> np.ndarray:
        return rest_frame_mag(sub, days, p, np.full(days.shape, wave))[0]

    u, b, g, v, r, i = (mag(w) for w in (3560.0, 4400.0, 4770.0, 5500.0, 6230.0, 7630.0))
    assert b[0] == pytest.approx(-16.8)  # the drawn peak is rest-frame B at t = 0
    assert v[1] - v[0] == pytest.approx(0.3, abs=0.01)  # 3 mag / 100 d over the first 10 d
    assert abs(r[2] - r[0]) < 0.3 and abs(i[2] - i[0]) < 0.15  # the red plateau stays flat
    # AB colours at +50 d: blackbody alone 0.49 / 0.45 / 0.94, blanketing adds 0.52 / 0.28 / 0.94
    assert b[3] - v[3] == pytest.approx(1.01, abs=0.02)
    assert g[3] - r[3] == pytest.approx(0.73, abs=0.02)
    assert u[3] - g[3] == pytest.approx(1.88, abs=0.02)
    # blue at peak (12,000 K): no blanketing yet
    assert g[0] - r[0] == pytest.approx(-0.15, abs=0.02)
    # SNe IIn keep their blue: no blanketing
    assert SUBTYPES["SNIIn"].blanketing == 0 and SUBTYPES["SNIIL"].blanketing == sub.blanketing
