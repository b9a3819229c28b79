"""``RUN/samples/index.json``: the list of generated files the report shows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zspace.core.fileio import sha256_of, update_json
from zspace.generation.images import write_grid
from zspace.generation.results import SampleImage


def samples_dir(run: Any) -> Path:
    return Path(run.path) / "samples"


def update_index(run: Any, entries: Sequence[dict[str, Any]]) -> None:
    """Append entries to samples/index.json, replacing older ones for the same file
    (under the file's lock: two commands at once both keep their entries)."""
    folder = samples_dir(run)
    files = {e["file"] for e in entries}
    # each entry names its file's sha256, so the report never shows a grid rewritten by
    # a command that was killed before it could update this index under an old caption
    fresh = [
        {**e, "sha256": sha256_of(folder / e["file"]) if (folder / e["file"]).is_file() else None}
        for e in entries
    ]

    def change(old: Any) -> list[dict[str, Any]]:
        kept = [e for e in old if isinstance(e, dict)] if isinstance(old, list) else []
        return [e for e in kept if e.get("file") not in files] + fresh

    update_json(folder / "index.json", change)


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
) -> SampleImage:
    """Write a grid PNG under samples/, list it in index.json at once (a later failure
    keeps it), log it, and return it as a SampleImage."""
    write_grid(samples_dir(run) / file, rows, cols)  # the caption goes to the index only
    item = SampleImage(file, kind, sampler, params, caption, folder=samples_dir(run))
    update_index(run, [item.to_dict()])
    if log:
        log(f"{file}: {caption}")
    return item
