"""``zspace.wrap``: a model the user brings becomes an ordinary run folder.

The folder holds the data reference (config.toml's data section; in-memory images in
``RUN/data/``, as ``zspace.train`` keeps them), the model reference (meta.json's
``origin``, ``zspace.runs.imported``), its weights as safetensors (never pickle) and
no history or checkpoints, so every later verb and ``zspace.load_run`` work on it.
It is written under the run's writer lock, all or nothing: a failed import leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from zspace.config import load_config
from zspace.config.parse import toml_value
from zspace.core.checks import PATH, check_hooks, check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, check_writable, make_dirs, undo_on_error
from zspace.core.progress import progress as progress_switch
from zspace.data.arrays import save_arrays
from zspace.data.loader import to_float_nchw
from zspace.data.prepare import new_run_data
from zspace.models.autoencoder import count_parameters
from zspace.models.wrapped import WrappedModel, adapt, family_of, probe, weights_of
from zspace.runs.bundle import WEIGHTS_FILE, load_weights, read_safetensors, write_safetensors
from zspace.runs.folder import check_new_run_dir, data_meta, write_config, write_meta, writer_lock
from zspace.runs.imported import CODE, build, factory_spec
from zspace.runs.model_folders import keep_origin, rebuild
from zspace.runs.run import Run

PROBE_IMAGES = 8  # one real batch: the latent's shape, the decoder's shape and range


def wrap(
    model: Any,
    *,
    data: Any,
    run_dir: str | Path,
    factory: str | None = None,
    weights: str | Path | None = None,
    labels: Any = None,
    label_names: Any = None,
    overrides: list[str] | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> Run:
    """Make ``run_dir`` a run folder of ``model`` on ``data`` and return the loaded Run.

    ``model``: a ``torch.nn.Module`` with ``encode(x)`` and ``decode(z)``, or an
    ``(encoder, decoder)`` pair of modules or functions. Images go in as float NCHW in
    [0, 1]; an encoder returning a tensor makes an AE, one returning ``(mu, logvar)``
    a variational model; the decoder returns images in [0, 1]. ``data``: a source
    (``mnist:data/mnist``, a folder, ...) or images as ``zspace.train`` takes them
    (with ``labels``, ``label_names``); ``overrides``: ``data.*`` settings
    (``["data.image_size=32"]``). ``factory``: ``"module:function"`` or
    ``"path/file.py:function"``, called without arguments by later commands to rebuild
    the model; without it a module is rebuilt from its class (importable and
    constructible without arguments). ``weights``: a safetensors file loaded into the
    model first. The model's weights are saved into the run either way.
    """
    check_type("run_dir", run_dir, PATH, "a folder (str or Path)")
    check_type("factory", factory, (str, type(None)), "'module:function' or None")
    check_type("weights", weights, (*PATH, type(None)), "a .safetensors file or None")
    check_type("overrides", overrides, (list, tuple, type(None)), "a list of strings", each=str)
    check_hooks(log, progress)
    if bad := [o for o in overrides or [] if not o.strip().startswith(("data.", "seed"))]:
        raise ZspaceError(
            f"wrap: overrides {bad} set more than data.* and seed (the model is yours)"
        )
    adapted = adapt(model)
    arrays = None if isinstance(data, (str, Path)) else data
    source = [] if arrays is not None else [f"data.source={toml_value(str(data))}"]
    cfg = load_config(None, [*source, *(overrides or [])])
    family = family_of(model)  # pythae, diffusers: rebuilt from the config the run records
    if family is None:
        spec = factory_spec(factory) if factory is not None else class_factory(model)
    what = f"factory {spec}" if family is None else family.describe(family.origin(model))
    if weights is not None:
        load_weights(adapted.net, read_safetensors(weights)[0], weights, what)
    run = Path(run_dir)
    check_writable(run, "--out", folder=True)
    with writer_lock(run), undo_on_error(), progress_switch(progress):
        check_new_run_dir(run)
        cfg, images, splits = new_run_data(cfg, arrays, labels, label_names, geometry=False)
        first = torch.from_numpy(images.images[splits["train"][:PROBE_IMAGES]])
        wrapped = probe(model, to_float_nchw(first))
        state = weights_of(wrapped).state_dict()
        if family is not None:  # the model later commands load the weights into
            record = keep_origin(model, family, run)
            rebuilt = rebuild(record, run)
        else:
            record = {"kind": "factory", "factory": spec}
            if (file := Path(spec.rpartition(":")[0])).suffix == ".py":  # later commands run
                atomic_write_bytes(run / CODE / file.name, file.read_bytes())  # this copy
            try:
                rebuilt = adapt(build(spec, run)).net
            except ZspaceError as exc:
                if factory is not None:
                    raise
                raise ZspaceError(f"wrap: {exc}; pass factory='module:function' instead") from None
        load_weights(rebuilt, state, f"the weights of {type(model).__name__}", what)
        d = int(torch.Size(wrapped.latent_shape).numel())
        cfg = replace(cfg, model=replace(cfg.model, z_dim=d, variational=wrapped.variational))
        make_dirs(run)
        if arrays is not None:
            save_arrays(run / "data", images)
        write_config(run, cfg)
        write_safetensors(run / WEIGHTS_FILE, state, {"zspace.origin": what})
        origin = {
            **record,
            "weights": WEIGHTS_FILE,
            "latent_shape": list(wrapped.latent_shape),
            "variational": wrapped.variational,
            "parameters": count_parameters(wrapped),
        }
        write_meta(run, {**data_meta(wrapped.variational, images, splits), "origin": origin})
        loaded = Run.load(run)
    if log:
        kind = "variational" if wrapped.variational else "deterministic"
        log(f"imported {what}: {kind}, latent shape {wrapped.latent_shape} -> {run}")
    return loaded


def class_factory(model: Any) -> str:
    """``module:Class`` of a module that later commands can rebuild from its class."""
    cls = type(model)
    if not isinstance(model, torch.nn.Module) or isinstance(model, WrappedModel):
        raise ZspaceError(
            f"wrap: an object of type {cls.__name__} needs factory='module:function' (or "
            "'path/file.py:function') naming code that builds it, so later commands can "
            "rebuild the model"
        )
    spec = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ZspaceError(
            f"wrap: {cls.__qualname__} is defined in {cls.__module__}, where later commands "
            "cannot import it; pass factory='module:function' naming code that builds it"
        )
    return spec
