"""Where the training step's time goes, layer by layer (fwd + bwd), with GFLOP/s.

    python benchmarks/profile_layers.py [--net celeba96|mnist28] [--batch 128]

Times each conv / transposed conv / dense layer of the reference net in isolation
(channels_last, fp32, forward + backward of input and weights) and prints its
share of the analytic FLOPs, its time share and its achieved GFLOP/s against the
torch.mm peak. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_train import NETS, config_for, mm_peak
from machine import cpu_name
from torch import nn

from zspace.models.autoencoder import AutoEncoder


def layer_inputs(model: AutoEncoder, x: torch.Tensor) -> list[tuple[str, nn.Module, torch.Tensor]]:
    found = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, n=n: found.append((n, mod, inp[0].detach())))
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return found


def macs(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(mod, nn.Linear):
        return inp.shape[0] * mod.in_features * mod.out_features
    k = mod.kernel_size[0] * mod.kernel_size[1]
    if isinstance(mod, nn.ConvTranspose2d):
        return inp.numel() * k * mod.out_channels
    return out.numel() * k * mod.in_channels


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--net", default="celeba96", choices=list(NETS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    spec = NETS[args.net]
    model = AutoEncoder(config_for(args.net).model, (spec["channels"], spec["size"], spec["size"]))
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(args.batch, spec["channels"], spec["size"], spec["size"])
    x = x.contiguous(memory_format=torch.channels_last)
    peak = mm_peak()
    print(f"CPU: {cpu_name()}  torch.mm peak {peak:.1f} GFLOP/s  net {args.net} batch {args.batch}")
    rows = []
    for name, mod, inp in layer_inputs(model, x):
        inp = inp.clone().requires_grad_(True)
        out = mod(inp)
        grad = torch.randn_like(out)
        for _ in range(2):
            mod(inp).backward(grad)
        t = time.perf_counter()
        for _ in range(args.repeats):
            mod(inp).backward(grad)
        dt = (time.perf_counter() - t) / args.repeats
        flops = 6 * macs(mod, inp, out)  # fwd + grad input + grad weight
        rows.append((name, type(mod).__name__, dt, flops))
    total_t = sum(r[2] for r in rows)
    total_f = sum(r[3] for r in rows)
    print(f"{'layer':28s}{'kind':17s}{'ms':>8s}{'time %':>8s}{'flop %':>8s}{'GFLOP/s':>9s}")
    for name, kind, dt, fl in rows:
        print(
            f"{name:28s}{kind:17s}{dt * 1e3:8.1f}{100 * dt / total_t:8.1f}"
            f"{100 * fl / total_f:8.1f}{fl / dt / 1e9:9.1f}"
        )
    print(
        f"all layers: {total_t * 1e3:.0f} ms per step, {total_f / total_t / 1e9:.1f} GFLOP/s "
        f"({100 * total_f / total_t / 1e9 / peak:.0f}% of mm peak)"
    )


if __name__ == "__main__":
    main()
