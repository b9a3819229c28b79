"""The Python face of generation: what ``zspace generate`` calls.

Every function takes a Run (or a run folder), writes PNGs under ``RUN/samples/``
and lists them in ``samples/index.json`` (entries for the same file are replaced),
so the HTML report shows them. Randomness comes from ``seed`` (default: the run's
config seed); each grid restarts its own generator, so a grid reproduces alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_json
from zspace.generation import grids, paths, samplers
from zspace.generation.rate import build_reference
from zspace.generation.recon import (
    ReconMetrics,
    load_image_file,
    model_input,
    recon_metrics,
    reconstruct_rows,
)

Log = Callable[[str], None] | None


# ---------------------------------------------------------------- helpers


def as_run(run: Any) -> Any:
    from zspace.run import Run, load_run

    return run if isinstance(run, Run) else load_run(run)


def samples_dir(run: Any) -> Path:
    return Path(run.path) / "samples"


def update_index(run: Any, entries: Sequence[dict[str, Any]]) -> Path:
    """Append entries to samples/index.json, replacing older ones for the same file."""
    path = samples_dir(run) / "index.json"
    old: list[dict[str, Any]] = []
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = []
    files = {e["file"] for e in entries}
    return atomic_write_json(path, [e for e in old if e.get("file") not in files] + list(entries))


def _entry(file: str, kind: str, sampler: str, params: dict, caption: str) -> dict[str, Any]:
    return {"file": file, "kind": kind, "sampler": sampler, "params": params, "caption": caption}


def _seed(run: Any, seed: int | None) -> int:
    """The given seed, else the run's config seed; NumPy wants it >= 0."""
    seed = run.config.seed if seed is None else int(seed)
    if seed < 0:
        raise ZspaceError(f"seed {seed}: must be >= 0")
    return seed


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ZspaceError(f"{name} = {value}: must be >= 1")


def parse_samplers(sampler: str | Sequence[str]) -> list[str]:
    names = sampler.split(",") if isinstance(sampler, str) else list(sampler)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ZspaceError(f"no sampler given; choose from {', '.join(samplers.SAMPLERS)}")
    return [samplers.check_sampler(n) for n in names]


def _fmt(x: float) -> str:
    return f"{x:g}"


def train_latents(run: Any, split: str = "train"):
    from zspace.latents import load_latents

    return load_latents(run, split)


def sampler_draw(
    run: Any,
    name: str,
    *,
    limit: float | None = None,
    components: Any = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = None,
    latents: np.ndarray | None = None,
) -> tuple[Callable[[int, np.random.Generator], np.ndarray], dict[str, Any]]:
    """A function drawing (n, d) points for sampler ``name``, and its parameters.

    Fits use the run's config seed, not the drawing seed, so grids with other seeds
    reuse the saved fit instead of refitting (and overwriting) it. ``latents``: the
    encoded training z when the caller has them already (read from the run if not)."""
    d = run.model.cfg.z_dim
    name = samplers.check_sampler(name)
    if name == "normal":
        return (lambda n, rng: samplers.sample_normal(n, d, rng)), {}
    if name == "uniform":
        lim = samplers.check_limit(1.0 if limit is None else limit)
        return (lambda n, rng: samplers.sample_uniform(n, d, lim, rng)), {"limit": lim}
    z = train_latents(run).z if latents is None else latents
    if z.shape[1] != d:
        raise ZspaceError(
            f"latents have d = {z.shape[1]} but the model has z_dim {d}; "
            f"run `zspace encode {run.path}` again"
        )
    fit = samplers.fitted(
        run.path,
        name,
        z,
        components=components,
        sample_size=subsample,
        seed=run.config.seed,
        refit=refit,
        log=log,
    )
    params: dict[str, Any] = {"fitted_on": int(z.shape[0])}
    if name == "gmm":
        params.update(n_components=fit.info["n_components"], subsample=fit.info["subsample"])
    return fit.sample, params


def decode_u8(run: Any, z: np.ndarray, sharpen: float | None = None) -> np.ndarray:
    return grids.sharpen(grids.to_uint8(run.decode(torch.from_numpy(np.asarray(z)))), sharpen)


def _sharpen_list(sharpen: float | Sequence[float] | None) -> list[float | None]:
    if sharpen is None:
        return [None]
    items = [sharpen] if isinstance(sharpen, int | float) else list(sharpen)
    if not items:
        raise ZspaceError("no sharpening factors given (e.g. 0,3,6,7)")
    for f in items:
        if f < 0:
            raise ZspaceError(f"sharpening factor {f:g}: must be >= 0")
    return [float(f) for f in items]


def _split_index(run: Any, split: str | None) -> tuple[str, Any, np.ndarray]:
    """(split name, the run's data, the split's row indices); default test, else valid."""
    from zspace.training import prepare

    data, splits = prepare(run.config)
    if split is None:
        split = "test" if "test" in splits else "valid"
    if split not in splits:
        raise ZspaceError(f"split {split!r} does not exist here (have: {', '.join(splits)})")
    return split, data, np.asarray(splits[split])


def _pick(index: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to n seeded rows of a split's index, sorted."""
    if n >= len(index):
        return index
    return np.sort(np.random.default_rng(seed).choice(index, size=n, replace=False))


def _split_images(run: Any, split: str | None, n: int, seed: int) -> tuple[str, np.ndarray]:
    """Up to n seeded images of a split, in index order."""
    split, data, index = _split_index(run, split)
    return split, np.ascontiguousarray(data.images[_pick(index, n, seed)])


def _code(run: Any, images: np.ndarray | torch.Tensor, seed: int) -> np.ndarray:
    """Encoded points of images (uint8 NHWC or float NCHW; mu for a VAE), after the
    run's task."""
    x = model_input(run, run.as_batch(images), seed)
    z, mu, _ = run.encode(x)
    return (mu if mu is not None else z).numpy()


# ---------------------------------------------------------------- grids from samplers


def generate(
    run: Any,
    sampler: str | Sequence[str] = "normal",
    *,
    n: int = 64,
    cols: int = 8,
    seed: int | None = None,
    limits: Sequence[float] | None = None,
    sharpen: float | Sequence[float] | None = None,
    components: int | Sequence[int] | None = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = None,
) -> list[dict[str, Any]]:
    """Decode ``n`` random z-points per sampler (and per uniform limit and sharpening
    factor) into captioned PNG grids under samples/; returns the index entries."""
    run = as_run(run)
    names = parse_samplers(sampler)
    _positive(n=n, cols=cols)
    seed = _seed(run, seed)
    lims = [samplers.check_limit(x) for x in (limits or samplers.REFERENCE_LIMITS)]
    factors = _sharpen_list(sharpen)
    fitted = {"gauss", "gmm"} & set(names)
    z_train = train_latents(run).z if fitted else None  # read once for all fits
    entries = []
    for name in names:
        for lim in lims if name == "uniform" else [None]:
            draw, params = sampler_draw(
                run,
                name,
                limit=lim,
                components=components,
                subsample=subsample,
                refit=refit,
                log=log,
                latents=z_train,
            )
            z = draw(n, np.random.default_rng(seed))
            images = grids.to_uint8(run.decode(torch.from_numpy(z)))
            radius = grids.mean_radius(z)
            for f in factors:
                p = {**params, "n": n, "seed": seed}
                stem = f"grid-{name}" + (f"-limit{_fmt(lim)}" if lim is not None else "")
                if f is not None:
                    p["sharpen"] = f
                    stem += f"-sharp{_fmt(f)}"
                file = f"{stem}-seed{seed}.png"
                shown = ", ".join(
                    f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in p.items()
                )
                cap = f"{name}({shown}); mean radius {radius:.2f}"
                grids.write_grid(samples_dir(run) / file, [grids.sharpen(images, f)], cols, cap)
                entries.append(_entry(file, "grid", name, {**p, "mean_radius": radius}, cap))
                update_index(run, entries[-1:])  # listed at once: a later failure keeps it
                if log:
                    log(f"{file}: {cap}")
    return entries


# ---------------------------------------------------------------- reconstructions


def reconstructions(
    run: Any,
    *,
    n: int = 16,
    split: str | None = None,
    images: Sequence[str | Path] = (),
    cols: int = 8,
    seed: int | None = None,
    sharpen: float | None = None,
    metrics: bool = True,
    log: Log = None,
) -> dict[str, Any]:
    """Originals above their reconstructions for n images of a split and for image
    files; the split's mean loss, PSNR and SSIM (written to samples/reconstruction.json)."""
    run = as_run(run)
    seed = _seed(run, seed)
    _positive(n=n, cols=cols)
    split, data, index = _split_index(run, split)
    imgs = np.ascontiguousarray(data.images[_pick(index, n, seed)])
    entries = []
    result: dict[str, Any] = {"split": split}
    cols = min(cols, max(1, len(imgs)))
    if metrics:
        m: ReconMetrics = recon_metrics(run, data.images[index], split, seed)
        result["metrics"] = m.as_dict()
    mtxt = (
        (
            f"; {split} mean loss {m.loss:.4g} ({m.loss_kind}), PSNR {m.psnr:.2f} dB, "
            f"SSIM {m.ssim:.3f} over {m.n} images"
        )
        if metrics
        else ""
    )
    task = run.config.data.task
    order = (
        "input / original / reconstruction"
        if task != "reconstruct"
        else ("original / reconstruction")
    )
    rows = reconstruct_rows(run, imgs, seed)
    rows[-1] = grids.sharpen(rows[-1], sharpen)
    file = f"recon-{split}-seed{seed}.png"
    cap = f"{len(imgs)} {split} images, rows {order}{mtxt}"
    grids.write_grid(samples_dir(run) / file, rows, cols, cap)
    entries.append(
        _entry(
            file,
            "reconstruction",
            "encoder",
            {"split": split, "n": len(imgs), "seed": seed, "task": task},
            cap,
        )
    )
    if images:
        own = np.stack([load_image_file(p, run) for p in images])
        rows = reconstruct_rows(run, own, seed)
        file = "recon-files.png"
        names = ", ".join(Path(p).name for p in images)
        cap = f"image files ({names}), rows {order}"
        grids.write_grid(samples_dir(run) / file, rows, min(cols, len(own)), cap)
        entries.append(
            _entry(
                file,
                "reconstruction",
                "encoder",
                {"files": [str(p) for p in images], "task": task},
                cap,
            )
        )
    update_index(run, entries)
    if metrics:
        atomic_write_json(samples_dir(run) / "reconstruction.json", result)
    result["entries"] = entries
    if log:
        for e in entries:
            log(f"{e['file']}: {e['caption']}")
    return result


# ---------------------------------------------------------------- paths


def interpolate(
    run: Any,
    a: int | str | Path = 0,
    b: int | str | Path = 1,
    *,
    steps: int = 10,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Two rows: the straight line and the spherical path between the z-points of
    two images (positions in the split, or image files)."""
    run = as_run(run)
    seed = _seed(run, seed)
    ends = []
    for x in (a, b):
        if isinstance(x, int) or (isinstance(x, str) and x.isdigit()):
            split_, data, index = _split_index(run, split)
            if not 0 <= int(x) < len(index):
                raise ZspaceError(f"image {x} does not exist: {split_} has {len(index)} images")
            ends.append(data.images[index[int(x)]])
        else:
            ends.append(load_image_file(x, run))
    za, zb = _code(run, np.stack(ends), seed)
    rows = [decode_u8(run, paths.lerp(za, zb, steps)), decode_u8(run, paths.slerp(za, zb, steps))]
    file = f"interp-{a}-{b}.png".replace("/", "_")
    file = file if len(file) < 80 else f"interp-seed{seed}.png"
    cap = (
        f"{a} -> {b} in {steps} steps; top: straight line, bottom: spherical; "
        f"radius {np.linalg.norm(za):.2f} -> {np.linalg.norm(zb):.2f}"
    )
    grids.write_grid(samples_dir(run) / file, rows, steps, cap)
    entry = _entry(
        file, "interpolation", "lerp+slerp", {"a": str(a), "b": str(b), "steps": steps}, cap
    )
    update_index(run, [entry])
    if log:
        log(f"{file}: {cap}")
    return entry


def traverse(
    run: Any,
    *,
    axis: int | None = None,
    pca: int | None = None,
    strengths: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3),
    count: int = 4,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Rows of images (one per base image) moved along an original axis or a PCA
    direction of the training latents, in steps of that direction's std."""
    run = as_run(run)
    if (axis is None) == (pca is None):
        raise ZspaceError("traverse: give exactly one of axis or pca")
    seed = _seed(run, seed)
    _positive(count=count, strengths=len(strengths))
    lat = train_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    direction = (
        paths.axis_direction(ref, axis) if axis is not None else paths.pca_direction(ref, pca)
    )
    _, imgs = _split_images(run, split, count, seed)
    codes = _code(run, imgs, seed)
    rows = [decode_u8(run, paths.traverse(z0, direction, strengths)) for z0 in codes]
    images = np.concatenate(rows)  # one line per image, its strengths across
    what = f"axis {axis}" if axis is not None else f"PCA direction {pca}"
    file = f"traverse-axis{axis}.png" if axis is not None else f"traverse-pca{pca}.png"
    cap = (
        f"{what}, strengths {', '.join(_fmt(s) for s in strengths)} x its std "
        f"({np.linalg.norm(direction):.3g}); one row per image"
    )
    grids.write_grid(samples_dir(run) / file, [images], len(strengths), cap)
    entry = _entry(
        file,
        "traversal",
        "axis" if axis is not None else "pca",
        {"axis": axis, "pca": pca, "strengths": list(strengths)},
        cap,
    )
    update_index(run, [entry])
    if log:
        log(f"{file}: {cap}")
    return entry


def attribute(
    run: Any,
    name: str,
    *,
    strengths: Sequence[float] = (0, 0.5, 1, 1.5, 2),
    count: int = 4,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Add the attribute vector (mean z with minus mean z without, from the training
    latents) to images that lack the attribute, at the given strengths."""
    run = as_run(run)
    seed = _seed(run, seed)
    _positive(count=count, strengths=len(strengths))
    lat = train_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    vec = paths.attribute_vector(ref, lat.attr, lat.attr_names, name)
    split, data, index = _split_index(run, split)
    col = list(data.attr_names).index(name)
    values = np.asarray(data.attr)[index, col]
    # images known to lack it; failing that, those with no value; failing that, any
    pick = next((p for p in (index[values < 0], index[values == 0]) if len(p)), index)
    rows_idx = np.sort(np.random.default_rng(seed).choice(pick, min(count, len(pick)), False))
    codes = _code(run, np.ascontiguousarray(data.images[rows_idx]), seed)
    rows = [decode_u8(run, paths.traverse(z0, vec, strengths)) for z0 in codes]
    images = np.concatenate(rows)  # one line per image, its strengths across
    file = f"attribute-{name}.png"
    cap = (
        f"+ {name} vector (|v| = {np.linalg.norm(vec):.2f}) at strengths "
        f"{', '.join(_fmt(s) for s in strengths)}; {split} images without {name}"
    )
    grids.write_grid(samples_dir(run) / file, [images], len(strengths), cap)
    entry = _entry(
        file,
        "attribute",
        "attribute",
        {
            "attribute": name,
            "strengths": list(strengths),
            "split": split,
            "images": [int(i) for i in rows_idx],
        },
        cap,
    )
    update_index(run, [entry])
    if log:
        log(f"{file}: {cap}")
    return entry


# ---------------------------------------------------------------- the rate


def meaningful_rates(
    run: Any,
    sampler: str | Sequence[str] = samplers.SAMPLERS,
    *,
    n: int = 1000,
    limits: Sequence[float] | None = None,
    seed: int | None = None,
    reference_size: int = samplers.DEFAULT_SUBSAMPLE,
    quantile: float = 0.95,
    components: int | Sequence[int] | None = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    log: Log = None,
) -> dict[str, Any]:
    """Share of decoded-and-re-encoded random points that land within the data, per
    sampler (and per uniform limit), with the data itself as a control; written to
    samples/rates.json (entries for the same sampler and parameters are replaced)."""
    run = as_run(run)
    names = parse_samplers(sampler)
    _positive(n=n)
    seed = _seed(run, seed)
    lat = train_latents(run)
    use_mu = lat.mu is not None
    ref_z = lat.mu if use_mu else lat.z
    ref = build_reference(ref_z, reference_size, seed, quantile)
    if ref.warning() and log:
        log(f"warning: {ref.warning()}")

    results = []

    def record(name: str, params: dict, z: np.ndarray) -> None:
        dist = ref.distances(_code(run, run.decode(np.asarray(z, np.float32)), seed))
        row = {
            "sampler": name,
            "params": params,
            "rate": float((dist <= ref.threshold).mean()),
            "n": len(z),
            "mean_radius": grids.mean_radius(z),
            "median_distance": float(np.median(dist)),
        }
        results.append(row)
        if log:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            log(f"{name}({shown}): rate {row['rate']:.3f}, mean radius {row['mean_radius']:.2f}")

    # control: held-out images (test, else valid split), encoded like the rest, so it
    # shows what a real, unseen point scores; training latents only without a split
    try:
        split, held_out = _split_images(run, None, n, seed + 1)
        record("data", {"control": f"{split} images, encoded"}, _code(run, held_out, seed))
    except ZspaceError:
        rng = np.random.default_rng(seed + 1)
        record(
            "data",
            {"control": "training latents (no held-out split)"},
            ref_z[rng.choice(len(ref_z), size=min(n, len(ref_z)), replace=False)],
        )
    lims = [samplers.check_limit(x) for x in (limits or samplers.REFERENCE_LIMITS)]
    for name in names:
        for lim in lims if name == "uniform" else [None]:
            draw, params = sampler_draw(
                run,
                name,
                limit=lim,
                components=components,
                subsample=subsample,
                log=log,
                latents=lat.z,
            )
            record(name, params, draw(n, np.random.default_rng(seed)))
    out = {
        "threshold": ref.threshold,
        "quantile": quantile,
        "reference_size": len(ref.points),
        "spread": ref.spread,
        "warning": ref.warning(),
        "space": "mu" if use_mu else "z",
        "seed": seed,
        "results": results,
    }
    path = samples_dir(run) / "rates.json"
    same_ref = ("threshold", "quantile", "reference_size", "space", "seed")
    if path.is_file():
        # keep earlier rows of other samplers only when they were measured against
        # this very reference; otherwise they would show under the wrong threshold
        try:
            old = json.loads(path.read_text())
            if all(old.get(k) == out[k] for k in same_ref):
                keys = {(r["sampler"], json.dumps(r["params"], sort_keys=True)) for r in results}
                kept = [
                    r
                    for r in old["results"]
                    if r["sampler"] != "data"
                    and (r["sampler"], json.dumps(r["params"], sort_keys=True)) not in keys
                ]
                out["results"] = results[:1] + kept + results[1:]  # the control first
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            pass
    atomic_write_json(path, out)
    return {**out, "results": results}


# ---------------------------------------------------------------- the report's set

REPORT_SAMPLERS = ("normal", "gauss", "gmm")


def default_samples(run: Any, *, n_rate: int = 1000, log: Log = None) -> dict[str, Any]:
    """What ``zspace pipeline`` and ``zspace demo`` put in the report: grids from
    N(0, I) and the two fitted samplers, reconstructions with the split's metrics,
    and the meaningful-point rate of those samplers, so a reader sees at once
    whether random points decode to images and how often. Needs the encoded
    training latents. Uniform boxes and paths stay on ``zspace generate``."""
    run = as_run(run)
    return {
        "grids": generate(run, REPORT_SAMPLERS, log=log),
        "reconstructions": reconstructions(run, log=log),
        "rates": meaningful_rates(run, REPORT_SAMPLERS, n=n_rate, log=log),
    }
