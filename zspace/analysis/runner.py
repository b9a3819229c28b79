"""Run a chosen set of analyses on a run's latents and save ``analysis/<name>.json`` + ``.npz``.

Parameters are frozen dataclasses per analysis (``RadiusParams`` ...); values come
from Python (typed) or from the CLI as ``name.key=value`` strings, converted by the
field's type. The JSON file holds the parameters, the numbers and a one-line
summary in words; the npz beside it the arrays its figure needs.

Variants: ``NAME@LABEL`` (e.g. ``tsne@p10-e16``) runs analysis NAME with its own
parameters and saves ``analysis/NAME@LABEL.json`` + ``.npz`` beside ``NAME.json``,
so one run can hold several t-SNE maps or radius histograms. Labels are letters,
digits, ``_``, ``-`` and ``+`` (no ``.``: ``--param tsne@p10.perplexity=10``
splits at the first dot).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np

from zspace.analysis.common import Analysis, jsonable
from zspace.analysis.registry import ANALYSES
from zspace.config.parse import assignment, coerce
from zspace.core.errors import ZspaceError
from zspace.core.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    read_bytes,
    read_json,
    read_npz,
)
from zspace.latents.store import Latents, load_latents

ANALYSIS_FORMAT = 1


SPECS: dict[str, Analysis] = ANALYSES  # name -> entry (.params, .title, .compute)
DEFAULT_SET = tuple(ANALYSES)
VARIANT_SEP = "@"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*")


def split_name(name: str) -> tuple[str, str | None]:
    """``"tsne@p10"`` -> ``("tsne", "p10")``; ``"tsne"`` -> ``("tsne", None)``."""
    base, sep, label = name.partition(VARIANT_SEP)
    return base, (label if sep else None)


def variants(run_dir: str | Path, name: str) -> list[str]:
    """Labels of the saved variants of analysis ``name`` (sorted), e.g. ["p10-e16"]."""
    prefix = f"{name}{VARIANT_SEP}"
    found = analysis_dir(run_dir).glob(f"{prefix}*.json")
    return sorted(p.stem[len(prefix) :] for p in found if _LABEL.fullmatch(p.stem[len(prefix) :]))


def analysis_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "analysis"


# ---------------------------------------------------------------- parameters


def make_params(name: str, given: Mapping[str, Any] | None, seed: int = 0):
    """The params dataclass of ``name`` (or a variant ``name@label``) with ``given``
    applied (unknown keys are errors)."""
    cls = SPECS[split_name(name)[0]].params
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    if "seed" in hints:
        values["seed"] = seed
    for key, value in (given or {}).items():
        if key not in hints:
            raise ZspaceError(f"unknown parameter {name}.{key}; {name} takes: {', '.join(hints)}")
        values[key] = coerce(f"{name}.{key}", value, hints[key])
    return replace(cls(), **values)


def parse_sets(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """CLI ``NAME.KEY=VALUE`` strings to {name: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        form = "NAME.KEY=VALUE, e.g. radius.bin_width=0.05"
        name, key, value = assignment(item, "analysis parameter", form)
        if not key:
            raise ZspaceError(f"analysis parameter {item!r}: expected {form}")
        check_names([name])
        out.setdefault(name, {})[key] = value
    return out


def check_names(names: Iterable[str]) -> list[str]:
    """The names, each an analysis or a variant ``NAME@LABEL`` of one (else an error)."""
    names = list(names)
    for n in names:
        base, label = split_name(n)
        if base not in SPECS:
            raise ZspaceError(f"unknown analysis {base!r}; choose from {', '.join(SPECS)}")
        if label is not None and not _LABEL.fullmatch(label):
            raise ZspaceError(
                f"analysis variant {n!r}: the label after '@' must be letters, digits, "
                "'_', '-' or '+' (e.g. tsne@p10-e16)"
            )
    return names


# ---------------------------------------------------------------- running


def compute(name: str, lat: Latents, params) -> Any:
    """One analysis (or variant) on in-memory latents (no files)."""
    entry = SPECS.get(split_name(name)[0])
    if entry is None:
        raise ZspaceError(f"unknown analysis {name!r}; choose from {', '.join(SPECS)}")
    if entry.needs_vae and not lat.variational:
        raise ZspaceError(f"the {name} analysis needs a VAE run (these latents have no mu/logvar)")
    return entry.compute(lat, params)


def save_result(run_dir: Path, name: str, split: str, params, result, seconds: float) -> Path:
    out = analysis_dir(run_dir)
    base, label = split_name(name)
    record = {
        "format": ANALYSIS_FORMAT,
        "analysis": base,
        "variant": label,
        "title": SPECS[base].title,
        "split": split,
        "params": jsonable(asdict(params)),
        "seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "summary": result.summary(),
        "result": result.to_json(),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **result.arrays())
    data = buf.getvalue()
    # The json, written last, names the npz it belongs to by its sha256: a crash between
    # the two writes leaves a pair that load_result refuses, never new arrays drawn
    # with old numbers (issue 18).
    record["npz_sha256"] = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(out / f"{name}.npz", data)
    return atomic_write_json(out / f"{name}.json", record)


def run_analyses(
    run_dir: str | Path,
    split: str = "train",
    only: Iterable[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load the latents once, run the selected analyses, save each; returns the results.

    Without ``only``: every analysis, plus each variant ``NAME@LABEL`` named in
    ``params``."""
    run_dir = Path(run_dir)
    lat = load_latents(run_dir, split)
    explicit = only is not None
    params = params or {}
    check_names(params)
    extra = [n for n in params if split_name(n)[1] is not None]
    names = check_names(only if only is not None else [*DEFAULT_SET, *extra])
    if not lat.variational:
        for n in names:
            if explicit and SPECS[split_name(n)[0]].needs_vae:
                raise ZspaceError(f"the {n} analysis needs a VAE run; {run_dir} is an AE")
        names = [n for n in names if not SPECS[split_name(n)[0]].needs_vae]
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
    """(json record, arrays) of a saved analysis or variant (``NAME@LABEL``), or None
    when it was not run."""
    base = analysis_dir(run_dir)
    j = base / f"{name}.json"
    if not j.is_file():
        return None
    redo = f"rerun `zspace analyze {run_dir} --only {name}`"
    record = read_json(j, redo)
    if (
        not isinstance(record, dict)
        or record.get("format") != ANALYSIS_FORMAT
        or record.get("analysis") != name.partition("@")[0]  # a variant: NAME@LABEL
        or not isinstance(record.get("result"), dict)
    ):
        raise ZspaceError(f"{j} is not a zspace {name} result (format {ANALYSIS_FORMAT}); {redo}")
    arrays: dict[str, np.ndarray] = {}
    npz = base / f"{name}.npz"
    want = record.get("npz_sha256")  # absent in results saved before issue 18
    if want is not None and not npz.is_file():
        raise ZspaceError(f"{npz} is missing (its json names it); {redo}")
    if npz.is_file():
        data = read_bytes(npz)
        if want is not None and hashlib.sha256(data).hexdigest() != want:
            raise ZspaceError(
                f"{npz} does not belong to {j.name} (a save was interrupted between the "
                f"two files); {redo}"
            )
        arrays = read_npz(npz, redo, data)
    return record, arrays
