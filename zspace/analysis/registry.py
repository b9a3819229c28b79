"""The analyses ``zspace analyze`` knows, in report order. Adding one: its module
(Params, pure function, result, ``ANALYSIS`` entry) plus one line here."""

from __future__ import annotations

from zspace.analysis import axes, kmeans, pca, radius, tsne, vae_internals
from zspace.analysis.common import Analysis

ANALYSES: dict[str, Analysis] = {
    a.name: a
    for a in (
        radius.ANALYSIS,
        axes.ANALYSIS,
        pca.ANALYSIS,
        tsne.ANALYSIS,
        kmeans.ANALYSIS,
        vae_internals.ANALYSIS,
    )
}
