"""In-memory against streaming loading: prediction peak memory and throughput, training throughput.

    .venv/bin/python benchmarks/loading.py [--sizes 10000 100000] [--work /tmp/scone_loading]

Writes synthetic 32 x 180 heatmap shards (1,000 records each, with index and
settings, as `scone heatmaps` lays them out; loading does not depend on the
pixels), then measures each case in a fresh child process: wall time and peak
resident memory (getrusage) of `predict` with the in-memory and the streaming
loader, and samples per second of one training epoch with each loader.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHAPE = (32, 180)
PER_SHARD = 1000


def write_shards(root: Path, n: int) -> None:
    """Synthetic units written through the heatmap store, as `scone heatmaps` writes them."""
    from scone_assets.heatmaps import store

    rng = np.random.default_rng(0)
    t = np.linspace(-3, 3, SHAPE[1])
    base = np.exp(-t[None, :] ** 2) * np.linspace(0.5, 1.5, SHAPE[0])[:, None]
    store.claim_grid(root, store.Grid(*SHAPE))
    for s in range(0, n, PER_SHARD):
        folder = store.unit_folder(root, "full", f"unit{s // PER_SHARD:04d}")
        if store.read_unit_record(folder) is not None:
            continue
        ids = [str(i) for i in range(s, min(n, s + PER_SHARD))]
        types = np.where(rng.uniform(size=len(ids)) < 0.3, "SNIa", "SNII")

        def recs(ids=ids, types=types):
            for snid, tname in zip(ids, types, strict=True):
                img = np.stack([base * rng.uniform(50, 500), 0.1 * base + 1], axis=-1)
                yield store.encode_example(img, int(tname == "SNIa"), snid, tname, 0.5, 0.05)

        def finish(ids=ids, types=types):
            index = pd.DataFrame({"SNID": ids, "TYPE_NAME": types, "status": "ok", "z": 0.5, "z_err": 0.05,
                                  "label": (types == "SNIa").astype(int), "record": np.arange(len(ids))})
            record = store.UnitRecord({"synthetic": True}, SHAPE, {}, len(ids))
            return index, "synthetic benchmark unit\n", record

        store.write_unit(folder, recs(), finish)


def child(task: str, mode: str, root: Path, model_dir: Path) -> dict:
    from scone_assets.config import SconeConfig
    from scone_assets.heatmaps.store import finished_units, load_catalog

    catalog = load_catalog(finished_units(root))
    cfg = SconeConfig(mode="predict" if task == "predict" else "train", trained_model=str(model_dir),
                      output_path=str(root / "out"), force_streaming=(mode == "streaming"),
                      enable_balanced_mode=(mode == "streaming"), num_epochs=1, seed=1)
    t0 = time.perf_counter()
    if task == "predict":
        from scone_assets.model.predict import predict

        predict(cfg, catalog, model_dir, root / "out" / f"pred_{mode}.csv")
        n = len(catalog)
    else:
        from scone_assets.model.train import train

        train(cfg, {"full": catalog}, root / "out" / f"model_{mode}", progress=False)
        n = int(0.8 * len(catalog))
    wall = time.perf_counter() - t0
    return {"task": task, "mode": mode, "n": len(catalog), "seconds": wall, "per_second": n / wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(task: str, mode: str, root: Path, model_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", task, mode, str(root), str(model_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--work", default="/tmp/scone_loading")
    ap.add_argument("--train-size", type=int, default=10_000)
    ap.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the synthetic shards")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], Path(args.child[2]), Path(args.child[3]))))
        return
    work = Path(args.work)
    from scone_assets.model.network import build_model

    model_dir = work / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    build_model(*SHAPE).save(model_dir / "model.keras")
    (model_dir / "model_meta.json").write_text(json.dumps(
        {"classes": ["nonIa", "SNIa"], "categorical": False, "with_z": False, "shape": list(SHAPE)}))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    try:
        for n in args.sizes:
            root = work / f"n{n}"
            t0 = time.perf_counter()
            write_shards(root, n)
            size = sum(p.stat().st_size for p in root.rglob("*.tfrecord"))
            print(f"\n{n} heatmaps, {size / 1e9:.2f} GB of shards (written in {time.perf_counter() - t0:.0f} s)")
            results = {m: run_child("predict", m, root, model_dir) for m in ("memory", "streaming")}
            for m, r in results.items():
                print(f"  predict {m:9s}: {r['per_second']:8.0f} heatmaps/s, peak RSS {r['peak_rss_mb']:7.0f} MB")
            ratio = results["streaming"]["per_second"] / results["memory"]["per_second"]
            print(f"  streaming throughput / in-memory: {ratio:.2f}")
            if n == args.train_size:
                for m in ("memory", "streaming"):
                    r = run_child("train", m, root, model_dir)
                    print(f"  train {m:9s}: {r['per_second']:8.0f} samples/s (one epoch incl. evaluation), "
                          f"peak RSS {r['peak_rss_mb']:7.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
