"""Where random z-points come from: N(0, I), uniform boxes, and densities fitted to the data.

An AE's encoded data do not fill N(0, I), so decoding standard-normal points shows
little; a Gaussian (full covariance) or a Gaussian mixture fitted to the encoded
training latents puts the random points where the data are, which lets an AE
generate at all. Fits are saved in the run as arrays (``RUN/samplers/<name>.npz``
with a ``.json`` beside it), never as pickles, and reused while the latents are
unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analysis.common import subsample
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, atomic_write_json, read_npz

SAMPLERS = ("normal", "uniform", "gauss", "gmm")
REFERENCE_LIMITS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0, 8.0)
DEFAULT_SUBSAMPLE = 20_000
DEFAULT_COMPONENTS = (1, 2, 4, 8, 16)
REG_COVAR = 1e-5


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ZspaceError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return name


def check_limit(limit: float) -> float:
    limit = float(limit)
    if not np.isfinite(limit) or limit <= 0:
        raise ZspaceError(f"uniform limit {limit:g}: must be a finite number > 0")
    return limit


def sample_normal(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) float32 points from N(0, I)."""
    return rng.standard_normal((n, d)).astype(np.float32)


def sample_uniform(n: int, d: int, limit: float, rng: np.random.Generator) -> np.ndarray:
    """(n, d) float32 points, every component uniform in [-limit, limit]."""
    limit = check_limit(limit)
    return rng.uniform(-limit, limit, (n, d)).astype(np.float32)


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Cholesky factor; a tiny ridge keeps rank-deficient latents (dead axes) usable."""
    eye = np.eye(cov.shape[-1])
    ridge = 0.0
    for _ in range(8):
        try:
            return np.linalg.cholesky(cov + ridge * eye)
        except np.linalg.LinAlgError:
            ridge = max(ridge * 10, 1e-8 * max(float(np.trace(cov)) / len(cov), 1e-12))
    raise ZspaceError("the latents' covariance is not positive definite even with a ridge")


@dataclass
class GaussFit:
    """N(mean, cov) fitted to encoded latents (maximum likelihood, full covariance)."""

    mean: np.ndarray
    cov: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        eps = rng.standard_normal((n, len(self.mean)))
        return (self.mean + eps @ _cholesky(self.cov).T).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "cov": self.cov}


@dataclass
class GmmFit:
    """A Gaussian mixture (full covariances) with its BIC table."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Seeded sampling done here (not sklearn's), so a numpy Generator drives it."""
        k, d = self.means.shape
        comp = rng.choice(k, size=n, p=self.weights / self.weights.sum())
        eps = rng.standard_normal((n, d))
        out = np.empty((n, d), np.float64)
        for j in range(k):
            rows = comp == j
            if rows.any():
                out[rows] = self.means[j] + eps[rows] @ _cholesky(self.covariances[j]).T
        return out.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances}


def fit_gauss(z: np.ndarray) -> GaussFit:
    """Mean and full (maximum-likelihood) covariance of ``z`` (N, d)."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ZspaceError(f"need at least 2 latent points of shape (N, d) to fit; got {z.shape}")
    mean = z.mean(axis=0)
    cov = np.cov(z, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
    return GaussFit(mean, cov, {"n": len(z), "d": z.shape[1]})


def _fit_one(x: np.ndarray, k: int, max_iter: int, seed: int) -> Any:
    """One scikit-learn fit; float32 first, float64 when float32 cannot factor a
    near-singular covariance (dead axes), and a one-line error when neither can."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    for dtype in (np.float32, np.float64):
        gm = GaussianMixture(
            k,
            covariance_type="full",
            reg_covar=REG_COVAR,
            max_iter=max_iter,
            tol=1e-3,
            init_params="k-means++",
            random_state=seed,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return gm.fit(x.astype(dtype, copy=False))
        except ValueError as err:
            last = err
    raise ZspaceError(f"GMM with {k} components could not be fitted: {str(last).splitlines()[0]}")


def fit_gmm(
    z: np.ndarray,
    components: int | Sequence[int] = DEFAULT_COMPONENTS,
    *,
    sample_size: int = DEFAULT_SUBSAMPLE,
    seed: int = 0,
    max_iter: int = 50,
) -> GmmFit:
    """Fit a full-covariance mixture on a seeded subsample; with several counts, keep
    the one with the lowest BIC (on the same subsample).

    The EM runs in float32: scikit-learn keeps the input's dtype, and its cost is
    d x d matmuls and Cholesky factors per component and iteration, which float32
    does 1.4-1.7x faster (measured on 20,000 x 256) at no visible cost in the fit; the
    saved parameters are float64.
    """
    counts = [components] if isinstance(components, int) else list(components)
    if not counts or min(counts) < 1:
        raise ZspaceError(f"GMM components {counts}: need counts >= 1")
    x = np.asarray(np.asarray(z)[subsample(len(z), sample_size, seed)], np.float32)
    if len(x) < 2 * max(counts):
        raise ZspaceError(f"{len(x)} latent points are too few for {max(counts)} components")
    t0 = time.perf_counter()
    bic: dict[int, float] = {}
    best: tuple[int, Any] | None = None  # (count, its fitted mixture)
    from zspace.core.progress import bar

    for k in bar(counts, desc=f"GMM fits on {len(x):,} points", unit="fit"):
        gm = _fit_one(x, k, max_iter, seed)
        bic[k] = float(gm.bic(x.astype(gm.means_.dtype)))
        if best is None or bic[k] < bic[best[0]]:
            best = (k, gm)
    assert best is not None  # counts is not empty
    k, gm = best
    info = {
        "n_components": k,
        "bic": {str(c): v for c, v in bic.items()},
        "subsample": len(x),
        "seed": seed,
        "converged": bool(gm.converged_),
        "dtype": str(gm.means_.dtype),
        "warning": (
            f"BIC chose {k} components, the largest count tried; try more "
            f"(e.g. --components {k}-{2 * k})"
        )
        if len(counts) > 1 and k == max(counts)
        else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return GmmFit(
        gm.weights_.astype(np.float64),
        gm.means_.astype(np.float64),
        gm.covariances_.astype(np.float64),
        info,
    )


# ---------------------------------------------------------------- saving fits


def fingerprint(z: np.ndarray) -> dict[str, Any]:
    """Cheap identity of a latents array, to tell when a saved fit is stale."""
    z64 = np.asarray(z, np.float64)
    return {
        "n": int(z.shape[0]),
        "d": int(z.shape[1]),
        "sum": float(z64.sum()),
        "sumsq": float(np.square(z64).sum()),
    }


def fit_path(run_dir: str | Path, name: str) -> Path:
    return Path(run_dir) / "samplers" / f"{name}.npz"


def save_fit(run_dir: str | Path, name: str, fit: GaussFit | GmmFit) -> Path:
    """Arrays to ``samplers/<name>.npz`` and the fit's facts to ``<name>.json``; the
    json, written last, carries the npz's sha256, so a crash between the two writes
    leaves a pair that ``load_fit`` rejects rather than new arrays with old facts."""
    path = fit_path(run_dir, name)
    buf = io.BytesIO()
    arrays: dict[str, Any] = fit.arrays()  # (names that are no savez keyword)
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_json(
        path.with_suffix(".json"),
        {"kind": name, **fit.info, "npz_sha256": hashlib.sha256(data).hexdigest()},
    )
    return path


def load_fit(run_dir: str | Path, name: str) -> GaussFit | GmmFit | None:
    path = fit_path(run_dir, name)
    meta = path.with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
        data = path.read_bytes()
    except (OSError, ValueError):  # unreadable, truncated or not UTF-8: fit again
        return None
    if not isinstance(info, dict) or info.get("npz_sha256") != hashlib.sha256(data).hexdigest():
        return None  # a stale or mismatched pair: fit again
    try:
        f = read_npz(path, data=data)
        if name == "gauss":
            fit: GaussFit | GmmFit = GaussFit(f["mean"], f["cov"], info)
        else:
            fit = GmmFit(f["weights"], f["means"], f["covariances"], info)
    except (ZspaceError, KeyError):
        return None  # a foreign pair that happens to match its own hash: fit again
    return fit


def fitted(
    run_dir: str | Path,
    name: str,
    z: np.ndarray,
    *,
    components: int | Sequence[int] | None = None,
    sample_size: int = DEFAULT_SUBSAMPLE,
    seed: int = 0,
    refit: bool = False,
    log: Callable[[str], None] | None = None,
) -> GaussFit | GmmFit:
    """The saved fit when it matches these latents and settings, else a new one (saved;
    its warning, if any, goes to ``log``: once, when it is fitted)."""
    key: dict[str, Any] = {"latents": fingerprint(z)}
    if name == "gmm":
        comps = DEFAULT_COMPONENTS if components is None else components
        comps = [comps] if isinstance(comps, int) else [int(c) for c in comps]
        key.update({"components": comps, "subsample_size": sample_size, "seed": seed})
    old = None if refit else load_fit(run_dir, name)
    if old is not None and all(old.info.get(k) == v for k, v in key.items()):
        return old
    if name == "gauss":
        fit: GaussFit | GmmFit = fit_gauss(z)
    elif name == "gmm":
        fit = fit_gmm(z, comps, sample_size=sample_size, seed=seed)
    else:
        raise ZspaceError(f"sampler {name!r} is not fitted")
    fit.info.update(key)
    save_fit(run_dir, name, fit)
    if fit.info.get("warning") and log:
        log(f"warning: {name}: {fit.info['warning']}")
    return fit
