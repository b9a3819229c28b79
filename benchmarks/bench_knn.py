"""The exact k-NN of zspace.analysis.neighbours: its torch search against faiss's flat index,
side by side on the same points, with their agreement; prints the crossover.

    python benchmarks/bench_knn.py                  # the rate's and the evaluation's shapes
    python benchmarks/bench_knn.py --sizes 1000 4000 20000 --repeats 3

Shapes: the meaningful-point rate's reference (m points against themselves, d = 256,
k = 1; the rate uses m = 20,000), its queries (1,000 against 20,000) and the
evaluation's PRDC balls (m features against themselves, d = 64, k = 5). Data:
Gaussian and clustered (50 tight clusters), float32. Both searches use
torch.get_num_threads() threads. ``MIN_PAIRS`` in zspace/analysis/knn_faiss.py is set from
this table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

from zspace.analysis.neighbours import knn  # noqa: E402


def points(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.standard_normal((n, d)).astype(np.float32)
    centres = rng.standard_normal((50, d)) * 4.0
    return (centres[rng.integers(0, 50, n)] + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def timed(q, ref, k, self_knn, backend, repeats: int) -> tuple[float, tuple]:
    """Median seconds of ``repeats`` searches after a warm-up, and the result."""
    out = knn(q, ref, k, exclude_self=self_knn, backend=backend)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        knn(q, ref, k, exclude_self=self_knn, backend=backend)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
        f"load average {load}"
    )
    cases = []
    for m in args.sizes:
        cases.append(("rate reference", m, m, 256, 1, True))
        cases.append(("evaluation balls", m, m, 64, 5, True))
    cases.append(("rate queries", 1000, 20000, 256, 1, False))
    print(
        f"{'search':18s}{'data':>8s}{'queries':>9s}{'ref':>7s}{'d':>5s}{'k':>3s}"
        f"{'pairs':>8s}{'torch s':>10s}{'faiss s':>10s}{'faiss x':>9s}  agreement"
    )
    wins = []
    for name, nq, nr, d, k, self_knn in cases:
        for kind in ("gauss", "cluster"):
            ref = points(kind, nr, d, 1)
            q = ref if self_knn else points(kind, nq, d, 2)
            t_torch, (d_t, i_t) = timed(q, ref, k, self_knn, "torch", args.repeats)
            t_faiss, (d_f, i_f) = timed(q, ref, k, self_knn, "faiss", args.repeats)
            same = float((i_t == i_f).mean())
            err = float(np.abs(d_t - d_f).max())
            pairs = nq * nr
            wins.append((pairs, t_torch / t_faiss))
            print(
                f"{name:18s}{kind:>8s}{nq:9d}{nr:7d}{d:5d}{k:3d}{pairs / 1e6:7.1f}M"
                f"{t_torch:10.3f}{t_faiss:10.3f}{t_torch / t_faiss:8.2f}x  "
                f"indices {100 * same:.2f} % equal, max |dist diff| {err:.1e}"
            )
    wins.sort()
    slower = [pr for pr, r in wins if r < 1.0]
    above = [pr for pr, _ in wins if not slower or pr > max(slower)]
    if above:
        print(f"faiss wins in every case from {min(above) / 1e6:.1f}M query-reference pairs on")
    else:
        print("faiss did not win consistently at these sizes")


if __name__ == "__main__":
    main()
