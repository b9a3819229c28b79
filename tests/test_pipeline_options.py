"""``zspace pipeline``, ``zspace sweep`` and ``zspace recipe run`` pass the generation
and evaluation options to their runs' stages (issue 28): the plan they make, the CLI's
flags reaching it, the files the runs leave, a recipe's own settings kept where no
option is given, and bad values refused before any training."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from conftest import TINY, copy_run

import zspace
from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.flow import pipeline as pipeline_module
from zspace.flow import stages
from zspace.flow.recipes import load_recipe, plan_for
from zspace.flow.stages import GRIDS, RATES, Plan, with_options


def test_options_reach_the_stages_that_take_them():
    plan = with_options(Plan(), sampler="gmm,normal", n=300, components=8, k=3, oracle="none")
    assert plan.grids == ({"sampler": ["gmm", "normal"], "components": [8]},)  # keeps its size
    assert plan.rates == {"sampler": ["gmm", "normal"], "n": 300, "components": [8]}
    assert plan.evaluate == {**plan.rates, "k": 3, "oracle": "none"}
    assert plan.recon == Plan().recon
    # the defaults spelled out make the default plan: a finished run is not redone
    same = with_options(Plan(), sampler="normal,gauss,gmm", n=None, seed=None)
    assert asdict(same) == asdict(Plan()) and same.grids == (GRIDS,) and same.rates == RATES
    assert with_options(Plan(evaluate=None), n=5).evaluate is None  # a skipped stage stays so


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sampler": "gmm,nope"}, "unknown sampler 'nope'"),
        ({"components": [0, 4]}, "need counts >= 1"),
        ({"n": 0}, "n = 0: must be >= 1"),
        ({"k": -1}, "k = -1: must be >= 1"),
        ({"rounds": 1}, "rounds = 1: a spread needs at least 2"),
        ({"limits": [1, -2]}, "uniform limit -2: must be a finite number > 0"),
        ({"seed": -3}, "seed = -3: must be >= 0"),
        ({"task": "colour"}, "evaluator task 'colour'"),
        ({"oracle": "eyes"}, "oracle 'eyes'"),
        ({"sampels": "gmm"}, "unknown option 'sampels'"),
    ],
)
def test_bad_options_fail_before_any_training(options, message, tmp_path):
    with pytest.raises(ZspaceError, match=message):
        zspace.pipeline(None, TINY, tmp_path / "p", log=lambda s: None, **options)
    assert not (tmp_path / "p").exists()


def test_the_cli_passes_its_flags_to_the_plan(monkeypatch, tmp_path):
    got = {}

    def capture(cfg, folder, plan, log=None):
        got["plan"] = plan
        return folder / "report.html"

    monkeypatch.setattr(pipeline_module, "run_stages", capture)
    args = ["pipeline", "--out", str(tmp_path / "p"), "--sampler", "gmm", "-n", "250"]
    args += ["--components", "16-18", "--seed", "7", "-k", "4", "--rounds", "10"]
    args += ["--oracle", "none", "--task", "rotation"]
    assert main(args) == 0
    plan = got["plan"]
    shared = {"sampler": ["gmm"], "components": [16, 17, 18], "seed": 7}
    assert plan.grids == (shared,)
    assert plan.rates == {**shared, "n": 250}
    assert plan.evaluate == {**shared, "n": 250, "k": 4, "rounds": 10, "oracle": "none",
                             "task": "rotation"}  # fmt: skip
    assert main([*args, "--limits", "-1.5,2"]) == 2  # a negative limit: one line, exit 2


def test_a_pipeline_with_options_leaves_their_files(tiny_runs, tmp_path, digits_evaluator):
    """On a trained copy (the pipeline skips training): one sampler, its GMM counts,
    n images per sampler in the rates and the evaluation."""
    run = copy_run(tiny_runs["vae"], tmp_path / "vae")
    trained = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    zspace.pipeline(
        None, [*TINY, "model.variational=true"], run, only=["radius"], progress=False,
        log=lambda s: None, sampler="gmm", components=[2, 3], n=120, rounds=5,
    )  # fmt: skip
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == trained
    _follows(run, 120, [2, 3])


def _follows(run, n, components, grids=True):
    """The run's rates, evaluation, GMM fit and grids come from gmm alone, n images each."""
    rates = json.loads((run / "samples" / "rates.json").read_text())
    assert [r["sampler"] for r in rates["results"]] == ["data", "gmm"]
    assert [r["n"] for r in rates["results"]] == [n, n]
    ev = json.loads((run / "samples" / "eval.json").read_text())
    assert [r["sampler"] for r in ev["results"]] == ["real", "gmm"] and ev["n"] == n
    gmm = json.loads((run / "samplers" / "gmm.json").read_text())
    assert set(gmm["bic"]) == {str(c) for c in components}
    entries = json.loads((run / "samples" / "index.json").read_text())
    assert {e["sampler"] for e in entries if e["kind"] == "grid"} == {"gmm"}
    return ev


SETS = [a for s in [*TINY, "train.epochs=1"] for a in ("--set", s)]
OPTIONS = ["--sampler", "gmm", "--components", "2,3", "--count", "120", "--rounds", "5"]


def test_every_run_of_a_sweep_follows_the_options(tmp_path, digits_evaluator, capsys, monkeypatch):
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--vary", "model.fact=1e-5,1", "--analyses", "radius",
            "--no-progress", *SETS]  # fmt: skip
    for bad, words in ((["--sampler", "gmm,nope"], "unknown sampler 'nope'"),
                       (["-n", "0"], "n = 0: must be >= 1")):  # fmt: skip
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("zspace: error: ") and err.count("\n") == 1 and words in err, err
    assert not out.exists()
    assert main([*argv, *OPTIONS, "-k", "3"]) == 0
    for run in ("model.fact=1e-5", "model.fact=1"):
        ev = _follows(out / run, 120, [2, 3])
        assert ev["k"] == 3 and ev["rounds"] == 5
    plan = json.loads((out / "sweep.json").read_text())["plan"]
    assert plan["rates"] == {"sampler": ["gmm"], "n": 120, "components": [2, 3]}
    # another count redoes the rates and the evaluation, not the training
    monkeypatch.setattr(stages, "train", lambda *a, **k: pytest.fail("trained again"))
    assert main([*argv, *OPTIONS[:4], "--count", "60"]) == 0
    assert _follows(out / "model.fact=1", 60, [2, 3])["rounds"] == 50  # evaluate's default
    # Python: the same keywords; a bad one refused before any folder
    zspace.sweep(None, ["model.fact=1,2"], tmp_path / "py", overrides=TINY, page_only=True,
                 log=lambda s: None, sampler="normal", n=40, oracle="none")  # fmt: skip
    plan = json.loads((tmp_path / "py" / "sweep.json").read_text())["plan"]
    assert plan["evaluate"] == {"sampler": ["normal"], "n": 40, "oracle": "none"}
    with pytest.raises(ZspaceError, match="rounds = 1: a spread needs at least 2"):
        zspace.sweep(None, ["model.fact=1,2"], tmp_path / "bad", overrides=TINY, rounds=1)
    assert not (tmp_path / "bad").exists()


RECIPE = """[recipe]
name = "tiny"
title = "tiny digits VAE"
summary = "a recipe that fixes its generation and evaluation"
data = "builtin"
posts = "none"

[config]
model = { z_dim = 4, encoder_filters = [8, 16], encoder_strides = [2, 2] }
data = { source = "builtin:digits", image_size = 16 }
train = { batch_size = 128, epochs = 1, threads = 1 }

[analysis]
only = ["radius"]

[[generate.grids]]
sampler = "normal,gauss"
n = 16

[generate.rates]
sampler = ["normal", "gauss"]
n = 200

[evaluate]
sampler = ["normal", "gauss"]
n = 200
k = 3
rounds = 4
"""


def test_a_recipes_options_win_where_given_and_its_own_settings_elsewhere(
    tmp_path, digits_evaluator, capsys
):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE)
    argv = ["recipe", "run", str(recipe), "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--task", "colour"]) == 2
    err = capsys.readouterr().err
    assert "evaluator task 'colour'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
    assert main([*argv, *OPTIONS[:6]]) == 0
    ev = _follows(tmp_path / "run", 120, [2, 3])
    assert ev["k"] == 3 and ev["rounds"] == 4  # not given: the recipe's own, not the default 5/50
    page = (tmp_path / "run" / "report.html").read_text()
    assert "options given: n=120, sampler=gmm, components=[2, 3]" in page
    # Python: run_recipe's keywords are pipeline's; the plan without them is the recipe's
    plan = plan_for(load_recipe(recipe), quick=True, n=300, seed=9)
    assert plan.rates == {"sampler": ["normal", "gauss"], "n": 300, "seed": 9,
                          "components": [1, 2, 4]}  # fmt: skip
    assert plan.record is not None and plan.record["options"] == {"n": 300, "seed": 9}
    assert plan_for(load_recipe(recipe)).evaluate == {**load_recipe(recipe).evaluate}
