"""Data-layer benchmark: cache build, training-time batch throughput, model throughput.

    python benchmarks/bench_data.py [--data ../shared/data] [--repeats 3] [--json out.json]

1. Cache build for the CelebA 558-image zip (178x218 JPEG -> centre crop -> 96x96):
   zspace's parallel build (fresh cache each time, pool start-up included) against a
   plain single-process Pillow loop doing the same decode, crop and resize; also at
   64x64 (where the JPEG draft applies) and for the 10,000 CIFAR-10 JPEGs.
2. Batches from the cache as the training loop gets them (128 x 3 x 96 x 96 float32,
   channels_last), for each task, with 1 and 2 torch threads, epochs of 20,000 images.
3. The reference CelebA AE's own training throughput (forward, backward, Adam step on
   batches of 128), to show the data side is not the limit.
Best of ``--repeats`` runs (the machine is shared; best-of is the least noisy).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name
from PIL import Image

from zspace.config import DataConfig, ModelConfig
from zspace.data import BatchLoader, load_data
from zspace.data.readers.geometry import DOWN, crop_box

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeats: int, fn) -> float:
    """The shortest of ``repeats`` timed calls, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def plain_pillow_celeba(zip_path: Path, size: int) -> np.ndarray:
    """The baseline: one process, read each member, decode, crop, resize."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))
        out = np.empty((len(names), size, size, 3), np.uint8)
        for i, name in enumerate(names):
            img = Image.open(io.BytesIO(zf.read(name))).convert("RGB")
            img = img.crop(crop_box(img.width, img.height, "center"))
            out[i] = np.asarray(img.resize((size, size), DOWN))
    return out


def zspace_build(source: str, size: int) -> int:
    with tempfile.TemporaryDirectory() as cache:
        cfg = DataConfig(source=source, image_size=size, cache_dir=cache)
        return load_data(cfg).count


def bench_build(data_dir: Path, repeats: int) -> dict:
    zip_path = data_dir / "celeba-558" / "img_align_celeba.zip"
    out = {}
    for size in (96, 64):
        n = 558
        base = best_of(repeats, lambda s=size: plain_pillow_celeba(zip_path, s))
        ours = best_of(repeats, lambda s=size: zspace_build(f"celeba:{zip_path}", s))
        out[f"celeba_{size}"] = {
            "images": n,
            "baseline_img_s": n / base,
            "zspace_img_s": n / ours,
            "ratio": base / ours,
        }
    cifar = data_dir / "cifar10-jpg"
    if cifar.is_dir():
        ours = best_of(max(1, repeats - 1), lambda: zspace_build(f"folder:{cifar}", 0))
        out["cifar10_jpg_32"] = {"images": 10_000, "zspace_img_s": 10_000 / ours}
    return out


def bench_loader(data_dir: Path, repeats: int, threads: list[int]) -> dict:
    zip_path = data_dir / "celeba-558" / "img_align_celeba.zip"
    with tempfile.TemporaryDirectory() as cache:
        base = DataConfig(source=f"celeba:{zip_path}", cache_dir=cache)
        data = load_data(base)
        index = np.resize(np.arange(data.count), 20_000)
        tasks = {
            "reconstruct": base,
            "denoise sigma=0.1": replace(base, task="denoise", noise_sigma=0.1),
            "denoise sigma=0.1 drop=0.1": replace(
                base, task="denoise", noise_sigma=0.1, drop_fraction=0.1
            ),
            "recolor": replace(base, task="recolor"),
        }
        out = {}
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            for name, cfg in tasks.items():
                loader = BatchLoader(data.images, index, 128, cfg, seed=0)

                def epoch(loader=loader):
                    for x, y in loader.epoch(0):
                        assert x.shape == (len(y), 3, 96, 96)

                out[f"{name} threads={n_threads}"] = len(index) / best_of(repeats, epoch)
    return out


def bench_model(threads: int, steps: int = 4) -> float:
    """Training images/s of the reference CelebA AE (z 256, filters 32..256, strides 2)."""
    from zspace.models.autoencoder import AutoEncoder

    torch.set_num_threads(threads)
    cfg = ModelConfig(
        z_dim=256,
        variational=False,
        encoder_filters=(32, 64, 128, 256),
        encoder_kernels=(3,) * 4,
        encoder_strides=(2,) * 4,
        decoder_kernels=(3,) * 4,
        decoder_strides=(2,) * 4,
    )
    model = AutoEncoder(cfg, (3, 96, 96)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.rand(128, 3, 96, 96).contiguous(memory_format=torch.channels_last)

    def step():
        logits, _ = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return 128 * steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("ZSPACE_TEST_DATA", ROOT / ".." / "shared" / "data")).resolve(),
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "torch": torch.__version__,
    }
    load = results["load_average_at_start"]
    print(f"{results['cpu']}, {results['cores']} cores, load average {load:.1f}")
    results["build"] = bench_build(args.data, args.repeats)
    for name, r in results["build"].items():
        line = f"build {name}: zspace {r['zspace_img_s']:.0f} img/s"
        if "baseline_img_s" in r:
            line += f", plain Pillow loop {r['baseline_img_s']:.0f} img/s, ratio {r['ratio']:.2f}x"
        print(line)
    results["loader"] = bench_loader(args.data, args.repeats, args.threads)
    for name, v in results["loader"].items():
        print(f"loader {name}: {v:.0f} img/s")
    results["model_img_s"] = {t: bench_model(t) for t in args.threads}
    for t, v in results["model_img_s"].items():
        print(f"model training (reference CelebA AE) threads={t}: {v:.1f} img/s")
    results["load_average_at_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
