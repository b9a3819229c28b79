"""The Python API of the analysis stage: encode, analyze, report, compare, pipeline.

``run`` may be a run folder (str or Path) or a loaded ``Run``; results are also
written to the run folder, so the CLI and notebooks see the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from zspace.errors import ZspaceError


def _dir(run: Any) -> Path:
    path = Path(getattr(run, "path", run))
    if not path.is_dir():
        raise ZspaceError(f"run folder not found: {path}")
    return path


def encode(
    run: Any,
    split: str = "train",
    eps_scale: float | None = None,
    batch_size: int = 512,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Encode a whole split into ``RUN/latents/<split>.npz``; returns the file's path."""
    from zspace.latents import encode_split

    if not hasattr(run, "model"):
        _dir(run)
    return encode_split(run, split, eps_scale=eps_scale, batch_size=batch_size, log=log)


def analyze(
    run: Any,
    split: str = "train",
    only: Iterable[str] | str | None = None,
    log: Callable[[str], None] | None = None,
    **params: dict[str, Any],
) -> dict[str, Any]:
    """Run analyses on the saved latents and save ``RUN/analysis/<name>.json`` + ``.npz``.

    ``only`` picks analyses (default: all that apply); keyword arguments give
    parameters per analysis, e.g. ``analyze(run, radius={"bin_width": 0.05},
    tsne={"n": 5000, "perplexity": 10})``. Returns {name: result object}.
    """
    from zspace.analysis.runner import run_analyses

    if isinstance(only, str):
        only = [s for s in only.split(",") if s]
    for name, value in params.items():
        if not isinstance(value, dict):
            raise ZspaceError(f"analyze({name}=...): expected a dict of parameters")
    return run_analyses(_dir(run), split, only, params, log)


def report(run: Any, log: Callable[[str], None] | None = None) -> Path:
    """Write ``RUN/report.html`` (self-contained) from the saved results; returns its path."""
    from zspace.reporting.html import build_report

    return build_report(_dir(run), log)


def compare(runs: Sequence[Any], out: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``out/compare.html`` with the runs side by side; returns its path."""
    from zspace.reporting.compare import build_compare

    return build_compare([_dir(r) for r in runs], out, log)


def pipeline(
    config: Any,
    overrides: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
    *,
    analysis: dict[str, dict[str, Any]] | None = None,
    only: Iterable[str] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """train -> encode -> analyze -> generate (grids, reconstructions, rates) -> report;
    returns report.html."""
    from zspace.training import train

    run = train(
        config, run_dir=run_dir, overrides=list(overrides or []), log=log, progress=progress
    )
    encode(run, "train", log=log)
    analyze(run, "train", only=only, log=log, **(analysis or {}))
    from zspace.generation.api import default_samples

    default_samples(run, log=log)
    return report(run, log)
