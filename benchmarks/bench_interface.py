"""The model interface's overhead (issue 24): ``Run.encode``/``Run.decode`` through
``models.interface`` against the code path before it (the encoder and decoder called
directly, as ``Run`` did at the parent of commit cafe7fe), on the reference CelebA
network (recipe celeba-vae: 96x96x3, filters 32-64-128-256, stride 2, z_dim 256).

    python benchmarks/bench_interface.py                  # 512 images, 15 rounds
    python benchmarks/bench_interface.py --n 128 --rounds 5 --device cuda

Both paths run in the same process on the same weights and images, interleaved
round by round (so a load change on a shared machine hits both), and must give the
same tensors. Prints the median seconds of each and the ratio after / before.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

from zspace.config import config_from_dict
from zspace.flow.recipes import load_recipe
from zspace.models.autoencoder import AutoEncoder
from zspace.runs.run import Run


@torch.no_grad()
def encode_before(run: Run, x: np.ndarray, batch_size: int):
    """Run.encode as it was before the interface: the encoder module called directly."""
    x = run.as_batch(x)
    zs, mus, lvs = [], [], []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].to(run.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        out = run.model.encoder(batch)
        zs.append(out.z.float().cpu())
        if out.mu is not None:
            mus.append(out.mu.float().cpu())
            lvs.append(out.logvar.float().cpu())
    return torch.cat(zs), torch.cat(mus), torch.cat(lvs)


@torch.no_grad()
def decode_before(run: Run, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = [
        torch.sigmoid(run.model.decoder(z[s : s + batch_size].to(run.device))).float().cpu()
        for s in range(0, len(z), batch_size)
    ]
    return torch.cat(out)


def timed(fn, *args) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="images per call")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    cfg = config_from_dict(load_recipe("celeba-vae").config)
    torch.manual_seed(0)
    model = AutoEncoder(cfg.model, (3, 96, 96)).to(args.device).eval()
    run = Run(Path("."), cfg, {}, model, torch.device(args.device), 0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 96, 96, 3), dtype=np.uint8)
    z = torch.randn(args.n, cfg.model.z_dim)
    cases = {
        "encode": (
            lambda: encode_before(run, images, args.batch_size),
            lambda: run.encode(images, args.batch_size),
        ),
        "decode": (
            lambda: decode_before(run, z, args.batch_size),
            lambda: run.decode(z, args.batch_size),
        ),
    }
    print(f"machine: {cpu_name()}, torch threads {torch.get_num_threads()}, device {args.device}")
    print(f"{args.n} images of 96x96x3 per call, batch {args.batch_size}, {args.rounds} rounds")
    for name, (before, after) in cases.items():
        times: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(args.rounds + 1):  # round 0 warms up and checks the values
            order = [("before", before), ("after", after)]
            outs = {}
            for which, fn in order if r % 2 else order[::-1]:
                torch.manual_seed(r)  # the VAE's eps: the same draw for both
                t, outs[which] = timed(fn)
                if r:
                    times[which].append(t)
            a, b = outs["before"], outs["after"]
            same = all(torch.equal(p, q) for p, q in zip(a, b, strict=True)) if name == "encode" \
                else torch.equal(a, b)  # fmt: skip
            assert same, f"{name}: the two paths differ"
        med = {k: statistics.median(v) for k, v in times.items()}
        spread = {k: (min(v), max(v)) for k, v in times.items()}
        print(
            f"{name}: before {med['before']:.4f} s (min {spread['before'][0]:.4f}, max "
            f"{spread['before'][1]:.4f}), after {med['after']:.4f} s (min "
            f"{spread['after'][0]:.4f}, max {spread['after'][1]:.4f}); after / before "
            f"{med['after'] / med['before']:.3f} (median), "
            f"{min(times['after']) / min(times['before']):.3f} (min)"
        )


if __name__ == "__main__":
    main()
