"""Imported runs: a model the user brought, rebuilt from the code its run names.

meta.json's ``origin`` says where the model comes from::

    {"kind": "factory", "factory": "models/mine.py:build" or "package.module:Class",
     "weights": "model.safetensors", "latent_shape": [16], "variational": true,
     "parameters": 12345}

The factory is called without arguments and returns what ``zspace.wrap`` accepts
(``zspace.models.wrapped.adapt``); the run's own safetensors weights are then loaded
into it, so every stage sees the weights saved at import even when the factory does
not seed. A module is imported from the working folder or ``PYTHONPATH``; a file path
(``models/mine.py:build``) is recorded absolute and copied into ``RUN/code/``, which later
commands run once the file is gone from that path (a run moved to another machine).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from zspace.core.errors import ZspaceError, first_line
from zspace.models.wrapped import FAMILIES, WrappedModel, adapt
from zspace.runs.bundle import WEIGHTS_FILE, load_weights, read_safetensors
from zspace.runs.folder import origin_of, origin_text
from zspace.runs.model_folders import rebuild

CODE = "code"  # the run's copy of a factory file (never in a bundle: it runs no code)


def factory_spec(spec: str, run: Path | None = None) -> str:
    """``module:function`` as given; a file path's part made absolute (later commands
    run from any folder); ``run``: the run it was not found in."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ZspaceError(f"factory {spec!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION")
    if where.endswith(".py"):
        if not Path(where).is_file():
            fix = f" (nor in {run / CODE}/: copy it there, or import the model anew)" if run else ""
            raise ZspaceError(f"factory {spec!r}: file not found: {where}{fix}")
        return f"{Path(where).resolve()}:{name}"
    return spec


def build(spec: str, run: Path | None = None) -> Any:
    """Import the factory ``spec`` names and call it; a file that is gone from its recorded
    path is run from ``run``'s copy (the file itself where it is: its ``__file__`` and the
    files beside it stay as at import)."""
    given, _, name = spec.rpartition(":")
    copy = Path(run or "", CODE, Path(given).name).absolute()
    moved = run is not None and given.endswith(".py") and not Path(given).is_file()
    where = str(copy) if moved and copy.is_file() else factory_spec(spec, run).rpartition(":")[0]
    try:  # a file's folders are importable too (its siblings), else the working folder's
        file = where.endswith(".py")  # (as for ``python -m``)
        for folder in map(str, [Path(given).parent, Path(where).parent] if file else [os.getcwd()]):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        if file:
            module_name = f"zspace_factory_{Path(where).stem}"
            module = sys.modules[module_name] = ModuleType(module_name)
            module.__file__ = where  # run without writing __pycache__ (into RUN/code/)
            exec(compile(Path(where).read_bytes(), where, "exec"), module.__dict__)
        else:
            module = importlib.import_module(where)
        factory: Any = module
        for part in name.split("."):
            factory = getattr(factory, part)
        return factory()
    except Exception as exc:  # the user's code: any failure is theirs, said in one line
        raise ZspaceError(f"factory {spec!r}: {type(exc).__name__}: {first_line(exc)}") from None


def load_imported(run: Path, meta: dict[str, Any], shape: tuple[int, int, int]) -> WrappedModel:
    """The model of an imported run on the CPU, in eval mode, with the run's weights."""
    origin = origin_of(meta) or {}
    spec, latent = origin.get("factory"), origin.get("latent_shape")
    family = FAMILIES.get(str(origin.get("kind")))
    if (family is None and not isinstance(spec, str)) or not isinstance(latent, list):
        raise ZspaceError(f"{run / 'meta.json'}: origin {origin!r} names no factory")
    obj = build(str(spec), run) if family is None else rebuild(origin, run)
    model = WrappedModel(adapt(obj), shape, tuple(latent), bool(origin.get("variational")))
    file = run / str(origin.get("weights", WEIGHTS_FILE))
    load_weights(model.net, read_safetensors(file)[0], file, origin_text(meta))
    return model.eval()
