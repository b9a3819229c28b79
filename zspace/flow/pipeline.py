"""The whole sequence for one run, as a plan of the stage runner (``flow.stages``):
train -> encode -> analyze -> generate -> evaluate -> report.

``default_samples`` is the generation set every report gets (the plans' defaults):
grids from N(0, I) and the two fitted samplers, reconstructions with the split's
metrics, and the meaningful-point rate of those samplers, so a reader sees at once
whether random points decode to images and how often.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zspace.config import Config
from zspace.core.progress import progress as switch
from zspace.flow.stages import GRIDS, RATES, RECON, plan_from, run_stages
from zspace.flow.training import Log
from zspace.generation.api import generate, meaningful_rates, reconstructions
from zspace.runs.folder import default_run_dir
from zspace.runs.run import RunLike, as_run
from zspace.training.trainer import resolve_config


def default_samples(run: RunLike, *, n_rate: int = 1000, log: Log = None) -> dict[str, Any]:
    """Grids, reconstructions and rates for the report (needs the encoded training
    latents). Uniform boxes and paths stay on ``zspace generate``."""
    run = as_run(run)
    return {
        "grids": generate(run, log=log, **GRIDS),
        "reconstructions": reconstructions(run, log=log, **RECON),
        "rates": meaningful_rates(run, log=log, **{**RATES, "n": n_rate}),
    }


def pipeline(
    config: Config | str | Path | None,
    overrides: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
    *,
    analysis: Mapping[str, Mapping[str, Any]] | None = None,
    only: Iterable[str] | None = None,
    progress: bool | None = None,
    log: Log = print,
) -> Path:
    """train -> encode -> analyze -> generate (grids, reconstructions, rates) -> evaluate
    -> report into ``run_dir`` (default runs/<time>-<ae|vae>); returns report.html.
    Called again on the same folder, it resumes or skips what is done."""
    cfg = resolve_config(config, list(overrides or []))
    folder = Path(run_dir) if run_dir is not None else default_run_dir(cfg.model.variational)
    plan = plan_from(analysis or {}, None if only is None else list(only))
    with switch(progress):
        return run_stages(cfg, folder, plan, log=log)
