"""The Python face of reporting: one run's page and several runs side by side.

``run`` may be a run folder or a loaded Run; pages are built from the files in the
run folder only (no analysis is recomputed here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zspace.runs.run import run_path


def report(run: Any, log: Callable[[str], None] | None = None) -> Path:
    """Write ``RUN/report.html`` (self-contained) from the saved results; returns its path."""
    from zspace.reporting.report import build_report

    return build_report(run_path(run), log)


def compare(runs: Sequence[Any], out: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``out/compare.html`` with the runs side by side; returns its path."""
    from zspace.reporting.compare import build_compare

    return build_compare([run_path(r) for r in runs], out, log)
