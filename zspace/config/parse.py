"""Reading configurations: TOML files and text, ``--set`` overrides, and writing TOML.

Every value is checked against the dataclass field's type here; ranges and
combinations are checked by ``validate``. Errors are ``ZspaceError`` lines that
name the key and the value, because the CLI shows exactly that line.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from zspace.config.schema import SECTIONS, Config
from zspace.config.validate import did_you_mean, resolve, validate
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


# Every number must fit the machine types it ends up in: ints the C ints of torch and
# NumPy (counts, sizes, threads), floats float32, the dtype of the weights and losses;
# 1e39 as a learning rate would otherwise overflow deep inside torch (issue 18).
INT_LIMIT = 2**31 - 1
SEED_LIMIT = 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38


def _int_range(key: str, value: int) -> int:
    limit = SEED_LIMIT if key == "seed" else INT_LIMIT
    if not -limit <= value <= limit:
        raise ZspaceError(f"config: {key} = {value}: too large (at most {limit:,})")
    return value


def _float_range(key: str, value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise ZspaceError(f"config: {key} = {value}: must be a finite number")
    if abs(value) > FLOAT32_MAX or (value != 0 and abs(value) < FLOAT32_TINY):
        raise ZspaceError(
            f"config: {key} = {value!r}: outside the range of float32 (magnitudes "
            f"{FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}, or 0), the precision training uses"
        )
    return value


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check a TOML value against a dataclass field type; return it in canonical form."""
    origin = get_origin(hint)
    if origin is tuple:
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            what = "strings" if get_args(hint)[0] is str else "integers"
            raise ZspaceError(f"config: {key} = {value!r}: expected a list of {what}")
        inner = get_args(hint)[0]
        return tuple(_coerce(key, v, inner) for v in value)
    if origin is Union:
        return _coerce(key, value, get_args(hint)[0])
    if hint is bool:
        if not isinstance(value, bool):
            raise ZspaceError(f"config: {key} = {value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return _int_range(key, int(value))
            raise ZspaceError(f"config: {key} = {value!r}: expected an integer")
        return _int_range(key, value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ZspaceError(f"config: {key} = {value!r}: expected a number")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise ZspaceError(f"config: {key} = {value}: too large for float32") from None
        return _float_range(key, number)
    if hint is str:
        if not isinstance(value, str):
            raise ZspaceError(f"config: {key} = {value!r}: expected a string")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug, not a user error


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ZspaceError(f"config: unknown key '{name}.{key}'{did_you_mean(key, known)}")
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**kwargs)


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
    seed = _coerce("seed", raw.get("seed", 0), int)
    cfg = Config(seed=seed, **sections)
    return validate(resolve(cfg))


def _parse_value(text: str) -> Any:
    """A --set value is read as TOML when it parses (3, 1e-3, true, [1,2]), else as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict (returns a new dict)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        if "=" not in item:
            raise ZspaceError(f"--set {item!r}: expected section.key=value")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        value = _parse_value(text.strip())
        if len(parts) == 1:
            out[parts[0]] = value
        elif len(parts) == 2:
            section, key = parts
            if section not in SECTIONS:
                raise ZspaceError(
                    f"--set {item!r}: unknown section '{section}'"
                    f"{did_you_mean(section, list(SECTIONS))}"
                )
            out.setdefault(section, {})[key] = value
        else:
            raise ZspaceError(f"--set {item!r}: expected section.key=value")
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ZspaceError(f"config file {path} is a folder; give a .toml file")
    if not path.is_file():
        raise ZspaceError(f"config file not found: {path}")
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ZspaceError(f"config file {path}: invalid TOML: {exc}") from None


def config_from_toml(text: str, where: str = "config") -> Config:
    """A Config from TOML text (e.g. the copy a checkpoint carries)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZspaceError(f"{where}: invalid TOML: {exc}") from None
    return config_from_dict(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a TOML file (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw = read_toml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, overrides or []))


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


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


def to_toml(cfg: Config) -> str:
    """Serialise a Config; the output parses back to an equal Config."""
    lines = [f"seed = {cfg.seed}", ""]
    for name in SECTIONS:
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(getattr(cfg, name)).items():
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
