"""Generation costs on this machine, each beside a baseline run in the same process:

- decoding throughput of the reference CelebA decoder (96x96x3, z_dim 256) against
  the same decoder in NCHW (zspace before its channels_last change) and, with
  ``--keras-python``, against the Keras reference decoder (tf.function) in that
  interpreter;
- building the rate's reference (20,000 x 256 self nearest neighbours) against an
  all-float64 chunked matmul;
- the GMM fit (BIC over the default counts, 20,000 x 256) against scikit-learn on
  float64 input, the dtype a user's code would pass.

    python benchmarks/bench_generation.py [--batches 4] [--skip-gmm]
        [--keras-python /tmp/tfref/bin/python]

Not part of the test suite; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

from zspace.config import load_config
from zspace.generation import samplers
from zspace.generation.rate import build_reference
from zspace.models.autoencoder import AutoEncoder

CELEBA = [
    "model.encoder_filters=[32, 64, 128, 256]",
    "model.encoder_strides=2",
    "model.z_dim=256",
    "data.image_size=96",
    "data.channels=3",
]


def decode_throughput(batches: int, batch: int = 512, nchw: bool = False) -> float:
    """Images/s of the reference CelebA decoder, no grad (``nchw``: the baseline
    layout, feature maps left NCHW after the dense layer)."""
    cfg = load_config(None, CELEBA)
    dec = AutoEncoder(cfg.model, (3, 96, 96)).eval().decoder
    z = torch.randn(batch, 256)

    def nchw_forward(z: torch.Tensor) -> torch.Tensor:
        return dec.deconvs(dec.dense(z).view(len(z), *dec.feature_shape))

    forward = nchw_forward if nchw else dec
    with torch.no_grad():
        torch.sigmoid(forward(z))  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            torch.sigmoid(forward(z))
        dt = time.perf_counter() - t0
    return batches * batch / dt


KERAS_DECODE = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
import keras, tensorflow as tf
from keras import layers
from netspec import KSIZE, NETS
S = NETS["celeba96"]
inp = keras.Input(shape=(S["z_dim"],))
x = layers.Reshape((S["start_hw"], S["start_hw"], S["start_ch"]))(
    layers.Dense(S["start_hw"] ** 2 * S["start_ch"])(inp))
for i, (f, st) in enumerate(zip(S["dec_filters"], S["dec_strides"])):
    x = layers.Conv2DTranspose(f, KSIZE, strides=st, padding="same")(x)
    if i < len(S["dec_filters"]) - 1:
        x = layers.LeakyReLU()(x)
dec = keras.Model(inp, layers.Activation("sigmoid")(x))
run = tf.function(lambda z: dec(z, training=False))
z = tf.random.normal((512, S["z_dim"]))
run(z)
batches = int(sys.argv[2])
t0 = time.perf_counter()
for _ in range(batches):
    run(z).numpy()
print(json.dumps(batches * 512 / (time.perf_counter() - t0)))
"""


def keras_decode_throughput(python: str, batches: int) -> float:
    """The Keras reference decoder (built from netspec.py) in another interpreter."""
    spec = Path(__file__).resolve().parents[2] / "shared" / "bench" / "keras_reference"
    out = subprocess.run(
        [python, "-c", KERAS_DECODE, str(spec), str(batches)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def float64_self_distances(z: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Baseline: nearest other point by an all-float64 chunked matmul."""
    ref = torch.from_numpy(np.asarray(z, np.float64))
    sq = (ref * ref).sum(1)
    out = torch.empty(len(ref), dtype=torch.float64)
    for s in range(0, len(ref), chunk):
        b = ref[s : s + chunk]
        d2 = (b * b).sum(1)[:, None] + sq[None, :] - 2.0 * b @ ref.T
        d2[torch.arange(len(b)), torch.arange(s, s + len(b))] = float("inf")
        out[s : s + chunk] = d2.min(1).values.clamp_min_(0)
    return out.sqrt().numpy()


def sklearn_float64_gmm_seconds(x: np.ndarray) -> float:
    """Baseline: the same BIC sweep on float64 input."""
    import warnings

    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in samplers.DEFAULT_COMPONENTS:
            GaussianMixture(
                k,
                covariance_type="full",
                reg_covar=samplers.REG_COVAR,
                max_iter=50,
                tol=1e-3,
                init_params="k-means++",
                random_state=0,
            ).fit(np.asarray(x, np.float64))
    return time.perf_counter() - t0


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
    ap.add_argument("--keras-python", default="", help="a Python with tensorflow/keras")
    args = ap.parse_args()
    out: dict = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    fast = decode_throughput(args.batches)
    base = decode_throughput(args.batches, nchw=True)
    out["decode_images_per_s"] = round(fast, 1)
    out["decode_nchw_baseline_images_per_s"] = round(base, 1)
    out["decode_ratio_vs_nchw"] = round(fast / base, 2)
    if args.keras_python:
        keras = keras_decode_throughput(args.keras_python, args.batches)
        out["decode_keras_images_per_s"] = round(keras, 1)
        out["decode_ratio_vs_keras"] = round(fast / keras, 2)

    z = latents()
    t0 = time.perf_counter()
    ref = build_reference(z, 20_000, seed=0)
    new_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = float64_self_distances(ref.points)
    base_s = time.perf_counter() - t0
    out["reference_20k_build_s"] = round(new_s, 2)
    out["reference_float64_baseline_s"] = round(base_s, 2)
    out["reference_ratio"] = round(base_s / new_s, 2)
    out["reference_max_abs_diff"] = float(np.abs(exact - ref.self_distances).max())
    t0 = time.perf_counter()
    ref.rate(z[:1000])
    out["nn_lookup_1000_points_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    samplers.Fitted("gauss").fit(z)
    out["gauss_fit_170k_s"] = round(time.perf_counter() - t0, 2)
    if not args.skip_gmm:
        t0 = time.perf_counter()
        fit = samplers.Fitted("gmm", samplers.DEFAULT_COMPONENTS, seed=0).fit(z)
        gmm_s = time.perf_counter() - t0
        base_s = sklearn_float64_gmm_seconds(
            z[samplers.subsample(len(z), samplers.DEFAULT_SUBSAMPLE, 0)]
        )
        out["gmm_fit_s"] = round(gmm_s, 1)
        out["gmm_sklearn_float64_baseline_s"] = round(base_s, 1)
        out["gmm_ratio"] = round(base_s / gmm_s, 2)
        out["gmm_fit"] = {k: v for k, v in fit.info.items() if k != "seconds"}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
