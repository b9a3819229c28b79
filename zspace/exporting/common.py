"""What every export format shares: the output folder, quiet libraries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zspace.core.errors import ZspaceError


def check_out_dir(out: str | Path) -> Path:
    """The output folder, refused when it is a file or a run folder (its config would be
    overwritten)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ZspaceError(f"--out {out} is a file, not a folder")
    if (out / "checkpoints").is_dir():
        raise ZspaceError(f"--out {out} is a run folder; export into a folder of its own")
    return out


def quiet(fn: Callable, *args, **kwargs):
    """Call ``fn`` with library warnings, info logs and stderr prints silenced (exporters
    are chatty: torch.export prints the partial graph of a model it fails on; the failure
    itself still raises)."""
    import contextlib
    import io
    import logging
    import warnings

    names = ("torch.onnx", "torch.export", "onnxscript", "tensorboard")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
