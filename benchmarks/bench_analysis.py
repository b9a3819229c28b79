"""The default ``analyze`` on 170,000 x 256 synthetic latents, t-SNE against scikit-learn,
and the KMeans sweep, with wall times and peak memory.

    python benchmarks/bench_analysis.py --skip-sklearn --rounds 3   # baseline vs default
    python benchmarks/bench_analysis.py              # full: default analyze + sklearn TSNE
    python benchmarks/bench_analysis.py --n 20000 --skip-sklearn   # quick look

Writes a run-like folder with ``latents/train.npz`` under --dir and calls
``zspace.analyze`` on it, exactly as ``zspace analyze RUN`` would. Peak memory is
the process's max RSS (ru_maxrss). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name


def max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthetic(n: int, d: int, seed: int = 0) -> np.ndarray:
    """N(0, I) with a few odd axes and 40 loose clusters, so every analysis has work."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d), dtype=np.float32)
    z += (rng.normal(size=(40, d)).astype(np.float32) * 0.5)[rng.integers(0, 40, n)]
    z[:, :5] *= 3
    return z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=170_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn TSNE run")
    ap.add_argument("--rounds", type=int, default=1, help="baseline/default alternations")
    args = ap.parse_args()

    from zspace.analysis.api import analyze
    from zspace.analysis.tsne import TsneParams, tsne_analysis
    from zspace.latents.store import Latents, latents_path, save_latents

    root = Path(args.dir or tempfile.mkdtemp(prefix="zspace-bench-"))
    z = synthetic(args.n, args.d)
    save_latents(latents_path(root), Latents("train", z, np.arange(args.n)))
    del z
    print(f"cpu: {cpu_name()}  cores: {len(os.sched_getaffinity(0))}  load {os.getloadavg()}")
    print(f"latents: {args.n:,} x {args.d} float32 in {root}")

    def log(line: str) -> None:
        print(line, flush=True)

    # the baseline: the defaults before issue 30 (openTSNE's 500 iterations, KMeans step 2)
    settings = {"baseline": dict(tsne={"n_iter": 500}, kmeans={"k_step": 2}), "default": {}}
    seconds: dict[str, dict[str, list[float]]] = {m: {} for m in settings}
    for _ in range(args.rounds):
        for mode, params in settings.items():
            started = time.perf_counter()
            results = analyze(root, log=log, **params)
            took = {"total": time.perf_counter() - started}
            took.update(tsne=results["tsne"].seconds, kmeans=results["kmeans"].seconds)
            for step, s in took.items():
                seconds[mode].setdefault(step, []).append(s)
            km, ts = results["kmeans"], results["tsne"]
            print(f"{mode}: analyze {took['total']:.1f} s; t-SNE ({ts.n_iter} iterations, KL "
                  f"{ts.kl_divergence:.3f}) {ts.seconds:.1f} s; KMeans (k {km.ks[0]}..{km.ks[-1]} "
                  f"step {km.ks[1] - km.ks[0]}, elbow {km.elbow}, strength {km.strength:.3f}) "
                  f"{km.seconds:.1f} s; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for step in seconds["default"]:
        b, d = seconds["baseline"][step], seconds["default"][step]
        ratio = statistics.median([x / y for x, y in zip(d, b, strict=True)])
        print(f"{step:7s} baseline {statistics.median(b):7.1f} s  default "
              f"{statistics.median(d):7.1f} s  ratio {ratio:.2f}x (median of rounds)")  # fmt: skip
    if not args.skip_sklearn:
        from sklearn.manifold import TSNE

        with np.load(latents_path(root)) as f:
            zz = f["z"]
        p = TsneParams()
        x = zz[results["tsne"].index]
        del zz
        t = time.perf_counter()
        TSNE(perplexity=p.perplexity, early_exaggeration=p.early_exaggeration,
             max_iter=p.n_iter + 250, init="pca", random_state=0).fit_transform(x)  # fmt: skip
        sk = time.perf_counter() - t
        # openTSNE again on the very same points, same iterations (250 EE + n_iter).
        ours = tsne_analysis(x, n=len(x), seed=0).seconds
        print(f"t-SNE on the same {len(x):,} points: openTSNE {ours:.1f} s, scikit-learn "
              f"TSNE {sk:.1f} s, ratio {sk / ours:.1f}x")  # fmt: skip
    print(f"peak RSS {max_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
