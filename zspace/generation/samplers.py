"""Where random z-points come from: one interface for every sampler.

A sampler has ``fit(z)`` (learn from the encoded training latents; N(0, I) and the
uniform box learn nothing), ``sample(n, rng)`` ((n, d) float32 points from a seeded
NumPy Generator) and, when fitted, ``save(folder)`` and ``load(folder)``. ``zspace
generate``, the meaningful-point rate, ``zspace evaluate`` (``samplers_for``) and the
explorer all draw through it.

An AE's encoded data do not fill N(0, I), so decoding standard-normal points shows
little; a Gaussian (full covariance) or a Gaussian mixture fitted to the encoded
training latents puts the random points where the data are, which lets an AE
generate at all. Above ``HIGH_D`` dimensions (a spatial latent map: 2 x 16 x 16 is
512) a full covariance has more numbers than the points can pin down and costs d^3 per
EM step, so both fit in the leading ``PCA_DIMS`` principal components and add the rest
of the variance back as an independent Gaussian per axis (``info["space"]``). Fits are
saved in the run as arrays (``RUN/samplers/<name>.npz`` with a ``.json`` beside it,
tied by the npz's sha256: ``core.fileio.write_pair``), never as pickles, and reused
while the latents and settings are unchanged.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analysis.common import subsample
from zspace.analysis.pca import covariance, principal_axes
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import read_pair, write_pair
from zspace.latents.store import load_latents

SAMPLERS = ("normal", "uniform", "gauss", "gmm")
REFERENCE_LIMITS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0, 8.0)
DEFAULT_SUBSAMPLE = 20_000
DEFAULT_COMPONENTS = (1, 2, 4, 8, 16)
MAX_COMPONENTS = 64  # the default search doubles past 16 while BIC picks the largest, up to this
REG_COVAR = 1e-5
MAX_ITER = 50  # EM iterations per mixture fit
HIGH_D = 256  # above it, gauss and gmm are fitted in principal-component space
PCA_DIMS = 64  # that space's dimension (fewer when there are fewer points): the
# mixture's BIC still pays for a component there on a few thousand points
SPACE = ("center", "basis", "residual_std")  # the arrays of a fit in that space

Log = Callable[[str], None] | None


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ZspaceError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return name


def parse_samplers(sampler: str | Sequence[str]) -> list[str]:
    names = sampler.split(",") if isinstance(sampler, str) else list(sampler)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ZspaceError(f"no sampler given; choose from {', '.join(SAMPLERS)}")
    return [check_sampler(n) for n in names]


def check_limit(limit: float) -> float:
    limit = float(limit)
    if not np.isfinite(limit) or limit <= 0:
        raise ZspaceError(f"uniform limit {limit:g}: must be a finite number > 0")
    return limit


class Sampler:
    """N(0, I), or with ``limit`` every component uniform in [-limit, limit]; and the
    interface of every sampler: ``fit(z)`` returns it fitted to encoded latents,
    ``sample(n, rng)`` draws, ``params`` is what a grid's caption and a row of rates or
    metrics say about the draw."""

    def __init__(self, d: int, limit: float | None = None) -> None:
        self.d = int(d)
        self.name = "normal" if limit is None else "uniform"
        self.limit = None if limit is None else check_limit(limit)
        self.params: dict[str, Any] = {} if limit is None else {"limit": self.limit}
        self.info: dict[str, Any] = {}  # what a fit learnt and was fitted with (saved)

    def fit(self, z: np.ndarray) -> Sampler:
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.limit is None:
            return rng.standard_normal((n, self.d)).astype(np.float32)
        return rng.uniform(-self.limit, self.limit, (n, self.d)).astype(np.float32)


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


def fingerprint(z: np.ndarray) -> dict[str, Any]:
    """Cheap identity of a latents array, to tell when a saved fit is stale."""
    z64 = np.asarray(z, np.float64)
    return {
        "n": int(z.shape[0]),
        "d": int(z.shape[1]),
        "sum": float(z64.sum()),
        "sumsq": float(np.square(z64).sum()),
    }


class Fitted(Sampler):
    """Gaussians with full covariances fitted to encoded latents: ``gauss``, one by
    maximum likelihood (arrays mean, cov), or ``gmm``, a mixture fitted on a seeded
    subsample, of the component count with the lowest BIC on it (arrays weights,
    means, covariances); the default counts (``components=None``) double on while BIC
    picks the largest, up to ``MAX_COMPONENTS``. The Cholesky factors are taken once
    per fit, so a draw is a matmul per component (the explorer draws per click).

    The mixture's EM runs in float32: scikit-learn keeps the input's dtype, and its
    cost is d x d matmuls and Cholesky factors per component and iteration, which
    float32 does 1.4-1.7x faster (measured on 20,000 x 256) at no visible cost in the
    fit; the saved parameters are float64."""

    def __init__(
        self,
        name: str = "gauss",
        components: int | Sequence[int] | None = None,
        *,
        sample_size: int = DEFAULT_SUBSAMPLE,
        seed: int = 0,
    ) -> None:
        super().__init__(0)
        self.name = name
        self.arrays: dict[str, np.ndarray] = {}
        comps = DEFAULT_COMPONENTS if components is None else components
        comps = [int(comps)] if isinstance(comps, int) else [int(c) for c in comps]
        if not comps or min(comps) < 1:
            raise ZspaceError(f"GMM components {comps}: need counts >= 1")
        gmm = {"components": comps, "subsample_size": sample_size, "seed": seed}
        gmm |= {"grow_to": MAX_COMPONENTS} if components is None else {}
        self.settings: dict[str, Any] = gmm if name == "gmm" else {}

    def key(self, z: np.ndarray) -> dict[str, Any]:
        """What a saved fit must match to be reused: the latents and the settings."""
        return {"latents": fingerprint(z), **self.settings}

    def fit(self, z: np.ndarray) -> Fitted:
        z = np.asarray(z)
        if z.ndim != 2 or len(z) < 2:
            raise ZspaceError(
                f"need at least 2 latent points of shape (N, d) to fit; got {z.shape}"
            )
        space, y, where = pca_space(z)
        if self.name == "gmm":
            arrays, info = self._mixture(y)
        else:
            mean, cov = covariance(y)  # the package's one covariance, chunked in float64
            n = len(y)  # maximum likelihood: / n
            arrays, info = {"mean": mean, "cov": cov * ((n - 1) / n)}, {"n": n, "d": z.shape[1]}
        return self._set({**space, **arrays}, info, where, self.key(z))

    def _mixture(self, z: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from zspace.core.progress import bar

        counts, seed = self.settings["components"], self.settings["seed"]
        x = np.asarray(z[subsample(len(z), self.settings["subsample_size"], seed)], np.float32)
        if len(x) < 2 * max(counts):
            raise ZspaceError(f"{len(x)} latent points are too few for {max(counts)} components")
        t0 = time.perf_counter()
        bic: dict[int, float] = {}
        best: tuple[int, Any] | None = None  # (count, its fitted mixture)
        while counts:
            for k in bar(counts, desc=f"GMM fits on {len(x):,} points", unit="fit"):
                gm = self._fit_one(x, k, seed)
                bic[k] = float(gm.bic(x.astype(gm.means_.dtype)))
                if best is None or bic[k] < bic[best[0]]:
                    best = (k, gm)
            nxt = 2 * max(bic)  # the default search goes on while the largest count wins
            grow = best is not None and best[0] == max(bic)
            grow &= nxt <= self.settings.get("grow_to", 0) and len(x) >= 2 * nxt
            counts = [nxt] if grow else []
        assert best is not None  # counts was not empty
        k, gm = best
        edge = len(bic) > 1 and k == max(bic)
        more = f"BIC chose {k} components, the largest count tried; try more "
        more += f"(e.g. --components {k},{2 * k},{4 * k})"
        info = {
            "n_components": k,
            "bic": {str(c): v for c, v in bic.items()},
            "subsample": len(x),
            "seed": seed,
            "converged": bool(gm.converged_),
            "dtype": str(gm.means_.dtype),
            "warning": more if edge else None,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        arrays = {"weights": gm.weights_, "means": gm.means_, "covariances": gm.covariances_}
        return {k: v.astype(np.float64) for k, v in arrays.items()}, info

    def _fit_one(self, x: np.ndarray, k: int, seed: int) -> Any:
        """One scikit-learn fit; float32 first, float64 when float32 cannot factor a
        near-singular covariance (dead axes), and a one-line error when neither can."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        for dtype in (np.float32, np.float64):
            gm = GaussianMixture(
                k,
                covariance_type="full",
                reg_covar=REG_COVAR,
                max_iter=MAX_ITER,
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
        raise ZspaceError(f"GMM with {k} components could not be fitted: {first_line(last)}")

    def _set(self, arrays: dict[str, np.ndarray], *infos: dict[str, Any]) -> Fitted:
        self.arrays, self.info = arrays, {k: v for info in infos for k, v in info.items()}
        weights = arrays.get("weights")
        self.means = np.asarray(arrays["means"] if weights is not None else arrays["mean"][None])
        covs = arrays["covariances"] if weights is not None else arrays["cov"][None]
        self.factors = [_cholesky(c).T for c in covs]
        self.d = len(arrays["center"]) if "center" in arrays else self.means.shape[1]
        # said in the grid's caption and the rate/evaluation rows
        said = ["pca_dims", "explained"] if "center" in arrays else []
        said += ["n_components", "subsample"] if weights is not None else []
        fitted_on = int(self.info.get("latents", {}).get("n", 0))
        self.params = {"fitted_on": fitted_on, **{k: self.info.get(k) for k in said}}
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Seeded sampling done here (not sklearn's), so a NumPy Generator drives it."""
        k, d = self.means.shape
        w = self.arrays.get("weights")
        comp = np.zeros(n, np.int64) if w is None else rng.choice(k, size=n, p=w / w.sum())
        eps = rng.standard_normal((n, d))
        out = np.empty((n, d), np.float64)
        for j in range(k):
            rows = comp == j
            if rows.any():
                out[rows] = self.means[j] + eps[rows] @ self.factors[j]
        if "center" in self.arrays:  # back from principal-component space, plus the rest
            a = self.arrays
            out = (
                a["center"]
                + out @ a["basis"]
                + rng.standard_normal((n, self.d)) * a["residual_std"]
            )
        return out.astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        record = {"kind": self.name, **self.info}
        return write_pair(Path(folder) / f"{self.name}.json", record, self.arrays, compress=False)

    def load(self, folder: str | Path, log: Log = None) -> Fitted | None:
        """The fit saved in ``folder``; None when it is missing, stale (its json does
        not name its npz), damaged or foreign (logged: it is fitted again)."""
        names: tuple[str, ...] = (
            ("weights", "means", "covariances") if self.name == "gmm" else ("mean", "cov")
        )
        path = Path(folder) / f"{self.name}.json"
        try:
            info, arrays = read_pair(path)
            names += tuple(k for k in SPACE if k in arrays)
            return Fitted(self.name)._set({k: arrays[k] for k in names}, info)
        except (ZspaceError, KeyError, ValueError, IndexError) as exc:
            if log and path.is_file():
                why = exc if isinstance(exc, ZspaceError) else f"its arrays do not fit ({exc!r})"
                log(f"{self.name}: refitting {path}: {why}")
            return None

    def fitted(
        self, folder: str | Path, z: np.ndarray, *, refit: bool = False, log: Log = None
    ) -> Fitted:
        """The fit saved in ``folder`` when it matches ``z`` and these settings, else
        this sampler fitted to ``z`` and saved (its warning, if any, logged once)."""
        key = self.key(z)
        old = None if refit else self.load(folder, log)
        if old is not None and all(old.info.get(k) == v for k, v in key.items()):
            return old
        self.fit(z).save(folder)
        if self.info.get("warning") and log:
            log(f"warning: {self.name}: {self.info['warning']}")
        if self.info.get("space") == "pca" and log:
            log(f"{self.name}: fitted {pca_note(self.params, self.d)}")
        return self


def pca_space(z: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """(arrays, points, info) to fit in: z itself up to ``HIGH_D`` dimensions; above,
    z's coordinates in its leading principal components (``PCA_DIMS``, at most N - 1),
    with the mean, that basis and each axis' remaining standard deviation to map draws
    back."""
    n, d = z.shape
    if d <= HIGH_D:
        return {}, z, {}
    mean, variances, components = principal_axes(z)
    k = min(PCA_DIMS, n - 1)
    basis = components[:k]
    rest = (variances[k:, None] * components[k:] ** 2).sum(0) * ((n - 1) / n)
    y = (np.asarray(z, np.float32) - mean.astype(np.float32)) @ basis.T.astype(np.float32)
    share = float(variances[:k].sum() / max(variances.sum(), 1e-300))
    space = {"center": mean, "basis": basis, "residual_std": np.sqrt(rest)}
    return space, y, {"space": "pca", "pca_dims": k, "explained": round(share, 6)}


def pca_note(params: dict[str, Any], d: int) -> str:
    """How a fit in principal-component space was made, for the log and the captions."""
    return (
        f"in the leading {params['pca_dims']} principal components of D = {d} "
        f"({100 * params['explained']:.1f} % of the variance), the rest as an independent "
        "Gaussian per axis"
    )


def samplers_for(
    run: Any,
    names: Sequence[str],
    *,
    limits: Sequence[float] | None = None,
    components: int | Sequence[int] | None = None,
    subsample: int = DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = None,
    latents: np.ndarray | None = None,
) -> Iterator[Sampler]:
    """The run's sampler of each name, the uniform box once per limit (default
    ``REFERENCE_LIMITS``), fitted as they come (a saved fit is reused when it matches:
    ``Fitted.fitted``). Fits use the run's config seed, not the drawing seed, so grids
    with other seeds reuse the saved fit instead of refitting (and overwriting) it.
    ``latents``: the encoded training z when the caller has them (else read once)."""
    d = run.z_dim
    lims = [check_limit(x) for x in (limits or REFERENCE_LIMITS)]
    if latents is None and {"gauss", "gmm"} & set(names):
        latents = load_latents(run).z
    for name in names:
        if check_sampler(name) in ("normal", "uniform"):
            yield from (Sampler(d, lim) for lim in (lims if name == "uniform" else [None]))
            continue
        assert latents is not None  # read above for a fitted sampler
        if latents.shape[1] != d:
            raise ZspaceError(
                f"latents have d = {latents.shape[1]} but the model has z_dim {d}; "
                f"run `zspace encode {run.path}` again"
            )
        fit = Fitted(name, components, sample_size=subsample, seed=run.config.seed)
        yield fit.fitted(Path(run.path) / "samplers", latents, refit=refit, log=log)
