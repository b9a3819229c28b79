"""One training run across processes: torchrun's environment, the process group, and
how the processes agree.

``torchrun`` (or ``srun torchrun``) starts one process per device and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
``session()`` reads them and opens the process group: gloo for CPU tensors and
NCCL for CUDA tensors ("cpu:gloo,cuda:nccl" where CUDA exists), so the small
status and metric exchanges work whatever device trains. Without those variables
(one plain process) nothing here does anything.

Errors. A user error must end every process with one line, never a hang:
``Dist.agree`` is a collective every process reaches at fixed points (after
setup, after each epoch's checkpoint); when any process failed, all of them raise,
the lowest failing rank's message is printed once (by rank 0) and the others
stay quiet. There is no barrier on the way out. A NaN needs no agreement: the
loss terms are summed across processes before the check, so every process sees
the same numbers and stops at the same batch.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as torch_dist

from zspace.core.errors import ZspaceError, first_line

T = TypeVar("T")


class PeerFailed(ZspaceError):
    """Raised on the processes that did not fail themselves when another one did."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world_size``, ``local_rank`` on
    its node. ``enabled`` when a process group is open (even of one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder, logs and shows the progress bar."""
        return self.rank == 0

    @classmethod
    def current(cls) -> Dist:
        """The open process group, or one plain process."""
        if not (torch_dist.is_available() and torch_dist.is_initialized()):
            return SINGLE
        rank = torch_dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return cls(rank, torch_dist.get_world_size(), local, enabled=True)

    # ------------------------------------------------------------ devices

    def device(self, device: torch.device) -> torch.device:
        """The device this process trains on: its own GPU (``cuda:LOCAL_RANK``) under DDP."""
        if not self.enabled:
            return device
        if device.type == "cuda":
            count = torch.cuda.device_count()
            if self.local_rank >= count:
                raise ZspaceError(
                    f"process {self.rank} has LOCAL_RANK {self.local_rank} but this node has "
                    f"{count} CUDA device(s): start at most {count} processes per node "
                    "(torchrun --nproc-per-node)"
                )
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        if device.type != "cpu":
            raise ZspaceError(
                f"train.device = {device.type!r}: distributed training runs on CUDA (NCCL) "
                "or CPU (gloo); use one process on this device"
            )
        return device

    # ------------------------------------------------------------ collectives

    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the processes, in place."""
        if self.enabled and self.world_size > 1:
            torch_dist.all_reduce(tensor)
        return tensor

    def all_gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (small picklable values only)."""
        if not (self.enabled and self.world_size > 1):
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def agree(self, error: BaseException | None) -> None:
        """Collective: return when no process failed; otherwise raise on every process.

        The failing process with the lowest rank names the error. Rank 0 raises it
        (its own exception when it failed itself, else a ``ZspaceError`` naming the
        rank) and is the one the CLI prints; the others raise quietly. A process's own
        non-user error (a bug) is re-raised as it was, traceback and all.
        """
        if not (self.enabled and self.world_size > 1):
            if error is not None:
                raise error
            return
        failed = torch.tensor([0 if error is None else 1], device=_flag_device())
        torch_dist.all_reduce(failed)
        if int(failed) == 0:
            return
        notes = self.all_gather(None if error is None else _describe(error))
        first = min(r for r, note in enumerate(notes) if note is not None)
        if error is None:
            error = PeerFailed(notes[first] if first == 0 else f"rank {first}: {notes[first]}")
        error.agreed = True  # type: ignore[attr-defined]
        if isinstance(error, ZspaceError):
            error.quiet = not self.is_main
        raise error

    def agreed(self, fn: Callable[[], T]) -> T:
        """``fn()`` on every process, then ``agree`` on whether any of them failed."""
        try:
            out = fn()
        except Exception as exc:
            if getattr(exc, "agreed", False):
                raise
            self.agree(exc)
            raise
        self.agree(None)
        return out


SINGLE = Dist()


def _flag_device() -> torch.device:
    """Where a status flag can be all-reduced: the CPU (gloo, also beside NCCL), or the
    current GPU in a group a caller opened with NCCL alone."""
    if "gloo" in str(torch_dist.get_backend()):
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def _describe(error: BaseException) -> str:
    if isinstance(error, ZspaceError):
        return str(error)
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return f"failed with {last}"


@contextlib.contextmanager
def session() -> Iterator[Dist]:
    """The run's process group: the one already open, or one opened from torchrun's
    environment (and closed again on the way out), or none for one plain process."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        yield Dist.current()
        return
    try:  # WORLD_SIZE as torchrun sets it (1 without it)
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ZspaceError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None
    if world <= 1:
        yield SINGLE
        return
    if not torch_dist.is_available():
        raise ZspaceError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ZspaceError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: "
            "start distributed training with torchrun"
        )
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    try:
        torch_dist.init_process_group(backend=backend)
    except (RuntimeError, ValueError) as exc:  # rendezvous failed: address, port, timeout
        first = first_line(exc)
        raise ZspaceError(
            f"cannot open the process group ({backend}, rank {os.environ['RANK']} of "
            f"{os.environ['WORLD_SIZE']} at {os.environ['MASTER_ADDR']}:"
            f"{os.environ['MASTER_PORT']}): {first}"
        ) from None
    try:
        yield Dist.current()
    finally:
        torch_dist.destroy_process_group()


def quiet_log(_message: str) -> None:
    """The log of every process but rank 0."""
