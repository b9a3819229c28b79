"""``zspace.evaluate``: score a run's samplers in the evaluator's feature space.

For each sampler (and uniform limit) ``n`` random z-points are decoded and turned
into uint8 images exactly as the grids show them; the evaluator embeds them and
they are scored against the reference half A. The first row, sampler ``real``,
scores ``n`` held-out real images of reference half B the same way: the
real-vs-real floor that finite samples reach at best. Every row carries its flags;
eval.json names its headline and fidelity (``zspace.evaluation.reading``). Written to
``RUN/samples/eval.json``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_json, update_json
from zspace.core.progress import progress as progress_switch
from zspace.evaluation import faces, metrics
from zspace.evaluation.evaluator import Evaluator, Log, check_task, open_evaluator
from zspace.evaluation.reading import FD_NAME, FIDELITY, HEADLINE, METRICS, row_flags
from zspace.generation.common import check_args, pick, seed_of
from zspace.generation.images import decode_u8, mean_radius
from zspace.generation.index import samples_dir
from zspace.generation.samplers import DEFAULT_SUBSAMPLE, parse_samplers, samplers_for
from zspace.latents.store import load_latents
from zspace.runs.run import RunLike, as_run

DEFAULT_SAMPLERS = ("normal", "gauss", "gmm")
ORACLES = ("auto", "faces", "none")
SAME_SETTINGS = ("k", "n", "seed", "rounds", "oracle", "headline", "fidelity")


def check_options(**given: Any) -> None:
    """``evaluate``'s settings checked without a run: its first step, and a plan's
    (pipeline, sweep, recipe) before its first run trains."""
    check_args(**given)
    check_task(given.get("task", "auto"))
    if given.get("oracle", "auto") not in ORACLES:
        raise ZspaceError(f"oracle {given['oracle']!r}: choose one of {', '.join(ORACLES)}")


def use_faces(oracle: str, source: str, log: Log) -> bool:
    """The face oracle: asked for (``faces``: OpenCV must be there), automatic on
    CelebA (skipped, with a logged line, without OpenCV), or off."""
    if oracle == "none":
        return False
    if oracle == "faces":
        faces.detect_faces(np.zeros((1, 8, 8, 1), np.uint8))  # the one-line error, early
        return True
    if not source.startswith("celeba:"):
        return False
    if faces.available():
        return True
    if log:
        log("evaluate: no face rate for this CelebA run: pip install 'zspace[faces]' for it")
    return False


def score_images(
    ev: Evaluator,
    images: np.ndarray,
    *,
    k: int,
    rounds: int,
    seed: int,
    face_oracle: bool,
) -> dict[str, Any]:
    """Every metric of one set of uint8 images against reference half A."""
    feats, probs = ev.embed(images)
    s = metrics.prdc(ev.reference, feats, k, rounds=rounds, seed=seed)
    s.update(metrics.distribution_scores(ev.reference, feats, rounds=rounds, seed=seed))
    out: dict[str, Any] = {}
    if ev.has_classifier:
        flags = metrics.confident(probs, multilabel=ev.multilabel)
        s.update(metrics.share(flags, "confident_share", rounds=rounds, seed=seed))
        out["labels"] = metrics.label_histogram(probs, multilabel=ev.multilabel)
    if face_oracle:
        s.update(metrics.share(faces.detect_faces(images), "face_rate", rounds=rounds, seed=seed))
    return {"metrics": s.metrics, "spread": s.spread, "capture": s.capture, **out}


def evaluate(
    run: RunLike,
    sampler: str | Sequence[str] = DEFAULT_SAMPLERS,
    *,
    n: int = 1000,
    k: int = metrics.DEFAULT_K,
    seed: int | None = None,
    limits: Sequence[float] | None = None,
    components: int | Sequence[int] | None = None,
    subsample: int = DEFAULT_SUBSAMPLE,
    oracle: str = "auto",
    task: str = "auto",
    rounds: int = metrics.DEFAULT_ROUNDS,
    log: Log = print,
    progress: bool | None = None,
) -> dict[str, Any]:
    """FD-zspace (the headline), vouched precision (the fidelity), precision, recall,
    density, coverage, KID and extent (with spreads), the capture counts, the
    classifier's confident share and label histogram, the face rate (CelebA or
    ``oracle="faces"``) and the flags of each sampler's decoded images, after the
    real-vs-real floor (row ``real``). Builds the data set's evaluator when it is
    missing or stale (logged). Writes samples/eval.json and returns this call's rows."""
    check_options(sampler=sampler, n=n, k=k, seed=seed, limits=limits, components=components,
                  subsample=subsample, oracle=oracle, task=task, rounds=rounds)  # fmt: skip
    run = as_run(run)
    names = parse_samplers(sampler)
    seed = seed_of(run, seed)
    # the fitted samplers' latents before anything is scored: an un-encoded run fails here
    latents = load_latents(run).z if {"gauss", "gmm"} & set(names) else None
    data, _ = run.data()  # a run trained on arrays reads its own saved images
    face_oracle = use_faces(oracle, data.source, log)
    dcfg = run.config.data
    with progress_switch(progress):  # the bars of a build
        ev = open_evaluator(
            data, crop=dcfg.crop, cache_dir=dcfg.cache_dir, task=task, device=run.device, log=log
        )
    n_eval = min(n, len(ev.index_b))
    if n_eval <= k:
        raise ZspaceError(
            f"the evaluator's reference half holds {len(ev.index_b)} images: too few for k = {k}"
        )
    if n_eval < n and log:
        log(
            f"evaluate: n = {n_eval} images per sampler, not {n}: the evaluator's held-out "
            f"half B has {len(ev.index_b)} real images for the real-vs-real floor"
        )
    results: list[dict[str, Any]] = []
    rates = _latent_rates(run)

    def record(name: str, params: dict[str, Any], images: np.ndarray, started: float) -> None:
        row: dict[str, Any] = {"sampler": name, "params": {**params, "n": len(images)}}
        row.update(score_images(ev, images, k=k, rounds=rounds, seed=seed, face_oracle=face_oracle))
        if (rate := rates.get(_row_key(row))) is not None:
            row["latent_rate"] = rate
        row["flags"] = row_flags(row, results[0] if results else row, len(ev.reference))
        row["seconds"] = round(time.perf_counter() - started, 3)
        results.append(row)
        if log:
            log(f"evaluate {name}({_shown(params)}): {_summary(row)}")

    started = time.perf_counter()
    real = np.ascontiguousarray(data.images[pick(ev.index_b, n_eval, seed + 1)])
    record("real", {"images": "held-out real images (evaluator reference half B)"}, real, started)
    started = time.perf_counter()  # a row's seconds include its fit
    with progress_switch(progress):  # and of fits
        for s in samplers_for(
            run, names, limits=limits, components=components, subsample=subsample, log=log,
            latents=latents,
        ):  # fmt: skip
            z = s.sample(n_eval, np.random.default_rng(seed))
            params = {**s.params, "mean_radius": mean_radius(z)}
            record(s.name, params, decode_u8(run, z), started)
            started = time.perf_counter()
    out = {
        "evaluator": ev.summary(),
        "k": k,
        "n": n_eval,
        "seed": seed,
        "rounds": rounds,
        "oracle": "faces" if face_oracle else None,
        "fd_name": FD_NAME,
        "headline": HEADLINE,
        "fidelity": FIDELITY,
        "results": results,
    }
    update_json(samples_dir(run) / "eval.json", lambda old: _merged(old, out))
    return out


def _merged(old: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Earlier rows (``old``: eval.json's content) of other samplers stay when they were
    scored by the same evaluator with the same settings; the real row is always this
    call's, and first."""
    try:
        if not (
            isinstance(old, dict)
            and old["evaluator"]["fingerprint"] == out["evaluator"]["fingerprint"]
            and all(old.get(key) == out[key] for key in SAME_SETTINGS)
        ):
            return out
        keys = {_row_key(r) for r in out["results"]}
        kept = [r for r in old["results"] if r["sampler"] != "real" and _row_key(r) not in keys]
        return {**out, "results": out["results"][:1] + kept + out["results"][1:]}
    except (KeyError, TypeError, AttributeError):
        return out


def _row_key(row: dict[str, Any]) -> tuple[str, Any]:
    return row["sampler"], (row.get("params") or {}).get("limit")


def _latent_rates(run: Any) -> dict[tuple[str, Any], float]:
    """rates.json's rate per row key (its control ``data`` as ``real``); {} without it."""
    try:
        rows = read_json(samples_dir(run) / "rates.json")["results"]
        keys = [("real", None) if r["sampler"] == "data" else _row_key(r) for r in rows]
        return {key: float(r["rate"]) for key, r in zip(keys, rows, strict=True)}
    except (ZspaceError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
        if k != "images"
    )


def _summary(row: dict[str, Any]) -> str:
    m = row["metrics"]
    parts = ", ".join(f"{label} {m[key]:.4g}" for key, label in METRICS.items() if key in m)
    return parts + "".join(f"\n  FLAG: {f}" for f in row["flags"])
