"""How far two DDP processes drift from one process over many epochs, against how far
one process drifts from itself when only the float summation order changes.

    python benchmarks/ddp_drift.py --epochs 10 --out docs/img/ddp-drift.png

For a VAE and an AE with batch norm (built-in digits, 32x32) it trains
  * one process with one thread (the reference),
  * one process with two threads (the same numbers summed in another order by the
    kernels: the yardstick of float noise),
  * two gloo processes of one thread each under torchrun,
and plots per epoch the relative difference of the training and validation
``total`` from the reference (log scale). (Reordering the rows of a batch is no
yardstick for a VAE: it hands the eps draws to other images.) Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import zspace  # noqa: E402
from zspace.config import load_config  # noqa: E402

BASE = [
    "data.source=builtin:digits", "model.z_dim=8", "model.encoder_filters=[16, 32]",
    "model.encoder_strides=[2, 2]", "train.batch_size=128", "train.threads=1",
    "train.device=cpu", "train.keep_checkpoints=0",
]  # fmt: skip
NETS = {
    "VAE": ["model.variational=true", "model.fact=1.0"],
    "AE + batch norm": ["model.variational=false", "model.batch_norm=true"],
}


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]


def one_process(cfg: list[str], run_dir: Path, threads: int) -> list[dict]:
    cfg = [*cfg, f"train.threads={threads}"]
    zspace.train(load_config(None, cfg), run_dir=run_dir, log=lambda _m: None, progress=False)
    return rows(run_dir)


def two_processes(cfg: list[str], run_dir: Path) -> list[dict]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    sets = [a for o in cfg for a in ("--set", o)]
    subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node=2", "-m", "zspace", "train",
         "--no-progress", "--run-dir", str(run_dir), *sets],
        check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    return rows(run_dir)


def rel(a: list[dict], b: list[dict], key: str) -> list[float]:
    return [max(abs(x[key] - y[key]) / abs(y[key]), 1e-12) for x, y in zip(a, b, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="docs/img/ddp-drift.png")
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(NETS), figsize=(5.2 * len(NETS), 3.6), sharey=True)
    with tempfile.TemporaryDirectory() as tmp:
        for ax, (name, extra) in zip(axes, NETS.items(), strict=True):
            cfg = [*BASE, *extra, f"train.epochs={args.epochs}"]
            folder = Path(tmp) / name.replace(" ", "")
            ref = one_process(cfg, folder / "one", threads=1)
            again = one_process(cfg, folder / "threads2", threads=2)
            ddp = two_processes(cfg, folder / "ddp")
            epochs = [r["epoch"] for r in ref]
            for runs, label, style in (
                (ddp, "2 processes", "-"),
                (again, "1 process, 2 threads", "--"),
            ):
                for key, colour in (("total", "C0"), ("val_total", "C1")):
                    what = "train" if key == "total" else "valid"
                    ax.semilogy(epochs, rel(runs, ref, key), style, color=colour,
                                marker="o", ms=3, label=f"{label}: {what}")  # fmt: skip
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(True, which="both", alpha=0.3)
            summary = {
                k: [f"{v:.1e}" for v in rel(ddp, ref, k)[-1:]] for k in ("total", "val_total")
            }
            print(name, "2 processes vs 1, last epoch:", summary)
    axes[0].set_ylabel("relative difference of the total loss\nfrom one process (1e-12: equal)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("DDP (2 gloo processes) against one process, same global batch", fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
