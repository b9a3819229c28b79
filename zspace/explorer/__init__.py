"""The interactive latent-space explorer: a local web page over a run that decodes any
point on request (``zspace explore RUN``, ``zspace.explore(run)``; see docs/explore.md).

Modules: ``session`` (the run's arrays, maps, samplers, nearest neighbours), ``api``
(checked requests to responses), ``server`` (HTTP, the safety rules, the handle),
``cli``; the page's files are in ``static/``.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Lazy, so the CLI's parser registration does not load the server and the model code.
    if name in ("explore", "Explorer"):
        from zspace.explorer import server

        return getattr(server, name)
    raise AttributeError(f"module 'zspace.explorer' has no attribute {name!r}")


__all__ = ["Explorer", "explore"]
