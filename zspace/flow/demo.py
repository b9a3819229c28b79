"""The demo: a small AE and a small VAE on the built-in digits, then their reports.

Two plans of the stage runner (``flow.stages``): each run is trained, its training
split encoded, every analysis run with sizes suited to the 1,617 training digits,
random points decoded (N(0, I) and fitted samplers) with their meaningful-point
rates and evaluation, and its report.html written; then a comparison page: a
minute or two on 2 cores. Called again, it skips what is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zspace.config import load_config
from zspace.core.progress import progress as switch
from zspace.flow.stages import plan_from, run_stages
from zspace.flow.training import Log, say
from zspace.reporting.api import compare
from zspace.runs.run import Run, load_run

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
KINDS = {"ae": ["model.variational=false"], "vae": ["model.variational=true", "model.fact=1.0"]}


def demo(
    out: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    log: Log = print,
    progress: bool | None = None,
) -> dict[str, Run]:
    """Train, analyse and report the demo AE and VAE into ``out/ae`` and ``out/vae``,
    then ``out/compare.html``; returns both runs."""
    out, log = Path(out), say(log)
    extra = [f"train.epochs={epochs}"] if epochs else []
    pages = {}
    with switch(progress):
        for kind, settings in KINDS.items():
            log(f"== demo {kind.upper()} ==")
            cfg = load_config(None, DEMO_SETTINGS + settings + extra)
            pages[kind] = run_stages(cfg, out / kind, plan_from(DEMO_ANALYSIS), log=log)
        pages["compare"] = compare([out / kind for kind in KINDS], out, log=None)
    runs = {kind: load_run(out / kind) for kind in KINDS}
    log("demo runs:")
    for kind, run in runs.items():
        log(f"  {kind}: {run.path}")
    log("reports:")
    for kind, page in pages.items():
        log(f"  {kind}: {page}")
    return runs
