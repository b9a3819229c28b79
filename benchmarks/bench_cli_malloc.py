"""What the CLI's allocator setting (``core.resources.keep_freed_memory``) buys, measured
through the real command line: ``zspace train`` (one epoch) and ``zspace encode`` of the
reference CelebA network (96x96x3, filters 32-64-128-256, z 256, batch 128) on random
images, each verb run in its own process, with the setting (the default) and without it
(``ZSPACE_MALLOC=default``: glibc's own thresholds) alternating round by round. Prints
per round and as medians: wall seconds, the child's minor page faults, its peak RSS, and
the ratio default / opted-out.

    python benchmarks/bench_cli_malloc.py --n 2048 --rounds 3

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

OVERRIDES = [
    "model.encoder_filters=[32,64,128,256]",
    "model.encoder_strides=[2,2,2,2]",
    "model.z_dim=256",
    "model.variational=true",
    "data.image_size=96",
    "train.batch_size=128",
    "train.epochs=1",
    "train.device=cpu",
    "data.valid_fraction=0",
]
ZSPACE = [sys.executable, "-m", "zspace"]


def timed(argv: list[str], opt_out: bool) -> tuple[float, int, float]:
    """Wall seconds, minor faults and peak RSS (GiB) of one zspace process."""
    env = {k: v for k, v in os.environ.items() if k != "ZSPACE_MALLOC"}
    if opt_out:
        env["ZSPACE_MALLOC"] = "default"
    start = time.perf_counter()
    child = subprocess.Popen([*ZSPACE, *argv], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"zspace {argv[0]} failed with exit code {child.returncode}")
    return wall, usage.ru_minflt, usage.ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2048, help="images (random, 96x96x3)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    print(f"cpu: {cpu_name()}, load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "images.npy"
        rng = np.random.default_rng(0)
        np.save(data, rng.integers(0, 256, (args.n, 96, 96, 3), np.uint8))
        sets = [f"--set={o}" for o in OVERRIDES]
        steps = {
            "train": lambda i: [
                "train",
                f"--set=data.source='npy:{data}'",
                "--out",
                f"{tmp}/r{i}",
                *sets,
            ],
            "encode": lambda i: ["encode", f"{tmp}/r0", "--split", "train"],
        }
        results: dict[str, dict[str, list]] = {}
        for r in range(args.rounds):
            for verb, argv in steps.items():
                for opt_out in (r % 2 == 1, r % 2 == 0):  # alternate which goes first
                    wall, faults, rss = timed(argv(f"{r}{int(opt_out)}"), opt_out)
                    if verb == "train" and r == 0 and not opt_out:
                        subprocess.run(["cp", "-r", f"{tmp}/r{r}{int(opt_out)}", f"{tmp}/r0"])
                    key = "opted out" if opt_out else "default"
                    results.setdefault(verb, {}).setdefault(key, []).append((wall, faults, rss))
                    print(
                        f"round {r} {verb:6s} {key:9s} {wall:6.1f} s  {faults:>9,} faults"
                        f"  {rss:.2f} GiB  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        print("\nmedians (ratio = opted out / default wall: > 1 means the setting pays)")
        for verb, by in results.items():
            d, o = by["default"], by["opted out"]
            ratios = [b[0] / a[0] for a, b in zip(d, o, strict=True)]
            med = [statistics.median(x[0] for x in v) for v in (d, o)]
            flt = [statistics.median(x[1] for x in v) for v in (d, o)]
            print(
                f"{verb:6s} default {med[0]:.1f} s ({flt[0]:,.0f} faults), opted out"
                f" {med[1]:.1f} s ({flt[1]:,.0f} faults): {statistics.median(ratios):.2f}x"
                f" (rounds {', '.join(f'{x:.2f}' for x in ratios)})"
            )


if __name__ == "__main__":
    main()
