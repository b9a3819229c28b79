"""Checkpoints: plain dicts of tensors, numbers and strings, safe to load.

Each epoch writes ``epoch-NNNN.pt`` (the newest ``keep`` are kept), ``last.pt`` and,
when validation improved, ``best.pt``. Files are written atomically, and loading
uses ``weights_only=True`` so a checkpoint can never unpickle arbitrary objects.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, make_dirs

FORMAT = 1
EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.pt$")


def epoch_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:04d}.pt"


def epoch_files(folder: Path) -> dict[int, Path]:
    """Epoch checkpoints in ``folder`` by epoch number, in order."""
    found = [EPOCH_FILE.match(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return dict(sorted((int(m[1]), folder / m[0]) for m in found if m))


def save_checkpoint(
    folder: Path, state: dict[str, Any], *, epoch: int, keep: int, is_best: bool
) -> None:
    """Serialise once, write the epoch file, ``last.pt`` and maybe ``best.pt``, then prune."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "epoch": epoch, **state}, buffer)
    data = buffer.getvalue()
    make_dirs(folder)
    # best before last: a crash in between resumes from the previous last.pt and
    # redoes this epoch identically, so best.pt never lags behind the state's "best"
    if keep > 0:
        atomic_write_bytes(epoch_path(folder, epoch), data)
    if is_best:
        atomic_write_bytes(folder / "best.pt", data)
    atomic_write_bytes(folder / "last.pt", data)
    files = epoch_files(folder)
    for old in [e for e in files if e > epoch]:  # a resumed run overwrote this future
        files.pop(old).unlink()
    for _, path in list(files.items())[: max(0, len(files) - keep)]:
        path.unlink()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse anything else with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise ZspaceError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol: refused below anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the refused global ("Unsupported global") for pickled objects;
        # anything else (bad opcodes, truncation) is plain corruption.
        if "global" not in str(exc).lower():
            raise _corrupt(path, exc) from None
        raise ZspaceError(
            f"checkpoint {path} holds pickled Python objects, not plain tensors; refused "
            "(loading it could run arbitrary code)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _corrupt(path, exc) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise ZspaceError(f"checkpoint {path} is not a zspace checkpoint (format {FORMAT})")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ZspaceError(f"checkpoint {path} is damaged: its epoch {epoch!r} is not a count")
    return state


def _corrupt(path: Path, exc: BaseException) -> ZspaceError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return ZspaceError(f"checkpoint {path} is unreadable or corrupt: {first}")


def resolve_checkpoint(folder: Path, which: str | int) -> Path:
    """``best``, ``last`` or an epoch number to a file, with a clear error when missing."""
    if isinstance(which, int) or (isinstance(which, str) and which.isdigit()):
        path = epoch_path(folder, int(which))
        if not path.is_file():
            have = ", ".join(str(e) for e in epoch_files(folder)) or "none"
            raise ZspaceError(
                f"no checkpoint for epoch {int(which)} in {folder} (epochs kept: {have})"
            )
        return path
    if which not in ("best", "last"):
        raise ZspaceError(f"checkpoint {which!r}: expected best, last or an epoch number")
    path = folder / f"{which}.pt"
    if not path.is_file():
        raise ZspaceError(
            f"no {which}.pt in {folder}: the run has no finished epoch (it stopped before "
            "its first checkpoint); delete the run folder and train again"
        )
    return path


def check_fits_model(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint whose tensors do not fit ``model`` (built from the run's config),
    naming the first mismatch, before ``load_state_dict`` prints a page of them."""
    have = state.get("model")
    if not isinstance(have, dict):
        raise ZspaceError(f"checkpoint {path} is not a zspace checkpoint (no model weights)")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, shape in want.items():
        got = have.get(key)
        if not isinstance(got, torch.Tensor):
            problem = f"it has no tensor {key}"
        elif tuple(got.shape) != shape:
            problem = f"{key} is {tuple(got.shape)} there but {shape} for the config"
        else:
            continue
        raise ZspaceError(
            f"checkpoint {path} does not fit the run's config ({problem}); was config.toml "
            "edited, or the checkpoint copied from another run?"
        )
    extra = sorted(set(have) - set(want))
    if extra:
        raise ZspaceError(
            f"checkpoint {path} does not fit the run's config (it has tensors the model "
            f"lacks, e.g. {extra[0]})"
        )
