"""Simulator speed and memory at scale: 100,000 light curves, DES preset.

    .venv/bin/python benchmarks/simulate_scale.py [--n 100000] [--jobs 2]

Prints wall time, light curves per second and the peak resident memory of the
parent and of the largest worker (both from getrusage), then deletes the output.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from scone_assets.simulate.run import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--per-file", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--survey", default="des")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scone_sim_bench_"))
    try:
        t0 = time.perf_counter()
        res = simulate(tmp / "BENCH", args.n, survey=args.survey, seed=1, per_file=args.per_file,
                       jobs=args.jobs)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in res.folder.iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"survey {args.survey}: {res.n_written} light curves in {len(res.head_files)} files, "
          f"{size / 1e6:.0f} MB on disk")
    print(f"wall time: {wall:.1f} s ({res.n_written / wall:.0f} light curves/s) with {args.jobs} processes")
    print(f"generated (before detection cuts): {sum(res.n_generated.values())}")
    print(f"peak RSS: parent {parent:.0f} MB, largest worker {child:.0f} MB")


if __name__ == "__main__":
    main()
