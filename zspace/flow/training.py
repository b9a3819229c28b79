"""Training as users call it: the loggers named in ``train.log`` wired as callbacks.

``zspace.training.train_run`` knows only the Callback interface; the backends live in
later stages (TensorBoard in ``zspace.exporting``), so the flow builds them from the
resolved config and hands them down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from zspace.config import Config
from zspace.core.checks import check_type
from zspace.runs.run import Run
from zspace.training import Callback, train_run

Log = Callable[[str], None] | None


def say(log: Log) -> Callable[[str], None]:
    """``log``, or (None) a function that drops the line."""
    return log or (lambda _: None)


def logger_callbacks(cfg: Config) -> list[Callback]:
    """One callback per backend in ``cfg.train.log`` (validated by the config)."""
    out: list[Callback] = []
    for name in cfg.train.log:
        if name == "tensorboard":
            from zspace.exporting.tensorboard import TensorBoardLogger

            out.append(TensorBoardLogger())
    return out


def train(
    config: Config | str | Path | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool | int | str = False,
    overrides: list[str] | None = None,
    data: Any = None,
    labels: Any = None,
    label_names: Any = None,
    callbacks: Iterable[Callback] = (),
    log: Log = print,
    progress: bool | None = None,
) -> Run:
    """Train a model and return its Run (see ``zspace.training.train_run``), with
    the loggers of ``train.log`` added to ``callbacks``."""
    check_type("callbacks", callbacks, (list, tuple), "a list of Callbacks")
    extra = list(callbacks)
    return train_run(
        config, run_dir=run_dir, resume=resume, overrides=overrides, data=data, labels=labels,
        label_names=label_names, callbacks=lambda cfg: logger_callbacks(cfg) + extra, log=log,
        progress=progress,
    )  # fmt: skip
