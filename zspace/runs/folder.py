"""The run folder: config, meta, history, and its one writer. Every stage reads and
writes here."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zspace.config import Config, config_from_dict, read_toml, to_toml
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json, atomic_write_text, locked, read_json, read_text

if TYPE_CHECKING:
    from zspace.data import ImageData

META_FORMAT = 1
HISTORY_KEYS = (
    "epoch", "total", "reco", "kl", "kl_raw",
    "val_total", "val_reco", "val_kl", "lr", "seconds",
)  # fmt: skip


LOCK_FILE = ".writer.lock"  # present while a command changes the run's model (or left by a kill)
_HELD: set[Path] = set()  # the run folders this process holds


@contextlib.contextmanager
def writer_lock(run: Path) -> Iterator[None]:
    """One writer of a run's model at a time (train, resume): a second one, in any
    process, is refused in one line naming the holder's pid. The lock is a ``flock``
    on ``RUN/.writer.lock``, so a killed holder's lock is free again; the file goes
    when released, and the folders the lock created go too while they are still empty
    (a refused or failed fresh run leaves nothing). Held again by its holder, it nests.
    Commands that add results (encode, analyze, generate, evaluate, report) never take
    it: their shared files go through ``core.fileio.update_json``."""
    key = Path(run).absolute()
    if key in _HELD:
        yield
        return
    created = [p for p in (run, *run.parents) if not p.exists()]  # innermost first
    busy = (
        f"run folder {run} is in use: process {{pid}} is training it (one train or resume "
        "per folder at a time); wait for it to finish or choose another --out"
    )
    try:
        with locked(run / LOCK_FILE, busy=busy, remove=True):
            _HELD.add(key)
            try:
                yield
            finally:
                _HELD.discard(key)
    finally:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


def default_run_dir(variational: bool, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{'vae' if variational else 'ae'}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def check_new_run_dir(run: Path) -> None:
    """A new run's folder (train, import): absent or empty (a dead writer's lock aside)."""
    if run.is_dir() and any(p.name != LOCK_FILE for p in run.iterdir()):
        if (run / "config.toml").is_file() and not (run / "checkpoints" / "last.pt").is_file():
            raise ZspaceError(
                f"run folder {run} holds a run that stopped before its first checkpoint; "
                "delete it or pick another --run-dir"
            )
        raise ZspaceError(
            f"run folder {run} is not empty; pick another --run-dir or resume it with --resume"
        )


def data_meta(variational: bool, data: ImageData, splits: dict[str, Any]) -> dict[str, Any]:
    """What meta.json says of a new run's model kind and data (the report's data section)."""
    from zspace.data import input_shape_of
    from zspace.data.quality import image_checks

    return {
        "kind": "vae" if variational else "ae",
        "input_shape": list(input_shape_of(data)),
        "data": {**data.describe(), **image_checks(data.images)},
        "splits": {k: int(len(v)) for k, v in splits.items()},
    }


def write_config(run: Path, cfg: Config) -> None:
    atomic_write_text(run / "config.toml", to_toml(cfg))


def run_file(run: Path, name: str) -> Path:
    """``run/name``, one of the files every run folder has (config.toml, meta.json); a
    folder without it is refused in one line (every command and page says it so)."""
    if not (path := Path(run) / name).is_file():
        raise ZspaceError(f"{run} is not a zspace run folder (no {name})")
    return path


def read_config(run: Path) -> Config:
    return config_from_dict(read_toml(run_file(run, "config.toml")))


def write_meta(run: Path, meta: dict[str, Any]) -> None:
    import torch

    from zspace._version import __version__

    full = {
        "format": META_FORMAT,
        "zspace": __version__,
        "torch": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **meta,
    }
    atomic_write_json(run / "meta.json", full)


def read_meta(run: Path) -> dict[str, Any]:
    run_file(run, "config.toml")
    meta = read_json(path := run_file(run, "meta.json"))
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ZspaceError(f"{path}: unsupported run format {found!r}")
    return meta


def origin_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The origin record of an imported run; None for zspace's own."""
    origin = meta.get("origin")
    return origin if isinstance(origin, dict) and origin.get("kind") != "zspace" else None


NO_HISTORY = "imported: no training history"


def origin_text(meta: dict[str, Any]) -> str:
    """``zspace``, ``factory MODULE:FUNCTION``, ``pythae VAE``, ``diffusers AutoencoderKL
    (scaling_factor ...)``: what the report and compare show."""
    from zspace.models.wrapped import FAMILIES

    origin = origin_of(meta)
    if origin is None:
        return "zspace"
    family = FAMILIES.get(str(origin.get("kind")))
    return f"factory {origin.get('factory', '?')}" if family is None else family.describe(origin)


def latent_shape(run: Path) -> tuple[int, ...]:
    """The latent's own shape from the folder's files, without building the model."""
    origin = origin_of(read_meta(run))
    return tuple(origin["latent_shape"]) if origin else (read_config(run).model.z_dim,)


def read_history(run: Path) -> list[dict[str, Any]]:
    path = run / "history.jsonl"
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ZspaceError(f"{path}: line {n} is not valid JSON") from None
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                raise ZspaceError(f"{path}: line {n} is not a history row (no epoch)")
            rows.append(row)
    return rows


def write_history(run: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(run / "history.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
