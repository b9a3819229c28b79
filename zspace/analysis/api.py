"""The Python face of the analysis stage: ``analyze`` a run's saved latents.

``run`` may be a run folder (str or Path) or a loaded ``Run``; results are also
written to the run folder, so the CLI and notebooks see the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zspace.core.errors import ZspaceError
from zspace.runs.run import run_path


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
    return run_analyses(run_path(run), split, only, params, log)
