"""The meaningful-point rate experiment of docs/generation.md: an AE and VAEs with
several KL weights on MNIST t10k (28x28, z_dim 16), each scored per sampler.

    python benchmarks/mnist_rates.py [--data ../shared/data/mnist] [--epochs 8]
                                     [--out /tmp/zspace-mnist-rates] [--only ae,vae1]

Trains one run per model (skipped when the run folder already holds a finished
run), encodes the training split, writes sampler grids and reconstructions, and
prints one JSON line per run: final losses, the KL share of the loss, PSNR/SSIM,
the rate's threshold and the rate per sampler. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from machine import cpu_name

from zspace.generation import api
from zspace.latents.encode import encode
from zspace.runs.run import load_run
from zspace.training import train_run as train

BASE = [
    "model.z_dim=16",
    "model.encoder_filters=[32, 64]",
    "model.encoder_strides=[2, 2]",
    "train.batch_size=128",
    "seed=0",
]
MODELS = {
    "ae": ["model.variational=false"],
    "vae1": ["model.variational=true", "model.fact=1"],
    "vae0.3": ["model.variational=true", "model.fact=0.3"],
    "vae0.05": ["model.variational=true", "model.fact=0.05"],
    "vae1e-5": ["model.variational=true", "model.fact=1e-5"],
}
SAMPLERS = "normal,uniform,gauss,gmm"
LIMITS = [0.5, 1, 2, 3, 5, 8]
COMPONENTS = [4, 8, 16, 32, 64]


def trained(name: str, root: Path, data: str, epochs: int) -> tuple[object, float]:
    """The finished run at root/name, training it first when needed."""
    run_dir = root / name
    overrides = BASE + MODELS[name] + [f"data.source=mnist:{data}", f"train.epochs={epochs}"]
    t0 = time.perf_counter()
    if (run_dir / "history.jsonl").is_file():
        run = load_run(run_dir)
        if len(run.history) < epochs:
            raise SystemExit(f"{run_dir} holds an unfinished run; remove it or resume it")
    else:
        run = train(None, run_dir=run_dir, overrides=overrides, progress=False, log=lambda s: None)
    return run, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    shared = Path(__file__).resolve().parents[2] / "shared/data/mnist"
    ap.add_argument("--data", default=str(shared))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default="/tmp/zspace-mnist-rates")
    ap.add_argument("--only", default=",".join(MODELS))
    args = ap.parse_args()
    print(
        json.dumps(
            {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}
        ),
        flush=True,
    )
    for name in args.only.split(","):
        run, train_s = trained(name, Path(args.out), args.data, args.epochs)
        encode(run, "train")
        last = run.history[-1]
        api.generate(run, SAMPLERS, n=32, limits=[1, 3, 8], components=COMPONENTS)
        rec = api.reconstructions(run, n=16)["metrics"]
        t0 = time.perf_counter()
        res = api.meaningful_rates(run, SAMPLERS, n=1000, limits=LIMITS, components=COMPONENTS)
        rate_s = time.perf_counter() - t0
        rates = {
            r["sampler"] + (f" {r['params']['limit']:g}" if "limit" in r["params"] else ""): round(
                r["rate"], 3
            )
            for r in res["results"]
        }
        radii = {r["sampler"]: round(r["mean_radius"], 2) for r in res["results"]}
        print(
            json.dumps(
                {
                    "run": name,
                    "train_s": round(train_s),
                    "epochs": len(run.history),
                    "val_reco": round(last["val_reco"], 2),
                    "val_kl": round(last["val_kl"], 3),
                    "kl_share": round(last["val_kl"] / last["val_total"], 4),
                    "psnr": round(rec["psnr"], 2),
                    "ssim": round(rec["ssim"], 3),
                    "threshold": round(res["threshold"], 4),
                    "space": res["space"],
                    "gmm_components": next(
                        (
                            r["params"].get("n_components")
                            for r in res["results"]
                            if r["sampler"] == "gmm"
                        ),
                        None,
                    ),
                    "rate_s": round(rate_s, 1),
                    "rates": rates,
                    "mean_radius": radii,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
