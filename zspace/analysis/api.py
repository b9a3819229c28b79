"""The Python face of the analysis stage: ``analyze`` a run's saved latents.

``run`` may be a run folder (str or Path) or a loaded ``Run``; results are also
written to the run folder, so the CLI and notebooks see the same files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from zspace.analysis.common import AnalysisResult
from zspace.analysis.runner import ANALYSES, check_names, make_params, save_result, split_name
from zspace.core.checks import check_hooks, check_type
from zspace.core.errors import ZspaceError
from zspace.latents.store import load_latents
from zspace.runs.run import RunLike, run_path


def analyze(
    run: RunLike,
    *,
    split: str = "train",
    only: Iterable[str] | str | None = None,
    log: Callable[[str], None] | None = print,
    **params: dict[str, Any],
) -> dict[str, AnalysisResult]:
    """Run analyses on the saved latents and save ``RUN/analysis/<name>.json`` + ``.npz``.

    ``only`` picks analyses (default: every one that applies, plus each variant
    ``NAME@LABEL`` named in the parameters); keyword arguments give parameters per
    analysis, e.g. ``analyze(run, radius={"bin_width": 0.05}, tsne={"n": 5000,
    "perplexity": 10})``. Progress bars follow the caller's switch (``zspace.core.progress``;
    the keywords here are the analyses'). Returns {name: result object}.
    """
    check_type("split", split, str, "a split name (train, valid, test)")
    check_type("only", only, (str, list, tuple, type(None)), "analysis names or None", each=str)
    check_hooks(log)
    if isinstance(only, str):
        only = [s for s in only.split(",") if s]
    for name, value in params.items():
        if not isinstance(value, dict):
            raise ZspaceError(f"analyze({name}=...): expected a dict of parameters")
    run_dir = run_path(run)
    lat = load_latents(run_dir, split)
    extra = [n for n in check_names(params) if split_name(n)[1] is not None]
    names = check_names(only if only is not None else [*ANALYSES, *extra])
    for n in names:
        if only is not None and ANALYSES[split_name(n)[0]].needs_vae and not lat.variational:
            raise ZspaceError(f"the {n} analysis needs a VAE run; {run_dir} is an AE")
    names = [n for n in names if lat.variational or not ANALYSES[split_name(n)[0]].needs_vae]
    prepared = {n: make_params(n, params.get(n), lat.seed) for n in names}
    results = {}
    for name in names:
        started = time.perf_counter()
        result = ANALYSES[split_name(name)[0]].compute(lat, prepared[name])
        secs = time.perf_counter() - started
        path = save_result(run_dir, name, split, prepared[name], result, secs)
        if log:
            log(f"{name:7s} {secs:7.1f} s  {result.summary()}")
            log(f"        -> {path}")
        results[name] = result
    return results
