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
import torch.nn.functional as F
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


def space_to_depth(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """conv(x, w, stride 2, padding 1) as a 2x2 conv over the 2x2-unshuffled input: tap a
    of the 3x3 kernel reads block offset (a - 1) // 2, phase (a - 1) % 2."""
    o, c = w.shape[:2]
    w4 = w.new_zeros(o, c, 2, 2, 2, 2)  # out, in, phase y, phase x, block y, block x
    for a in range(3):
        by, ry = divmod(a - 1, 2)
        for a2 in range(3):
            bx, rx = divmod(a2 - 1, 2)
            w4[:, :, ry, rx, by + 1, bx + 1] = w[:, :, a, a2]
    return F.conv2d(F.pad(F.pixel_unshuffle(x, 2), (1, 0, 1, 0)), w4.reshape(o, 4 * c, 2, 2), b)


def im2col(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """conv(x, w, stride 2, padding 1) as one matrix product over NHWC patches."""
    n, c, h, wd = x.shape
    o, k = w.shape[0], w.shape[2]
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))
    sn, sh, sw, sc = xp.stride()
    ho, wo = h // 2, wd // 2
    patches = xp.as_strided((n, ho, wo, k, k, c), (sn, 2 * sh, 2 * sw, sh, sw, sc))
    y = torch.addmm(
        b, patches.reshape(n * ho * wo, k * k * c), w.permute(0, 2, 3, 1).flatten(1).t()
    )
    return y.view(n, ho, wo, o).permute(0, 3, 1, 2)


def thin_cases(batch: int) -> dict[str, tuple]:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 32, 3, 2, 1).to(memory_format=CL)
    forms = {"space-to-depth": space_to_depth, "im2col": im2col}
    x = torch.rand(4 * batch, 3, 96, 96).contiguous(memory_format=CL)
    with torch.no_grad():
        ref = conv(x[:8])
        for name, form in forms.items():
            diff = (form(x[:8], conv.weight, conv.bias) - ref).abs().max().item()
            print(f"thin first conv, {name}: largest difference from the plain layer {diff:.2e}")

    def step(form, train: bool):
        def run() -> None:
            if train:
                conv.zero_grad()
                F.leaky_relu(form(x[:batch], conv.weight, conv.bias), 0.3).sum().backward()
            else:
                with torch.no_grad():
                    F.leaky_relu(form(x, conv.weight, conv.bias), 0.3)

        return run

    def plain(x_, w, b):
        return conv(x_)

    out = {}
    for name, form in forms.items():
        out[f"thin conv {name} (train b{batch})"] = (step(plain, True), step(form, True))
        out[f"thin conv {name} (infer b{4 * batch})"] = (step(plain, False), step(form, False))
    return out


# (phase, tap) -> index of the 3x3 transposed kernel (stride 2, padding 1, output_padding 1)
TAPS = {(0, 0): 1, (1, 0): 2, (1, 1): 0}


def sub_pixel(x: torch.Tensor, wt: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """conv_transpose(x, wt, stride 2, padding 1, output_padding 1) as one 2x2 conv to 4x the
    channels (one per output phase) and a pixel shuffle."""
    w = wt.new_zeros(wt.shape[1], 2, 2, wt.shape[0], 2, 2)  # out, phase y, x, in, tap y, x
    for (ry, ty), a in TAPS.items():
        for (rx, tx), a2 in TAPS.items():
            w[:, ry, rx, :, ty, tx] = wt[:, :, a, a2].t()
    y = F.conv2d(F.pad(x, (0, 1, 0, 1)), w.flatten(0, 2), b.repeat_interleave(4))
    return F.pixel_shuffle(y, 2)


def sub_pixel_cases(batch: int) -> dict[str, tuple]:
    """The decoder's middle transposed convolutions, training (forward + both gradients)."""
    out = {}
    for c_in, c_out, size in ((256, 128, 6), (128, 64, 12), (64, 32, 24)):
        torch.manual_seed(0)
        deconv = nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1).to(memory_format=CL)
        x = torch.randn(batch, c_in, size, size).contiguous(memory_format=CL).requires_grad_()
        with torch.no_grad():
            diff = (sub_pixel(x, deconv.weight, deconv.bias) - deconv(x)).abs().max().item()
        print(f"sub-pixel {c_in}->{c_out}: largest difference from the plain layer {diff:.2e}")

        def step(sub: bool, deconv=deconv, x=x):
            def run() -> None:
                y = sub_pixel(x, deconv.weight, deconv.bias) if sub else deconv(x)
                F.leaky_relu(y, 0.3).sum().backward()

            return run

        out[f"deconv {c_in}->{c_out} sub-pixel (train b{batch})"] = (step(False), step(True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--thin", action="store_true", help="also the forms tried and not kept")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    todo = cases(args.batch) | (thin_cases(args.batch) if args.thin else {})
    todo |= sub_pixel_cases(args.batch) if args.thin else {}
    for name, (plain, ours) in todo.items():
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
