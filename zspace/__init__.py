"""zspace: train conv autoencoders and VAEs on images and look inside their latent space."""

from __future__ import annotations

__version__ = "0.1.0"

from zspace.config import Config, load_config  # noqa: E402
from zspace.errors import ZspaceError  # noqa: E402


def __getattr__(name: str):
    # Lazy: `import zspace` stays fast (torch loads only when a model is needed).
    if name == "train":
        from zspace.training import train

        return train
    if name in ("load_run", "Run"):
        from zspace import run

        return getattr(run, name)
    if name in ("encode", "analyze", "report", "compare", "pipeline"):
        from zspace.analysis import api

        return getattr(api, name)
    if name == "generate":
        from zspace.generation.api import generate

        return generate
    if name == "explore":
        from zspace.explorer.server import explore

        return explore
    if name == "demo":
        from zspace.demo import demo

        return demo
    raise AttributeError(f"module 'zspace' has no attribute {name!r}")


__all__ = [
    "Config", "Run", "ZspaceError", "analyze", "compare", "demo", "encode", "generate",
    "explore", "load_config",
    "load_run", "pipeline", "report", "train",
]  # fmt: skip
