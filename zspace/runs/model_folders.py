"""Saved model folders of other libraries, read without running their code, and the
copies an imported run keeps of them.

pythae's ``model.save(DIR)`` writes model_config.json, model.pt (a state dict) and,
for custom networks, encoder.pkl / decoder.pkl (cloudpickle). zspace does not call
pythae's loader, which unpickles both: the model is rebuilt from the JSON config,
model.pt is read with ``torch.load(weights_only=True)``, and the networks' pickles,
which run code when loaded, are read only with ``allow_pickle`` (``--allow-pickle``).
The run keeps copies of the trusted pickles (``RUN/pythae/``) with their sha256 in
meta.json's origin; a later load unpickles only a copy that still matches.

diffusers' ``save_pretrained`` folder is read with ``use_safetensors`` and
``low_cpu_mem_usage=False`` (no accelerate notice on stderr); a path that is not a
local folder is refused before diffusers sees it, since it would take it for a hub id
and download. The run records the config; the weights of either family live in the
run as safetensors (``zspace.runs.wrap``), so a run keeps working when the folder it
came from moves or goes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import torch

from zspace.core.checks import require
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import atomic_path, read_json, sha256_of
from zspace.models.adapters import diffusers, pythae
from zspace.runs.bundle import load_weights

PICKLES = "pythae"  # the run's subfolder for the trusted pickles (never in a bundle)

# a pythae model read from a folder -> its trusted pickles (part -> (file, sha256))
_TRUSTED: WeakKeyDictionary[Any, dict[str, tuple[Path, str]]] = WeakKeyDictionary()


def _folder(path: str | Path, flag: str, needs: str, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise ZspaceError(f"{flag} {folder}: no such folder (zspace reads local folders only)")
    if not (folder / needs).is_file():
        raise ZspaceError(f"{flag} {folder}: no {needs}, so not a folder {what} wrote")
    return folder


def load_pythae(path: str | Path, *, allow_pickle: bool = False) -> Any:
    """The pythae model saved in ``path``, its weights loaded (``--pythae DIR``)."""
    folder = _folder(path, "--pythae", "model_config.json", "pythae's model.save()")
    config = read_json(folder / "model_config.json")
    if not isinstance(config, dict):
        raise ZspaceError(f"{folder / 'model_config.json'}: not a pythae model config")
    pythae.check_family(str(config.get("name", "?")).removesuffix("Config").removesuffix("_"))
    parts = pythae.custom_networks(config)
    if parts and not allow_pickle:
        names = " and ".join(f"{p}.pkl" for p in parts)
        raise ZspaceError(
            f"--pythae {folder}: its custom networks are pickles ({names}), which "
            "run code when loaded; zspace never unpickles on its own: pass --allow-pickle "
            "(allow_pickle=True) if you trust this folder"
        )
    trusted = {p: (folder / f"{p}.pkl", sha256_of(folder / f"{p}.pkl")) for p in parts}
    model = pythae.build({"config": config}, {p: _unpickle(f) for p, (f, _) in trusted.items()})
    try:
        state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
        weights = state["model_state_dict"]
    except Exception as exc:  # missing, damaged, or more than tensors (refused unread)
        raise ZspaceError(
            f"{folder / 'model.pt'}: no pythae state dict: {first_line(exc)}"
        ) from None
    load_weights(model, weights, folder / "model.pt", f"pythae {type(model).__name__}")
    _TRUSTED[model] = trusted
    return model


def _unpickle(file: Path) -> Any:
    unpickler = require("pythae.models.base.base_utils", "pythae", "a pythae model").CPU_Unpickler
    try:  # pythae's own unpickler: tensors saved on a GPU come to the CPU
        with file.open("rb") as fh:
            return unpickler(fh).load()
    except Exception as exc:  # the pickle's code, or a missing module it names
        raise ZspaceError(f"{file}: cannot unpickle it: {first_line(exc)}") from None


def load_diffusers(path: str | Path) -> Any:
    """The AutoencoderKL saved in ``path`` (or in its ``vae/``: a pipeline's folder), in
    float32 (``--diffusers DIR``)."""
    folder = Path(path)
    if not (folder / "config.json").is_file() and (folder / "vae" / "config.json").is_file():
        folder = folder / "vae"
    folder = _folder(folder, "--diffusers", "config.json", "diffusers' save_pretrained()")
    files = sorted(p.name for p in folder.glob("diffusion_pytorch_model*.safetensors"))
    if not files:
        raise ZspaceError(
            f"--diffusers {folder}: no diffusion_pytorch_model.safetensors (zspace reads "
            "safetensors weights only)"
        )
    variant = None if "diffusion_pytorch_model.safetensors" in files else files[0].split(".")[1]
    library = require("diffusers", "diffusers", "--diffusers")
    level = library.logging.get_verbosity()
    library.logging.set_verbosity_error()  # its notices; what matters is checked below
    try:
        model, info = library.AutoencoderKL.from_pretrained(
            str(folder), use_safetensors=True, low_cpu_mem_usage=False, local_files_only=True,
            variant=variant, output_loading_info=True,
        )  # fmt: skip
    except Exception as exc:  # a config or weights file this diffusers cannot read
        raise ZspaceError(f"--diffusers {folder}: {first_line(exc)}") from None
    finally:
        library.logging.set_verbosity(level)
    missing = [*info.get("missing_keys", []), *info.get("mismatched_keys", [])]
    if missing:
        raise ZspaceError(
            f"--diffusers {folder}: {len(missing)} weights are missing or do not fit (first: "
            f"{missing[0]})"
        )
    return model.float()


def keep_origin(model: Any, family: Any, run: Path) -> dict[str, Any]:
    """The origin record of a pythae or diffusers model, with copies of a pythae
    model's custom networks' pickles written into the run (their sha256 recorded)."""
    record = family.origin(model)
    parts = pythae.custom_networks(record["config"]) if family is pythae else []
    if not parts:
        return record
    trusted = _TRUSTED.get(model)
    with tempfile.TemporaryDirectory() as tmp:
        if trusted is None:  # a model in memory: pythae's own save pickles its networks
            try:
                model.save(tmp)
            except Exception as exc:
                raise ZspaceError(f"pythae's save of the model failed: {first_line(exc)}") from None
            trusted = {p: (Path(tmp) / f"{p}.pkl", "") for p in parts}
        for part, (file, _) in trusted.items():
            with atomic_path(run / PICKLES / f"{part}.pkl") as out:
                shutil.copyfile(file, out)
    shas = {p: sha or sha256_of(run / PICKLES / f"{p}.pkl") for p, (_, sha) in trusted.items()}
    return {**record, "pickles": shas}


def rebuild(origin: dict[str, Any], run: Path) -> Any:
    """The model of an imported pythae or diffusers run, with fresh weights (the run's
    own are loaded next); a pythae run's pickles only when their sha256 still matches."""
    if origin.get("kind") == "diffusers":
        return diffusers.build(origin)
    networks = {}
    for part, sha in (origin.get("pickles") or {}).items():
        file = run / PICKLES / f"{part}.pkl"
        if part not in pythae.NETWORKS or not file.is_file() or sha256_of(file) != sha:
            raise ZspaceError(
                f"{file} is not the pickle trusted at import (sha256 {str(sha)[:12]}...): "
                "zspace unpickles only that file; import the model again"
            )
        networks[part] = _unpickle(file)
    return pythae.build(origin, networks)
