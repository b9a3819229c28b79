"""What the run-folder locks cost (issue 29): a training run and ``zspace report`` with
the locks as shipped against the same calls with every lock replaced by a no-op,
alternating in one process (so load from other jobs on a shared machine hits both
sides alike), plus the lock alone (writer_lock and update_json's lock, enter + exit).

    python benchmarks/bench_locks.py --rounds 5

Prints medians and the ratio locked / unlocked. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from machine import cpu_name

import zspace
from zspace.core import fileio
from zspace.runs import folder
from zspace.training import trainer

TINY = ["data.source=builtin:digits", "data.image_size=16", "model.z_dim=4",
        "model.encoder_filters=[8,16]", "model.encoder_kernels=[3]",
        "model.encoder_strides=[2,2]", "train.batch_size=64", "train.threads=1"]  # fmt: skip


@contextlib.contextmanager
def no_lock(*args, **kwargs):
    yield


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-locks-"))
    sets = [*TINY, f"train.epochs={args.epochs}"]
    quiet = {"log": None, "progress": False}
    base = zspace.train(zspace.load_config(None, sets), run_dir=root / "base", **quiet)
    zspace.encode(base, log=None)
    zspace.analyze(base, only="radius,axes,pca", log=None)
    zspace.generate(base, n=16, log=None)
    times: dict[str, list[float]] = {}
    for i in range(args.rounds):
        for locked in (True, False):  # alternating: the same machine state for both
            with contextlib.ExitStack() as patch:
                if not locked:
                    for module in (fileio, folder, trainer):
                        for name in ("locked", "writer_lock"):
                            if hasattr(module, name):
                                old = getattr(module, name)
                                setattr(module, name, no_lock)
                                patch.callback(setattr, module, name, old)
                tag = "locked" if locked else "no lock"
                run_dir = root / f"train-{i}-{tag.replace(' ', '')}"
                cfg = zspace.load_config(None, sets)
                times.setdefault(f"train {args.epochs} epochs, {tag}", []).append(
                    timed(lambda: zspace.train(cfg, run_dir=run_dir, **quiet))  # noqa: B023
                )
                times.setdefault(f"report, {tag}", []).append(
                    timed(lambda: zspace.report(base, log=None))
                )
    lock = root / "alone"
    lock.mkdir()
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        with folder.writer_lock(lock):
            pass
    writer_us = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for _ in range(n):
        fileio.update_json(lock / "shared.json", lambda old: {"rows": [1]})
    update_us = (time.perf_counter() - t) / n * 1e6
    print(f"machine: {cpu_name()}; {args.rounds} alternating rounds")
    for name, values in times.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"{name:32s} median {statistics.median(values):.3f} s  ({each})")
    for what in ("train", "report"):
        a = [v for k, v in times.items() if k.startswith(what) and "locked" in k][0]
        b = [v for k, v in times.items() if k.startswith(what) and "no lock" in k][0]
        print(f"{what}: locked / no lock = {statistics.median(a) / statistics.median(b):.3f}")
    print(
        f"writer_lock enter+exit: {writer_us:.0f} us; update_json, small file: {update_us:.0f} us"
    )


if __name__ == "__main__":
    main()
