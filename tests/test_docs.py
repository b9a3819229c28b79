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


def test_config_comments_keep_one_column_after_long_values(tmp_path, capsys):
    cfg = tmp_path / "long.toml"
    source = "mnist:/a/long/path/to/a/data/set/that/goes/on/and/on"
    cfg.write_text(
        f'[data]\nsource = "{source}"\n[model]\nencoder_filters = [32, 64, 128, 256]\n'
        "encoder_strides = [1, 2, 2, 2]\n"
    )
    assert main(["config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert len({line.index("#") for line in out.splitlines() if "#" in line}) == 1
    assert re.search(rf'^source = "{source}"\n +# default: "builtin:digits"$', out, re.M)
    assert re.search(
        r"^encoder_filters = \[32, 64, 128, 256\] +# default: \[32, 64, 128\]$", out, re.M
    )
    assert config_from_dict(tomllib.loads(out)) == load_config(cfg)


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


FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"(?:^(?:\$ )?|\s-m )zspace ([a-z\"$].*)")
SYNOPSIS = re.compile(r"\[-|\.\.\.|\(-|\{|\|")  # usage lines: [--flag X], ..., {a,b}, a|b
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _commands(text):
    """(what follows ``zspace``, the next line) of every command in the fenced blocks (shell
    arrays and line continuations resolved, ``$VARIABLES`` as 1), then of inline spans."""
    for block in FENCE.findall(text):
        arrays = dict(re.findall(r"^(\w+)=\((.*)\)$", block, re.M))
        lines = block.replace("\\\n", " ").splitlines()
        for line, after in zip(lines, [*lines[1:], ""], strict=True):
            found = COMMAND.search(line.strip())
            if found:
                cmd = found.group(1)
                for name, words in arrays.items():
                    cmd = cmd.replace(f'"${{{name}[@]}}"', words)
                yield re.sub(r"\$\{?\w+\}?", "1", cmd), after.strip()
    for span in re.findall(r"`zspace ([a-z][^`]*)`", text):
        yield span + " ...", ""  # flags only: a span may name part of a command


def _verb(parser, argv):
    """(the words naming the verb, its parser): ``data info`` of ``data info SOURCE ...``."""
    import argparse

    words = []
    while subs := [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]:
        if len(argv) == len(words) or argv[len(words)] not in subs[0].choices:
            break
        parser = subs[0].choices[argv[len(words)]]
        words.append(argv[len(words)])
    return " ".join(words), parser


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_every_command_in_the_docs_parses_with_the_flags_help_shows(doc, capsys):
    """README and docs/ commands parse against the real parser (an argparse error only
    where the doc shows that error line), and every flag they name is one ``--help``
    lists on that verb (no retired spelling); usage lines have their flags checked."""
    import argparse
    import shlex

    from zspace.cli.main import build_parser

    parser, wrong = build_parser(), []
    text = (ROOT / doc if doc == "README.md" else ROOT / "docs" / doc).read_text()
    for cmd, after in _commands(text):
        argv = shlex.split(cmd, comments=True)
        usage = SYNOPSIS.search(cmd)
        words, verb = _verb(parser, argv)
        shown = {s for a in verb._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        named = FLAG.findall(cmd.split("#")[0]) if usage else [a.split("=")[0] for a in argv]
        wrong += [f"zspace {cmd}: {f} is not a flag of zspace {words}" for f in named
                  if FLAG.fullmatch(f) and f not in shown]  # fmt: skip
        if usage:
            continue
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            err = capsys.readouterr().err.strip()
            if exc.code and err != after:
                wrong.append(f"zspace {cmd}: {err}")
    capsys.readouterr()
    assert not wrong, "\n".join(wrong)


def test_readme_lists_every_public_name_and_the_pipeline_every_stage():
    import zspace
    from zspace.cli.main import build_parser
    from zspace.flow.pipeline import pipeline

    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"`dir\(zspace\)` lists the public names: (.*?)\.\n", readme, re.S)
    assert sorted(re.findall(r"`(\w+)`", listed.group(1))) == sorted(zspace.PUBLIC)

    def stages(text):  # "train -> encode -> ... -> report", asides in brackets left out
        text = " ".join(re.sub(r"\([^)]*\)", "", text).split())
        return re.search(r"train(?: -> \w+)+", text).group(0)

    verbs = next(a for a in build_parser()._actions if a.dest == "command")
    shown = next(a.help for a in verbs._choices_actions if a.dest == "pipeline")
    assert stages(shown) == stages(pipeline.__doc__) == stages(readme.split("zspace pipeline")[1])
