import argparse
import json
import re
from pathlib import Path

import pytest

from zspace.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "model.zdim=3"], "unknown key 'model.zdim' (did you mean 'z_dim'?)"),
        (["--set", "train.lr=-1"], "train.lr = -1.0: must be > 0"),
        (["--set", "model.z_dim=0"], "model.z_dim = 0: must be >= 1"),
        (["--set", "model.encoder_kernels=[3,3]"], "model.encoder_kernels has 2 entries"),
        (
            ["--set", "data.image_size=28", "--set", "model.encoder_strides=[2,2,2]"],
            "stride 2 of encoder layer 3 does not divide the size 7 it meets",
        ),
        (["--config", "/nonexistent/x.toml"], "config file not found: /nonexistent/x.toml"),
        (["--set", "data.source=nosuchkind:/tmp"], "unknown kind 'nosuchkind'"),
        (["--set", "data.source=builtin:faces"], "unknown built-in set"),
        (["--resume"], "--resume needs --run-dir"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(args, message, capsys, tmp_path):
    code = main(
        ["train", "--run-dir", str(tmp_path / "r"), *args]
        if "--resume" not in args
        else ["train", *args]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("zspace: error: ")
    assert "Traceback" not in err


def test_train_and_resume_from_cli(tmp_path, capsys, tiny_overrides):
    run = tmp_path / "run"
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    assert (
        main(["train", "--run-dir", str(run), "--no-progress", *sets, "--set", "train.epochs=1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "VAE:" in out and "parameters" in out  # the model summary
    assert "epoch 1/1" in out and f"run folder: {run}" in out
    assert (
        main(
            ["train", "--run-dir", str(run), "--resume", "--no-progress", "--set", "train.epochs=2"]
        )
        == 0
    )
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert main(["train", "--run-dir", str(run), "--resume", "x"]) == 2
    assert "expected an epoch number" in capsys.readouterr().err


def test_ctrl_c_says_which_epoch_is_saved_and_how_to_go_on(tmp_path, capsys, monkeypatch):
    from conftest import TINY

    from zspace.training.loop import EpochTrainer

    real = EpochTrainer.run_epoch

    def stop_in(epoch_to_stop):
        def run_epoch(self, epoch, *, train):
            if epoch == epoch_to_stop:
                raise KeyboardInterrupt
            return real(self, epoch, train=train)

        monkeypatch.setattr(EpochTrainer, "run_epoch", run_epoch)

    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--no-progress", *(x for o in TINY for x in ("--set", o))]
    stop_in(1)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == (
        f"zspace: interrupted in epoch 1 of 2, before the first checkpoint: the run folder "
        f"{run} is gone (nothing to resume)\n"
    )
    assert not run.exists()
    stop_in(2)
    assert main(argv) == 130
    assert capsys.readouterr().err == (
        f"zspace: interrupted in epoch 2 of 2; epoch 1 is saved: continue with zspace train "
        f"--out {run} --resume\n"
    )
    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0  # as it says
    rows = (run / "history.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]


def test_progress_bars_stay_out_of_logs(tmp_path, capsys):
    """stderr that is not a terminal (a log, CI) gets no bar, the training loop's included,
    unless a caller asks for bars (core.progress.progress(True))."""
    from conftest import TINY

    import zspace
    from zspace.core.progress import progress

    sets = [x for o in [*TINY, "train.epochs=1"] for x in ("--set", o)]
    assert main(["train", "--out", str(tmp_path / "a"), *sets]) == 0
    assert main(["encode", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "epoch 1/1" in out and err == ""
    with progress(True):
        zspace.train(None, run_dir=tmp_path / "b", overrides=[*TINY, "train.epochs=1"], log=None)
    assert "epoch 1/1" in capsys.readouterr().err  # the bar, asked for


def test_demo_trains_both_models(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for kind in ("ae", "vae"):
        assert (tmp_path / kind / "checkpoints" / "best.pt").is_file()
        assert f"{kind}: {tmp_path / kind}" in out


def test_perceptron_verb_is_registered(capsys):
    with pytest.raises(SystemExit) as info:
        main(["perceptron", "--help"])
    assert info.value.code == 0
    assert "--scaling" in capsys.readouterr().out


def test_old_option_spellings_still_work_silently(capsys):
    from zspace.cli import main as cli_main

    parser = cli_main.build_parser()
    args = parser.parse_args(["data", "preview", "builtin:digits", "--columns", "5"])
    assert args.cols == 5
    args = parser.parse_args(
        ["analyze", "RUN", "--set", "radius.bin_width=0.1", "--param", "tsne.n=50"]
    )
    assert args.params == ["radius.bin_width=0.1", "tsne.n=50"]
    args = parser.parse_args(["analyze", "RUN", "--set", "kmeans.k_max=4"])
    assert args.params == ["kmeans.k_max=4"]
    assert capsys.readouterr().err == ""


SYNONYMS = re.compile(r"<!-- synonyms:.*?-->\n(.*?)<!-- /synonyms -->", re.S)
# what each verb needs besides the flag under test
BASE = {
    "train": [], "pipeline": [], "recipe run": ["NAME"], "sweep": ["--out", "S"],
    "analyze": ["RUN"], "data info": [], "data preview": [], "data download": ["mnist"],
    "generate": ["RUN"], "evaluate": ["RUN"], "export": ["RUN", "--format", "projector"],
    "explore": ["RUN"], "import": ["--factory", "F", "--data", "D"],
}  # fmt: skip


def _synonym_rows():
    table = SYNONYMS.search((ROOT / "docs" / "cli.md").read_text()).group(1)
    for line in table.splitlines()[2:]:
        verb, flag, also = (c.strip() for c in line.strip("|").split("|"))
        for old in re.findall(r"`([^`]+)`", also):
            yield verb, flag.strip("`"), old


@pytest.mark.parametrize("verb, flag, old", list(_synonym_rows()))
def test_every_older_spelling_parses_like_its_flag_and_silently(verb, flag, old, capsys):
    from zspace.cli.main import build_parser

    parser = build_parser()
    sub = parser
    for word in verb.split():
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        sub = sub.choices[word]
    action = next(a for a in sub._actions if flag in a.option_strings)
    assert old not in action.option_strings  # hidden from --help, not a second name
    nargs = 0 if action.nargs == 0 else (action.nargs if isinstance(action.nargs, int) else 1)
    value = [str(action.choices[-1]) if action.choices else "7"] * nargs
    argv = [*verb.split(), *BASE[verb]]
    assert parser.parse_args([*argv, old, *value]) == parser.parse_args([*argv, flag, *value])
    assert not re.search(_token(old), sub.format_help())
    assert capsys.readouterr().err == ""


def _verbs():
    """(words, parser) of every verb that takes no sub-command: ``data info``, ``train``..."""
    from zspace.cli.main import build_parser

    todo = [([], build_parser())]
    while todo:
        words, parser = todo.pop()
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            todo += [([*words, name], p) for name, p in subs[0].choices.items()]
        else:
            yield words, parser


def test_docs_list_every_flag_of_every_verb():
    text = (ROOT / "docs" / "cli.md").read_text()
    block = text.split("<!-- verbs:", 1)[1].split("```", 2)[1]
    usage = dict(re.findall(r"^zspace ([a-z]+(?: [a-z]+)*)(.*(?:\n .*)*)", block, re.M))
    for words, parser in _verbs():
        visible = [a for a in parser._actions[1:] if a.help != argparse.SUPPRESS]  # [0]: -h
        shown = [a.option_strings[0] for a in visible if a.option_strings]
        documented = usage[" ".join(words)]
        missing = [f for f in shown if not re.search(_token(f), documented)]
        assert not missing, f"docs/cli.md: zspace {' '.join(words)} misses {missing}"


def test_every_number_option_takes_a_negative_value(capsys):
    """``--strengths -3,0,3``, ``--start -1 -2``: a leading minus is a value, never taken
    for an option; the value then meets the same checks as any other."""
    from zspace.cli.main import build_parser

    parser, seen = build_parser(), []
    base = {**BASE, "perceptron": ["--scaling", "none"], "evaluator info": ["D"]}
    base.update({"evaluator train": ["D"], "encode": ["RUN"]})
    for words, sub in _verbs():
        for action in sub._actions:
            kind = getattr(action.type, "__qualname__", "")
            if not action.option_strings or not (action.type in (int, float) or "numbers" in kind):
                continue
            given, want = ("-3,0,3", [-3, 0, 3]) if "numbers" in kind else ("-3", -3)
            n = action.nargs if isinstance(action.nargs, int) else 1
            flag = action.option_strings[0]
            argv = [*words, *base.get(" ".join(words), []), flag, *[given] * n]
            if action.choices:  # --channels {0,1,3}: argparse's choice check, not "expected one"
                with pytest.raises(SystemExit):
                    parser.parse_args(argv)
                assert "invalid choice: -3" in capsys.readouterr().err
                continue
            value = getattr(parser.parse_args(argv), action.dest)
            assert value == (want if n == 1 else [want] * n), argv
            seen.append(f"{' '.join(words)} {flag}")
    assert {"generate --strengths", "generate --limits", "perceptron --start"} <= set(seen)
    assert len(seen) > 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "model.fact=-1"], "config: model.fact = -1.0: must be >= 0"),
        (["train", "--set", "train.lr=-1e-4"], "config: train.lr = -0.0001: must be > 0"),
        (["demo", "--epochs", "-1"], "--epochs -1: must be >= 1"),
        (["data", "preview", "--count", "-2"], "--count = -2: must be >= 1"),
        (["data", "info", "--size", "-8"], "data.image_size = -8: must be >= 0"),
        (["perceptron", "--scaling", "none", "--eta", "-.5"], "eta must be a finite number > 0"),
        (["train", "--out", "R", "--resume", "-1"], "--resume '-1': expected an epoch number"),
    ],
)
def test_negative_values_meet_the_checks_not_argparse(argv, message, capsys, tmp_path):
    assert main([a.replace("R", str(tmp_path / "r")) if a == "R" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "expected one argument" not in err and err.count("\n") == 1


def _token(flag: str) -> str:
    """``flag`` as a word of its own (``-n`` is not the start of ``--no-grids``)."""
    return rf"(?<![\w-]){re.escape(flag)}(?![\w-])"


def test_the_parser_loads_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys; from zspace.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_librarys_warning_is_one_line_on_stderr(tmp_path, capsys, monkeypatch):
    """Pillow warns of an image above its pixel limit with Python's two-line format (the
    file and the source line); the CLI prints it as one line and goes on."""
    import warnings

    from PIL import Image

    for i in range(3):
        Image.new("L", (40, 40), 60 * i).save(tmp_path / f"img{i}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 pixels: warned, not refused
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path / "cache"))
    shown = warnings.showwarning
    assert main(["data", "info", f"folder:{tmp_path}", "--set", "data.image_size=16"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("zspace: warning: ") for line in err)
    assert any("DecompressionBombWarning: Image size (1600 pixels) exceeds" in e for e in err)
    assert warnings.showwarning is shown  # main leaves the caller's warning display as it was
