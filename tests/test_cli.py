import json

import pytest

from zspace.cli.main import main


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


def test_old_option_spellings_still_work_and_warn_once(tmp_path, capsys):
    from zspace.cli import common
    from zspace.cli import main as cli_main

    common._warned.clear()
    parser = cli_main.build_parser()
    args = parser.parse_args(["data", "preview", "builtin:digits", "--columns", "5"])
    assert args.cols == 5
    args = parser.parse_args(
        ["analyze", "RUN", "--set", "radius.bin_width=0.1", "--param", "tsne.n=50"]
    )
    assert args.params == ["radius.bin_width=0.1", "tsne.n=50"]
    args = parser.parse_args(["analyze", "RUN", "--set", "kmeans.k_max=4"])
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "zspace: warning: --columns is deprecated; use --cols",
        "zspace: warning: --set is deprecated; use --param",
    ]
