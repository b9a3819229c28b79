"""``zspace.export(run, format=...)``: what ``zspace export RUN --format ...`` calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.core.checks import PATH, check_hooks, check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import undo_on_error
from zspace.core.progress import progress as progress_switch
from zspace.exporting.common import check_out_dir

if TYPE_CHECKING:
    from zspace.runs.run import RunLike

FORMATS = ("projector", "safetensors", "onnx")


def export(
    run: RunLike,
    format: str = "projector",
    out: str | Path | None = None,
    *,
    split: str | None = None,
    n: int | None = None,
    colour_by: str | None = None,
    checkpoint: str | int = "best",
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> Path:
    """Write ``run`` (a folder, bundle or Run) in ``format`` into ``out`` and return it.

    projector: tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt of a
    seeded subsample of ``n`` points (default 10,000; 0 = all) of ``split`` (default
    train). safetensors: a bundle ``zspace.load_run`` opens. onnx: encoder.onnx and
    decoder.onnx. ``split``, ``n`` and ``colour_by`` apply to the projector only.
    All or nothing: when a file cannot be written, those written before are undone.
    """
    check_type("out", out, (*PATH, type(None)), "a folder (str or Path) or None")
    for name, value in (("split", split), ("colour_by", colour_by)):
        check_type(name, value, (str, type(None)), "a name or None")
    check_type("n", n, (int, type(None)), "an integer or None")
    check_hooks(log, progress)
    if format not in FORMATS:
        raise ZspaceError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    given = {"--split": split, "--count": n, "--colour-by": colour_by}
    if extra := [k for k, v in given.items() if v is not None and format != "projector"]:
        raise ZspaceError(f"{extra[0]} applies to --format projector only")
    from zspace.runs.run import Run, load_run  # torch only when a run is exported

    if not isinstance(run, Run):
        run = load_run(run, checkpoint=checkpoint)
    # default RUN/export/<format>/: one folder per format, so a bundle never carries a sprite
    target = check_out_dir(out if out is not None else Path(run.path) / "export" / format)
    started = time.perf_counter()
    with progress_switch(progress), undo_on_error():
        if format == "projector":
            from zspace.exporting.projector import DEFAULT_N, write_projector

            files, info = write_projector(
                run, target, split=split or "train", n=DEFAULT_N if n is None else n,
                colour_by=colour_by, log=log,
            )  # fmt: skip
            what = (
                f"{info['points']:,} of {info['of']:,} {split or 'train'} points "
                f"({info['vector']}, d={info['z_dim']}), sprite {info['sprite'][0]}x"
                f"{info['sprite'][1]} px of {info['tile']} px tiles"
            )
        elif format == "safetensors":
            from zspace.runs.bundle import write_bundle

            files = write_bundle(run, target, checkpoint)
            what = f"epoch {run.epoch} weights + config; open with zspace.load_run"
        else:
            from zspace.exporting.onnx_export import write_onnx

            files, diffs = write_onnx(run, target, seed=run.config.seed)
            worst = max(diffs.values())
            what = f"dynamic batch; onnxruntime matches PyTorch to {worst:.1e}"
    if log:
        secs = time.perf_counter() - started
        log(f"exported {format} to {target} ({', '.join(files)}): {what} [{secs:.1f} s]")
    return target
