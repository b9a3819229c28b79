"""zspace: train conv autoencoders and VAEs on images and look inside their latent space.

The public names are listed once, in ``PUBLIC`` (name -> module). They load lazily,
so ``import zspace`` stays fast (torch loads only when a model is needed), and each
is cached here on first use, so a submodule can never shadow a public function.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zspace._version import __version__  # noqa: F401 - zspace.__version__
from zspace.core import display as _display

# results show themselves in notebooks through the reporting stage's renderer, loaded on
# first use (docs/architecture.md)
_display.LOADERS.append(lambda: importlib.import_module("zspace.reporting.display").RENDERER)

PUBLIC: dict[str, str] = {
    "Config": "zspace.config",
    "load_config": "zspace.config",
    "ZspaceError": "zspace.core.errors",
    "Run": "zspace.runs.run",
    "load_run": "zspace.runs.run",
    "train": "zspace.flow.training",
    "encode": "zspace.latents.encode",
    "analyze": "zspace.analysis.api",
    "generate": "zspace.generation.api",
    "evaluate": "zspace.evaluation.api",
    "report": "zspace.reporting.api",
    "compare": "zspace.reporting.api",
    "pipeline": "zspace.flow.pipeline",
    "demo": "zspace.flow.demo",
    "export": "zspace.exporting.api",
    "explore": "zspace.explorer.server",
    "run_recipe": "zspace.flow.recipes",
    "load_recipe": "zspace.flow.recipes",
    "sweep": "zspace.flow.sweeps",
    "wrap": "zspace.runs.wrap",
}

if TYPE_CHECKING:  # for editors and type checkers; at run time the names load lazily
    from zspace.analysis.api import analyze  # noqa: F401
    from zspace.config import Config, load_config  # noqa: F401
    from zspace.core.errors import ZspaceError  # noqa: F401
    from zspace.evaluation.api import evaluate  # noqa: F401
    from zspace.explorer.server import explore  # noqa: F401
    from zspace.exporting.api import export  # noqa: F401
    from zspace.flow.demo import demo  # noqa: F401
    from zspace.flow.pipeline import pipeline  # noqa: F401
    from zspace.flow.recipes import load_recipe, run_recipe  # noqa: F401
    from zspace.flow.sweeps import sweep  # noqa: F401
    from zspace.flow.training import train  # noqa: F401
    from zspace.generation.api import generate  # noqa: F401
    from zspace.latents.encode import encode  # noqa: F401
    from zspace.reporting.api import compare, report  # noqa: F401
    from zspace.runs.run import Run, load_run  # noqa: F401
    from zspace.runs.wrap import wrap  # noqa: F401


def __getattr__(name: str) -> Any:
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'zspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*PUBLIC, "__version__"])


__all__ = sorted(PUBLIC)
