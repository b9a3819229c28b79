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

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np

from zspace.analysis import axes, kmeans, pca, radius, tsne, vae_internals
from zspace.analysis.common import Analysis, AnalysisResult, jsonable
from zspace.config.parse import assignment, coerce
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_pair, write_pair

ANALYSIS_FORMAT = 1
ANALYSES: dict[str, Analysis] = {
    a.name: a
    for a in (
        radius.ANALYSIS,
        axes.ANALYSIS,
        pca.ANALYSIS,
        tsne.ANALYSIS,
        kmeans.ANALYSIS,
        vae_internals.ANALYSIS,
    )
}
"""The analyses ``zspace analyze`` knows, in report order. Adding one: its module
(Params, pure function, result, ``ANALYSIS`` entry) plus one line here."""
VARIANT_SEP = "@"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*")


def split_name(name: str) -> tuple[str, str | None]:
    """``"tsne@p10"`` -> ``("tsne", "p10")``; ``"tsne"`` -> ``("tsne", None)``."""
    base, sep, label = name.partition(VARIANT_SEP)
    return base, (label if sep else None)


def variants(run_dir: str | Path, name: str) -> list[str]:
    """Labels of the saved variants of analysis ``name`` (sorted), e.g. ["p10-e16"]."""
    prefix = f"{name}{VARIANT_SEP}"
    found = (Path(run_dir) / "analysis").glob(f"{prefix}*.json")
    return sorted(p.stem[len(prefix) :] for p in found if _LABEL.fullmatch(p.stem[len(prefix) :]))


# ---------------------------------------------------------------- parameters
# ``--param NAME.KEY=VALUE`` values are read by the config's value grammar
# (zspace.config.parse.coerce), by the field's type.


def make_params(name: str, given: Mapping[str, Any] | None, seed: int = 0):
    """The params dataclass of ``name`` (or a variant ``name@label``) with ``given``
    applied (unknown keys are errors)."""
    cls = ANALYSES[split_name(name)[0]].params
    hints = get_type_hints(cls)
    values: dict[str, Any] = {"seed": seed} if "seed" in hints else {}
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
        if base not in ANALYSES:
            raise ZspaceError(f"unknown analysis {base!r}; choose from {', '.join(ANALYSES)}")
        if label is not None and not _LABEL.fullmatch(label):
            raise ZspaceError(
                f"analysis variant {n!r}: the label after '@' must be letters, digits, "
                "'_', '-' or '+' (e.g. tsne@p10-e16)"
            )
    return names


# ---------------------------------------------------------------- files


def save_result(
    run_dir: Path, name: str, split: str, params: Any, result: AnalysisResult, seconds: float
) -> Path:
    """``analysis/<name>.json`` (parameters, numbers, a summary in words) and the npz
    of the arrays its figure needs, tied by the npz's sha256 (``write_pair``)."""
    import time

    base, label = split_name(name)
    record = {
        "format": ANALYSIS_FORMAT,
        "analysis": base,
        "variant": label,
        "title": ANALYSES[base].title,
        "split": split,
        "params": jsonable(asdict(params)),
        "seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "summary": result.summary(),
        "result": result.to_dict(),
    }
    return write_pair(Path(run_dir) / "analysis" / f"{name}.json", record, result.arrays())


def load_result(run_dir: str | Path, name: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(json record, arrays) of a saved analysis or variant (``NAME@LABEL``), or None
    when it was not run. Results saved before the pair carried ``npz_sha256`` load too."""
    path = Path(run_dir) / "analysis" / f"{name}.json"
    if not path.is_file():
        return None
    redo = f"rerun `zspace analyze {run_dir} --only {name}`"
    record, arrays = read_pair(path, redo, what=f"zspace {name} result")
    if (
        record.get("format") != ANALYSIS_FORMAT
        or record.get("analysis") != split_name(name)[0]
        or not isinstance(record.get("result"), dict)
    ):
        raise ZspaceError(
            f"{path} is not a zspace {name} result (format {ANALYSIS_FORMAT}); {redo}"
        )
    return record, arrays
