"""Latents of a million images: write, analyse and build the rate's reference, each in
its own process, with wall time and peak resident memory (the process's ru_maxrss,
file-backed pages of memory-mapped latents included).

    python benchmarks/bench_latents_scale.py --n 1000000 --d 256
    git archive main | tar -x -C /tmp/zspace-main      # the package before this change
    python benchmarks/bench_latents_scale.py --n 250000 --baseline /tmp/zspace-main

``--baseline DIR`` runs the same steps a second time with the zspace package found in
DIR (e.g. a checkout of main before the latents became memory-mapped), side by side,
on the same synthetic latents (same seed), and prints the ratios. Steps:

* ``write``: synthetic VAE latents (z, mu, logvar ~ shifted normals, labels) written
  as RUN/latents/train.npz: batch by batch through ``LatentsWriter`` where the
  package has it, else (the baseline) all arrays built and ``save_latents`` called;
* ``analyze``: ``zspace.analyze(RUN)`` with every analysis (radius, axes, pca, tsne,
  kmeans, vae; t-SNE and KMeans subsample 20,000 points);
* ``reference``: the meaningful-point rate's reference (``build_reference`` on mu,
  default subsample) from the loaded latents.

Not part of the test suite; it needs about 4 GB of disk at the default size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 65536
# Put the package of $ZSPACE_BENCH_PACKAGE first, ahead of an editable install's finder.
PRELUDE = r"""
import os, sys
_pkg = os.environ.get("ZSPACE_BENCH_PACKAGE")
if _pkg:
    sys.path.insert(0, _pkg)
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
"""

WRITE = r"""
import sys, time, json
import numpy as np
n, d, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import zspace.latents.store as L
rng = np.random.default_rng(0)
def batches():
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        mu = (rng.standard_normal((m, d), dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
        lv = (rng.standard_normal((m, d), dtype=np.float32) * 0.3 - 2.0).astype(np.float32)
        eps = rng.standard_normal((m, d), dtype=np.float32)
        z = (mu + np.exp(0.5 * lv) * eps).astype(np.float32)
        yield z, mu, lv
t = time.perf_counter()
path = L.latents_path(out, "train")
label = (np.arange(n) % 10).astype(np.int64)
small = dict(split="train", index=np.arange(n, dtype=np.int64), label=label,
             label_names=tuple(str(i) for i in range(10)), eps_scale=1.0, seed=0)
if hasattr(L, "LatentsWriter"):
    with L.LatentsWriter(path, n, d, True) as w:
        for z, mu, lv in batches():
            w.add(z, mu, lv)
        w.finish(**small)
else:
    parts = list(batches())
    z, mu, lv = (np.concatenate([p[i] for p in parts]) for i in range(3))
    del parts
    L.save_latents(path, L.Latents(z=z, mu=mu, logvar=lv, **small))
print(json.dumps({"seconds": time.perf_counter() - t, "bytes": path.stat().st_size}))
""".replace("CHUNK", str(CHUNK))

ANALYZE = r"""
import sys, time, json
from zspace.analysis.api import analyze
out, only = sys.argv[1], sys.argv[2]
lines = []
t = time.perf_counter()
res = analyze(out, only=only or None, log=lines.append)
secs = time.perf_counter() - t
per = {l.split()[0]: float(l.split()[1]) for l in lines if not l.strip().startswith("->")}
print(json.dumps({"seconds": secs, "per": per}))
"""

REFERENCE = r"""
import sys, time, json
from zspace.latents.store import load_latents
from zspace.generation.rate import build_reference
out = sys.argv[1]
t = time.perf_counter()
lat = load_latents(out)
ref = build_reference(lat.mu, seed=0)
print(json.dumps({"seconds": time.perf_counter() - t, "threshold": ref.threshold,
                  "size": len(ref.points)}))
"""


def run_step(code: str, args: list[str], package: Path | None) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON line plus wall time and peak RSS."""
    env = dict(os.environ)
    env.pop("ZSPACE_BENCH_PACKAGE", None)
    if package is not None:
        env["ZSPACE_BENCH_PACKAGE"] = str(package)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + code, *args], env=env, stdout=subprocess.PIPE, text=True
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"failed": proc.returncode, "wall": wall, "rss_gib": usage.ru_maxrss / 2**20}
    result = json.loads(out.strip().splitlines()[-1])
    # ru_maxrss is in KiB; CPU time does not depend on how busy the machine was
    result.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_gib=usage.ru_maxrss / 2**20)
    return result


def which_package(package: Path | None) -> str:
    env = dict(os.environ)
    env.pop("ZSPACE_BENCH_PACKAGE", None)
    if package is not None:
        env["ZSPACE_BENCH_PACKAGE"] = str(package)
    code = PRELUDE + "import zspace; print(os.path.dirname(os.path.dirname(zspace.__file__)))"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout.strip()


def bench(n: int, d: int, package: Path | None, folder: Path, only: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    res = {"package": which_package(package)}
    res["write"] = run_step(WRITE, [str(n), str(d), str(folder)], package)
    if "failed" in res["write"]:
        return res
    res["analyze"] = run_step(ANALYZE, [str(folder), only], package)
    res["reference"] = run_step(REFERENCE, [str(folder)], package)
    return res


def show(name: str, res: dict, base: dict | None) -> None:
    print(f"== {name}: zspace from {res['package']}")
    for step in ("write", "analyze", "reference"):
        r = res.get(step)
        if r is None:
            continue
        if "failed" in r:
            print(f"  {step:10s} FAILED (exit {r['failed']}) after {r['wall']:.1f} s")
            continue
        line = (
            f"  {step:10s} {r['wall']:7.1f} s wall {r['cpu']:7.1f} s CPU  peak RSS "
            f"{r['rss_gib']:5.2f} GiB"
        )
        b = (base or {}).get(step)
        if b and "failed" not in b:
            line += f"   (baseline / this: CPU time {b['cpu'] / r['cpu']:.2f}x, "
            line += f"RSS {b['rss_gib'] / r['rss_gib']:.2f}x)"
        print(line)
        if step == "analyze":
            print("             " + ", ".join(f"{k} {v:.1f} s" for k, v in r["per"].items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--baseline", type=Path, help="folder holding the baseline zspace package")
    p.add_argument("--only", default="", help="analyses to run (default: all)")
    p.add_argument("--dir", type=Path, help="where to write (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    from machine import cpu_name

    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, load average {' '.join(load)}; "
        f"{args.n:,} x {args.d} VAE latents ({3 * args.n * args.d * 4 / 2**30:.2f} GiB of "
        "z, mu, logvar)"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = {}
        if args.baseline is not None:
            results["baseline"] = bench(
                args.n, args.d, args.baseline, Path(tmp) / "baseline", args.only
            )
        results["candidate"] = bench(args.n, args.d, None, Path(tmp) / "candidate", args.only)
    if "baseline" in results:
        show("baseline", results["baseline"], None)
    show("candidate", results["candidate"], results.get("baseline"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
