"""Benchmark the perceptron cost surface: time and peak memory, against a naive baseline.

Each case runs in its own Python process, so the peak RSS it reports is its own.
The naive baseline is the reference study's approach: meshgrid arrays W1, W2 and
one full mesh-sized cost array per sample (14 of them), then their mean. On the
full 5500 x 5500 mesh that needs about 4 GB, so baseline and fast method are both
run on a coarser mesh (same run, same machine) for the speed ratio, and the fast
method alone on the full mesh.

    python benchmarks/bench_perceptron.py [--step 0.002] [--coarse-step 0.005]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _child(case: str, step: float, threads: int | None) -> dict:
    import numpy as np
    from scipy.special import expit

    from zspace.perceptron import cost_surface, fit_scaling, perceptron_study, reference_samples

    s = reference_samples()
    k = fit_scaling("normalizer-feature", s.K).transform(s.K)
    ax = np.arange(-5.5, 5.5, step)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if case == "fast":
        r = cost_surface(k, s.target, ax, ax, threads=threads)
        c_min, w_min = r.c_min, r.w_min
    elif case == "fast-nokeep":
        r = cost_surface(k, s.target, ax, ax, threads=threads, keep=False)
        c_min, w_min = r.c_min, r.w_min
    elif case == "study":
        r = perceptron_study("normalizer-feature", mesh=(-5.5, 5.5, step), threads=threads)
        c_min, w_min = r.surface.c_min, r.surface.w_min
    elif case == "naive":
        W1, W2 = np.meshgrid(ax, ax)
        per_sample = [
            0.5 * (expit(W1 * k[i, 0] + W2 * k[i, 1]) - s.target[i]) ** 2 for i in range(len(s))
        ]
        C = sum(per_sample) / len(s)
        i, j = np.unravel_index(np.argmin(C), C.shape)
        c_min, w_min = float(C[i, j]), (float(W1[i, j]), float(W2[i, j]))
    else:
        raise SystemExit(f"unknown case {case}")
    seconds = time.perf_counter() - t0
    return {
        "case": case,
        "mesh": f"{ax.size} x {ax.size}",
        "threads": threads,
        "seconds": seconds,
        "peak_rss_mb": _rss_mb(),
        "rss_after_imports_mb": rss0,
        "c_min": c_min,
        "w_min": list(w_min),
    }


def _run(case: str, step: float, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--step", str(step)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=root)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--step", type=float, default=0.002, help="full mesh step (reference)")
    ap.add_argument("--coarse-step", type=float, default=0.005, help="mesh step for the baseline")
    ap.add_argument("--threads", type=int, default=None, help="threads for the fast surface")
    a = ap.parse_args()
    if a.child:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        print(json.dumps(_child(a.child, a.step, a.threads)))
        return

    from zspace.core.resources import cpu_count

    print(f"CPU: {cpu_name()}, {cpu_count()} usable cores, Python {platform.python_version()}")
    rows = [
        _run("fast", a.step, a.threads),
        _run("fast", a.step, 1),
        _run("fast-nokeep", a.step, a.threads),
        _run("study", a.step, a.threads),
        _run("naive", a.coarse_step, None),
        _run("fast", a.coarse_step, 1),
    ]
    head = ("case", "mesh", "threads", "seconds", "peak RSS MB")
    print(f"{head[0]:12} {head[1]:>12} {head[2]:>7} {head[3]:>8} {head[4]:>11}  C_min @ (w1, w2)")
    for r in rows:
        w = ", ".join(f"{v:.3f}" for v in r["w_min"])
        thr = "-" if r["case"] == "naive" else str(r["threads"] or cpu_count())
        print(
            f"{r['case']:12} {r['mesh']:>12} {thr:>7} {r['seconds']:8.2f} "
            f"{r['peak_rss_mb']:11.0f}  {r['c_min']:.9g} @ ({w})"
        )
    naive, fast1 = rows[-2], rows[-1]
    print(
        f"\nsame coarse mesh ({naive['mesh']}), one thread each: fast is "
        f"{naive['seconds'] / fast1['seconds']:.1f}x faster than the naive per-sample arrays; "
        f"memory above imports {fast1['peak_rss_mb'] - fast1['rss_after_imports_mb']:.0f} MB vs "
        f"{naive['peak_rss_mb'] - naive['rss_after_imports_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
