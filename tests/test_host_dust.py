"""`scone fit-dust`: a survey's SN Ia host-dust scale from its colours near peak, without
labels. On LOWZ_REAL (real SNe Ia from targeted nearby searches, redder than BayeSN's
dust makes them) and yse_dev (an untargeted survey, as BayeSN's)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from scone_assets.simulate.classes import SimulationError
from scone_assets.simulate.host_dust import (
    SimColours,
    fit_ia_dust,
    simulated_colours,
    survey_colours,
)

CLI = [sys.executable, "-m", "scone_assets.cli"]


def test_the_fit_finds_the_scale_a_mix_was_made_with():
    """Colours made from a known scale and SN Ia fraction: the fit returns that scale."""
    rng = np.random.default_rng(7)
    n_ia, n_cc, slope = 4000, 4000, 0.5

    def mix(n_ia_: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
        av = rng.exponential(tau, n_ia_)
        return rng.normal(0.0, 0.1, n_ia_) + slope * av, av

    ia, av = mix(n_ia, 0.252)
    cc = rng.normal(0.4, 0.3, n_cc)
    sim = SimColours(np.concatenate([ia, cc]), np.r_[np.ones(n_ia, bool), np.zeros(n_cc, bool)],
                     np.concatenate([av, np.zeros(n_cc)]))
    data_ia, _ = mix(6400, 0.7)  # the data: 80% SNe Ia with A_V ~ Exponential(0.7)
    data = np.concatenate([data_ia, rng.normal(0.4, 0.3, 1600)])
    fit = fit_ia_dust(data, sim, 0.8)
    assert fit.tau == pytest.approx(0.7, abs=0.051)  # one step of the scales compared
    assert fit.slope == pytest.approx(slope, abs=0.02)
    assert fit.n_data == 8000 and fit.n_sim == 8000 and fit.n_sim_ia == 4000
    assert dict(fit.ks)[0.25] > 3 * dict(fit.ks)[fit.tau]
    assert fit.fit_quantiles[-1] > fit.sim_quantiles[-1] + 0.2  # the red tail is where it shows
    assert not fit.at_edge
    # 8,000 colours tell 0.7 from BayeSN's 0.252, not from 0.75
    assert fit.resolution == pytest.approx(1.36 / np.sqrt(8000))
    assert fit.rules_out(0.252) and not fit.rules_out(0.75) and not fit.rules_out(0.7)
    # 40 of those colours: a best scale off by 0.25, but what they can tell is only 0.252 from it
    few = fit_ia_dust(data[::200], sim, 0.8)
    assert few.tau == 0.95 and few.resolution == pytest.approx(0.215, abs=0.001)
    assert few.rules_out(0.252) and not few.rules_out(0.7) and not few.rules_out(0.55)
    # too few SNe Ia expected among the data's colours: no fit
    with pytest.raises(SimulationError, match="about 16 of the data's 8000 colours are SNe Ia; the fit needs at least 20"):
        fit_ia_dust(data, sim, 0.002)
    # far redder than any scale compared: the best is the last, and it says so
    red = np.concatenate([mix(1600, 3.0)[0], rng.normal(0.4, 0.3, 400)])
    edge = fit_ia_dust(red, sim, 0.8)
    assert edge.tau == 1.0 and edge.at_edge and "edge of the scales compared" in edge.describe()[-1]
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(SimulationError, match="SN Ia fraction must be in"):
            fit_ia_dust(data, sim, bad)


@pytest.fixture(scope="module")
def lowz_like(tmp_path_factory):
    from conftest import shared

    lowz = shared("snana_fits", "LOWZ_REAL")
    out = tmp_path_factory.mktemp("dust") / "LOWZ_LIKE"
    res = subprocess.run([*CLI, "simulate", "--out", str(out), "--like", str(lowz), "--n", "2000",
                          "--seed", "2", "--jobs", "2"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    return lowz, out


def test_fit_dust_on_lowz_real_wants_more_dust_than_bayesn(lowz_like, tmp_path):
    lowz, sim = lowz_like
    prior = tmp_path / "predictions.class_prior.json"
    # as `class_prior: data` writes it; 0.90 is what models trained on LOWZ_REAL-like
    # simulations estimate for it without labels (BENCHMARKS.md)
    prior.write_text(json.dumps({"classes": ["nonIa", "SNIa"], "assumed": [0.5, 0.5],
                                 "estimated": [0.1, 0.9]}))
    png = tmp_path / "fit.png"
    # the data spelt otherwise than when simulated: still the same data
    res = subprocess.run([*CLI, "fit-dust", "--data", f"{lowz}/../{lowz.name}", "--sim", str(sim),
                          "--class-prior", str(prior), "--plot", str(png)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr
    out = res.stdout
    assert "SN Ia fraction 0.900, estimated without labels" in out
    assert "colours near peak: 254 in the data" in out  # LOWZ_REAL objects observed in B/g and R/r near peak
    # LOWZ_REAL's colours near peak (quantiles 50/75/90/95%) are those of the file
    assert "data 0.22 / 0.43 / 0.88 / 1.26" in out
    ks = {float(t): float(k) for t, k in
          (p.split() for p in out.split("KS distance by tau: ")[1].splitlines()[0].split(", "))}
    best = float(out.split("best: --ia-dust-tau ")[1].split()[0])
    assert 0.45 <= best <= 0.65  # 0.55 on 20,000 light curves; BayeSN's is 0.252
    assert ks[0.25] > 2 * ks[best]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000

    # the same data named by a SCONE config's inputs (as --like-config): the same fit
    config = tmp_path / "data.yml"
    config.write_text(f"input_path: {lowz}\n")
    res = subprocess.run([*CLI, "fit-dust", "--data-config", str(config), "--sim", str(sim), "--ia-fraction", "0.9"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == out.splitlines()[-2]  # the best line, before the plot's


def test_fit_dust_on_yse_keeps_bayesn_and_never_reads_types(tmp_path):
    from conftest import scrambled_yse, shared

    yse = shared("yse_dev")
    # the survey's colours are the same with its types, classes and labels shuffled
    colours = survey_colours([str(yse)])
    assert len(colours) == 118
    assert np.array_equal(colours, survey_colours([str(scrambled_yse(yse, tmp_path / "scrambled"))]))
    sim = tmp_path / "YSE_LIKE"
    res = subprocess.run([*CLI, "simulate", "--out", str(sim), "--like", str(yse), "--n", "2000", "--seed", "1",
                          "--jobs", "2"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([*CLI, "fit-dust", "--data", str(yse), "--sim", str(sim), "--ia-fraction", "0.66"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "colours near peak: 118 in the data" in res.stdout
    best = float(res.stdout.split("best: --ia-dust-tau ")[1].split()[0])
    assert best <= 0.35  # BayeSN's 0.252: an untargeted survey's SNe Ia are as cosmology samples'


def test_fit_dust_refuses_what_it_cannot_fit(lowz_like, tmp_path):
    from conftest import shared

    lowz, sim = lowz_like

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "fit-dust", *args], capture_output=True, text=True, timeout=600)

    # survey data as --sim: no host A_V to re-draw
    res = run("--data", str(lowz), "--sim", str(lowz), "--ia-fraction", "0.9")
    assert res.returncode == 2 and "no SIM_AV column; --sim must be a simulation" in res.stderr
    res = run("--data", str(lowz), "--sim", str(sim), "--ia-fraction", "1.2")
    assert res.returncode == 2 and "SN Ia fraction must be in (0, 1], not 1.2" in res.stderr
    bad = tmp_path / "p.class_prior.json"
    bad.write_text(json.dumps({"classes": ["SNII", "SNIbc"], "estimated": [0.5, 0.5]}))
    res = run("--data", str(lowz), "--sim", str(sim), "--class-prior", str(bad))
    assert res.returncode == 2 and f"{bad}: no estimated fraction of the class SNIa" in res.stderr
    bad.write_text("not json")
    res = run("--data", str(lowz), "--sim", str(sim), "--class-prior", str(bad))
    assert res.returncode == 2 and f"{bad}: not a class-prior estimate" in res.stderr
    res = run("--data", str(lowz), "--sim", str(sim))
    assert res.returncode == 2 and "one of the arguments --ia-fraction --class-prior is required" in res.stderr
    res = run("--data", str(tmp_path / "nowhere"), "--sim", str(sim), "--ia-fraction", "0.9")
    assert res.returncode == 2 and "nowhere" in res.stderr
    # a --like simulation of other data
    yse = shared("yse_dev")
    res = run("--data", str(yse), "--sim", str(sim), "--ia-fraction", "0.66")
    assert res.returncode == 2 and f"{sim} was simulated like other data than {yse}" in res.stderr
    # a SNANA simulation: taken as made for the survey, with a warning; this one holds only SNe Ia
    des = shared("snana_fits", "DES_SIM")
    res = run("--data", str(des), "--sim", str(des), "--ia-fraction", "0.5")
    assert f"warning: {des} is not a `scone simulate --like` simulation" in res.stderr
    assert res.returncode == 2 and "the simulation holds only SNe Ia" in res.stderr


def test_a_simulation_without_sn_ia_colours_is_refused(tmp_path):
    from conftest import shared

    yse = shared("yse_dev")
    sim = tmp_path / "CC_ONLY"
    res = subprocess.run([*CLI, "simulate", "--out", str(sim), "--like", str(yse), "--n", "200", "--seed", "1",
                          "--jobs", "1", "--mix", "SNII=0.5,SNIbc=0.5"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    with pytest.raises(SimulationError, match="0 simulated SNe Ia with a colour near peak"):
        simulated_colours(sim)
