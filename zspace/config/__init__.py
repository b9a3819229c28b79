"""Run configuration: the schema (frozen dataclasses), parsing (TOML, ``--set``, the one
value grammar) and validation with one-line errors. Everything is importable from
``zspace.config``."""

from zspace.config.parse import (
    apply_overrides,
    config_from_dict,
    config_from_toml,
    load_config,
    read_toml,
    to_dict,
    to_toml,
)
from zspace.config.schema import SECTIONS, Config, DataConfig, ModelConfig, TrainConfig
from zspace.config.validate import check_geometry, decoder_filters, resolve, validate

__all__ = [
    "SECTIONS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "apply_overrides",
    "check_geometry",
    "config_from_dict",
    "config_from_toml",
    "decoder_filters",
    "load_config",
    "read_toml",
    "resolve",
    "to_dict",
    "to_toml",
    "validate",
]
