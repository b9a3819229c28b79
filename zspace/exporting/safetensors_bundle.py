"""``--format safetensors``: the weights of one checkpoint as a bundle ``load_run`` opens.

The bundle is a folder with ``model.safetensors`` (the model's state dict: plain
tensors and a small string header, no pickle), the resolved ``config.toml``, the
run's ``meta.json`` (plus a ``bundle`` entry saying where and from which checkpoint
it came) and ``history.jsonl``. No optimiser state: a bundle is for using a model,
not for resuming its training.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zspace._version import __version__
from zspace.core.fileio import atomic_write_json
from zspace.runs.bundle import FORMAT, FORMAT_VERSION, WEIGHTS_FILE
from zspace.runs.folder import write_config


def bundle_header(run: Any, checkpoint: str | int) -> dict[str, str]:
    """The string-to-string header safetensors keeps beside the tensors."""
    m = run.model
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "zspace": __version__,
        "kind": "vae" if m.variational else "ae",
        "z_dim": str(m.cfg.z_dim),
        "input_shape": ",".join(str(s) for s in m.input_shape),
        "epoch": str(run.epoch),
        "checkpoint": str(checkpoint),
    }


def write_bundle(run: Any, stage: Path, checkpoint: str | int = "best") -> list[str]:
    """Write the bundle's files into ``stage``; returns their names, the weights last."""
    from safetensors.torch import save_file

    # channels_last weights are not contiguous; safetensors stores plain row-major data
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    write_config(stage, run.config)
    meta = {k: v for k, v in run.meta.items() if k != "bundle"}
    meta["bundle"] = {
        "format": FORMAT,
        "format_version": int(FORMAT_VERSION),
        "source_run": str(Path(run.path).resolve()),
        "checkpoint": str(checkpoint),
        "epoch": run.epoch,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(stage / "meta.json", meta)
    files = ["config.toml", "meta.json"]
    history = Path(run.path) / "history.jsonl"
    if history.is_file():
        shutil.copyfile(history, stage / "history.jsonl")
        files.append("history.jsonl")
    save_file(state, str(stage / WEIGHTS_FILE), metadata=bundle_header(run, checkpoint))
    return [*files, WEIGHTS_FILE]
