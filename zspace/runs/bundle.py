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
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_path, atomic_write_bytes, atomic_write_json, read_bytes
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


def read_bundle(path: str | Path, checkpoint: str | int = "best") -> tuple[dict, int]:
    """(state dict on the CPU, epoch) of a bundle; ``checkpoint`` must name what it holds.

    A bundle holds one set of weights; asking for another epoch is an error rather
    than a silent substitute.
    """
    from safetensors import SafetensorError, safe_open

    file = Path(path) / WEIGHTS_FILE
    try:
        with safe_open(str(file), framework="pt", device="cpu") as fh:
            info = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ZspaceError(f"{file} is unreadable or corrupt: {first}") from None
    if info.get("format") != FORMAT:
        raise ZspaceError(f"{file} is not a zspace bundle (no format={FORMAT!r} in its header)")
    epoch = info.get("epoch", "0")
    if not epoch.isdigit():
        raise ZspaceError(f"{file} is damaged: its header's epoch {epoch!r} is not a count")
    epoch = int(epoch)
    held = info.get("checkpoint", "best")
    if str(checkpoint) not in ("best", held, str(epoch)):
        raise ZspaceError(
            f"{path} is a bundle of one checkpoint ({held}, epoch {epoch}); "
            f"it has no checkpoint {checkpoint!r}"
        )
    return state, epoch


def load_weights(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Load a bundle's state dict, naming the bundle when it does not fit the config."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ZspaceError(
            f"{Path(path) / WEIGHTS_FILE} does not fit the model of its config.toml: {first}"
        ) from None


def model_header(run: Run) -> dict[str, str]:
    """What a file written from a run says about its model (strings, for the headers of
    safetensors and ONNX)."""
    m = run.model
    return {
        "zspace": __version__,
        "kind": "vae" if m.variational else "ae",
        "z_dim": str(m.cfg.z_dim),
        "input_shape": ",".join(str(s) for s in m.input_shape),
        "epoch": str(run.epoch),
    }


def write_bundle(run: Run, out: Path, checkpoint: str | int = "best") -> list[str]:
    """Write the bundle's files into ``out``; returns their names, the weights last."""
    from safetensors.torch import save_file

    # channels_last weights are not contiguous; safetensors stores plain row-major data
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
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
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={**header, "checkpoint": str(checkpoint)})
    return [*files, WEIGHTS_FILE]
