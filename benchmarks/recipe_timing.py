"""CPU training throughput of every bundled recipe: one epoch of its model on the small
real sets (CelebA recipes on celeba-558, MNIST ones on t10k), images per second.

On a shared machine the wall clock says more about the other jobs than about zspace,
so the epoch runs on one thread and the figure kept is images per second of the
process's CPU time, times ``--cores``: the rate of that many idle cores, assuming they
scale linearly. (With two threads on busy cores the CPU time also counts OpenMP
spin-waits; one thread avoids that.) Checked on this machine against the idle
benchmarks of docs/performance.md and docs/generation.md: CelebA VAE 2 x 74 = 148
against 149 images/s measured idle, the MNIST sweep's net 2 x 1,592 = 3,184 against
about 3,400.

    python benchmarks/recipe_timing.py [--data ../shared/data] [--cores 2] [--write]

``zspace recipe list`` extrapolates these to the recipe's full set (the reference's
image count times its epochs). ``--write`` stores them in the recipe files'
``[recipe.timing]`` as ``cpu_images_per_s`` with the machine, threads and load in
``cpu_source``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from machine import cpu_name

from zspace.flow.recipes import list_recipes, recipe_dir
from zspace.flow.training import train
from zspace.training import Callback

SMALL = {"celeba": "celeba-558", "mnist": "mnist"}


class Clock(Callback):
    """Wall and process CPU time (all threads) at the end of every epoch."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def on_train_start(self, trainer) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_epoch_end(self, trainer, row) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))


def epoch_rate(recipe, data: Path, threads: int, root: Path) -> dict[str, float]:
    """Epoch 2 (epoch 1 warms up) of the recipe's model on the small set: training
    images per wall-clock second, and per second of the process's CPU time times its
    threads."""
    cfg = recipe.base_config(
        data / SMALL[recipe.data],
        ["train.epochs=2", f"train.threads={threads}", f'data.cache_dir="{root / "cache"}"'],
    )
    clock = Clock()
    run = train(
        cfg, run_dir=root / recipe.name, callbacks=[clock], log=lambda s: None, progress=False
    )
    n = int(run.meta["splits"]["train"])
    (w1, c1), (w2, c2) = clock.marks[-2], clock.marks[-1]
    return {
        "images": n,
        "wall_s": w2 - w1,
        "cpu_s": c2 - c1,
        "wall_rate": n / (w2 - w1),
        "idle_rate": n * threads / (c2 - c1),
    }


def write(path: Path, rate: float, source: str) -> None:
    text = path.read_text()
    text = re.sub(r"\ncpu_images_per_s = .*", "", text)
    text = re.sub(r"\ncpu_source = .*", "", text)
    line = f'cpu_images_per_s = {rate:.0f}\ncpu_source = "{source}"\n'
    text = text.replace("[recipe.timing]\n", "[recipe.timing]\n" + line, 1)
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    day = time.strftime("%Y-%m-%d")
    print(f"{cpu_name()}, {os.cpu_count()} cores, 1 thread, load {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in list_recipes():
            r = epoch_rate(recipe, Path(args.data), 1, Path(tmp))
            rate = r["idle_rate"] * args.cores
            print(
                f"{recipe.name:18s} {r['images']:6d} images: wall {r['wall_s']:6.1f} s "
                f"({r['wall_rate']:6.1f} images/s), CPU {r['cpu_s']:6.1f} s -> "
                f"{rate:6.1f} images/s on {args.cores} idle cores"
            )
            if args.write:
                source = (
                    f"measured {day} on {cpu_name()}: epoch 2 of {SMALL[recipe.data]} "
                    f"({r['images']} images) on 1 thread took {r['cpu_s']:.1f} s of CPU time, "
                    f"times {args.cores} cores (wall clock under load average {load:.1f}: "
                    f"{r['wall_rate']:.1f} images/s)"
                )
                write(recipe_dir() / f"{recipe.name}.toml", rate, source)


if __name__ == "__main__":
    main()
