"""What DDP costs and gains: one process against torchrun's N gloo processes on the
same CPU cores, same global batch, measured in the same session, interleaved.

    python benchmarks/bench_ddp.py --repeats 2            # MNIST t10k, the mnist28 net
    python benchmarks/bench_ddp.py --data builtin:digits  # without ../shared/data

Runs ``zspace train`` as separate processes (``python -m zspace`` and
``torchrun --standalone --nproc-per-node N -m zspace``), reads the epoch times from
their history.jsonl (epochs after the first; no validation split, so an epoch is
the training pass only) and prints images/s per setting and the ratios:

  * ``1 proc x T threads``  one process using all T cores (zspace's default);
  * ``1 proc x 1 thread``   one process on one core;
  * ``N procs x 1 thread``  DDP over gloo, one core each.

``N procs / 1 proc x 1 thread`` is DDP's parallel efficiency times N;
``N procs / 1 proc x T threads`` is what switching a CPU job to DDP would give.
``--comm`` also times one gloo all-reduce of the model's gradient size (the
communication DDP adds per step). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
NET = [  # the mnist28 reference net of bench_train.py
    "model.z_dim=16", "model.encoder_filters=[32, 64, 128]", "model.encoder_strides=[1, 2, 2]",
]  # fmt: skip


def train_args(source: str, epochs: int, batch: int, threads: int) -> list[str]:
    sets = [
        f"data.source={source}", "data.valid_fraction=0", f"train.epochs={epochs}",
        f"train.batch_size={batch}", f"train.threads={threads}", "train.device=cpu",
        "train.keep_checkpoints=0", *NET,
    ]  # fmt: skip
    return ["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]


def one_run(procs: int, threads: int, args: argparse.Namespace, where: Path) -> dict:
    run_dir = where / f"run-{procs}x{threads}-{time.monotonic_ns()}"
    cmd = train_args(args.data, args.epochs, args.batch, threads) + ["--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    if procs == 1:
        full = [sys.executable, "-m", "zspace", *cmd]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        full = [torchrun, "--standalone", f"--nproc-per-node={procs}", "-m", "zspace", *cmd]
    started = time.perf_counter()
    subprocess.run(full, check=True, capture_output=True, env=env, cwd=where)
    wall = time.perf_counter() - started
    rows = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    count = json.loads((run_dir / "meta.json").read_text())["splits"]["train"]
    seconds = statistics.median(r["seconds"] for r in rows[1:])
    shutil.rmtree(run_dir)
    return {"img_s": count / seconds, "epoch_s": seconds, "wall_s": wall, "loss": rows[-1]["total"]}


def comm_worker(numel: int, repeats: int) -> None:
    """Inside torchrun: time all_reduce of ``numel`` float32 values over gloo."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    grad = torch.randn(numel)
    for _ in range(5):
        dist.all_reduce(grad)
    dist.barrier()
    started = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(grad)
    ms = (time.perf_counter() - started) / repeats * 1e3
    if dist.get_rank() == 0:
        print(json.dumps({"allreduce_ms": ms, "numel": numel}))
    dist.destroy_process_group()


def model_size(source: str) -> int:
    from zspace.config import load_config
    from zspace.data import input_shape_of, prepare
    from zspace.models.autoencoder import AutoEncoder, count_parameters

    cfg = load_config(None, [f"data.source={source}", *NET])
    data, _ = prepare(cfg)
    return count_parameters(AutoEncoder(cfg.model, input_shape_of(data)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"mnist:{MNIST}" if MNIST.is_dir() else "builtin:digits")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--comm", action="store_true", help="time one gradient all-reduce")
    parser.add_argument("--comm-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.comm_worker:
        comm_worker(args.comm_worker, 200)
        return
    settings = [(1, args.threads), (1, 1), (args.procs, 1)]
    results: dict[tuple[int, int], list[dict]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so load changes hit every setting
            for procs, threads in settings:
                results[(procs, threads)].append(one_run(procs, threads, args, Path(tmp)))
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; data {args.data}; "
          f"global batch {args.batch}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    best = {s: max(r["img_s"] for r in rs) for s, rs in results.items()}
    for (procs, threads), rs in results.items():
        runs = ", ".join(f"{r['img_s']:.0f}" for r in rs)
        loss = rs[-1]["loss"]
        print(f"  {procs} proc x {threads} thread(s): best {best[(procs, threads)]:7.0f} img/s "
              f"(runs {runs}; final total {loss:.4f})")  # fmt: skip
    ddp, one, all_cores = best[settings[2]], best[settings[1]], best[settings[0]]
    print(f"  ratio {args.procs} procs / 1 proc x 1 thread: {ddp / one:.2f}x "
          f"(parallel efficiency {ddp / one / args.procs:.0%})")  # fmt: skip
    print(f"  ratio {args.procs} procs / 1 proc x {args.threads} threads: {ddp / all_cores:.2f}x")
    if args.comm:
        numel = model_size(args.data)
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        out = subprocess.run(
            [torchrun, "--standalone", f"--nproc-per-node={args.procs}", __file__,
             "--comm-worker", str(numel)],
            check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        ).stdout  # fmt: skip
        comm = json.loads(out.strip().splitlines()[-1])
        steps = 1 / (ddp / args.batch)
        print(f"  gloo all-reduce of {numel:,} gradients: {comm['allreduce_ms']:.2f} ms "
              f"per step ({comm['allreduce_ms'] / 1e3 / steps:.0%} of a DDP step)")  # fmt: skip


if __name__ == "__main__":
    main()
