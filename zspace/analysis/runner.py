"""Run a chosen set of analyses on a run's latents and save ``analysis/<name>.json`` + ``.npz``.

Parameters are frozen dataclasses per analysis (``RadiusParams`` ...); values come
from Python (typed) or from the CLI as ``name.key=value`` strings, converted by the
field's type. The JSON file holds the parameters, the numbers and a one-line
summary in words; the npz beside it the arrays its figure needs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analysis.axes import AxesParams, axes_analysis
from zspace.analysis.common import jsonable
from zspace.analysis.kmeans import KmeansParams, kmeans_analysis
from zspace.analysis.pca import PcaParams, pca_analysis
from zspace.analysis.radius import RadiusParams, radius_distribution
from zspace.analysis.tsne import TsneParams, tsne_analysis
from zspace.analysis.vae_internals import VaeParams, vae_internals
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_bytes, atomic_write_json
from zspace.latents import Latents, load_latents

ANALYSIS_FORMAT = 1


@dataclass(frozen=True)
class Spec:
    params: type
    title: str


SPECS: dict[str, Spec] = {
    "radius": Spec(RadiusParams, "Radius distribution"),
    "axes": Spec(AxesParams, "Per-axis densities"),
    "pca": Spec(PcaParams, "PCA spectrum and projections"),
    "tsne": Spec(TsneParams, "t-SNE map"),
    "kmeans": Spec(KmeansParams, "KMeans inertia and elbow"),
    "vae": Spec(VaeParams, "VAE internals"),
}
DEFAULT_SET = tuple(SPECS)


def analysis_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "analysis"


# ---------------------------------------------------------------- parameters


def _parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        bits = part.replace(":", "-").split("-")
        if len(bits) != 2 or not all(b.isdigit() for b in bits):
            raise ValueError(part)
        pairs.append((int(bits[0]), int(bits[1])))
    return tuple(pairs)


def _convert(kind: str, value: Any) -> Any:
    """A CLI string (or a Python value) to the field's type, by its annotation."""
    optional = kind.endswith("| None")
    if optional and (value is None or str(value).lower() in ("none", "auto", "")):
        return None
    base = kind.removesuffix("| None").strip()
    if base.startswith("tuple[tuple"):
        if isinstance(value, str):
            return _parse_pairs(value)
        return tuple(tuple(int(v) for v in p) for p in value)
    if base.startswith("tuple["):
        if isinstance(value, str):
            return tuple(float(v) for v in value.replace(" ", "").split(",") if v)
        return tuple(float(v) for v in value)
    if base == "int":
        f = float(value)
        if f != int(f):
            raise ValueError(value)
        return int(f)
    if base == "float":
        return float(value)
    return str(value)


def make_params(name: str, given: dict[str, Any] | None, seed: int = 0):
    """The params dataclass of ``name`` with ``given`` applied (unknown keys are errors)."""
    cls = SPECS[name].params
    types = {f.name: f.type for f in fields(cls)}
    values: dict[str, Any] = {}
    if "seed" in types:
        values["seed"] = seed
    for key, value in (given or {}).items():
        if key not in types:
            raise ZspaceError(f"unknown parameter {name}.{key}; {name} takes: {', '.join(types)}")
        try:
            values[key] = _convert(str(types[key]), value)
        except (TypeError, ValueError):
            raise ZspaceError(f"{name}.{key} = {value!r}: expected {types[key]}") from None
    return replace(cls(), **values)


def parse_sets(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """CLI ``NAME.KEY=VALUE`` strings to {name: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        name, dot, key = head.strip().partition(".")
        if not sep or not dot or not key:
            raise ZspaceError(
                f"--set {item!r}: expected NAME.KEY=VALUE, e.g. radius.bin_width=0.05"
            )
        check_names([name])
        out.setdefault(name, {})[key.strip()] = value.strip()
    return out


def check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    for n in names:
        if n not in SPECS:
            raise ZspaceError(f"unknown analysis {n!r}; choose from {', '.join(SPECS)}")
    return names


# ---------------------------------------------------------------- running


def _colour(lat: Latents, choice: str) -> tuple[np.ndarray | None, str | None, list | None]:
    if choice == "none":
        return None, None, None
    if choice in ("auto", "label") and lat.label is not None:
        return lat.label, "label", list(lat.label_names) if lat.label_names else None
    if lat.attr is not None and lat.attr_names:
        names = list(lat.attr_names)
        if choice == "auto":
            choice = "Male" if "Male" in names else names[0]
        if choice in names:
            return lat.attr[:, names.index(choice)], choice, None
    if choice == "auto":
        return None, None, None
    known = (["label"] if lat.label is not None else []) + list(lat.attr_names or ())
    raise ZspaceError(
        f"tsne.colour_by = {choice!r} is not known for these latents; choose from "
        f"{', '.join(['auto', 'none', *known])}"
    )


def compute(name: str, lat: Latents, params) -> Any:
    """One analysis on in-memory latents (no files)."""
    p = asdict(params)
    if name == "radius":
        return radius_distribution(lat.z, **p)
    if name == "axes":
        return axes_analysis(lat.z, **p)
    if name == "pca":
        return pca_analysis(lat.z, **p)
    if name == "tsne":
        colour, by, names = _colour(lat, p.pop("colour_by"))
        return tsne_analysis(lat.z, colour=colour, colour_by=by, colour_names=names, **p)
    if name == "kmeans":
        return kmeans_analysis(lat.z, **p)
    if name == "vae":
        if not lat.variational:
            raise ZspaceError("the vae analysis needs a VAE run (these latents have no mu/logvar)")
        return vae_internals(lat.z, lat.mu, lat.logvar, **p)
    raise ZspaceError(f"unknown analysis {name!r}; choose from {', '.join(SPECS)}")


def save_result(run_dir: Path, name: str, split: str, params, result, seconds: float) -> Path:
    out = analysis_dir(run_dir)
    record = {
        "format": ANALYSIS_FORMAT,
        "analysis": name,
        "title": SPECS[name].title,
        "split": split,
        "params": jsonable(asdict(params)),
        "seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "summary": result.summary(),
        "result": result.to_json(),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **result.arrays())
    atomic_write_bytes(out / f"{name}.npz", buf.getvalue())
    return atomic_write_json(out / f"{name}.json", record)


def run_analyses(
    run_dir: str | Path,
    split: str = "train",
    only: Iterable[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load the latents once, run the selected analyses, save each; returns the results."""
    run_dir = Path(run_dir)
    lat = load_latents(run_dir, split)
    explicit = only is not None
    names = check_names(only if explicit else DEFAULT_SET)
    params = params or {}
    check_names(params)
    if not lat.variational:
        if explicit and "vae" in names:
            raise ZspaceError(f"the vae analysis needs a VAE run; {run_dir} is an AE")
        names = [n for n in names if n != "vae"]
    prepared = {n: make_params(n, params.get(n), lat.seed) for n in names}
    results = {}
    for name in names:
        started = time.perf_counter()
        result = compute(name, lat, prepared[name])
        secs = time.perf_counter() - started
        path = save_result(run_dir, name, split, prepared[name], result, secs)
        if log:
            log(f"{name:7s} {secs:7.1f} s  {result.summary()}")
            log(f"        -> {path}")
        results[name] = result
    return results


def load_result(run_dir: str | Path, name: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(json record, arrays) of a saved analysis, or None when it was not run."""
    base = analysis_dir(run_dir)
    j = base / f"{name}.json"
    if not j.is_file():
        return None
    import json

    record = json.loads(j.read_text())
    arrays: dict[str, np.ndarray] = {}
    npz = base / f"{name}.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    return record, arrays
