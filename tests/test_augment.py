"""Augmentation for training that carries from simulation to data (heatmaps/augment.py):
the light-curve transforms, the `augmented` heatmap set, and its use in training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scone_assets.config import ConfigError, SconeConfig, config_from_dict
from scone_assets.heatmaps import augment as aug
from scone_assets.heatmaps.make import LightCurveInput
from scone_assets.heatmaps.run import heatmap_sets, make_heatmaps, settings
from scone_assets.heatmaps.store import INDEX, SHARD, UNIT_RECORD, load_catalogs, read_shard
from scone_assets.simulate.run import simulate

GRID = {"num_wavelength_bins": 16, "num_mjd_bins": 40}


def _lc(n: int, seed: int = 0, snid: object = 7) -> LightCurveInput:
    rng = np.random.default_rng(seed)
    return LightCurveInput(snid, np.sort(rng.uniform(0, 200, n)), rng.choice(np.array(list("griz")), n),
                           rng.normal(100, 30, n), rng.uniform(2, 20, n), 100.0, 0.02)


# ------------------------------------------------------------------ transforms

def test_drop_observations_drops_the_asked_share_and_keeps_the_gp_minimum():
    lc = _lc(100)
    out = aug.drop_observations(lc, 0.3, np.random.default_rng(1))
    assert len(out.mjd) == 70
    kept = np.flatnonzero(np.isin(lc.mjd, out.mjd))
    assert len(kept) == 70 and np.array_equal(out.mjd, lc.mjd[kept])  # a subset, in order
    assert np.array_equal(out.flux, lc.flux[kept]) and np.array_equal(out.band, lc.band[kept])
    assert len(aug.drop_observations(_lc(10), 0.96, np.random.default_rng(1)).mjd) == aug.MIN_OBS == 2
    assert len(aug.drop_observations(_lc(1), 0.5, np.random.default_rng(1)).mjd) == 1
    assert len(aug.drop_observations(lc, 0.0, np.random.default_rng(1)).mjd) == 100


def test_error_scaling_scales_errors_and_adds_the_matching_noise():
    lc = _lc(200_000, seed=2)
    out = aug.scale_errors(lc, 1.5, np.random.default_rng(3))
    np.testing.assert_array_equal(out.err, lc.err * 1.5)
    pull = (out.flux - lc.flux) / (lc.err * np.sqrt(1.5 ** 2 - 1))
    assert abs(pull.mean()) < 0.01 and abs(pull.std() - 1) < 0.01  # N(0, 1): sigma sqrt(s^2 - 1)
    # on a flux of known truth, the scatter about it is the new error
    truth = np.full(200_000, 50.0)
    sim = LightCurveInput(1, lc.mjd, lc.band, truth + np.random.default_rng(4).normal(size=200_000) * lc.err,
                          lc.err, 100.0, 0.0)
    out = aug.scale_errors(sim, 2.0, np.random.default_rng(5))
    assert abs(((out.flux - truth) / out.err).std() - 1) < 0.01
    np.testing.assert_array_equal(aug.scale_errors(lc, 1.0, np.random.default_rng(6)).flux, lc.flux)
    with pytest.raises(ValueError, match="cannot be taken away"):
        aug.scale_errors(lc, 0.9, np.random.default_rng(6))


def test_augment_draws_within_the_settings_and_is_seeded_by_seed_snid_and_copy():
    s = aug.AugmentSettings(copies=3, drop_fraction=0.4, error_scale=(1.2, 1.8), peak_shift_days=5.0, seed=9)
    lc = _lc(200)
    copies = [aug.augment(lc, s, k) for k in range(300)]
    kept = np.array([len(c.mjd) / 200 for c in copies])
    scales = []
    for c in copies:
        ratio = c.err / lc.err[np.isin(lc.mjd, c.mjd)]
        assert np.allclose(ratio, ratio[0])  # one scale per copy
        scales.append(ratio[0])
    shifts = np.array([c.peakmjd - lc.peakmjd for c in copies])
    assert kept.min() >= 0.6 - 1e-9 and kept.max() <= 1 and abs(kept.mean() - 0.8) < 0.02  # U(0, 0.4) dropped
    assert min(scales) >= 1.2 and max(scales) <= 1.8 and abs(np.mean(scales) - 1.5) < 0.03
    assert np.abs(shifts).max() <= 5 and abs(shifts.mean()) < 0.5 and shifts.std() > 2.5
    again = aug.augment(lc, s, 4)
    assert np.array_equal(again.flux, aug.augment(lc, s, 4).flux)  # same (seed, SNID, copy): same copy
    assert not np.array_equal(again.flux[:10], aug.augment(lc, s, 5).flux[:10])
    other = aug.augment(_lc(200, snid=8), s, 4)
    assert other.peakmjd != again.peakmjd
    # one transform's draws do not move another's: no drop, same noise and shift
    nodrop = aug.AugmentSettings(3, 0.0, (1.2, 1.8), 5.0, 9)
    assert aug.augment(lc, nodrop, 4).peakmjd == again.peakmjd
    # early sets: each copy takes one of their truncations; mixed draws 0-50 days
    days = {aug.augment(lc, s, k, [5.0, 50.0]).early_days for k in range(40)}
    assert days == {5.0, 50.0}
    mixed = [aug.augment(lc, s, k, ["mixed"]).early_days for k in range(40)]
    assert all(0 <= d <= 50 and d == int(d) for d in mixed) and len(set(mixed)) > 10
    assert aug.augment(lc, s, 0, [None]).early_days is None


def test_copies_without_a_flux_peak_are_left_out():
    good = np.zeros((4, 6, 2), np.float32)
    good[..., 0], good[..., 1] = 3.0, 1.0
    assert aug.no_signal(good) is None
    flat = good.copy()
    flat[..., 0] = 1e-11  # the GP's mean collapsed to ~0 while its std did not: 1e11 x the peak
    assert aug.no_signal(flat) == aug.NO_SIGNAL
    negative = good.copy()
    negative[..., 0] = -2.0
    assert aug.no_signal(negative) == aug.NO_SIGNAL
    dip = good.copy()
    dip[0, 0, 0] = -31.0  # more than 10 x the peak
    assert aug.no_signal(dip) == aug.NO_SIGNAL


def test_config_keys_and_their_defaults():
    cfg = SconeConfig()
    assert (cfg.augment_copies, cfg.augment_drop_fraction, cfg.augment_error_scale,
            cfg.augment_peak_shift_days) == (0, 0.3, (1.0, 2.0), 3.0)
    assert config_from_dict({"augment_error_scale": [1, 3]}).augment_error_scale == (1.0, 3.0)
    for bad in ({"augment_error_scale": [0.5, 2]}, {"augment_error_scale": [2, 1]},
                {"augment_error_scale": "x"}, {"augment_copies": -1}, {"augment_drop_fraction": 1.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            config_from_dict(bad)


def test_augment_copies_zero_leaves_sets_and_fingerprints_as_before():
    base = dict(input_path="/x", heatmaps_path="/h")
    off, on = SconeConfig(**base), SconeConfig(**base, augment_copies=2, augment_drop_fraction=0.1)
    assert heatmap_sets(off) == [("full", None)]
    assert heatmap_sets(on) == [("full", None), ("augmented", [None])]
    assert heatmap_sets(SconeConfig(**base, augment_copies=2, mode="predict", trained_model="/m")) == [("full", None)]
    early = SconeConfig(**base, augment_copies=1, early_lightcurves=[5, 50])
    assert heatmap_sets(early)[-1] == ("augmented", [5.0, 50.0])
    # the full set's fingerprint: the keys it had before augmentation existed, whatever augment_* say
    before = {"num_wavelength_bins", "num_mjd_bins", "has_peakmjd", "mw_correction", "backend", "set",
              "truncation", "seed", "survey", "band_to_wave", "sn_type_id_to_name", "trained_band_to_wave",
              "redshift_from"}
    full_off = settings(off, "fast", "full", None, None)
    assert set(full_off) == before
    assert settings(on, "fast", "full", None, None) == full_off
    augmented = settings(on, "fast", "augmented", [None], None)
    assert augmented["augment_copies"] == 2 and augmented["augment_drop_fraction"] == 0.1
    assert augmented["augment_seed"] == 42 and augmented["augment_version"] == aug.VERSION


# ------------------------------------------------------------------ the augmented heatmap set

@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "AUGSIM"
    simulate(out, 60, survey="des", seed=5, per_file=30, jobs=1, progress=False)
    return out


def _statuses(run) -> dict:
    return {(r.unit.split("-")[-1], r.heatmap_set): r.status for r in run.results}


def test_augmented_set_is_made_reused_and_remade_with_a_reason(sim, tmp_path):
    base = dict(input_path=str(sim), heatmaps_path=str(tmp_path / "h"), **GRID)
    run = make_heatmaps(SconeConfig(**base), jobs=2, progress=False)
    assert _statuses(run) == {("0001", "full"): "done", ("0002", "full"): "done"}
    assert not (tmp_path / "h" / "augmented").exists()
    full_records = {p: (p / UNIT_RECORD).read_text() for p in (tmp_path / "h" / "full").glob("AUGSIM*")}

    on = SconeConfig(**base, augment_copies=2)
    run = make_heatmaps(on, jobs=2, progress=False)
    assert _statuses(run) == {("0001", "full"): "already done", ("0002", "full"): "already done",
                              ("0001", "augmented"): "done", ("0002", "augmented"): "done"}
    assert {p: (p / UNIT_RECORD).read_text() for p in full_records} == full_records  # untouched
    assert not run.duplicates  # copies share their SNID by design: not duplicates
    unit = next(r for r in run.results if r.heatmap_set == "augmented").folder
    full_index = pd.read_parquet(tmp_path / "h" / "full" / unit.name / INDEX)
    index = pd.read_parquet(unit / INDEX)
    assert len(index) == 2 * 30 and list(index.augment_copy[:4]) == [0, 1, 0, 1]
    assert list(index.SNID[::2]) == list(index.SNID[1::2]) == list(full_index.SNID)
    ok = index[index.status == "ok"]
    records = list(read_shard(unit / SHARD, (16, 40)))
    assert [r["snid"] for r in records] == list(ok.SNID)  # each record keeps its object's SNID
    assert (ok.n_obs <= full_index.set_index("SNID").n_obs.loc[ok.SNID].to_numpy()).all()
    assert (ok.n_obs < full_index.set_index("SNID").n_obs.loc[ok.SNID].to_numpy()).mean() > 0.5
    full = {r["snid"]: r["image"] for r in read_shard(tmp_path / "h" / "full" / unit.name / SHARD, (16, 40))}
    assert not np.allclose(records[0]["image"], full[records[0]["snid"]])
    first = (unit / SHARD).read_bytes()

    assert set(_statuses(make_heatmaps(on, jobs=1, progress=False)).values()) == {"already done"}
    changed = SconeConfig(**base, augment_copies=2, augment_drop_fraction=0.1)
    run = make_heatmaps(changed, jobs=1, progress=False)
    by = {(r.unit.split("-")[-1], r.heatmap_set): r for r in run.results}
    assert by[("0001", "full")].status == "already done"
    assert by[("0001", "augmented")].status == "remade"
    assert by[("0001", "augmented")].reasons == ["augment_drop_fraction 0.3 -> 0.1"]
    reseeded = make_heatmaps(SconeConfig(**{**base, "augment_copies": 2, "seed": 7}), jobs=1, progress=False)
    assert {r.heatmap_set: r.reasons for r in reseeded.results if r.status == "remade"} == {
        "augmented": ["augment_drop_fraction 0.1 -> 0.3", "augment_seed 42 -> 7"]}

    # the same copies, byte for byte, from one worker as from two
    again = make_heatmaps(SconeConfig(**{**base, "heatmaps_path": str(tmp_path / "h1")}, augment_copies=2),
                          jobs=1, progress=False)
    assert (tmp_path / "h1" / "augmented" / unit.name / SHARD).read_bytes() == first
    assert pd.read_parquet(tmp_path / "h1" / "augmented" / unit.name / INDEX).equals(index)
    assert all(r.ok for r in again.results)


def test_training_uses_augmented_copies_of_training_objects_only(sim, tmp_path, monkeypatch):
    from scone_assets.model import train as train_mod

    cfg = SconeConfig(input_path=str(sim), heatmaps_path=str(tmp_path / "h"), augment_copies=2, num_epochs=1,
                      seed=3, **GRID)
    make_heatmaps(cfg, jobs=2, progress=False)
    catalogs = load_catalogs(cfg.heatmaps_path, [name for name, _ in heatmap_sets(cfg)])
    assert set(catalogs) == {"full", "augmented"}
    seen: dict = {}
    real_with, real_temperature = train_mod._with_augmented, train_mod._temperature

    def with_augmented(catalog, augmented, split, config):
        seen["split"] = split
        seen["training"], info = real_with(catalog, augmented, split, config)
        return seen["training"], info

    def temperature(model, catalog, *args):
        seen["calibrated_on"] = catalog
        return real_temperature(model, catalog, *args)

    monkeypatch.setattr(train_mod, "_with_augmented", with_augmented)
    monkeypatch.setattr(train_mod, "_temperature", temperature)
    metrics = train_mod.train(cfg, catalogs, tmp_path / "model", progress=False)

    split = pd.read_csv(tmp_path / "model" / "split.csv", dtype={"SNID": str})
    sets = split.set_index("SNID").set
    idx = catalogs["augmented"].index
    expected = int(idx.SNID.isin(set(split.SNID[split.set == "train"])).sum())
    assert expected > 0 and (sets != "train").sum() > 0
    training = seen["training"].index
    from_aug = training[training.shard.str.contains("/augmented/")]
    assert len(from_aug) == expected and set(sets[from_aug.SNID]) == {"train"}  # never val or test
    assert len(training) == len(catalogs["full"]) + expected
    assert not seen["calibrated_on"].index.shard.str.contains("/augmented/").any()
    info = metrics["augmentation"]
    assert info["used"] == expected and info["left_out"] == len(idx) - expected
    assert info["objects"] == from_aug.SNID.nunique() and info["augment_copies"] == 2
    assert list(metrics["sets"]) == ["full"]  # test metrics from the full set only
    assert metrics["test"]["n"] == int((sets == "test").sum())
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert meta["augmentation"]["used"] == expected and meta["heatmap_sets"] == ["full"]
    assert meta["n_train"] == int((sets == "train").sum())

    # streaming reads the same training records (its declared cardinality would fail otherwise)
    streamed = train_mod.train(cfg.model_copy(update={"force_streaming": True}), catalogs, tmp_path / "m2",
                               progress=False)
    assert streamed["augmentation"]["used"] == expected

    # without the set (augment_copies 0): no augmentation in the metrics, an empty record in the meta
    plain = train_mod.train(SconeConfig(**{**cfg.model_dump(), "augment_copies": 0}), {"full": catalogs["full"]},
                            tmp_path / "m3", progress=False)
    assert "augmentation" not in plain
    assert json.loads((tmp_path / "m3" / "model_meta.json").read_text())["augmentation"] == {}
    with pytest.raises(ConfigError, match="needs the set it was made from"):
        train_mod.train(cfg, {"augmented": catalogs["augmented"]}, tmp_path / "m4", progress=False)
    # the config and the sets must agree: neither is dropped or used silently
    with pytest.raises(ConfigError, match="augment_copies: 2 asks for the heatmap set augmented"):
        train_mod.train(cfg, {"full": catalogs["full"]}, tmp_path / "m5", progress=False)
    with pytest.raises(ConfigError, match="augmented was given but augment_copies is 0"):
        train_mod.train(SconeConfig(**{**cfg.model_dump(), "augment_copies": 0}), catalogs, tmp_path / "m6",
                        progress=False)
    assert not (tmp_path / "m5").exists() and not (tmp_path / "m6").exists()
