"""The demo: a small AE and a small VAE on the built-in digits, about a minute on 2 cores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zspace.config import load_config
from zspace.run import Run
from zspace.training import train

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
    log("demo runs:")
    for kind, run in runs.items():
        log(f"  {kind}: {run.path}")
    return runs
