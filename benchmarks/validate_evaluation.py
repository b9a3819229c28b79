"""The validation of docs/evaluation.md: do the evaluator's metrics agree with the grids?

    python benchmarks/validate_evaluation.py [--epochs 20] [--out /tmp/zspace-eval]
                                             [--only mnist,celeba] [--n 1000]

MNIST t10k (../shared/data/mnist): an AE and VAEs with fact 1e-5, 0.05 and 1 (KL
share ~0 %, ~4 %, ~20 %), z_dim 16, encoder [32, 64] strides 2; per run: grids of
normal, uniform(1), gauss and gmm (64 images each), the latent meaningful-point rate
and ``zspace.evaluate`` with n images per sampler. Also the issue's failure setting:
an AE after 5 epochs (``ae5``).

CelebA sample (../shared/data/celeba-558, 64x64): the face rate of all real crops,
of blurred crops, noise and grey; an AE (z_dim 64) whose N(0, I) and fitted
Gaussian are evaluated with the face oracle in the rotation-feature space.

Prints one JSON line per measurement; the grids stay under --out to be looked at.
Runs already finished in --out are reused. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

from zspace.config import load_config
from zspace.data import load_data
from zspace.evaluation import evaluate
from zspace.evaluation.faces import detect_faces
from zspace.flow.training import train
from zspace.generation import api
from zspace.latents.encode import encode
from zspace.runs.run import load_run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST = [
    "model.z_dim=16",
    "model.encoder_filters=[32, 64]",
    "model.encoder_strides=[2, 2]",
    "train.batch_size=128",
    "seed=0",
]
MODELS = {
    "ae": ["model.variational=false"],
    "vae1": ["model.variational=true", "model.fact=1"],
    "vae0.05": ["model.variational=true", "model.fact=0.05"],
    "vae1e-5": ["model.variational=true", "model.fact=1e-5"],
    "ae5": ["model.variational=false", "train.epochs=5"],
}
CELEBA = [
    "data.image_size=64",
    "model.z_dim=64",
    "model.variational=false",
    "model.encoder_filters=[32, 64, 128]",
    "train.batch_size=32",
    "data.valid_fraction=0.1",
    "seed=0",
]
COMPONENTS = [4, 8, 16, 32]


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def trained(run_dir: Path, overrides: list[str]) -> tuple[object, float]:
    t0 = time.perf_counter()
    if (run_dir / "checkpoints" / "best.pt").is_file():  # finished before: reused
        return load_run(run_dir), 0.0
    run = train(None, run_dir=run_dir, overrides=overrides, progress=False, log=lambda s: None)
    return run, time.perf_counter() - t0


def judged(run, samplers: str, n: int, limits, oracle: str = "auto") -> dict:
    encode(run, "train")
    api.generate(run, samplers, n=64, limits=limits, components=COMPONENTS)
    rates = api.meaningful_rates(run, samplers, n=n, limits=limits, components=COMPONENTS)
    t0 = time.perf_counter()
    ev = evaluate(run, samplers, n=n, limits=limits, components=COMPONENTS, oracle=oracle,
                  log=lambda s: None, progress=False)  # fmt: skip
    rate = {(r["sampler"], r["params"].get("limit")): r["rate"] for r in rates["results"]}
    rows = []
    for r in ev["results"]:
        key = ("data" if r["sampler"] == "real" else r["sampler"], r["params"].get("limit"))
        rows.append({
            "sampler": r["sampler"], "limit": r["params"].get("limit"),
            **{k: round(v, 4) for k, v in r["metrics"].items()},
            "spread": {k: round(v, 4) for k, v in r["spread"].items()},
            "labels": r.get("labels"), "latent_rate": rate.get(key), "seconds": r["seconds"],
        })  # fmt: skip
    return {"evaluator": ev["evaluator"], "n": ev["n"], "evaluate_s": time.perf_counter() - t0,
            "rows": rows}  # fmt: skip


def mnist(args) -> None:
    data = f"mnist:{SHARED / 'mnist'}"
    for name in args.models.split(","):
        epochs = [] if name == "ae5" else [f"train.epochs={args.epochs}"]
        extra = [f'data.source="{data}"', f'data.cache_dir="{args.out / "cache"}"', *epochs]
        run, train_s = trained(args.out / name, MNIST + MODELS[name] + extra)
        last = run.history[-1]
        share = last["val_kl"] / last["val_total"] if last.get("val_total") else 0.0
        res = judged(run, "normal,uniform,gauss,gmm", args.n, [1.0])
        emit({"set": "mnist", "run": name, "epochs": len(run.history), "train_s": round(train_s),
              "val_reco": last["val_reco"], "kl_share": share, **res})  # fmt: skip


def celeba(args) -> None:
    source = f"celeba:{SHARED / 'celeba-558' / 'img_align_celeba.zip'}"
    cache = f'data.cache_dir="{args.out / "cache"}"'
    cfg = load_config(None, [f'data.source="{source}"', cache, "data.image_size=64"])
    images = np.asarray(load_data(cfg.data).images)
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    blur = np.stack([gaussian_filter(im.astype(float), (2, 2, 0)) for im in images])
    t0 = time.perf_counter()
    real = detect_faces(images)
    face_s = (time.perf_counter() - t0) / len(images)
    grey = np.stack([gaussian_filter(np.full(images.shape[1:], 128.0)
                                     + rng.normal(0, 40, (1, 1, 3)), (8, 8, 0))
                     for _ in range(200)])  # fmt: skip
    emit({"set": "celeba-faces", "size": 64, "real": real.mean(),
          "blur2": detect_faces(blur.clip(0, 255).astype(np.uint8)).mean(),
          "noise": detect_faces(rng.integers(0, 256, (200, 64, 64, 3), np.uint8)).mean(),
          "grey_blobs": detect_faces(grey.clip(0, 255).astype(np.uint8)).mean(),
          "ms_per_image": round(1000 * face_s, 1)})  # fmt: skip
    overrides = CELEBA + [f'data.source="{source}"', cache, f"train.epochs={args.celeba_epochs}"]
    run, train_s = trained(args.out / "celeba-ae", overrides)
    res = judged(run, "normal,gauss", args.n, None, oracle="faces")
    emit({"set": "celeba", "run": "ae", "epochs": len(run.history), "train_s": round(train_s),
          **res})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--celeba-epochs", type=int, default=60)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/zspace-eval"))
    ap.add_argument("--only", default="mnist,celeba")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    emit({"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__})
    for part in args.only.split(","):
        {"mnist": mnist, "celeba": celeba}[part](args)


if __name__ == "__main__":
    main()
