"""Duplicate and near-constant scan (``zspace.data.quality.image_checks``) against baselines.

    python benchmarks/bench_duplicates.py [--data ../shared/data] [--n 170000] [--repeats 2]

Synthetic uint8 sets of ``--n`` images at 32x32x3 and 64x64x3 (CelebA's count at the
sizes it trains at) with 129 copies of one image, 4 more of another and 6 blank ones
planted, then the real sets (MNIST t10k, the CIFAR-10 test JPEGs). Baselines, same data,
same session: NumPy's ``np.unique(rows, axis=0)`` (duplicates only) and one bare pass
over the bytes (``max`` per row: the memory floor). Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from machine import cpu_name

from zspace.config import load_config
from zspace.data import load_data
from zspace.data.quality import image_checks

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def planted(n: int, shape: tuple[int, ...]) -> np.ndarray:
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    x[100:229] = x[7]  # 129 copies of image 7
    x[1000:1004] = x[999]  # 4 copies of image 999
    x[2000:2006] = 17  # 6 blank images: 5 copies of one, all near-constant
    return x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--n", type=int, default=170_000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    print(f"CPU {cpu_name()}")
    for shape in ((32, 32, 3), (64, 64, 3)):
        x = planted(args.n, shape)
        flat = x.reshape(len(x), -1)
        ours, found = best_of(args.repeats, partial(image_checks, x))
        floor, _ = best_of(args.repeats, partial(flat.max, axis=1))
        unique, (_, counts) = best_of(1, partial(np.unique, flat, axis=0, return_counts=True))
        assert found["duplicates"]["copies"] == int((counts - 1).sum()) == 129 + 4 + 5
        print(
            f"{args.n:,} x {shape} ({x.nbytes / 1e9:.2f} GB): image_checks {ours:.2f} s, "
            f"np.unique {unique:.2f} s ({unique / ours:.1f}x ours), one read pass "
            f"{floor:.2f} s ({ours / floor:.1f}x the floor); found {found}"
        )
    for source in ("mnist", "cifar10-jpg"):
        folder = args.data / source
        if not folder.exists():
            print(f"{folder}: missing, skipped")
            continue
        data = load_data(load_config(None, [f'data.source="{folder}"']).data)
        ours, found = best_of(args.repeats, partial(image_checks, data.images))
        print(f"{data.source}: {data.count:,} x {data.shape}: {ours:.2f} s; {found}")


if __name__ == "__main__":
    main()
