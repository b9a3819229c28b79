"""Generation costs on this machine: decoding throughput of the reference CelebA
decoder, the GMM fit (BIC over the default counts) and the rate's nearest-neighbour
search on 20,000 x 256 latents.

    python benchmarks/bench_generation.py [--batches 4] [--skip-gmm]

Not part of the test suite; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from machine import cpu_name

from zspace.config import load_config
from zspace.generation import samplers
from zspace.generation.rate import build_reference
from zspace.models import AutoEncoder

CELEBA = ["model.encoder_filters=[32, 64, 128, 256]", "model.encoder_strides=2",
          "model.z_dim=256", "data.image_size=96", "data.channels=3"]


def decode_throughput(batches: int, batch: int = 512) -> float:
    """Images/s of the reference CelebA decoder (96x96x3, z_dim 256), no grad."""
    cfg = load_config(None, CELEBA)
    model = AutoEncoder(cfg.model, (3, 96, 96)).eval()
    z = torch.randn(batch, 256)
    with torch.no_grad():
        torch.sigmoid(model.decoder(z))  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            torch.sigmoid(model.decoder(z))
        dt = time.perf_counter() - t0
    return batches * batch / dt


def latents(n: int = 170_000, d: int = 256) -> np.ndarray:
    """AE-like synthetic latents: a few anisotropic blobs on a shell near radius 16."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, d)) * 0.6
    scales = rng.uniform(0.3, 1.5, (5, d))
    which = rng.integers(0, 5, n)
    return (centres[which] + rng.standard_normal((n, d)) * scales[which]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--skip-gmm", action="store_true")
    args = ap.parse_args()
    out = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    out["decode_images_per_s"] = round(decode_throughput(args.batches), 1)
    z = latents()
    t0 = time.perf_counter()
    ref = build_reference(z, 20_000, seed=0)
    out["reference_20k_build_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    ref.rate(z[:1000])
    out["rate_1000_queries_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    samplers.fit_gauss(z)
    out["gauss_fit_170k_s"] = round(time.perf_counter() - t0, 2)
    if not args.skip_gmm:
        fit = samplers.fit_gmm(z, samplers.DEFAULT_COMPONENTS, seed=0)
        out["gmm_fit"] = fit.info
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
