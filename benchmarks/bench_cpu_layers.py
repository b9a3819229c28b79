"""zspace/models/cpu.py's fused encoder convolutions against the plain layers, on the
celeba96 reference network's shapes, alternating in one process (issue 30 also
measured a sub-pixel thin transposed conv, the adjoint backward and the heads as a
convolution here: docs/performance.md; they were not kept):

    python benchmarks/bench_cpu_layers.py --rounds 9

Prints per formulation the median time of each side and the median of the per-round
ratios plain / zspace (> 1: zspace's is faster). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from machine import cpu_name
from torch import nn

from zspace.models import cpu

CL = torch.channels_last


def timed(fn, repeats: int) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def cases(batch: int) -> dict[str, tuple]:
    torch.manual_seed(0)
    out = {}
    # the encoder's convolutions + LeakyReLU at inference, batch 512: plain or fused
    convs = nn.Sequential(
        *[
            nn.Sequential(nn.Conv2d(a, b, 3, 2, 1), nn.LeakyReLU(0.3, inplace=True))
            for a, b in ((3, 32), (32, 64), (64, 128), (128, 256))
        ]
    ).to(memory_format=CL)
    x = torch.rand(4 * batch, 3, 96, 96).contiguous(memory_format=CL)

    def encode(fused: bool):
        def step() -> None:
            with torch.no_grad():
                cpu.fused_convs(convs, x) if fused else convs(x)

        return step

    out["fused encoder convs (infer b512)"] = (encode(False), encode(True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for name, (plain, ours) in cases(args.batch).items():
        plain(), ours()  # warm-up
        a, b = [], []
        for _ in range(args.rounds):
            a.append(timed(plain, args.repeats))
            b.append(timed(ours, args.repeats))
        ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
        print(f"{name:42s} plain {1e3 * statistics.median(a):8.1f} ms  zspace "
              f"{1e3 * statistics.median(b):8.1f} ms  plain/zspace {ratio:.2f}x")  # fmt: skip
    print(f"load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
