import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "scone_assets.cli", *args], capture_output=True, text=True)


def test_inspect_json_counts(des_sim, lowz_real):
    res = run("inspect", "--json", str(des_sim), str(lowz_real))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [f["light_curves"] for f in out["files"]] == [200, 342]
    assert [f["data"] for f in out["files"]] == ["simulated", "real"]
    assert out["total"]["light_curves"] == 542 and out["total"]["types"] == {"SNIa": 542}


def test_inspect_text_and_missing_path(des_sim, tmp_path):
    res = run("inspect", str(des_sim), str(tmp_path / "missing"))
    assert res.returncode == 1  # a bad path is an error; the rest is still read
    assert "light curves: 200" in res.stdout and "types: SNIa 200" in res.stdout
    assert "missing: path does not exist" in res.stdout


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("input_path: /x\nnum_epochs: lots\n")
    res = run("inspect", "--config_path", str(cfg))
    assert res.returncode == 2 and "num_epochs" in res.stderr
