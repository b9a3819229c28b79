"""The demo: a small AE and a small VAE on the built-in digits, then their reports.

Trains both runs, encodes their training split, runs every analysis with sizes
suited to the 1,617 training digits, decodes random points (N(0, I) and fitted
samplers) with their meaningful-point rates, writes each run's report.html and a
comparison page: a minute or two on 2 cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zspace.analysis.api import analyze
from zspace.config import load_config
from zspace.core.progress import progress as progress_switch
from zspace.evaluation.api import evaluate
from zspace.flow.pipeline import REPORT_SAMPLERS, default_samples
from zspace.flow.training import train
from zspace.latents.encode import encode
from zspace.reporting.api import compare, report
from zspace.runs.run import Run

# Analysis sizes for ~1,600 points of z_dim 8 (the defaults target 170,000 x 256).
DEMO_ANALYSIS: dict[str, Any] = {
    "radius": {"bin_width": 0.2},
    "tsne": {"n": 2000, "perplexity": 30, "n_iter": 500},
    "kmeans": {"k_min": 2, "k_max": 40, "k_step": 2, "sample": 2000, "batch_size": 1024},
}

DEMO_SETTINGS = [
    "data.source=builtin:digits",
    "data.image_size=32",
    "model.z_dim=8",
    "model.encoder_filters=[16, 32, 64]",
    "model.encoder_strides=[2, 2, 2]",
    "train.epochs=12",
    "train.batch_size=64",
    "train.lr=1e-3",
]


def demo(
    out: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Run]:
    """Train the demo AE and VAE into ``out/ae`` and ``out/vae``; returns both runs."""
    out = Path(out)
    extra = [f"train.epochs={epochs}"] if epochs else []
    runs = {}
    for kind, settings in (
        ("ae", ["model.variational=false"]),
        ("vae", ["model.variational=true", "model.fact=1.0"]),
    ):
        cfg = load_config(None, DEMO_SETTINGS + settings + extra)
        log(f"== demo {kind.upper()} ==")
        runs[kind] = train(cfg, run_dir=out / kind, log=log, progress=progress)
    pages = {}
    for kind, run in runs.items():
        log(f"== analysis {kind.upper()} ==")
        with progress_switch(None if progress else False):
            encode(run, "train", log=log)
            analyze(run, split="train", log=log, **DEMO_ANALYSIS)
            default_samples(run, log=log)
            evaluate(run, REPORT_SAMPLERS, log=log, progress=progress)
        pages[kind] = report(run)
    pages["compare"] = compare([runs["ae"].path, runs["vae"].path], out)
    log("demo runs:")
    for kind, run in runs.items():
        log(f"  {kind}: {run.path}")
    log("reports:")
    for kind, page in pages.items():
        log(f"  {kind}: {page}")
    return runs
