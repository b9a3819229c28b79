"""The renderer that draws earlier stages' results in a notebook (``core.display``)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from zspace.analysis.common import AnalysisResult
from zspace.reporting.figures import analysis_figures, image_figure, png


class Renderer:
    png = staticmethod(png)

    def figures(self, result: Any) -> list[Figure]:
        if isinstance(result, AnalysisResult):
            return analysis_figures(result.name, {"result": result.to_dict()}, result.arrays())
        return [image_figure(result.path, result.caption)]  # a generated grid (SampleImage)


RENDERER = Renderer()
