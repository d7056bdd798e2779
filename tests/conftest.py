"""Shared fixtures. Real SNANA data lives in ../shared/data (CI always has it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCONE_SHARED_DATA", REPO.parent / "shared" / "data"))

# A shell without job control starts background commands with SIGINT ignored, and every
# command the tests start would inherit that: Ctrl-C would then do nothing, and the tests
# of what Ctrl-C does would fail for how the suite was launched. A handled signal is reset
# to the default in the commands the tests exec; an ignored one is not.
signal.signal(signal.SIGINT, signal.default_int_handler)


YSE_LABEL_KEYS = ("SNTYPE", "SPEC_CLASS", "SPEC_CLASS_BROAD", "PARSNIP_PRED", "PARSNIP_CONF", "SUPERRAENN_PRED",
                  "SUPERRAENN_CONF")


def scrambled_yse(yse: Path, dest: Path) -> Path:
    """A copy of yse_dev with its types, spectroscopic classes and other classifiers'
    outputs shuffled between objects and labels.csv emptied: what never to read."""
    import shutil

    shutil.copytree(yse, dest)
    (dest / "labels.csv").write_text("SNID,TYPE,IS_IA,REDSHIFT_FINAL\n")
    files = sorted(dest.glob("*.snana.dat"))
    texts = [f.read_text().splitlines() for f in files]
    values = {k: [ln for lines in texts for ln in lines if ln.startswith(k + ":")] for k in YSE_LABEL_KEYS}
    assert len(values["SPEC_CLASS"]) == 144 and len(values["PARSNIP_PRED"]) == 144
    rng = np.random.default_rng(0)
    shuffled = {k: list(rng.permutation(v)) for k, v in values.items()}
    changed = 0
    for f, lines in zip(files, texts, strict=True):
        new = []
        for ln in lines:
            k = next((k for k in YSE_LABEL_KEYS if ln.startswith(k + ":")), None)
            new.append(shuffled[k].pop() if k else ln)
        changed += new != lines
        f.write_text("\n".join(new) + "\n")
    assert changed > 100
    return dest


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the shared SNANA data, but {path} is missing")
        pytest.skip(f"shared SNANA data not present at {path}")
    return path


@pytest.fixture
def des_sim() -> Path:
    return shared("snana_fits", "DES_SIM")


@pytest.fixture
def lowz_real() -> Path:
    return shared("snana_fits", "LOWZ_REAL")


@pytest.fixture
def lsst_sim() -> Path:
    return shared("snana_fits", "LSST_SIM")


@pytest.fixture
def snpcc() -> Path:
    return shared("snpcc_dev")


def write_table(path: Path, columns: dict[str, np.ndarray], header: dict | None = None) -> Path:
    """A raw FITS table, for building files SNANA-ish but deliberately wrong."""
    cols = []
    for name, arr in columns.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        if arr.dtype.kind in "US":
            fmt = f"{max(1, max(len(str(a)) for a in arr) if len(arr) else 1)}A"
        elif arr.dtype.kind in "iu":
            fmt = "K"
        elif arr.ndim == 2:
            fmt = f"{arr.shape[1]}E"
        else:
            fmt = "D"
        cols.append(fits.Column(name=name, format=fmt, array=arr))
    primary = fits.PrimaryHDU()
    for k, v in (header or {}).items():
        primary.header[f"HIERARCH {k}" if len(k) > 8 else k] = v
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    return path


def dagster_home_env(tmp: Path, train_config: Path, **extra: str) -> tuple[Path, dict]:
    """A temporary Dagster instance with the project's dagster.yaml (defs/dagster_demo.yaml),
    and the environment that points the code location at `train_config`."""
    import shutil

    home = tmp / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "scone_assets" / "defs" / "dagster_demo.yaml", home / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(home), "SCONE_TRAIN_CONFIG": str(train_config),
                        "SCONE_OUTPUT_ROOT": str(tmp / "out"), "SCONE_JOBS": "1", **extra}
    env.pop("SCONE_PREDICT_CONFIG", None)
    return home, env


def wait_for_runs(instance, n: int, done, timeout: float = 300):
    """Poll until the newest `n` runs satisfy `done(runs)`; returns them (newest first)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = instance.get_runs()[:n]
        if len(runs) == n and done(runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"runs did not finish: {[(r.run_id[:8], r.status) for r in instance.get_runs()]}")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`make demo`'s command on a small embedded default (600 training, 100 survey light
    curves), run once: (its output folder, ui.env as a dict, the completed process)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "demo_output"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCONE_", "DAGSTER_HOME"))}
    res = subprocess.run([str(Path(sys.executable).parent / "scone"), "demo", "--out", str(out), "--n", "600",
                          "--jobs", "1"], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ui_env = dict(line.split("=", 1) for line in (out / "ui.env").read_text().splitlines())
    return out, ui_env, res
