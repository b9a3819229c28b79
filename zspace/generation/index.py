"""``RUN/samples/index.json``: the list of generated files the report shows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json, read_json


def samples_dir(run: Any) -> Path:
    return Path(run.path) / "samples"


def update_index(run: Any, entries: Sequence[dict[str, Any]]) -> Path:
    """Append entries to samples/index.json, replacing older ones for the same file."""
    path = samples_dir(run) / "index.json"
    old: list[dict[str, Any]] = []
    if path.is_file():
        try:
            found = read_json(path)
        except ZspaceError:  # truncated or foreign: rebuilt from what is written now
            found = []
        old = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
    files = {e["file"] for e in entries}
    # each entry names its file's sha256, so the report never shows a grid rewritten by
    # a command that was killed before it could update this index under an old caption
    fresh = [{**e, "sha256": file_sha256(path.parent / e["file"])} for e in entries]
    return atomic_write_json(path, [e for e in old if e.get("file") not in files] + fresh)


def file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def entry(file: str, kind: str, sampler: str, params: dict, caption: str) -> dict[str, Any]:
    return {"file": file, "kind": kind, "sampler": sampler, "params": params, "caption": caption}


def publish(
    run: Any,
    rows: Sequence[Any],
    cols: int,
    file: str,
    kind: str,
    sampler: str,
    params: dict,
    caption: str,
    log: Any = None,
):
    """Write a grid PNG under samples/, list it in index.json at once (a later failure
    keeps it), log it, and return it as a SampleImage."""
    from zspace.generation import grids
    from zspace.generation.results import SampleImage

    grids.write_grid(samples_dir(run) / file, rows, cols)  # the caption goes to the index only
    item = entry(file, kind, sampler, params, caption)
    update_index(run, [item])
    if log:
        log(f"{file}: {caption}")
    return SampleImage.of(item, samples_dir(run))
