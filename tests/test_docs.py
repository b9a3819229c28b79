"""The docs say what the code does: the README's defaults block is generated from the
schema, and no example in README.md or docs/ sets a key to the value it has anyway."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import tomllib

from zspace.cli.main import main
from zspace.config import SECTIONS, config_from_dict, load_config
from zspace.config.docs import COMMENTS, annotated_toml, defaults

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- defaults:.*?-->\n```toml\n(.*?)```\n<!-- /defaults -->", re.S)


def test_readme_defaults_block_is_generated_from_the_schema():
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) == 1, "README.md needs one <!-- defaults: ... --> block"
    assert blocks[0] == annotated_toml(), (
        "README.md's defaults block differs from the code: paste `zspace config --defaults`"
    )


def test_defaults_toml_parses_back_to_the_defaults_and_comments_every_key():
    text = annotated_toml()
    assert config_from_dict(tomllib.loads(text)) == defaults() == load_config(None)
    keys = {"seed"} | {f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)}
    assert set(COMMENTS) == keys
    assert "z_dim = 16" in text and "epochs = 10" in text and "crop = " in text


def test_config_cli_prints_defaults_and_a_runs_changes(tmp_path, capsys):
    assert main(["config", "--defaults"]) == 0
    assert capsys.readouterr().out == annotated_toml()
    cfg = tmp_path / "my.toml"
    cfg.write_text("[model]\nz_dim = 32\n")
    assert main(["config", str(cfg), "--set", "train.epochs=3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^z_dim = 32 +# default: 16$", out, re.M)
    assert re.search(r"^epochs = 3 +# default: 10$", out, re.M)
    assert re.search(r"^lr = 0.0005$", out, re.M)  # unchanged: no comment
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(out)
    assert main(["config", "--show", str(run)]) == 0
    assert capsys.readouterr().out == out
    assert main(["config", "--show", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["config", "--defaults", "--set", "model.z_dim=3"]) == 2
    assert "--set applies to a config FILE" in capsys.readouterr().err


SET = re.compile(r"--set\s+\"?([a-z_]+)\.([a-z_]+)=(\[[^\]]*\]|[^\s\"\\`]+)")


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_examples_do_not_set_keys_to_their_defaults(doc):
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    base = defaults()
    redundant = []
    for section, key, text in SET.findall(path.read_text()):
        if section not in SECTIONS or key not in {f.name for f in fields(SECTIONS[section])}:
            continue
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        try:
            cfg = config_from_dict({section: {key: value}})
        except Exception:  # noqa: BLE001 - an example that needs other keys: not a default
            continue
        if cfg == base:
            redundant.append(f"--set {section}.{key}={text}")
    assert not redundant, f"{doc} sets defaults: {redundant}"
