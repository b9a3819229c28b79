"""The run folder: config, meta, history, and its one writer. Every stage reads and
writes here."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zspace.config import Config, config_from_dict, read_toml, to_toml
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json, atomic_write_text, locked, read_json, read_text

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


def write_config(run: Path, cfg: Config) -> None:
    atomic_write_text(run / "config.toml", to_toml(cfg))


def read_config(run: Path) -> Config:
    path = run / "config.toml"
    if not path.is_file():
        raise ZspaceError(f"{run} is not a zspace run folder (no config.toml)")
    return config_from_dict(read_toml(path))


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
    path = run / "meta.json"
    if not path.is_file():
        raise ZspaceError(f"{run} is not a zspace run folder (no meta.json)")
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ZspaceError(f"{path}: unsupported run format {found!r}")
    return meta


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
