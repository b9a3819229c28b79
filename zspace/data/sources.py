"""Source strings ("KIND:PATH") to readers.

A reader is ``fn(path: str, cfg: DataConfig) -> ImageData`` returning images already
at the geometry ``cfg`` asks for (size, crop, channels). Readers register here with
an optional ``guess(path) -> bool`` so a bare path can be recognised by its contents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.data.dataset import ImageData, match_channels
from zspace.errors import ZspaceError

if TYPE_CHECKING:
    from zspace.config import DataConfig


@dataclass(frozen=True)
class ReaderEntry:
    kind: str
    read: Callable[[str, DataConfig], ImageData]
    guess: Callable[[Path], bool] | None
    description: str


READERS: dict[str, ReaderEntry] = {}


def register_reader(
    kind: str,
    read: Callable[[str, DataConfig], ImageData],
    *,
    guess: Callable[[Path], bool] | None = None,
    description: str = "",
) -> None:
    READERS[kind] = ReaderEntry(kind, read, guess, description)


def parse_source(source: str) -> tuple[str, str]:
    """Split "KIND:PATH"; a bare path is recognised by the readers' guessers."""
    _ensure_readers()
    kind, sep, path = source.partition(":")
    if sep and kind in READERS:
        if not path and kind != "builtin":
            raise ZspaceError(f"data.source {source!r}: the path after '{kind}:' is missing")
        return kind, path
    if sep and len(kind) > 1 and not Path(source).exists():
        known = ", ".join(sorted(READERS))
        raise ZspaceError(f"data.source {source!r}: unknown kind '{kind}' (known: {known})")
    bare = Path(source).expanduser()
    if not bare.exists():
        raise ZspaceError(f"data.source {source!r}: path not found")
    for entry in READERS.values():
        if entry.guess is not None and entry.guess(bare):
            return entry.kind, source
    known = ", ".join(sorted(READERS))
    raise ZspaceError(
        f"data.source {source!r}: cannot tell what kind of data this is; "
        f"write it as KIND:PATH with KIND one of {known}"
    )


def load_data(cfg: DataConfig) -> ImageData:
    """Read the configured source at the configured geometry.

    ``data.channels`` converts explicitly (grey repeated to RGB, RGB to luma);
    ``data.task = "recolor"`` needs colour targets and is refused on grey data.
    """
    _ensure_readers()
    kind, path = parse_source(cfg.source)
    return conform(READERS[kind].read(path, cfg), cfg)


def conform(data: ImageData, cfg: DataConfig) -> ImageData:
    """What every source goes through after its reader: a non-empty set, the channel
    conversion of ``data.channels``, colour targets for recolor."""
    if data.count == 0:
        raise ZspaceError(f"data.source {cfg.source!r}: no images")
    images = match_channels(data.images, cfg.channels)
    if images is not data.images:
        data = replace(
            data, images=images, details={**data.details, "converted_from_channels": data.shape[2]}
        )
    if cfg.task == "recolor" and data.shape[2] != 3:
        raise ZspaceError(
            f"data.task = 'recolor' needs colour images, but {cfg.source!r} gives "
            f"{data.shape[2]} channel(s); use data.channels = 3 only with colour sources"
        )
    return data


def _ensure_readers() -> None:
    # Importing the reader modules registers them; done lazily to keep `import zspace` light.
    import zspace.data.builtin  # noqa: F401

    try:
        import zspace.data.readers  # noqa: F401
    except ModuleNotFoundError as exc:  # the file readers are optional at this stage
        if exc.name != "zspace.data.readers":
            raise
