"""One sweep run in a worker process with its share of the cores (``sweep --jobs N``).

Kept apart from the flow's other modules so that a spawned worker sets its thread
limits (torch, BLAS/OpenMP through threadpoolctl, ``OMP_NUM_THREADS`` for
openTSNE) before anything heavy is imported.
"""

from __future__ import annotations

import os
from typing import Any


def work(config: dict[str, Any], run_dir: str, plan: Any, threads: int, name: str) -> str | None:
    """Run every stage of one sweep run; None on success, else the user error's line."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    from zspace.config import config_from_dict
    from zspace.core.errors import ZspaceError
    from zspace.core.progress import progress
    from zspace.flow.stages import run_stages

    torch.set_num_threads(threads)

    def log(line: str) -> None:
        print(f"[{name}] {line}", flush=True)

    with threadpool_limits(limits=threads), progress(False):
        try:
            run_stages(config_from_dict(config), run_dir, plan, log=log)
        except ZspaceError as exc:
            return str(exc)
    return None
