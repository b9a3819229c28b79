"""How results show themselves in a notebook, without the stages importing reporting.

Results of the earlier stages (analyses, generated grids) have ``figure()`` and
``_repr_html_``; the drawing is the reporting stage's, which registers its renderer
here. ``zspace`` installs the loader that imports it on first use, so every stage
imports only earlier ones and ``import zspace`` stays light.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Renderer(Protocol):
    def figures(self, result: Any) -> list[Figure]: ...

    def png(self, figure: Figure) -> bytes: ...


LOADERS: list[Callable[[], Renderer]] = []  # zspace/__init__.py appends the reporting stage's
_RENDERER: list[Renderer] = []


def renderer() -> Renderer:
    if not _RENDERER:
        _RENDERER.append(LOADERS[0]())
    return _RENDERER[0]


def esc(x: Any) -> str:
    return html.escape(str(x))


def data_url(png: bytes) -> str:
    """A PNG as a ``data:`` URL, so a page or notebook cell carries its images."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(data: bytes | Figure, alt: str, caption: str = "") -> str:
    """An embedded PNG (bytes, or a Figure the renderer draws) with its caption."""
    png = data if isinstance(data, bytes) else renderer().png(data)
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_url(png)}" alt="{esc(alt)}">{cap}</figure>'
