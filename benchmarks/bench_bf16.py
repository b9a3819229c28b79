"""bf16 against fp32 on a CPU with native BF16 (AVX-512 BF16 or AMX): training through
zspace's own loop with ``train.precision = "bf16"`` (autocast) against the default fp32,
and the encoder (batch 512) under bf16 autocast against zspace's fused fp32 encoding,
on the reference CelebA network, alternating in one process with glibc keeping freed
memory (as the CLI runs). zspace refuses bf16 on CPUs without native BF16.

    python benchmarks/bench_bf16.py --rounds 3

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from bench_train import BATCH, INFER_BATCH, config_for, set_mode
from machine import cpu_name

from zspace.core.device import native_bf16
from zspace.data import ImageData
from zspace.training import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=12, help="training steps of 128 per round")
    args = p.parse_args()
    if not native_bf16(torch.device("cpu")):
        raise SystemExit("this CPU has no native BF16 (avx512_bf16 / amx_bf16)")
    print(f"CPU: {cpu_name()}  load average at start {os.getloadavg()[0]:.1f}")
    set_mode("zspace-malloc", [])
    n = args.steps * BATCH
    images = np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3), np.uint8)
    trainers = {}
    for precision in ("fp32", "bf16"):
        cfg = config_for("celeba96", precision=precision)
        trainers[precision] = Trainer(
            cfg, ImageData(images=images, source="random"), {"train": np.arange(n)},
            Path(f"/tmp/zspace-bench-{precision}"), log=lambda _m: None,
        )  # fmt: skip
        trainers[precision].run_epoch(1, train=True)  # warm-up
    model = trainers["fp32"].model.eval()
    x = torch.rand(INFER_BATCH, 3, 96, 96).contiguous(memory_format=torch.channels_last)

    def encode(bf16: bool) -> float:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            t = time.perf_counter()
            model.encoder.heads(x, fused=not bf16)
            return INFER_BATCH / (time.perf_counter() - t)

    encode(True), encode(False)
    rates: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for precision in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
            t = time.perf_counter()
            trainers[precision].run_epoch(r + 2, train=True)
            rates.setdefault(f"train {precision}", []).append(n / (time.perf_counter() - t))
            rates.setdefault(f"encode {precision}", []).append(encode(precision == "bf16"))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items())
              + f" img/s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for what in ("train", "encode"):
        a, b = rates[f"{what} fp32"], rates[f"{what} bf16"]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"{what}: fp32 {statistics.median(a):.0f} img/s, bf16 {statistics.median(b):.0f}"
              f" img/s, bf16/fp32 {ratio:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
