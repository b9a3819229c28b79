"""CPU training throughput of every bundled recipe: one epoch of its model on the small
real sets (CelebA recipes on celeba-558, MNIST ones on t10k), images per second.

    python benchmarks/recipe_timing.py [--data ../shared/data] [--threads 2] [--write]

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

SMALL = {"celeba": "celeba-558", "mnist": "mnist"}


def epoch_rate(recipe, data: Path, threads: int, root: Path) -> tuple[float, int, float]:
    """(training images per second of epoch 2, images, seconds): epoch 1 warms up."""
    cfg = recipe.base_config(
        data / SMALL[recipe.data],
        ["train.epochs=2", f"train.threads={threads}", f'data.cache_dir="{root / "cache"}"'],
    )
    run = train(cfg, run_dir=root / recipe.name, log=lambda s: None, progress=False)
    row = run.history[-1]
    n = int(run.meta["splits"]["train"])
    return n / row["seconds"], n, row["seconds"]


def write(path: Path, rate: float, source: str) -> None:
    text = path.read_text()
    text = re.sub(r"\ncpu_images_per_s = .*", "", text)
    text = re.sub(r"\ncpu_source = .*", "", text)
    line = f"cpu_images_per_s = {rate:.0f}\ncpu_source = \"{source}\"\n"
    text = text.replace("[recipe.timing]\n", "[recipe.timing]\n" + line, 1)
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    day = time.strftime("%Y-%m-%d")
    print(f"{cpu_name()}, {os.cpu_count()} cores, {args.threads} threads, load {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in list_recipes():
            rate, n, secs = epoch_rate(recipe, Path(args.data), args.threads, Path(tmp))
            print(f"{recipe.name:18s} {n:6d} images in {secs:6.1f} s: {rate:7.1f} images/s")
            if args.write:
                source = (
                    f"measured: epoch 2 of {SMALL[recipe.data]} ({n} images), {cpu_name()}, "
                    f"{args.threads} threads, load average {load:.1f}, {day}"
                )
                write(recipe_dir() / f"{recipe.name}.toml", rate, source)


if __name__ == "__main__":
    main()
