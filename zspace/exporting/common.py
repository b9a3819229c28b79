"""What every export format shares: optional imports, the output folder, staged writes.

Each format writes its files into a hidden staging folder beside the output folder
and then renames them into place one by one, so a crash or a bad input never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from zspace.core.errors import ZspaceError


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency or raise the one-line error naming its extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        name = exc.name or module
        raise ZspaceError(
            f"{what} needs the {name.split('.')[0]} package: pip install 'zspace[{extra}]'"
        ) from None


def check_out_dir(out: str | Path) -> Path:
    """The output folder, refused when it is a file or a run folder (its config would be
    overwritten)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ZspaceError(f"--out {out} is a file, not a folder")
    if (out / "checkpoints").is_dir():
        raise ZspaceError(f"--out {out} is a run folder; export into a folder of its own")
    return out


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A hidden staging folder beside ``out``, removed afterwards whatever happened (with
    the parent folders it had to create, when nothing was published into them)."""
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in made:  # deepest first; only the empty ones
            try:
                folder.rmdir()
            except OSError:
                break


def publish(stage: Path, out: Path, files: Sequence[str]) -> None:
    """Rename the finished files into ``out`` in the given order (each rename is atomic)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in files:
        src = stage / name
        os.chmod(src, 0o666 & ~_umask())  # give the usual mode whoever wrote the file
        os.replace(src, out / name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def quiet(fn: Callable, *args, **kwargs):
    """Call ``fn`` with library warnings and info logs silenced (exporters are chatty)."""
    import logging
    import warnings

    names = ("torch.onnx", "torch.export", "onnxscript", "tensorboard")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
