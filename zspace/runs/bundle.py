"""Reading a safetensors bundle: a folder with ``model.safetensors``, config.toml, meta.json.

A bundle is what ``zspace export RUN --format safetensors`` writes: the weights of
one checkpoint with no pickle anywhere, so it can be passed around and opened by
``zspace.load_run`` like a run folder. Writing lives in ``zspace.exporting``; this
module holds the read side because ``Run.load`` needs it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zspace.core.errors import ZspaceError

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
    epoch = int(info.get("epoch", 0))
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
