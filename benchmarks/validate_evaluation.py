"""The validation of docs/evaluation.md: do the evaluator's metrics agree with the grids?

    python benchmarks/validate_evaluation.py [--epochs 20] [--out /tmp/zspace-eval]
                                             [--only letters,mnist,celeba,cifar] [--n 1000]

MNIST t10k (../shared/data/mnist): an AE and VAEs with fact 1e-5, 0.05 and 1 (KL
share ~0 %, ~4 %, ~20 %), z_dim 16, encoder [32, 64] strides 2; per run: grids of
normal, uniform(1), gauss and gmm (64 images each), the latent meaningful-point rate
and ``zspace.evaluate`` with n images per sampler. Also the issue's failure setting:
an AE after 5 epochs (``ae5``).

CelebA sample (../shared/data/celeba-558, 64x64): the face rate of all real crops,
of blurred crops, noise and grey; an AE (z_dim 64) whose N(0, I) and fitted
Gaussian are evaluated with the face oracle in the rotation-feature space.

Letters (issue 23's failure case, made here by tests/letters.py: A-J in Pillow's
bundled font, 3 % textured or grey-gradient glyphs, 10,000 images in MNIST format):
an AE with the issue's settings (z_dim 16, 5 epochs, defaults otherwise), normal,
uniform(1, 5), gauss and gmm. CIFAR-10 test (../shared/data/cifar10-jpg): an AE and
a VAE (fact 1), z_dim 64, normal, gauss and gmm.

``--only spreads``: vouched precision's bootstrap spread against its true variation.

Prints one JSON line per measurement; the grids stay under --out to be looked at.
Runs already finished in --out are reused. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

from zspace.config import load_config
from zspace.data import load_data
from zspace.evaluation import evaluate, metrics
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
CIFAR = [
    "model.z_dim=64",
    "model.encoder_filters=[32, 64, 128]",
    "train.batch_size=128",
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


def judged(run, samplers: str, n: int, limits, oracle="auto", components=COMPONENTS) -> dict:
    encode(run, "train")
    api.generate(run, samplers, n=64, limits=limits, components=components)
    rates = api.meaningful_rates(run, samplers, n=n, limits=limits, components=components)
    t0 = time.perf_counter()
    ev = evaluate(run, samplers, n=n, limits=limits, components=components, oracle=oracle,
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
            "capture": r["capture"], "flags": r["flags"],
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


def letters(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from letters import letters as make
    from letters import write_idx

    folder = args.out / "letters-data"
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        write_idx(folder, *make(10_000))
    overrides = [f'data.source="mnist:{folder}"', f'data.cache_dir="{args.out / "cache"}"',
                 "train.epochs=5", "model.z_dim=16", "model.variational=false"]  # fmt: skip
    run, train_s = trained(args.out / "letters-ae", overrides)
    res = judged(run, "normal,uniform,gauss,gmm", args.n, [1.0, 5.0], components=None)
    emit({"set": "letters", "run": "ae", "epochs": len(run.history), "train_s": round(train_s),
          **res})  # fmt: skip


def cifar(args) -> None:
    source = f"folder:{SHARED / 'cifar10-jpg' / 'test'}"
    for name, model in (("ae", "model.variational=false"), ("vae", "model.variational=true")):
        cache = f'data.cache_dir="{args.out / "cache"}"'
        overrides = [*CIFAR, model, f'data.source="{source}"', cache,
                     f"train.epochs={args.cifar_epochs}"]  # fmt: skip
        run, train_s = trained(args.out / f"cifar-{name}", overrides)
        res = judged(run, "normal,gauss,gmm", args.n, None)
        emit({"set": "cifar", "run": name, "epochs": len(run.history), "train_s": round(train_s),
              **res})  # fmt: skip


def spreads(args) -> None:
    """Vouched precision's bootstrap spread against its true variation: 40 fresh sets
    of 1,000 16-d Gaussian points (scaled by 1 and 1.4) against one reference."""
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((1000, 16))
    for scale in (1.0, 1.4):
        runs = [metrics.prdc(reference, scale * rng.standard_normal((1000, 16)), seed=i)
                for i in range(40)]  # fmt: skip
        values = [s.metrics["vouched_precision"] for s in runs]
        boot = [s.spread["vouched_precision"] for s in runs]
        sd = float(np.std(values, ddof=1))
        emit({"set": "spreads", "scale": scale, "mean": float(np.mean(values)), "true_sd": sd,
              "bootstrap_sd": float(np.mean(boot))})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--celeba-epochs", type=int, default=60)
    ap.add_argument("--cifar-epochs", type=int, default=10)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/zspace-eval"))
    ap.add_argument("--only", default="letters,mnist,celeba,cifar")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    emit({"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__})
    for part in args.only.split(","):
        parts = {"letters": letters, "mnist": mnist, "celeba": celeba, "cifar": cifar}
        {**parts, "spreads": spreads}[part](args)


if __name__ == "__main__":
    main()
