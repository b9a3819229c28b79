"""Progress for long steps: one switch for the whole package, tqdm bars to stderr.

Every step that can take more than a few seconds (encoding, t-SNE, the KMeans
sweep, GMM fits, reconstruction metrics, cache builds, training) reports through
``bar``. ``progress(False)`` (what ``--no-progress`` and ``progress=False`` set)
silences them for the block it wraps; left alone, bars show on a terminal and stay
quiet in logs and CI (tqdm's own rule, ``disable=None``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tqdm.auto import tqdm

# True (always show), False (never) or None (on a terminal only)
_SWITCH: ContextVar[bool | None] = ContextVar("zspace_progress", default=None)


@contextmanager
def progress(on: bool | None) -> Iterator[None]:
    """Show (True) or hide (False) every bar in the block; None keeps what an enclosing
    block chose (``--no-progress`` around a public function's ``progress=None``), by
    default bars on a terminal only."""
    token = _SWITCH.set(_SWITCH.get() if on is None else on)
    try:
        yield
    finally:
        _SWITCH.reset(token)


def bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar that follows the package's switch (and disappears when done)."""
    on = _SWITCH.get()
    opts = {"leave": False, "mininterval": 0.5, "dynamic_ncols": True}
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=None if on is None else not on,
        **{**opts, **kwargs},
    )
