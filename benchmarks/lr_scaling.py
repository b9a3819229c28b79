"""Which learning rate for batches beyond 128: train.lr_scaling none / sqrt / linear,
compared at an equal number of epochs (images seen) against batch 128.

    python benchmarks/lr_scaling.py [--epochs 30] [--batches 128 512 1024]

Trains the built-in digits AE/VAE (16x16, z 8) once per (batch, rule) with the
reference lr 5e-4 chosen for batch 128, and prints the final validation loss and
the epoch at which each run first gets within 5 % of the batch-128 run's final
loss. Loss values do not depend on how busy the machine is. Not part of the suite.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import zspace
from zspace.config import load_config

BASE = [
    "data.source=builtin:digits", "data.image_size=16", "model.z_dim=8",
    "model.encoder_filters=[16, 32]", "model.encoder_strides=[2, 2]", "train.threads=1",
    "train.lr=5e-4", "train.lr_base_batch=128", "train.keep_checkpoints=0",
]  # fmt: skip


def run(batch: int, rule: str, epochs: int, vae: bool, folder: Path) -> list[float]:
    cfg = load_config(
        None,
        BASE + [f"train.batch_size={batch}", f"train.lr_scaling={rule}",
                f"train.epochs={epochs}", f"model.variational={'true' if vae else 'false'}"],
    )  # fmt: skip
    out = zspace.train(cfg, run_dir=folder / f"b{batch}-{rule}-{vae}", log=lambda _m: None,
                       progress=False)  # fmt: skip
    return [row["val_total"] for row in out.history]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batches", type=int, nargs="+", default=[512, 1024])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for vae in (False, True):
            ref = run(128, "none", args.epochs, vae, Path(tmp))
            target = 1.05 * ref[-1]
            print(f"== {'VAE (fact 1)' if vae else 'AE'}: batch 128, lr 5e-4: final val "
                  f"{ref[-1]:.2f}")  # fmt: skip
            for batch in args.batches:
                for rule in ("none", "sqrt", "linear"):
                    losses = run(batch, rule, args.epochs, vae, Path(tmp))
                    hit = next((i + 1 for i, v in enumerate(losses) if v <= target), None)
                    print(
                        f"  batch {batch:5d} {rule:6s}: final val {losses[-1]:9.2f} "
                        f"({losses[-1] / ref[-1]:.3f}x batch 128); within 5 %: "
                        f"{'epoch ' + str(hit) if hit else 'never'}"
                    )


if __name__ == "__main__":
    main()
