"""The whole sequence for one run: train -> encode -> analyze -> generate -> report.

``default_samples`` is the generation set every report gets (pipeline and demo):
grids from N(0, I) and the two fitted samplers, reconstructions with the split's
metrics, and the meaningful-point rate of those samplers, so a reader sees at once
whether random points decode to images and how often.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from zspace.analysis.api import analyze
from zspace.core.progress import progress as progress_switch
from zspace.evaluation.api import evaluate
from zspace.flow.training import train
from zspace.generation.api import generate, meaningful_rates, reconstructions
from zspace.latents.encode import encode
from zspace.reporting.api import report
from zspace.runs.run import as_run

REPORT_SAMPLERS = ("normal", "gauss", "gmm")


def default_samples(
    run: Any, *, n_rate: int = 1000, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Grids, reconstructions and rates for the report (needs the encoded training
    latents). Uniform boxes and paths stay on ``zspace generate``."""
    run = as_run(run)
    return {
        "grids": generate(run, REPORT_SAMPLERS, log=log),
        "reconstructions": reconstructions(run, log=log),
        "rates": meaningful_rates(run, REPORT_SAMPLERS, n=n_rate, log=log),
    }


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
    """train -> encode -> analyze -> generate (grids, reconstructions, rates) -> evaluate
    -> report; returns report.html."""
    with progress_switch(None if progress else False):
        run = train(
            config, run_dir=run_dir, overrides=list(overrides or []), log=log, progress=progress
        )
        encode(run, "train", log=log)
        analyze(run, split="train", only=only, log=log, **(analysis or {}))
        default_samples(run, log=log)
        evaluate(run, REPORT_SAMPLERS, log=log, progress=progress)
        return report(run, log)
