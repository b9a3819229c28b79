"""Training throughput per ``train.precision`` on one device, through zspace's own
loop, in one session: fp32 (IEEE), fp32 with TF32, bf16 and fp16 on a GPU.

    python benchmarks/bench_precision.py --device cuda --net celeba96 mnist28
    python benchmarks/bench_precision.py --device cpu --net mnist28 --steps 5

Random uint8 images, the reference nets of bench_train.py, global batch 128; each
setting trains one warm-up epoch and three timed ones of ``--steps`` batches and
prints images/s (median), the ratio to IEEE fp32, the steps fp16's scaler skipped
and the peak GPU memory. Settings the device cannot run (bf16 emulated, fp16 off
CUDA, TF32 before Ampere) are reported as refused. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_train import BATCH, NETS
from machine import cpu_name

from zspace.config import load_config
from zspace.core.errors import ZspaceError
from zspace.data import ImageData
from zspace.training import Trainer

SETTINGS = {  # name: (train.precision, train.tf32)
    "fp32": ("fp32", False),
    "fp32+tf32": ("fp32", True),
    "bf16": ("bf16", True),
    "fp16": ("fp16", True),
}


def bench(net: str, device: str, name: str, steps: int, folder: Path) -> dict:
    precision, tf32 = SETTINGS[name]
    spec = NETS[net]
    cfg = load_config(None, [
        f"model.encoder_filters={spec['filters']}", f"model.encoder_strides={spec['strides']}",
        f"model.z_dim={spec['z_dim']}", "model.fact=5.0", f"data.image_size={spec['size']}",
        f"train.batch_size={BATCH}", f"train.device={device}", f"train.precision={precision}",
        f"train.tf32={'true' if tf32 else 'false'}", "data.valid_fraction=0",
    ])  # fmt: skip
    n = steps * BATCH
    images = np.random.default_rng(0).integers(
        0, 256, (n, spec["size"], spec["size"], spec["channels"]), np.uint8
    )
    data = ImageData(images=images, source="random")
    try:
        trainer = Trainer(cfg, data, {"train": np.arange(n)}, folder, log=lambda _m: None)
    except ZspaceError as exc:
        return {"refused": str(exc)}
    if name == "fp32+tf32" and not trainer.tf32:
        return {"refused": "no TF32 on this device"}
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(trainer.device)
    trainer.run_epoch(1, train=True)  # warm-up
    rates, skipped = [], 0
    for epoch in range(2, 5):
        trainer.skipped = 0
        started = time.perf_counter()
        trainer.run_epoch(epoch, train=True)  # ends with a host sync (the epoch's means)
        rates.append(n / (time.perf_counter() - started))
        skipped += trainer.skipped
    out = {"img_s": float(np.median(rates)), "skipped": skipped}
    if cuda:
        out["peak_mib"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--net", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--steps", type=int, default=50, help="batches per timed epoch")
    args = parser.parse_args()
    where = (
        torch.cuda.get_device_name(0) if args.device == "cuda" and torch.cuda.is_available()
        else cpu_name()
    )  # fmt: skip
    print(f"device {args.device}: {where}; torch {torch.__version__}; batch {BATCH}")
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.net:
            results = {s: bench(net, args.device, s, args.steps, Path(tmp)) for s in SETTINGS}
            base = results["fp32"].get("img_s")
            for name, r in results.items():
                if "refused" in r:
                    print(f"  {net:9s} {name:10s} refused: {r['refused']}")
                    continue
                ratio = f"{r['img_s'] / base:.2f}x" if base else "-"
                extra = f"  skipped {r['skipped']}" if name == "fp16" else ""
                extra += f"  peak {r['peak_mib']:.0f} MiB" if "peak_mib" in r else ""
                print(f"  {net:9s} {name:10s} {r['img_s']:8.0f} img/s  {ratio}{extra}")


if __name__ == "__main__":
    main()
