"""Export and logging costs: Projector export of 10,000 MNIST images, ONNX Runtime against
PyTorch for encode/decode, and TensorBoard logging per epoch against none.

    python benchmarks/bench_export.py                      # all three parts
    python benchmarks/bench_export.py --parts onnx --threads 1 2

``projector`` trains a 1-epoch VAE on MNIST t10k (10,000 images, all in ``train``),
then times ``zspace.export(run, "projector", n=10000)`` without latents (encodes
first) and with them. ``onnx`` builds the reference nets (untrained weights: the
speed does not depend on them), exports them and times batch-256 encode/decode
through ``Run.encode``/``Run.decode`` and onnxruntime sessions with the same thread
count. ``tensorboard`` trains the same config with and without ``train.log``,
interleaved, and times the logger's hooks themselves. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from machine import cpu_name

import zspace
from zspace.config import load_config
from zspace.exporting.api import export
from zspace.models.autoencoder import AutoEncoder
from zspace.runs.run import Run

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
NETS = {
    "mnist28": ["data.image_size=28", "model.z_dim=16"],  # the default model
    "celeba96": [
        "data.image_size=96",
        "data.channels=3",
        "model.z_dim=256",
        "model.encoder_filters=[32, 64, 128, 256]",
        "model.encoder_strides=2",
    ],  # fmt: skip
}
SHAPES = {"mnist28": (1, 28, 28), "celeba96": (3, 96, 96)}


def mnist_overrides(cache: Path) -> list[str]:
    return [
        f'data.source="mnist:{MNIST}"', f'data.cache_dir="{cache}"', "data.valid_fraction=0",
        "train.threads=0", "train.batch_size=128",
    ]  # fmt: skip


def bench_projector(root: Path) -> None:
    cfg = load_config(None, [*mnist_overrides(root / "cache"), "train.epochs=1"])
    run = zspace.train(cfg, run_dir=root / "proj", log=lambda s: None, progress=False)
    for label in ("without latents (encodes first)", "with latents"):
        started = time.perf_counter()
        out = export(run, "projector", root / "p", n=10_000)
        secs = time.perf_counter() - started
        sizes = {p.name: p.stat().st_size for p in out.iterdir()}
        print(f"projector n=10000 {label}: {secs:.2f} s  files {sizes}")


def _median_rate(fn, n: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return n / statistics.median(times)


def bench_onnx(root: Path, threads: list[int], batch: int, repeats: int) -> None:
    import onnxruntime as ort

    for net, sets in NETS.items():
        cfg = load_config(None, [*sets, "model.variational=true"])
        shape = SHAPES[net]
        model = AutoEncoder(cfg.model, shape).eval()
        run = Run(root / net, cfg, {}, model, torch.device("cpu"), 0)
        out = export(run, "onnx", root / f"onnx-{net}")
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(0))
        z = torch.randn(batch, cfg.model.z_dim, generator=torch.Generator().manual_seed(1))
        for t in threads:
            torch.set_num_threads(t)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = t, 1
            enc = ort.InferenceSession(str(out / "encoder.onnx"), opts, ["CPUExecutionProvider"])
            dec = ort.InferenceSession(str(out / "decoder.onnx"), opts, ["CPUExecutionProvider"])
            calls = {
                "encode torch": partial(run.encode, x, batch),
                "encode onnx": partial(enc.run, None, {"images": x.numpy()}),
                "decode torch": partial(run.decode, z, batch),
                "decode onnx": partial(dec.run, None, {"z": z.numpy()}),
            }
            rates = {k: _median_rate(f, batch, repeats) for k, f in calls.items()}
            line = "  ".join(f"{k} {v:,.0f}/s" for k, v in rates.items())
            ratio_e = rates["encode onnx"] / rates["encode torch"]
            ratio_d = rates["decode onnx"] / rates["decode torch"]
            print(f"{net} threads={t} batch={batch}: {line}  onnx/torch encode {ratio_e:.2f}x "
                  f"decode {ratio_d:.2f}x")  # fmt: skip


def bench_tensorboard(root: Path, epochs: int, rounds: int) -> None:
    """The logger's own time per epoch (timed around its hooks: the epoch loop itself is
    the same code with or without it), beside the epoch time and the interleaved wall
    time of training with and without ``train.log``."""
    from zspace.exporting.tensorboard import TensorBoardLogger
    from zspace.training import train_run as train

    class Timed(TensorBoardLogger):
        spent: list[float] = []

        def on_epoch_end(self, trainer, row) -> None:
            started = time.perf_counter()
            super().on_epoch_end(trainer, row)
            Timed.spent.append(time.perf_counter() - started)

    base = [*mnist_overrides(root / "cache"), f"train.epochs={epochs}", "data.valid_fraction=0.1"]
    walls: dict[str, list[float]] = {"none": [], "tensorboard": []}
    epoch_secs = []
    for r in range(rounds):
        for kind in ("none", "tensorboard"):
            cfg = load_config(None, base)
            callbacks = [Timed()] if kind == "tensorboard" else []
            started = time.perf_counter()
            run = train(
                cfg, run_dir=root / f"tb-{kind}-{r}", callbacks=callbacks,
                log=lambda s: None, progress=False,
            )  # fmt: skip
            walls[kind].append((time.perf_counter() - started) / epochs)
            epoch_secs += [row["seconds"] for row in run.history]
    hook = statistics.median(Timed.spent)
    epoch = statistics.median(epoch_secs)
    a, b = statistics.median(walls["none"]), statistics.median(walls["tensorboard"])
    times = [round(t, 3) for t in Timed.spent]
    print(
        f"tensorboard: MNIST t10k (9,000 train / 1,000 valid), default model, {epochs} "
        f"epochs x {rounds} rounds: logger {hook:.3f} s per epoch (median of {len(times)}) = "
        f"{hook / epoch * 100:.2f}% of the median epoch {epoch:.1f} s; wall per epoch none "
        f"{a:.1f} s, tensorboard {b:.1f} s (ratio {b / a:.2f}; noise on a shared machine)  "
        f"logger times {times}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["projector", "onnx", "tensorboard"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tb-epochs", type=int, default=1)
    ap.add_argument("--tb-rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"cpu: {cpu_name()}  cores: {len(os.sched_getaffinity(0))}  torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="zspace-bench-export-") as tmp:
        root = Path(tmp)
        if "projector" in args.parts:
            bench_projector(root)
        if "onnx" in args.parts:
            bench_onnx(root, args.threads, args.batch, args.repeats)
        if "tensorboard" in args.parts:
            bench_tensorboard(root, args.tb_epochs, args.tb_rounds)


if __name__ == "__main__":
    main()
