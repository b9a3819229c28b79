"""The interactive latent-space explorer: a local web page over a run that decodes any
point on request (``zspace explore RUN``, ``zspace.explore(run)``; see docs/explore.md).

Modules: ``session`` (the run's arrays, maps, samplers, nearest neighbours), ``api``
(checked requests to responses), ``server`` (HTTP, the safety rules, the handle); the
verb is ``zspace.cli.explorer`` and the page's files are in ``static/``.
"""
