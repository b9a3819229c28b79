"""Training and encoder-inference throughput of the reference networks: zspace against
its own baseline (the plain layers) and the Keras/TensorFlow reference, all measured
in one session on one machine, baseline and zspace alternating round by round.

    python benchmarks/bench_train.py --net celeba96 mnist28 --tf-python /tmp/tfref/bin/python

Per net and round, in one process, with glibc's allocator at the steady state of its
dynamic thresholds (freed blocks over 32 MiB unmapped, the heap trimmed above 64 MiB):
  * ``baseline``: the model as plain torch layers (what zspace ran before issue 30:
    activations out of place, dense layers in torch's matmul (MKL), encoding unfused
    over the whole batch);
  * ``zspace``: the model as zspace runs it on the CPU (activations in place, dense
    layers in oneDNN where that is faster, encoding fused in cache-sized chunks:
    zspace/models/cpu.py);
  * ``zspace-malloc``: the same with glibc keeping freed memory (mmap off, trim at
    1 GiB): what the CLI sets for the verbs that run networks (docs/performance.md);
(all three with what is not a layer switch: Adam's fused CPU kernel, the loss), each
through zspace's own training loop (Trainer.run_epoch on a random uint8 set:
batches, loss terms, progress bar, NaN check) and through ``Run.encode`` (batch 512,
uint8 NHWC images in, latents out); then the TF reference (``train_keras.py
--variant tffunc``, ``--mode infer``) in its own process. The table gives medians over
the rounds, the median of the per-round ratios zspace / baseline, the ratio to TF,
and GFLOP/s (analytic count, netspec.py) against torch.mm's peak and the same product
in oneDNN, both measured each round.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name
from torch import nn

from zspace.config import load_config
from zspace.data import ImageData
from zspace.models import autoencoder, cpu
from zspace.runs.run import Run
from zspace.training import Trainer

NETS = {
    "celeba96": dict(
        size=96, channels=3, filters=[32, 64, 128, 256], strides=[2, 2, 2, 2], z_dim=256
    ),
    "mnist28": dict(size=28, channels=1, filters=[32, 64, 128], strides=[1, 2, 2], z_dim=16),
}
BATCH = 128
INFER_BATCH = 512
ON_CPU = cpu.on_cpu


def mm_peak(n: int = 2048, repeats: int = 10, onednn: bool = False) -> float:
    """GFLOP/s of a large fp32 torch.mm (the issue's "machine's peak"), or with
    ``onednn`` of the same product in oneDNN, which on non-Intel AVX-512 CPUs runs at
    about twice MKL's speed (MKL takes its AVX2 code there: docs/performance.md)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    product = (lambda: cpu.MATMUL(a, b, None, "none", [], "")) if onednn else (lambda: a @ b)
    for _ in range(3):
        product()
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        product()
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_image(net: str, tf_dir: Path | None) -> dict | None:
    if tf_dir is None:
        return None
    sys.path.insert(0, str(tf_dir))
    try:
        import netspec  # noqa: PLC0415

        return netspec.flops(net)
    finally:
        sys.path.pop(0)


def config_for(net: str, compile_mode: str = "off", precision: str = "fp32"):
    spec = NETS[net]
    return load_config(
        None,
        [
            f"model.encoder_filters={spec['filters']}",
            f"model.encoder_strides={spec['strides']}",
            f"model.z_dim={spec['z_dim']}",
            "model.variational=true",
            "model.fact=5.0",
            f"data.image_size={spec['size']}",
            f"train.batch_size={BATCH}",
            "train.device=cpu",
            f"train.compile={compile_mode}",
            f"train.precision={precision}",
            "data.valid_fraction=0",
        ],
    )


MODES = ("baseline", "zspace", "zspace-malloc")


def set_mode(mode: str, models: list[nn.Module]) -> None:
    """Switch the process between the baseline and zspace's CPU path (see the docstring);
    ``zspace-malloc``: zspace's layers with glibc tuned to keep freed memory
    (what the CLI sets for its network verbs: docs/performance.md)."""
    kernels = mode != "baseline"
    cpu.on_cpu = ON_CPU if kernels else (lambda _x: False)
    for model in models:
        for m in model.modules():
            if isinstance(m, (nn.LeakyReLU, nn.ReLU)):
                m.inplace = kernels
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    mallopt = libc.mallopt  # M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3, M_MMAP_MAX -4
    if mode == "zspace-malloc":
        mallopt(-4, 0), mallopt(-1, 1 << 30)
    else:
        mallopt(-4, 65536), mallopt(-3, 32 << 20), mallopt(-1, 64 << 20), libc.malloc_trim(0)


class Bench:
    """One net's trainer and encoding run, timed in either mode."""

    def __init__(self, net: str, steps: int, compile_mode: str = "off") -> None:
        spec = NETS[net]
        cfg = config_for(net, compile_mode)
        rng = np.random.default_rng(0)
        self.n = steps * BATCH
        shape = (self.n, spec["size"], spec["size"], spec["channels"])
        self.images = rng.integers(0, 256, shape, np.uint8)
        data = ImageData(images=self.images, source="random")
        self.trainer = Trainer(
            cfg, data, {"train": np.arange(self.n)}, Path("/tmp/zspace-bench-run"),
            log=lambda _m: None,
        )  # fmt: skip
        model = autoencoder.AutoEncoder(cfg.model, (spec["channels"], spec["size"], spec["size"]))
        model.load_state_dict(self.trainer.model.state_dict())
        self.run = Run(Path("."), cfg, {}, model.eval(), torch.device("cpu"), 0)
        self.models = [self.trainer.model, self.run.model]
        self.epoch = 1
        self.train()  # warm-up (and compilation)

    def train(self) -> float:
        t = time.perf_counter()
        self.trainer.run_epoch(self.epoch, train=True)
        self.epoch += 1
        return self.n / (time.perf_counter() - t)

    def infer(self, batches: int) -> float:
        x = self.images[:INFER_BATCH]
        self.run.encode(x)  # warm-up
        t = time.perf_counter()
        for _ in range(batches):
            self.run.encode(x)
        return batches * INFER_BATCH / (time.perf_counter() - t)


def bench_tf(tf_python: str, tf_dir: Path, net: str, mode: str) -> float | None:
    cmd = [tf_python, str(tf_dir / "train_keras.py"), "--net", net, "--variant", "tffunc"]
    if mode == "infer":
        cmd += ["--mode", "infer"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tf_dir)
    for line in reversed(proc.stdout.splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)["median"]
    print(f"TF reference failed: {proc.stderr[-500:]}", file=sys.stderr)
    return None


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", nargs="+", default=list(NETS), choices=list(NETS))
    p.add_argument("--tf-python", help="python of a venv with tensorflow-cpu")
    p.add_argument(
        "--tf-dir",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/bench/keras_reference",
    )
    p.add_argument("--rounds", type=int, default=5, help="baseline/zspace alternations")
    p.add_argument("--tf-rounds", type=int, default=3, help="rounds that also run TF")
    p.add_argument("--compile", action="store_true", help="also measure train.compile=on")
    args = p.parse_args()
    tf_dir = args.tf_dir if args.tf_dir.is_dir() else None
    load = os.getloadavg()
    print(f"CPU: {cpu_name()}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for net in args.net:
        steps = 20 if net == "celeba96" else 50
        fl = flops_per_image(net, tf_dir)
        bench = Bench(net, steps)
        rates: dict[str, list[float]] = {}
        peaks: list[float] = []
        dnn_peaks: list[float] = []
        for r in range(args.rounds):
            peaks.append(mm_peak())
            dnn_peaks.append(mm_peak(onednn=True) if cpu.MATMUL is not None else float("nan"))
            for mode in MODES:
                set_mode(mode, bench.models)
                rates.setdefault(f"{mode} train", []).append(bench.train())
                rates.setdefault(f"{mode} infer", []).append(bench.infer(max(3, steps // 5)))
            if args.tf_python and tf_dir is not None and r < args.tf_rounds:
                for kind in ("train", "infer"):
                    rate = bench_tf(args.tf_python, tf_dir, net, kind)
                    rates.setdefault(f"TF tffunc {kind}", []).extend([rate] if rate else [])
        if args.compile:
            set_mode("zspace", [])
            rates["zspace+compile train"] = [Bench(net, steps, "on").train()]
        peak = median(peaks)
        print(f"== {net} (train batch {BATCH}, encode batch {INFER_BATCH}, {args.rounds} rounds)")
        dnn_peak = median(dnn_peaks)
        print(f"   torch.mm peak {peak:.1f} GFLOP/s (median of rounds, {min(peaks):.1f}-"
              f"{max(peaks):.1f}); the same product in oneDNN {dnn_peak:.1f}")  # fmt: skip
        print(
            f"   {'':22s}{'img/s':>9s}{'GFLOP/s':>9s}{'% peak':>8s}{'% oneDNN':>9s}"
            f"{'x baseline':>12s}{'x TF':>7s}"
        )
        for name, values in rates.items():
            kind = name.split()[-1]
            rate = median(values)
            line = f"   {name:22s}{rate:9.1f}"
            if fl:
                gf = rate * fl["train_flops" if kind == "train" else "enc_infer_flops"] / 1e9
                line += f"{gf:9.1f}{100 * gf / peak:7.1f}%{100 * gf / dnn_peak:8.1f}%"
            base = rates.get(f"baseline {kind}")
            if name.startswith("zspace") and base:
                ratio = median([z / b for z, b in zip(values, base, strict=False)])
                line += f"{ratio:11.2f}x"
            tf = rates.get(f"TF tffunc {kind}")
            if tf and not name.startswith("TF"):
                line += f"{'' if name.startswith('zspace') else ' ' * 12}{rate / median(tf):6.2f}x"
            print(line)
        print("   rounds (img/s): " + "; ".join(
            f"{k} {' '.join(f'{v:.0f}' for v in vs)}" for k, vs in rates.items()
        ))  # fmt: skip
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
