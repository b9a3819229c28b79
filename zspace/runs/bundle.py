"""Safetensors bundles: a folder with ``model.safetensors``, config.toml, meta.json.

A bundle is what ``zspace export RUN --format safetensors`` writes: the weights of
one checkpoint with no pickle anywhere (the state dict: plain tensors and a small
string header), the resolved ``config.toml``, the run's ``meta.json`` (plus a
``bundle`` entry saying where and from which checkpoint it came) and
``history.jsonl``, so it can be passed around and opened by ``zspace.load_run``
like a run folder. No optimiser state: a bundle is for using a model, not for
resuming its training.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from zspace._version import __version__
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import atomic_path, atomic_write_bytes, atomic_write_json, read_bytes
from zspace.models.wrapped import weights_of
from zspace.runs.folder import write_config

if TYPE_CHECKING:
    from zspace.runs.run import Run

WEIGHTS_FILE = "model.safetensors"
FORMAT = "zspace-bundle"
FORMAT_VERSION = "1"


def is_bundle(path: str | Path) -> bool:
    """A folder with ``model.safetensors`` and no ``checkpoints/`` (a run folder wins)."""
    path = Path(path)
    return (path / WEIGHTS_FILE).is_file() and not (path / "checkpoints").is_dir()


def read_safetensors(file: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on the CPU, header metadata) of a safetensors file; one line when unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt", device="cpu") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZspaceError(f"{file} is unreadable or corrupt: {first_line(exc)}") from None


def write_safetensors(file: Path, state: dict[str, torch.Tensor], header: dict[str, str]) -> None:
    """Atomically; tensors copied to plain row-major CPU data (channels_last weights are
    not contiguous; tied weights would share memory, which safetensors refuses)."""
    from safetensors.torch import save_file

    plain = {
        k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()
    }
    with atomic_path(file) as tmp:
        save_file(plain, str(tmp), metadata=header)


def read_bundle(path: str | Path, checkpoint: str | int = "best") -> tuple[dict, int]:
    """(state dict on the CPU, epoch) of a bundle; ``checkpoint`` must name what it holds.

    A bundle holds one set of weights; asking for another epoch is an error rather
    than a silent substitute.
    """
    file = Path(path) / WEIGHTS_FILE
    state, info = read_safetensors(file)
    if info.get("format") != FORMAT:
        raise ZspaceError(f"{file} is not a zspace bundle (no format={FORMAT!r} in its header)")
    text = info.get("epoch", "0")
    if not text.isdigit():
        raise ZspaceError(f"{file} is damaged: its header's epoch {text!r} is not a count")
    epoch = int(text)
    held = info.get("checkpoint", "best")
    if str(checkpoint) not in ("best", held, str(epoch)):
        raise ZspaceError(
            f"{path} is a bundle of one checkpoint ({held}, epoch {epoch}); "
            f"it has no checkpoint {checkpoint!r}"
        )
    return state, epoch


def load_weights(
    model: torch.nn.Module, state: dict, file: str | Path, what: str = "its config.toml"
) -> None:
    """Load a state dict, naming the file and the model when it does not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
        raise ZspaceError(f"{file} does not fit the model of {what}: {first}") from None


def model_header(run: Run) -> dict[str, str]:
    """What a file written from a run says about its model (strings, for the headers of
    safetensors and ONNX)."""
    m = run.model
    return {
        "zspace": __version__,
        "kind": "vae" if m.variational else "ae",
        "z_dim": str(run.z_dim),
        "input_shape": ",".join(str(s) for s in m.input_shape),
        "epoch": str(run.epoch),
    }


def write_bundle(run: Run, out: Path, checkpoint: str | int = "best") -> list[str]:
    """Write the bundle's files into ``out``; returns their names, the weights last."""
    write_config(out, run.config)
    meta = {k: v for k, v in run.meta.items() if k != "bundle"}
    meta["bundle"] = {
        "format": FORMAT,
        "format_version": int(FORMAT_VERSION),
        "source_run": str(Path(run.path).resolve()),
        "checkpoint": str(checkpoint),
        "epoch": run.epoch,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(out / "meta.json", meta)
    files = ["config.toml", "meta.json"]
    history = Path(run.path) / "history.jsonl"
    if history.is_file():
        atomic_write_bytes(out / "history.jsonl", read_bytes(history))
        files.append("history.jsonl")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **model_header(run)}
    state = weights_of(run.model).state_dict()
    write_safetensors(out / WEIGHTS_FILE, state, {**header, "checkpoint": str(checkpoint)})
    return [*files, WEIGHTS_FILE]
