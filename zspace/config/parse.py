"""Reading configurations and command-line values: TOML files and text, ``--set``
overrides, the one value grammar (``parse_value``, ``coerce``), and writing TOML.

Every value is checked against its dataclass field's type here (``coerce``, which the
analyses' parameters use too); ranges and combinations are checked by ``validate``.
Errors are ``ZspaceError`` lines that name the key and the value, because the CLI
shows exactly that line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from zspace.config.schema import SECTIONS, Config
from zspace.config.validate import did_you_mean, flatten, resolve, validate
from zspace.core.checks import FLOAT32_MAX, PATH, check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


# Every number must fit the machine types it ends up in: ints the C ints of torch and
# NumPy (counts, sizes, threads; seeds 64 bits), floats float32, the dtype of the
# weights, losses and latents; 1e39 as a learning rate would otherwise overflow deep
# inside torch (issue 18).
INT_LIMIT, SEED_LIMIT = 2**31 - 1, 2**63 - 1
FLOAT32_TINY = 1.1754943508222875e-38
_KINDS: dict[Any, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "true or false"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    str: ((str,), "a string"),
}
_LISTS = {int: "integers", float: "numbers", str: "strings"}


def parse_value(text: str) -> Any:
    """A value as the command line writes it: TOML when it parses (``3``, ``1e-4``,
    ``true``, ``[8,16]``, ``"a b"``), else the text itself, which ``coerce`` reads by
    the field's type (the shorthands ``1,2``, ``yes``/``no``, ``1-2``, ``none``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_list(text: str) -> list[str]:
    """``"1e-5, 0.1"`` -> ["1e-5", "0.1"]; commas inside [...] stay: "[8,16],[16,32]"."""
    parts, depth = [""], 0
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append("")
        else:
            parts[-1] += ch
    return [p.strip() for p in parts if p.strip()]


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` (TOML-typed, or text as ``parse_value`` reads it) as the type ``hint``
    names, in canonical form (tuples for lists), or a one-line error naming ``key``.

    One grammar for config keys and analysis parameters: a list is TOML or ``1,2,4``
    (one value is a list of one), a pair ``[1,2]``, ``1-2`` or ``1:2``, a bool TOML
    or ``yes``/``no``, an optional value ``none`` (or ``auto``, ``""``)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) in (Union, types.UnionType):
        if value is None or str(value).lower() in ("none", "auto", ""):
            return None
        return coerce(key, value, args[0])
    if isinstance(value, str) and hint is not str:
        value = parse_value(value)
    if get_origin(hint) is tuple:
        pair = args[-1] is not Ellipsis
        if isinstance(value, str):
            texts = re.split("[-:]", value) if pair else split_list(value)
            value = [parse_value(v) for v in texts]
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or (pair and len(value) != len(args)):
            what = "a pair such as 1-2" if pair else f"a list of {_LISTS.get(args[0], 'pairs')}"
            raise ZspaceError(f"{key} = {value!r}: expected {what}")
        hints = args if pair else [args[0]] * len(value)
        return tuple(coerce(key, v, h) for v, h in zip(value, hints, strict=True))
    if hint not in _KINDS:
        raise TypeError(f"unsupported type {hint!r}")  # a bug, not a user error
    if hint is bool and isinstance(value, str) and value.lower() in ("yes", "no"):
        value = value.lower() == "yes"
    if hint is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    kinds, words = _KINDS[hint]
    ok = isinstance(value, kinds) and (hint is bool or not isinstance(value, bool))
    if not ok:
        raise ZspaceError(f"{key} = {value!r}: expected {words}")
    if hint is int and abs(value) > (limit := SEED_LIMIT if key.endswith("seed") else INT_LIMIT):
        raise ZspaceError(f"{key} = {value}: too large (at most {limit:,})")
    return _float32(key, value) if hint is float else value


def _float32(key: str, value: float) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ZspaceError(f"{key} = {value}: too large for float32") from None
    if not math.isfinite(number):
        raise ZspaceError(f"{key} = {number}: must be a finite number")
    if abs(number) > FLOAT32_MAX or (number != 0 and abs(number) < FLOAT32_TINY):
        raise ZspaceError(
            f"{key} = {number!r}: outside the range of float32 (magnitudes "
            f"{FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}, or 0), the precision training uses"
        )
    return number


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    for key in values:
        if key not in hints:
            raise ZspaceError(f"config: unknown key '{name}.{key}'{did_you_mean(key, list(hints))}")
    return cls(**{k: coerce(f"config: {name}.{k}", v, hints[k]) for k, v in values.items()})


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts (as TOML gives them)."""
    top_known = ["seed", *SECTIONS]
    for key in raw:
        if key not in top_known:
            raise ZspaceError(f"config: unknown key '{key}'{did_you_mean(key, top_known)}")
    sections = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ZspaceError(f"config: '{name}' must be a section ([{name}])")
        sections[name] = _build_section(name, cls, values)
    seed = coerce("config: seed", raw.get("seed", 0), int)
    return validate(resolve(Config(seed=seed, **sections)))


def assignment(item: str, what: str, form: str) -> tuple[str, str, str]:
    """``"NAME.KEY=TEXT"`` -> (NAME, KEY, TEXT), stripped; KEY is "" in ``"NAME=TEXT"``."""
    head, sep, text = item.partition("=")
    name, _, key = head.strip().partition(".")
    if not sep or not name:
        raise ZspaceError(f"{what} {item!r}: expected {form}")
    return name, key.strip(), text.strip()


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (``--set``) to a nested dict (returns a new dict)."""
    check_type(
        "overrides", overrides, (list, tuple), "a list of SECTION.KEY=VALUE strings", each=str
    )
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        section, key, text = assignment(item, "config override", "section.key=value")
        if "." in key:
            raise ZspaceError(f"config override {item!r}: expected section.key=value")
        if key and section not in SECTIONS:
            raise ZspaceError(
                f"config override {item!r}: unknown section '{section}'"
                f"{did_you_mean(section, list(SECTIONS))}"
            )
        if key:
            out.setdefault(section, {})[key] = parse_value(text)
        else:
            out[section] = parse_value(text)
    return out


def loads_toml(text: str, where: str) -> dict[str, Any]:
    """TOML text as a dict, or one line naming ``where`` and the syntax error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZspaceError(f"{where}: invalid TOML: {exc}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ZspaceError(f"config file {path} is a folder; give a .toml file")
    if not path.is_file():
        raise ZspaceError(f"config file not found: {path}")
    return loads_toml(read_text(path), f"config file {path}")


def config_from_toml(text: str, where: str = "config") -> Config:
    """A Config from TOML text (e.g. the copy a checkpoint carries)."""
    return config_from_dict(loads_toml(text, where))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a TOML file (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    check_type("path", path, (*PATH, type(None)), "a TOML file (str or Path) or None")
    raw = read_toml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, overrides or []))


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_diff(a: Config, b: Config) -> list[str]:
    """The keys (``seed``, ``model.z_dim``, ...) whose values differ between two configs."""
    fa, fb = flatten(a), flatten(b)
    return [k for k in fa if fa[k] != fb[k]]


def distinct_values(key: str, values: Sequence[Any]) -> list[Any]:
    """The values of config key ``key`` (``section.key`` or ``seed``; texts as ``--set``
    reads them, or typed values) as the run will get them, in order. Two that read the
    same (``1`` and ``1.0``, ``0.5`` and ``5e-1``, ``5`` and ``[5]`` for a list) are
    refused in one line: a sweep would train one run twice."""
    section, _, leaf = key.rpartition(".")
    hints = get_type_hints(SECTIONS[section]) if section in SECTIONS else {"seed": int}
    if leaf not in hints or (section and section not in SECTIONS):
        known = [*flatten(Config())] if section else ["seed"]
        raise ZspaceError(f"config: unknown key '{key}'{did_you_mean(key, known)}")
    seen: dict[Any, Any] = {}
    for v in values:
        value = coerce(f"config: {key}", parse_value(v) if isinstance(v, str) else v, hints[leaf])
        if value in seen:
            raise ZspaceError(f"{key}: {seen[value]} and {v} are the same value ({value!r})")
        seen[value] = v
    return list(seen)


def toml_value(value: Any) -> str:
    """One value as TOML (bools, numbers with inf, escaped strings, lists and tuples)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(cfg: Config, notes: Mapping[str, str] | None = None) -> str:
    """Serialise a Config; the output parses back to an equal Config. ``notes``: a
    comment for a key's line, in one column (``zspace config`` shows them); a line too
    long for the column has its comment below it, in the column."""
    rows, section = [], ""
    for key, value in flatten(cfg).items():
        name, _, leaf = key.rpartition(".")
        if name != section:
            rows += [("", ""), (f"[{name}]", "")]
            section = name
        rows.append((f"{leaf} = {toml_value(value)}", (notes or {}).get(key, "")))
    pad = min(48, max(len(line) for line, note in rows if note or not notes) + 1)
    wrap = {line: "\n" + " " * pad for line, _ in rows if len(line) >= pad}
    return "".join(
        f"{line}{wrap.get(line, ' ' * (pad - len(line)))}# {note}\n" if note else f"{line}\n"
        for line, note in rows
    )
