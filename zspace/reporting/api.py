"""The Python face of reporting: one run's page and several runs side by side.

Pages are built from the files in the run folder only (no analysis is recomputed
here); a loaded Run stands for its folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from zspace.runs.run import RunLike, run_path


def report(run: RunLike, *, log: Callable[[str], None] | None = print) -> Path:
    """Write ``RUN/report.html`` (self-contained) from the saved results; returns its path."""
    from zspace.reporting.report import build_report

    return build_report(run_path(run), log)


def compare(
    runs: Sequence[RunLike], out: str | Path, *, log: Callable[[str], None] | None = print
) -> Path:
    """Write ``out/compare.html`` with the runs side by side; returns its path."""
    from zspace.reporting.compare import build_compare

    return build_compare([run_path(r) for r in runs], out, log)
