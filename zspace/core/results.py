"""The one base of what the stages return to Python: typed dataclasses that read like
the dicts they are saved as (``res["results"]``, ``keys()``), give that dict back
(``to_dict()``) and show themselves in a notebook (``_repr_html_``, per class)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any


class Result(Mapping):
    """Dict access to a dataclass's shown fields (those with ``repr=True``)."""

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if f.repr]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(getattr(self, k)) for k in self._keys()}


def _plain(value: Any) -> Any:
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
