"""SCONE's training-set selection keys (snid_select_files, SIMGEN DUMP FLAG_ACCEPT,
prescale_heatmaps, nevt_select_heatmaps), applied when heatmaps are made, on real
SNANA files: simulations written by the simulator and the shared SNANA data."""

import gzip
import logging
import shutil
from pathlib import Path

import pytest

from scone_assets.config import SconeConfig
from scone_assets.heatmaps import store
from scone_assets.heatmaps.run import make_heatmaps, settings, training_band_map
from scone_assets.simulate.run import simulate
from scone_assets.snana import select
from scone_assets.snana.read import discover, discover_paths, read_unit
from scone_assets.snana.types import IA

GRID = {"num_wavelength_bins": 8, "num_mjd_bins": 16, "jobs": 1}


def sim(folder: Path, n: int, seed: int) -> dict[str, bool]:
    """A simulation folder named as its VERSION; SNID -> is SN Ia, as the reader says."""
    simulate(folder, n, seed=seed, jobs=1, progress=False, mix="SNIa=0.5,SNII=0.5")
    lcs = read_unit(discover_paths([str(folder)]).units[0])
    assert lcs.is_sim and len(lcs) == n
    return {str(s): t == IA for s, t in zip(lcs.meta.SNID, lcs.meta.TYPE_NAME, strict=True)}


def fitres(path: Path, version: str | None, cids: list, *, gz: bool = False, version_line: int = 3) -> Path:
    """An SNANA FITRES file as LCFIT writes it: comments, VARNAMES, SN: rows."""
    head = ["# FITRES written for test_select", "# SNANA_VERSION: v11_05"]
    while len(head) < version_line - 1:
        head.append("# filler comment")
    if version is not None:
        head.append(f"# VERSION_PHOTOMETRY: {version}")
    lines = head + ["NVAR: 4", "VARNAMES: CID IDSURVEY zHD zHDERR"]
    lines += [f"SN: {c:>8} 10 0.{i % 9 + 1:d}000 0.0100" for i, c in enumerate(cids)]
    text = "\n".join(lines) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def catalog_snids(root: Path, unit_prefix: str | None = None) -> set[str]:
    folders = store.finished_units(root, "full")
    idx = store.load_catalog(folders).index
    if unit_prefix:
        idx = idx[idx.unit.str.startswith(unit_prefix)]
    return set(idx.SNID)


def by_unit(run) -> dict:
    return {r.unit.split("__")[0].split("-")[0]: r for r in run.results}


@pytest.fixture(scope="module")
def sims(tmp_path_factory) -> tuple[Path, dict[str, bool], dict[str, bool]]:
    """Two simulations, SIMA (24) and SIMB (12), with overlapping SNIDs 1..n (as separate
    SNANA jobs have)."""
    base = tmp_path_factory.mktemp("sims")
    return base, sim(base / "SIMA", 24, seed=3), sim(base / "SIMB", 12, seed=4)


def copy_sim(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".scone*"))
    return dest


def test_fitres_keeps_exactly_its_snids_per_version_and_skips_other_versions(sims, tmp_path, caplog):
    base, a, b = sims
    wanted = ["2", "3", "0005", "11", "13", "24"]  # "0005" is SNID 5: CIDs match as numbers
    keep = {"2", "3", "5", "11", "13", "24"}
    sel_a = fitres(tmp_path / "SIMA.FITRES.gz", "SIMA", wanted, gz=True)
    other = fitres(tmp_path / "OTHER.FITRES", "OTHER_VERSION", list(range(1, 25)))
    cfg = SconeConfig(input_data_paths=[str(base / "SIMA"), str(base / "SIMB")], heatmaps_path=str(tmp_path / "hm"),
                      snid_select_files=[str(sel_a), str(other)], **GRID)
    with caplog.at_level(logging.INFO, logger="scone_assets"):
        run = make_heatmaps(cfg, progress=False)
    res = by_unit(run)
    assert res["SIMA"].status == "done" and res["SIMA"].written == len(keep)
    assert res["SIMA"].skipped == {select.NOT_SELECTED: 24 - len(keep)}
    # SIMB shares SNIDs 1..12 but no file names its VERSION: SIMA's SNIDs select nothing there
    assert res["SIMB"].status == "done" and res["SIMB"].written == 0
    assert res["SIMB"].skipped == {select.NOT_SELECTED: 12}
    assert catalog_snids(tmp_path / "hm") == keep
    assert f"skip snid_select_file {other}" in caplog.text
    assert f"NSIM [Ia, nonIa] = [{sum(a[s] for s in keep)}, {sum(not a[s] for s in keep)}]" in caplog.text

    # the same selection again: reused; another one: remade, saying why
    again = by_unit(make_heatmaps(cfg, progress=False))
    assert again["SIMA"].status == "already done"
    fitres(sel_a, "SIMA", ["2", "3"], gz=True)
    changed = by_unit(make_heatmaps(cfg, progress=False))
    assert changed["SIMA"].status == "remade" and changed["SIMA"].written == 2
    assert any(r.startswith("snid_select_files") for r in changed["SIMA"].reasons)
    assert changed["SIMB"].status == "already done"  # its selection did not change
    assert catalog_snids(tmp_path / "hm") == {"2", "3"}


def test_comma_version_list_applies_to_both_folders(sims, tmp_path):
    base, a, b = sims
    lst = fitres(tmp_path / "both.FITRES", "SIMB,SIMA", ["4", "20"])
    cfg = SconeConfig(input_data_paths=[str(base / "SIMA"), str(base / "SIMB")], heatmaps_path=str(tmp_path / "hm"),
                      snid_select_files=[str(lst)], **GRID)
    plan = select.plan(cfg, discover(cfg).units, None)
    keys = {u.key.split("__")[0].split("-")[0]: u.key for u in discover(cfg).units}
    assert plan.for_unit(keys["SIMA"]).keep == {"4", "20"}
    assert plan.for_unit(keys["SIMB"]).keep == {"4", "20"}  # SNID 20 is not in SIMB: selects nothing


def test_fitres_without_version_is_an_error_naming_it(sims, tmp_path):
    base, _, _ = sims
    late = fitres(tmp_path / "late.FITRES", "SIMA", ["1"], version_line=12)  # past SCONE's 10 lines
    cfg = SconeConfig(input_data_paths=[str(base / "SIMA")], heatmaps_path=str(tmp_path / "hm"),
                      snid_select_files=[str(late)], **GRID)
    with pytest.raises(select.SelectionError, match=f"{late}.*VERSION_PHOTOMETRY"):
        make_heatmaps(cfg, progress=False)
    assert not (tmp_path / "hm" / "full").exists()  # refused before any heatmap is made


def test_duplicates_abort_within_a_class_and_pass_across_classes(sims, tmp_path):
    base, a, b = sims
    paths = [str(base / "SIMA"), str(base / "SIMB")]
    ia, non = next(s for s in a if a[s]), next(s for s in a if not a[s])
    first = fitres(tmp_path / "one.FITRES", "SIMA", [ia, non])
    second = fitres(tmp_path / "two.FITRES", "SIMA", [ia])
    cfg = SconeConfig(input_data_paths=paths, heatmaps_path=str(tmp_path / "hm"),
                      snid_select_files=[str(first), str(second)], **GRID)
    with pytest.raises(select.SelectionError, match=rf"SIM-Ia SNID {ia} in one.FITRES, two.FITRES"):
        select.plan(cfg, discover(cfg).units, None)
    # the same SNID listed for an Ia of SIMA and a non-Ia of SIMB: allowed, as in SCONE
    shared = next(s for s in b if a[s] and not b[s])
    ia_list = fitres(tmp_path / "ia.FITRES", "SIMA", [shared])
    cc_list = fitres(tmp_path / "cc.FITRES", "SIMB", [shared])
    ok = cfg.model_copy(update={"snid_select_files": [str(ia_list), str(cc_list)]})
    plan = select.plan(ok, discover(ok).units, None)
    assert {tuple(sorted(s.keep)) for s in plan.by_unit.values()} == {(shared,)}
    # both Ia: refused
    both_ia = next(s for s in b if a[s] and b[s])
    lists = [fitres(tmp_path / "x.FITRES", "SIMA", [both_ia]), fitres(tmp_path / "y.FITRES", "SIMB", [both_ia])]
    bad = cfg.model_copy(update={"snid_select_files": [str(p) for p in lists]})
    with pytest.raises(select.SelectionError, match="x.FITRES, y.FITRES"):
        select.plan(bad, discover(bad).units, None)


def test_real_data_selection_applies_to_all_units_and_refuses_any_duplicate(lowz_real, tmp_path):
    lcs = read_unit(discover_paths([str(lowz_real)]).units[0])
    snids = list(lcs.meta.SNID.astype(str))
    lst = fitres(tmp_path / "lowz.FITRES", None, snids[:5])  # data: no VERSION needed
    cfg = SconeConfig(input_data_paths=[str(lowz_real)], heatmaps_path=str(tmp_path / "hm"),
                      snid_select_files=[str(lst)], prescale_heatmaps="2", **GRID)
    plan = select.plan(cfg, discover(cfg).units, None)
    (chosen,) = plan.by_unit.values()
    assert chosen.keep == set(snids[:5]) and chosen.prescale is None  # never prescale real data
    kept, dropped = select.apply(lcs, chosen)
    assert set(kept.meta.SNID) == set(snids[:5]) and dropped == {select.NOT_SELECTED: len(snids) - 5}
    again = fitres(tmp_path / "again.FITRES", None, [snids[3], snids[7]])
    dup = cfg.model_copy(update={"snid_select_files": [str(lst), str(again)]})
    with pytest.raises(select.SelectionError, match=f"Data SNID {snids[3]} in lowz.FITRES, again.FITRES"):
        select.plan(dup, discover(dup).units, None)
    # prescale alone (no list): real data keeps everything
    alone = select.plan(cfg.model_copy(update={"snid_select_files": None}), discover(cfg).units, None)
    kept, dropped = select.apply(lcs, alone.for_unit("any", [str(lowz_real / "x_HEAD.FITS")]))
    assert len(kept) == len(lcs) and not dropped


def write_dump(path: Path, rows: list[tuple[str, int, int]], flag: bool = True) -> None:
    cols = "CID GENTYPE ZCMB" + (" FLAG_ACCEPT" if flag else "")
    lines = ["# SIMGEN_DUMPALL written for test_select", f"NVAR: {len(cols.split())}", f"VARNAMES: {cols}"]
    for cid, gentype, accept in rows:
        lines.append(f"SN: {cid} {gentype} 0.3" + (f" {accept}" if flag else ""))
    path.write_text("\n".join(lines) + "\n")


def test_simgen_dump_flag_accept_keeps_exactly_the_accepted(sims, tmp_path, caplog):
    base, a, _ = sims
    folder = copy_sim(base / "SIMA", tmp_path / "SIMA")
    accepted = {s for s in a if int(s) % 4 != 1}
    rows = [(s, 10 if a[s] else 20, int(s in accepted)) for s in a] + [("999", 10, 0)]  # 999: rejected, not written
    write_dump(folder / "SIMA.DUMP", rows)
    cfg = SconeConfig(input_data_paths=[str(folder)], heatmaps_path=str(tmp_path / "hm"), **GRID)
    run = make_heatmaps(cfg, progress=False)
    (res,) = run.results
    assert res.written == len(accepted) and res.skipped == {select.REJECTED: 24 - len(accepted)}
    assert catalog_snids(tmp_path / "hm") == accepted

    # a DUMP with no FLAG_ACCEPT column (a legacy sim) keeps every object, and says so
    write_dump(folder / "SIMA.DUMP", rows, flag=False)
    with caplog.at_level(logging.INFO, logger="scone_assets"):
        again = make_heatmaps(cfg, progress=False)
    assert "has no FLAG_ACCEPT column" in caplog.text
    assert again.results[0].status == "remade" and again.results[0].written == 24
    assert any(r.startswith("simgen_dump") for r in again.results[0].reasons)


def test_no_dump_keeps_all_and_says_so(sims, tmp_path, caplog):
    base, _, _ = sims
    cfg = SconeConfig(input_data_paths=[str(base / "SIMA")], heatmaps_path=str(tmp_path / "hm"), **GRID)
    with caplog.at_level(logging.INFO, logger="scone_assets"):
        plan = select.plan(cfg, discover(cfg).units, None)
    assert not any(s.active for s in plan.by_unit.values()) and not plan.default.active
    assert f"no SIMGEN DUMP (SIMA.DUMP) in {base / 'SIMA'}: every object of SIMA is kept" in caplog.text


def prescaled(kinds: dict[str, bool], ps: tuple[int, int]) -> set[str]:
    return {s for s, ia in kinds.items() if int(s) % (ps[0] if ia else ps[1]) == 0}


def test_prescale_and_nevt_select_give_scone_counts(sims, tmp_path, caplog):
    base, a, _ = sims
    folder = str(base / "SIMA")
    cfg = SconeConfig(input_data_paths=[folder], heatmaps_path=str(tmp_path / "hm"), prescale_heatmaps="2,3", **GRID)
    run = make_heatmaps(cfg, progress=False)
    want = prescaled(a, (2, 3))
    (res,) = run.results
    assert res.written == len(want) and res.skipped == {select.PRESCALED: 24 - len(want)}
    assert catalog_snids(tmp_path / "hm") == want

    # nevt_select: prescales int(n / wanted + 0.5) from the per-class totals
    n_ia, n_non = sum(a.values()), sum(not v for v in a.values())
    nevt = (max(1, round(n_ia / 2)), max(1, round(n_non / 3)))
    expect_ps = (max(1, int(n_ia / nevt[0] + 0.5)), max(1, int(n_non / nevt[1] + 0.5)))
    by_nevt = cfg.model_copy(update={"prescale_heatmaps": None, "nevt_select_heatmaps": nevt})
    with caplog.at_level(logging.INFO, logger="scone_assets"):
        plan = select.plan(by_nevt, discover(by_nevt).units, None)
    assert plan.prescale == expect_ps and plan.totals[0] == (n_ia, n_non)
    assert plan.totals[1] == (sum(a[s] for s in prescaled(a, expect_ps)),
                              sum(not a[s] for s in prescaled(a, expect_ps)))
    assert f"NSIM(after prescale) [Ia, nonIa] = [{plan.totals[1][0]}, {plan.totals[1][1]}]" in caplog.text
    assert expect_ps == (2, 3)  # the same effective prescales: the unit is reused, not remade
    assert make_heatmaps(by_nevt, progress=False).results[0].status == "already done"
    # another prescale: remade, with the reason
    other = cfg.model_copy(update={"prescale_heatmaps": (1, 4)})
    (res,) = make_heatmaps(other, progress=False).results
    assert res.status == "remade" and "prescale_heatmaps [2, 3] -> [1, 4]" in res.reasons
    assert catalog_snids(tmp_path / "hm") == prescaled(a, (1, 4))

    # predict mode: never prescaled, whatever the config says
    model = tmp_path / "model"
    model.mkdir()
    predict = other.model_copy(update={"mode": "predict", "trained_model": str(model),
                                       "nevt_select_heatmaps": (1, 1)})
    (res,) = make_heatmaps(predict, progress=False).results
    assert res.status == "remade" and res.written == 24 and select.PRESCALED not in res.skipped
    assert catalog_snids(tmp_path / "hm") == set(a)


def test_non_integer_snids_prescale_by_a_stable_hash():
    assert select.prescale_number("2019lbi") == store.record_id("2019lbi")
    assert select.prescale_number("0042") == 42 == select.prescale_number(42)
    sel = select.UnitSelection(prescale=(3, 3))
    kept = [s for s in ("2004ef", "2005am", "2005el", "2005eq") if sel.reason(s, True, True) is None]
    assert kept == [s for s in ("2004ef", "2005am", "2005el", "2005eq") if store.record_id(s) % 3 == 0]


def test_predict_band_map_from_scone_filter_file(tmp_path, sims):
    base, _, _ = sims
    model = tmp_path / "scone_model"
    model.mkdir()
    (model / "filter_mean_wavelength.dat").write_text("# central wavelength\ng:  4800\nr:  6400\nq:  7100\n")
    cfg = SconeConfig(input_data_paths=[str(base / "SIMA")], heatmaps_path=str(tmp_path / "hm"),
                      mode="predict", trained_model=str(model), band_to_wave={"q": 7000.0}, **GRID)
    fallback = training_band_map(cfg)
    assert fallback == {"g": 4800.0, "r": 6400.0, "q": 7100.0}
    assert settings(cfg, "fast", "full", None, fallback)["trained_band_to_wave"] == fallback
    assert training_band_map(cfg.model_copy(update={"mode": "train"})) is None
    # the config's band_to_wave still wins over the model's file
    from scone_assets.bands import place_bands

    placed, missing = place_bands(["q", "r"], config_map=cfg.band_to_wave, fallback=fallback)
    assert placed == {"q": 7000.0, "r": 6400.0} and not missing


def test_scone_heatmaps_prints_selection_counts_from_a_scone_config(sims, tmp_path, capsys):
    """A SCONE YAML config with both keys: the listed SNIDs, prescaled; `scone heatmaps`
    prints what each reason left out."""
    from scone_assets.cli import main

    base, a, _ = sims
    listed = [s for s in a if int(s) <= 16]
    lst = fitres(tmp_path / "sel.FITRES", "SIMA", listed)
    cfg = tmp_path / "scone.yml"
    cfg.write_text(f"input_data_paths:\n  - {base / 'SIMA'}\nheatmaps_path: {tmp_path / 'hm'}\n"
                   f"snid_select_files: {lst}\nprescale_heatmaps: '2,3'\n"
                   "num_wavelength_bins: 8\nnum_mjd_bins: 16\njobs: 1\n")
    assert main(["heatmaps", "--config_path", str(cfg)]) == 0
    want = prescaled({s: a[s] for s in listed}, (2, 3))
    out = capsys.readouterr().out
    assert (f"{len(want)} heatmaps, skipped: {select.NOT_SELECTED} {24 - len(listed)}, "
            f"{select.PRESCALED} {len(listed) - len(want)}") in out
    assert catalog_snids(tmp_path / "hm") == want
    # a FITRES file without VERSION_PHOTOMETRY: a usage error naming it, nothing made
    fitres(lst, None, listed)
    assert main(["heatmaps", "--config_path", str(cfg)]) == 2
    assert f"error: snid_select_files entry {lst} has no VERSION_PHOTOMETRY:" in capsys.readouterr().err
