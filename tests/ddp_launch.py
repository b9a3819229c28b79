"""Start N processes of ``zspace`` the way torchrun does, but cheaply: forked from
the test process (torch already imported), each with torchrun's environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), its own working folder
and its stdout/stderr in files. ``prepare(rank)`` (a module-level function or a
partial of one) runs in the child first, e.g. to break something on one rank.

Where the test process has already initialised CUDA (a GPU machine running the
cuda tests first) a fork could not use torch.cuda, so the children are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Rank:
    code: int | None
    out: str
    err: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(
    rank: int,
    world: int,
    port: int,
    argv: list[str],
    folder: str,
    prepare: Callable[[int], None] | None,
    cwd: str | None,
) -> None:
    code = 1
    out = open(Path(folder) / "stdout", "w")  # noqa: SIM115 - open until os._exit
    err = open(Path(folder) / "stderr", "w")  # noqa: SIM115
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.stdout, sys.stderr = out, err
    try:
        os.chdir(cwd or Path(folder) / "cwd")
        os.environ.update(
            RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        )  # fmt: skip
        import torch

        torch.set_num_threads(1)  # before any torch work in the fork
        if prepare is not None:
            prepare(rank)
        from zspace.cli.main import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        out.flush()
        err.flush()
        os._exit(code)


class Job:
    """The processes of one launch; ``wait()`` collects them, ``kill()`` ends them."""

    def __init__(self, procs, folders: list[Path]) -> None:
        self.procs = procs
        self.folders = folders

    def alive(self) -> bool:
        return any(p.is_alive() for p in self.procs)

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
        for p in self.procs:
            p.join()

    def wait(self, timeout: float = 120.0) -> list[Rank]:
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
        hung = [i for i, p in enumerate(self.procs) if p.is_alive()]
        self.kill()
        out = [
            Rank(
                None if i in hung else p.exitcode,
                (f / "stdout").read_text(),
                (f / "stderr").read_text(),
            )
            for i, (p, f) in enumerate(zip(self.procs, self.folders, strict=True))
        ]
        if hung:
            raise AssertionError(f"ranks {hung} hung: {[r.err[-2000:] for r in out]}")
        return out


def launch(
    argv: Sequence[str] | Callable[[int], Sequence[str]],
    where: Path,
    world: int = 2,
    prepare: Callable[[int], None] | None = None,
    cwd: Path | None = None,
) -> Job:
    # import here what every child needs (the digits come from scikit-learn): the
    # forked children then share it instead of importing it each
    import sklearn.datasets  # noqa: F401
    import torch

    import zspace.cli.main  # noqa: F401
    import zspace.data.sources  # noqa: F401
    import zspace.flow.training  # noqa: F401

    ctx = multiprocessing.get_context("spawn" if torch.cuda.is_initialized() else "fork")
    port = free_port()
    procs, folders = [], []
    for rank in range(world):
        folder = Path(where) / f"rank{rank}"
        (folder / "cwd").mkdir(parents=True, exist_ok=True)
        args = list(argv(rank) if callable(argv) else argv)
        where_to = None if cwd is None else str(cwd)
        p = ctx.Process(
            target=_child, args=(rank, world, port, args, str(folder), prepare, where_to)
        )
        p.start()
        procs.append(p)
        folders.append(folder)
    return Job(procs, folders)


def run(argv, where: Path, world=2, prepare=None, timeout=120.0, cwd=None) -> list[Rank]:
    return launch(argv, where, world, prepare, cwd).wait(timeout)
