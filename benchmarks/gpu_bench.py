"""The timings of a GPU session in one table (run by benchmarks/gpu_check.sh).

    python benchmarks/gpu_bench.py [--dry] [--budget 170] [--out DIR]

Rows, in this order (cheap first, so a short budget still fills most of the table):

* ceilings: a bf16 matrix product (TFLOP/s) and a device-to-device copy (GB/s);
* train: the celeba96 reference network (96x96x3, 32-64-128-256, z 256, VAE) in
  zspace's own loop (``Trainer.run_epoch``) on synthetic uint8 images resident on
  the device, batch 128 and 512, fp32 and bf16, eager / CUDA-graphed step
  (``train.cuda_graphs``) / ``torch.compile`` (``train.compile=on``, last: the
  compile itself takes tens of seconds per setting);
* encode: ``zspace.encode`` of 170,000 images (the CelebA train split), latents
  written to disk;
* k-NN: the meaningful-point rate's reference (20,000 x 256, 1-NN of each point
  among the others) and queries (1,000 against it), the evaluation's PRDC balls
  (1,000 x 64 features, k = 5), each with the torch search and with faiss.

img/s are compared with the reference's 1,400 img/s (its GPU: 120 s per
170k-image epoch) and the goal of 85,000 img/s (one epoch in 2 s). A row that
would overrun ``--budget`` seconds is skipped and says so. ``--dry``: tiny sizes
on the CPU, so the suite runs the script (tests/test_gpu_check.py) and it cannot
rot. Full numbers go to OUT/gpu_bench.json. Not part of the timed suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

from zspace.config import load_config  # noqa: E402
from zspace.core.errors import ZspaceError  # noqa: E402
from zspace.data import ImageData  # noqa: E402

REFERENCE_IMG_S = 1400.0  # the reference's GPU: 120 s per 170k-image epoch
GOAL_IMG_S = 85000.0  # 170k images in 2 s
EPOCH = 170_000

CELEBA96 = dict(size=96, channels=3, filters=[32, 64, 128, 256], strides=[2, 2, 2, 2], z_dim=256)
TINY = dict(size=16, channels=3, filters=[8, 16], strides=[2, 2], z_dim=8)


@dataclass
class Row:
    group: str
    setting: str
    rate: float | None = None  # images (or queries) per second
    seconds: float | None = None  # the timed work (k-NN: one search)
    first: float | None = None  # the first, untimed pass (warm-up, capture, compile)
    note: str = ""


class Bench:
    def __init__(self, dry: bool, budget: float, out: Path) -> None:
        self.dry = dry
        self.budget = budget
        self.out = out
        self.started = time.perf_counter()
        self.rows: list[Row] = []
        self.device = torch.device("cpu" if dry or not torch.cuda.is_available() else "cuda")
        self.net = TINY if dry else CELEBA96
        self.tmp = Path(tempfile.mkdtemp(prefix="zspace-gpu-bench-"))
        self._images: np.ndarray | None = None

    # ------------------------------------------------------------ plumbing

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.started)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        shown = f"{row.rate:,.0f}/s" if row.rate else row.note
        print(f"  [{time.perf_counter() - self.started:6.1f} s] {row.group} {row.setting}: {shown}")
        sys.stdout.flush()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_bench.json").write_text(
            json.dumps(
                {"machine": self.machine(), "rows": [asdict(r) for r in self.rows]}, indent=1
            )
        )

    def row(self, group: str, setting: str, estimate: float, fn) -> None:
        """Run ``fn() -> Row`` unless it would overrun the budget; errors become notes."""
        if self.left() < estimate:
            self.add(Row(group, setting, note=f"skipped: time budget ({self.budget:.0f} s)"))
            return
        try:
            self.add(fn())
        except ZspaceError as exc:  # e.g. bf16 on a CPU without it: the reason, shortened
            self.add(Row(group, setting, note=f"skipped: {str(exc)[:72]}"))
        except Exception as exc:  # a failing row must not lose the table
            self.add(Row(group, setting, note=f"FAILED: {type(exc).__name__}: {exc}"[:200]))

    def machine(self) -> dict:
        info = {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(self.device),
            "dry": self.dry,
        }
        if self.device.type == "cuda":
            p = torch.cuda.get_device_properties(0)
            info.update(
                gpu=p.name,
                sms=p.multi_processor_count,
                memory_gib=round(p.total_memory / 2**30, 1),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                tf32_conv=torch.backends.cudnn.allow_tf32,
                tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            )
        return info

    def images(self, n: int) -> np.ndarray:
        """n synthetic uint8 images (NHWC): a random block repeated, made once."""
        s, c = self.net["size"], self.net["channels"]
        if self._images is None or len(self._images) < n:
            block = np.random.default_rng(0).integers(0, 256, (min(n, 4096), s, s, c), np.uint8)
            self._images = np.concatenate([block] * (-(-n // len(block))))
        return self._images[:n]

    def config(self, batch: int, precision: str, compile_mode: str, graphs: str):
        net = self.net
        return load_config(
            None,
            [
                f"model.encoder_filters={net['filters']}",
                f"model.encoder_strides={net['strides']}",
                f"model.z_dim={net['z_dim']}",
                "model.variational=true", "model.fact=5.0",
                f"data.image_size={net['size']}", f"data.channels={net['channels']}",
                "data.valid_fraction=0", f"train.batch_size={batch}",
                f"train.device={self.device.type}", f"train.precision={precision}",
                f"train.compile={compile_mode}", f"train.cuda_graphs={graphs}",
            ],
        )  # fmt: skip

    # ------------------------------------------------------------ rows

    def ceilings(self) -> None:
        n = 256 if self.dry else 8192

        def matmul() -> Row:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
            a = torch.randn(n, n, device=self.device, dtype=dtype)
            b = torch.randn(n, n, device=self.device, dtype=dtype)
            secs = self.timed(lambda: a @ b, 10)
            name = "bf16" if dtype == torch.bfloat16 else "fp32"
            return Row("ceiling", f"{name} matmul {n}^3", 2 * n**3 / secs, secs, note="FLOP/s")

        def copy() -> Row:
            x = torch.empty(2**21 if self.dry else 2**30, dtype=torch.float32, device=self.device)
            y = torch.empty_like(x)
            secs = self.timed(lambda: y.copy_(x), 10)
            gb = 2 * x.numel() * 4
            return Row("ceiling", f"copy {gb / 2**30:.2f} GiB r+w", gb / secs, secs, note="B/s")

        self.row("ceiling", "matmul", 5, matmul)
        self.row("ceiling", "copy", 5, copy)

    def timed(self, fn, repeats: int) -> float:
        for _ in range(3):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    def train(self, batch: int, precision: str, compile_mode: str, graphs: str) -> Row:
        from zspace.training.trainer import Trainer

        steps = 8 if self.dry else 40
        n = steps * batch
        cfg = self.config(batch, precision, compile_mode, graphs)
        data = ImageData(images=self.images(n), source="synthetic")
        trainer = Trainer(cfg, data, {"train": np.arange(n)}, self.tmp / "run", log=lambda _m: None)
        setting = self.train_setting(batch, precision, compile_mode, graphs)
        if not trainer.train_loader.resident:
            return Row("train", setting, note="skipped: the synthetic set is not resident")
        self.sync()
        t = time.perf_counter()
        trainer.run_epoch(1, train=True)  # warm-up: autotuning, graph capture, compilation
        self.sync()
        first = time.perf_counter() - t
        rates = []
        for epoch in (2,) if self.dry else (2, 3, 4):
            t = time.perf_counter()
            trainer.run_epoch(epoch, train=True)
            self.sync()
            rates.append(n / (time.perf_counter() - t))
        rate = float(np.median(rates))
        return Row("train", setting, rate, n / rate, first)

    @staticmethod
    def train_setting(batch: int, precision: str, compile_mode: str, graphs: str) -> str:
        step = "graphed" if graphs == "on" else "compiled" if compile_mode != "off" else "eager"
        return f"b{batch} {precision} {step}"

    def encode(self) -> Row:
        from zspace.latents.encode import encode
        from zspace.models.autoencoder import AutoEncoder
        from zspace.runs.run import Run

        n = 512 if self.dry else EPOCH
        cfg = self.config(512, "fp32", "off", "off")
        net = self.net
        model = AutoEncoder(cfg.model, (net["channels"], net["size"], net["size"]))
        model = model.to(self.device).to(memory_format=torch.channels_last).eval()
        warm = min(n, 4096)
        data = ImageData(images=self.images(n), source="synthetic")
        splits = {"train": np.arange(n), "valid": np.arange(warm)}
        run = Run(self.tmp / "enc", cfg, {}, model, self.device, 0, _data=(data, splits))
        t = time.perf_counter()
        encode(run, "valid")  # warm-up (kernel choice for batch 512)
        first = time.perf_counter() - t
        t = time.perf_counter()
        encode(run, "train")
        secs = time.perf_counter() - t
        return Row("encode", f"{n:,} images, b512 fp32", n / secs, secs, first, "to disk")

    def knn(self, name: str, nq: int, nr: int, d: int, k: int, backend: str) -> Row:
        from zspace.analysis.neighbours import knn, kth_distances, within_balls

        rng = np.random.default_rng(0)
        ref = rng.standard_normal((nr, d)).astype(np.float32)
        q = ref if nq == nr else rng.standard_normal((nq, d)).astype(np.float32)
        if backend == "faiss":
            import zspace.analysis.knn_faiss as knn_faiss

            knn_faiss.load()  # a one-line error when faiss is not there
        setting = f"{name} {nq:,} x {nr:,} x {d}, k {k}, {backend}"
        if name == "PRDC balls":
            fake = rng.standard_normal((nq, d)).astype(np.float32)

            def run():
                radii = kth_distances(ref, k)
                within_balls(fake, ref, radii)
        else:

            def run():
                knn(q, ref, k, exclude_self=nq == nr, backend=backend)

        t = time.perf_counter()
        run()
        first = time.perf_counter() - t
        t = time.perf_counter()
        run()
        secs = time.perf_counter() - t
        return Row("k-NN", setting, nq / secs, secs, first, "queries/s")

    # ------------------------------------------------------------ plan

    def all(self) -> None:
        self.ceilings()
        cuda = self.device.type == "cuda"
        batches = (8, 16) if self.dry else (128, 512)
        precisions = ["fp32", "bf16"]
        for graphs in ("off", "on"):
            for precision in precisions:
                for batch in batches:
                    setting = self.train_setting(batch, precision, "off", graphs)
                    if graphs == "on" and not cuda:
                        self.add(Row("train", setting, note="skipped: needs CUDA"))
                        continue
                    self.row(
                        "train", setting, 10 if cuda else 5,
                        lambda b=batch, p=precision, g=graphs: self.train(b, p, "off", g),
                    )  # fmt: skip
        self.row("encode", "170k", 5 if self.dry else 25, self.encode)
        sizes = (500, 100, 200) if self.dry else (20_000, 1000, 1000)
        ref, queries, prdc = sizes
        for backend in ("torch", "faiss"):
            self.row("k-NN", "rate", 10, lambda b=backend: self.knn("rate reference", ref, ref,
                                                                     256, 1, b))  # fmt: skip
            self.row("k-NN", "rate q", 5, lambda b=backend: self.knn("rate queries", queries,
                                                                      ref, 256, 1, b))  # fmt: skip
            self.row("k-NN", "prdc", 5, lambda b=backend: self.knn("PRDC balls", prdc, prdc,
                                                                    64, 5, b))  # fmt: skip
        for precision, batch in [("bf16", 512), ("fp32", 512), ("bf16", 128), ("fp32", 128)]:
            if self.dry:
                batch = 16 if batch == 512 else 8
                setting = self.train_setting(batch, precision, "on", "off")
                self.add(Row("train", setting, note="skipped: dry (compiling takes ~30 s)"))
                continue
            self.row(
                "train", self.train_setting(batch, precision, "on", "off"), 75,
                lambda b=batch, p=precision: self.train(b, p, "on", "off"),
            )  # fmt: skip

    def table(self) -> str:
        m = self.machine()
        where = m.get("gpu") or f"CPU {m['cpu']}"
        lines = [
            f"zspace GPU check ({'DRY: tiny sizes on the CPU' if self.dry else 'full'}): "
            f"{where}, {m['cores']} cores, torch {m['torch']}, {time.strftime('%Y-%m-%d')}",
            f"{'what':8s}{'setting':44s}{'rate':>14s}{'x ref 1,400':>12s}{'170k/search':>12s}"
            f"{'first pass':>11s}  note",
        ]
        for r in self.rows:
            images = r.group in ("train", "encode")
            rate = _rate(r)
            ratio = f"{r.rate / REFERENCE_IMG_S:.1f}x" if images and r.rate else ""
            epoch = f"{EPOCH / r.rate:.1f} s" if images and r.rate else ""
            if r.group == "k-NN" and r.seconds is not None:
                epoch = f"{r.seconds:.3f} s"
            first = "" if r.first is None else f"{r.first:.1f} s"
            lines.append(
                f"{r.group:8s}{r.setting:44s}{rate:>14s}{ratio:>12s}{epoch:>12s}{first:>11s}"
                f"  {r.note}"
            )
        best = max((r.rate for r in self.rows if r.group == "train" and r.rate), default=None)
        if best:
            lines.append(
                f"best training rate {best:,.0f} img/s: {best / REFERENCE_IMG_S:.1f}x the "
                f"reference, {100 * best / GOAL_IMG_S:.1f} % of the 85,000 img/s goal"
            )
        return "\n".join(lines)


def _rate(r: Row) -> str:
    if r.rate is None:
        return ""
    if r.group in ("train", "encode"):
        return f"{r.rate:,.0f} img/s"
    if r.note == "FLOP/s":
        return f"{r.rate / 1e12:.2f} TFLOP/s"
    if r.note == "B/s":
        return f"{r.rate / 1e9:.0f} GB/s"
    return f"{r.rate:,.0f} q/s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="tiny sizes on the CPU")
    p.add_argument("--budget", type=float, help="seconds (default 170; dry 120)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/zspace-gpu")))
    args = p.parse_args()
    if args.dry:
        torch.set_num_threads(1)
    bench = Bench(args.dry, args.budget or (120.0 if args.dry else 170.0), args.out)
    print(f"machine: {json.dumps(bench.machine())}")
    try:
        bench.all()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)  # its runs and latents, not $OUT
    table = bench.table()
    (args.out / "gpu_table.txt").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
