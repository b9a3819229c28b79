"""``zspace pipeline`` passes the generation and evaluation options to its stages (issue
28): the plan they make, the CLI's flags reaching it, the files a pipeline leaves, and
bad values refused before any training."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from conftest import TINY, copy_run

import zspace
from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.flow import pipeline as pipeline_module
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
        ({"seed": -3}, "seed -3: must be >= 0"),
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
    rates = json.loads((run / "samples" / "rates.json").read_text())
    assert [r["sampler"] for r in rates["results"]] == ["data", "gmm"]
    assert [r["n"] for r in rates["results"]] == [120, 120]
    ev = json.loads((run / "samples" / "eval.json").read_text())
    assert [r["sampler"] for r in ev["results"]] == ["real", "gmm"] and ev["n"] == 120
    gmm = json.loads((run / "samplers" / "gmm.json").read_text())
    assert set(gmm["bic"]) == {"2", "3"}
    grids = json.loads((run / "samples" / "index.json").read_text())
    assert {e["sampler"] for e in grids if e["kind"] == "grid"} == {"gmm"}
