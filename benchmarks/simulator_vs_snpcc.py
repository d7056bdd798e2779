"""How realistic is the simulator? Its DES preset against SNANA's SNPCC DES simulation.

    .venv/bin/python benchmarks/simulator_vs_snpcc.py [--n 7000]

Writes PNGs to benchmarks/report/ (redshift and peak magnitude per class, number
of observations, S/N at peak) and prints the medians behind them.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from astropy.io import fits  # noqa: E402

from scone_assets.simulate.run import simulate  # noqa: E402
from scone_assets.snana.read import discover_paths, read_unit  # noqa: E402

HERE = Path(__file__).resolve().parent
SNPCC = HERE.parent.parent / "shared" / "data" / "snpcc_dev"
CLASSES = ["SNIa", "SNII", "SNIbc"]


def per_object(lcs) -> pd.DataFrame:
    obs = lcs.obs.assign(snr=lcs.obs.FLUXCAL / lcs.obs.FLUXCALERR)
    g = obs.groupby("SNID", sort=False)
    return pd.DataFrame({"SNID": list(g.groups), "nobs": g.size().to_numpy(), "snr_peak": g.snr.max().to_numpy()})


def load_snpcc() -> pd.DataFrame:
    labels = pd.read_csv(SNPCC / "labels.csv")
    peak_r = {}
    for path in sorted(SNPCC.glob("*.DAT")):
        text = path.read_text(errors="replace")
        snid = int(re.search(r"^SNID:\s*(\d+)", text, re.M).group(1))
        mags = re.search(r"^SIM_PEAKMAG:\s*([-\d.\s]+)", text, re.M).group(1).split()
        peak_r[snid] = float(mags[1])
    frames = []
    for unit in discover_paths([str(SNPCC)]).units:
        lcs = read_unit(unit)
        frames.append(per_object(lcs).merge(lcs.meta[["SNID", "TYPE_NAME"]], on="SNID"))
    df = pd.concat(frames).merge(labels[["SNID", "SIM_REDSHIFT"]], on="SNID")
    df["peak_r"] = df.SNID.map(peak_r)
    return df.rename(columns={"SIM_REDSHIFT": "z", "TYPE_NAME": "cls"})


def load_ours(n: int, folder: Path) -> pd.DataFrame:
    res = simulate(folder / "REALISM", n, survey="des", seed=11, per_file=1000)
    frames = []
    for unit in discover_paths([str(res.folder)]).units:
        lcs = read_unit(unit)
        head = fits.getdata(unit.files[0])
        truth = pd.DataFrame({"SNID": head["SNID"].astype(np.int64), "z": head["SIM_REDSHIFT_CMB"],
                              "peak_r": head["SIM_PEAKMAG_r"]})
        frames.append(per_object(lcs).merge(lcs.meta[["SNID", "TYPE_NAME"]], on="SNID").merge(truth, on="SNID"))
    return pd.concat(frames).rename(columns={"TYPE_NAME": "cls"})


def compare(snpcc: pd.DataFrame, ours: pd.DataFrame) -> None:
    panels = [("z", "redshift", np.linspace(0, 1.6, 33)), ("peak_r", "true peak r mag", np.linspace(18, 28, 41))]
    fig, axes = plt.subplots(len(panels), len(CLASSES), figsize=(13, 7), constrained_layout=True)
    for row, (col, label, bins) in enumerate(panels):
        for j, cls in enumerate(CLASSES):
            ax = axes[row, j]
            for df, name, color in ((snpcc, "SNPCC (SNANA)", "k"), (ours, "scone simulate", "C1")):
                v = df.loc[df.cls == cls, col].clip(bins[0], bins[-1])
                ax.hist(v, bins=bins, density=True, histtype="step", lw=2, color=color,
                        label=f"{name} (median {np.median(v):.2f}, n={len(v)})")
            ax.set_title(f"{cls}: {label}")
            ax.legend(fontsize=7)
    fig.savefig(HERE / "report" / "sim_vs_snpcc_per_class.png", dpi=90)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, col, bins, label in ((axes[0], "nobs", np.arange(0, 260, 8), "observations per light curve"),
                                 (axes[1], "snr_peak", np.logspace(0, 3, 40), "S/N of the best observation")):
        for df, name, color in ((snpcc, "SNPCC (SNANA)", "k"), (ours, "scone simulate", "C1")):
            ax.hist(df[col].clip(bins[0], bins[-1]), bins=bins, density=True, histtype="step", lw=2,
                    color=color, label=f"{name} (median {df[col].median():.0f})")
        ax.set_xlabel(label)
        ax.legend(fontsize=8)
    axes[1].set_xscale("log")
    fig.savefig(HERE / "report" / "sim_vs_snpcc_observations.png", dpi=90)

    rows = []
    for cls in CLASSES:
        for col in ("z", "peak_r", "nobs", "snr_peak"):
            rows.append((cls, col, snpcc.loc[snpcc.cls == cls, col].median(), ours.loc[ours.cls == cls, col].median()))
    table = pd.DataFrame(rows, columns=["class", "quantity", "SNPCC median", "ours median"])
    frac = pd.DataFrame({"SNPCC": snpcc.cls.value_counts(normalize=True), "ours": ours.cls.value_counts(normalize=True)})
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(frac.round(3).to_string())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=7000)
    args = ap.parse_args()
    snpcc = load_snpcc()
    with tempfile.TemporaryDirectory() as tmp:
        ours = load_ours(args.n, Path(tmp))
    compare(snpcc, ours)


if __name__ == "__main__":
    main()
