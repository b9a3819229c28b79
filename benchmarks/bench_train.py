"""Training and encoder-inference throughput of the reference networks, side by side
with the Keras/TensorFlow reference, measured in the same session on the same machine.

    python benchmarks/bench_train.py --net celeba96 mnist28 \
        --tf-python /tmp/tfref/bin/python --tf-dir ../shared/bench/keras_reference

For each net it prints images/s of
  * ``bare``: a plain eager step (forward, loss, backward, Adam) on one fixed batch;
  * ``zspace``: zspace's own training loop (Trainer.run_epoch: batches gathered from a
    uint8 set, the loss terms, the progress bar, the NaN check), per layout variant;
  * ``infer``: encoder inference, batch 512, no grad;
  * the TF reference (``--variant tffunc``; ``--mode infer`` for inference) when
    ``--tf-python`` is given;
and the achieved GFLOP/s (analytic count from netspec.py) against the machine's
torch.mm peak. The loop overhead is zspace's loop time over the bare step time.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name
from zspace.models.losses import vae_loss

from zspace.config import load_config
from zspace.data import ImageData
from zspace.models.autoencoder import AutoEncoder
from zspace.training import Trainer

NETS = {
    "celeba96": dict(
        size=96, channels=3, filters=[32, 64, 128, 256], strides=[2, 2, 2, 2], z_dim=256
    ),
    "mnist28": dict(size=28, channels=1, filters=[32, 64, 128], strides=[1, 2, 2], z_dim=16),
}
BATCH = 128
INFER_BATCH = 512


def mm_peak(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large fp32 torch.mm: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
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


def config_for(net: str, compile_mode: str = "off"):
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
            "data.valid_fraction=0",
        ],
    )


def bench_bare(net: str, steps: int) -> float:
    """Plain eager step on one fixed batch: the baseline for the loop overhead."""
    cfg = config_for(net)
    spec = NETS[net]
    torch.manual_seed(0)
    model = AutoEncoder(cfg.model, (spec["channels"], spec["size"], spec["size"]))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.rand(BATCH, spec["channels"], spec["size"], spec["size"]).contiguous(
        memory_format=torch.channels_last
    )

    def step():
        logits, enc = model(x)
        loss = vae_loss(logits, x, enc.mu, enc.logvar, fact=5.0).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed(step, steps, BATCH)


def _timed(fn, steps: int, per_call: int, windows: int = 3) -> float:
    for _ in range(max(2, steps // 5)):
        fn()
    rates = []
    for _ in range(windows):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        rates.append(steps * per_call / (time.perf_counter() - t))
    return float(np.median(rates))


def bench_zspace(net: str, steps: int, compile_mode: str) -> float:
    """zspace's own loop over a random uint8 set of ``steps`` batches."""
    spec = NETS[net]
    cfg = config_for(net, compile_mode)
    rng = np.random.default_rng(0)
    n = steps * BATCH
    images = rng.integers(0, 256, (n, spec["size"], spec["size"], spec["channels"]), np.uint8)
    data = ImageData(images=images, source="random")
    splits = {"train": np.arange(n)}
    trainer = Trainer(
        cfg, data, splits, Path("/tmp/zspace-bench-run"), log=lambda _m: None, progress=True
    )
    trainer.run_epoch(1, train=True)  # warm-up (and compilation)
    rates = []
    for epoch in range(2, 5):
        t = time.perf_counter()
        trainer.run_epoch(epoch, train=True)
        rates.append(n / (time.perf_counter() - t))
    return float(np.median(rates))


def bench_infer(net: str, steps: int) -> float:
    spec = NETS[net]
    cfg = config_for(net)
    model = AutoEncoder(cfg.model, (spec["channels"], spec["size"], spec["size"])).eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(INFER_BATCH, spec["channels"], spec["size"], spec["size"]).contiguous(
        memory_format=torch.channels_last
    )

    @torch.no_grad()
    def run():
        model.encoder(x)

    return _timed(run, steps, INFER_BATCH)


def bench_tf(tf_python: str, tf_dir: Path, net: str, mode: str) -> dict | None:
    cmd = [tf_python, str(tf_dir / "train_keras.py"), "--net", net, "--variant", "tffunc"]
    if mode == "infer":
        cmd += ["--mode", "infer"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tf_dir)
    for line in reversed(proc.stdout.splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    print(f"TF reference failed: {proc.stderr[-500:]}", file=sys.stderr)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", nargs="+", default=list(NETS), choices=list(NETS))
    p.add_argument("--tf-python", help="python of a venv with tensorflow-cpu")
    p.add_argument(
        "--tf-dir",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/bench/keras_reference",
    )
    p.add_argument("--compile", action="store_true", help="also measure train.compile=on")
    args = p.parse_args()
    tf_dir = args.tf_dir if args.tf_dir.is_dir() else None
    peak = mm_peak()
    print(f"CPU: {cpu_name()}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    print(f"torch.mm peak: {peak:.1f} GFLOP/s")
    for net in args.net:
        steps = 20 if net == "celeba96" else 100
        fl = flops_per_image(net, tf_dir)
        res: dict[str, float] = {}
        res["bare"] = bench_bare(net, steps)
        res["zspace"] = bench_zspace(net, steps, "off")
        if args.compile:
            res["zspace+compile"] = bench_zspace(net, steps, "on")
        res["infer"] = bench_infer(net, max(5, steps // 4))
        tf_train = tf_infer = None
        if args.tf_python and tf_dir is not None:
            tf_train = bench_tf(args.tf_python, tf_dir, net, "train")
            tf_infer = bench_tf(args.tf_python, tf_dir, net, "infer")
        print(f"== {net} (batch {BATCH}, inference batch {INFER_BATCH})")
        for name, rate in res.items():
            line = f"  {name:16s} {rate:9.1f} img/s"
            if fl:
                gf = rate * (fl["enc_infer_flops"] if name == "infer" else fl["train_flops"]) / 1e9
                line += f"  {gf:7.1f} GFLOP/s ({100 * gf / peak:4.1f}% of mm peak)"
            ref = tf_infer if name == "infer" else tf_train
            if ref:
                line += f"  ratio vs TF tffunc {rate / ref['median']:.2f}x"
            print(line)
        if tf_train:
            print(f"  TF tffunc train  {tf_train['median']:9.1f} img/s")
        if tf_infer:
            print(f"  TF tffunc infer  {tf_infer['median']:9.1f} img/s")
        overhead = res["bare"] / res["zspace"] - 1
        print(f"  loop overhead (zspace loop vs bare step): {100 * overhead:+.1f}%")


if __name__ == "__main__":
    main()
