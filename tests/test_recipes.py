"""Recipes: every shipped file validates, reference numbers carry tolerances and are
judged by them, missing data is one line, and a recipe per data kind runs to its report
on the small real sets (issue 13)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from zspace.analysis.radius import radius_distribution
from zspace.analysis.runner import make_params, save_result
from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.flow.recipes import (
    WHERE,
    list_recipes,
    load_recipe,
    plan_for,
    recipe_dir,
    recipe_names,
)
from zspace.reporting.references import (
    Reference,
    measure,
    parse_reference,
    setup_differences,
)
from zspace.reporting.text import num

EXPECTED = {
    "celeba-ae",
    "celeba-vae-tiny",
    "celeba-vae",
    "celeba-vae-dense",
    "celeba-ae-z200",
    "mnist-ae",
    "mnist-ae-z2",
    "mnist-vae",
    "mnist-kl-sweep",
    "celeba-kl-sweep",
}


def test_every_shipped_recipe_parses_and_validates():
    recipes = list_recipes()
    assert {r.name for r in recipes} >= EXPECTED
    for r in recipes:
        cfg = r.base_config("DATA")  # config_from_dict validated it
        assert cfg.train.epochs >= 1 and r.summary and r.posts
        plan = plan_for(r)
        assert plan.record is not None and plan.record["recipe"] == r.name
        for name, params in plan.analysis.items():
            make_params(name, params)
        t = r.expected_seconds()
        assert t["gpu"] and t["gpu"] > 0, r.name  # every recipe says its expected GPU time
        assert r.timing.get("gpu_source"), r.name
        for ref in r.references:  # the tolerance within which the report says "matches"
            assert ref.kind in ("tolerance", "rel_tolerance", "factor")
            assert ref.source and (ref.quote or ref.reading), (r.name, ref.quantity)
            lo, hi = ref.bounds()
            assert lo <= ref.lo <= ref.hi <= hi
        if r.is_sweep:
            assert len(r.vary) == 1 and r.trends
        assert r.data == "builtin" or r.data in WHERE


def test_the_reference_settings_are_in_the_recipes():
    ae = load_recipe("celeba-ae")
    m, t = ae.base_config("x").model, ae.base_config("x").train
    assert (m.z_dim, m.encoder_filters, m.variational) == (256, (32, 64, 128, 256), False)
    assert (t.epochs, t.batch_size, t.lr) == (24, 128, 5e-4)
    assert ae.analysis["kmeans"] == {"k_min": 2, "k_max": 80, "k_step": 2}
    perps = {
        (v.get("perplexity", 30.0), v.get("early_exaggeration", 12.0))
        for k, v in ae.analysis.items()
        if k.startswith("tsne")
    }
    assert perps == {(30.0, 12.0), (10.0, 16.0)}
    assert {v.get("pca_components") for k, v in ae.analysis.items()} >= {2, 4, 10}
    assert load_recipe("celeba-vae-tiny").base_config("x").model.fact == 1e-5
    vae = load_recipe("celeba-vae")
    assert vae.base_config("x").model.fact == 5.0
    assert vae.generate["grids"][0]["sharpen"] == [0.0, 3.0, 6.0, 7.0]
    assert load_recipe("celeba-vae-dense").base_config("x").model.enc_dense > 0
    z200 = load_recipe("celeba-ae-z200")
    assert (z200.base_config("x").model.z_dim, z200.base_config("x").model.fact) == (200, 1e-6)
    assert max(z200.generate["grids"][0]["limits"]) == 50
    mnist, celeba = load_recipe("mnist-kl-sweep"), load_recipe("celeba-kl-sweep")
    assert max(mnist.vary["model.fact"]) < max(celeba.vary["model.fact"])  # MNIST ends lower
    q = {r.quantity: r for r in ae.references}
    assert q["history.total"].lo == 4515 and q["radius.peak"].hi == 16.75


def test_reference_verdicts_use_the_tolerance():
    r = parse_reference(
        {"quantity": "radius.peak", "range": [16.5, 16.75], "tolerance": 0.5, "source": "s"}, "t"
    )
    assert r.bounds() == (16.0, 17.25)
    assert [r.verdict(v) for v in (16.0, 17.25, 15.99, 17.3, None, math.nan)] == [
        "matches",
        "matches",
        "differs",
        "differs",
        "not measured",
        "not measured",
    ]
    assert r.shown() == "16.5 to 16.75 ± 0.5"
    f = parse_reference(
        {"quantity": "vae.radius_rel_mean", "value": 6e-5, "factor": 3, "source": "s"}, "t"
    )
    assert f.verdict(1.9e-5) == "differs" and f.verdict(2.1e-5) == "matches"
    assert f.verdict(1.7e-4) == "matches" and f.verdict(1.9e-4) == "differs"
    neg = parse_reference(
        {"quantity": "vae.logvar_mean", "value": -13.7, "rel_tolerance": 0.1, "source": "s"}, "t"
    )
    lo, hi = neg.bounds()
    assert math.isclose(lo, -15.07) and math.isclose(hi, -12.33)
    assert Reference.to_json(r)["tolerance"] == 0.5
    assert parse_reference(r.to_json(), "again") == r  # what recipe.json stores reads back
    # the pages' one number format (reporting.text.num)
    assert num(4515.2) == "4,515" and num(6.124e-5) == "6.124e-5" and num(None) == "—"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"quantity": "radius.peak", "value": 16, "source": "s"}, "exactly one tolerance"),
        (
            {"quantity": "radius.peak", "value": 16, "tolerance": 1, "factor": 2, "source": "s"},
            "exactly one tolerance",
        ),
        ({"quantity": "radius.peak", "value": 16, "tolerance": 1}, "'source'"),
        ({"quantity": "nonsense.x", "value": 1, "tolerance": 1, "source": "s"}, "unknown quantity"),
        ({"quantity": "radius.peak", "range": [2, 1], "tolerance": 1, "source": "s"}, "above high"),
        ({"quantity": "radius.peak", "value": 1, "factor": 1, "source": "s"}, "factor > 1"),
        (
            {"quantity": "radius.peak", "value": 1, "tolerance": 1, "source": "s", "x": 1},
            "unknown key",
        ),
    ],
)
def test_bad_reference_entries_are_refused(entry, message):
    with pytest.raises(ZspaceError, match=message):
        parse_reference(entry, "recipe x reference #1")


def test_a_bad_recipe_file_is_one_line(tmp_path):
    text = (recipe_dir() / "mnist-vae.toml").read_text()
    bad = tmp_path / "mine.toml"
    bad.write_text(
        text.replace('name = "mnist-vae"', 'name = "mine"').replace(
            "tolerance = 0.01", "tolerance_note_only = 1"
        )
    )
    with pytest.raises(ZspaceError, match="reference #3"):
        load_recipe(bad)
    bad.write_text(
        text.replace('name = "mnist-vae"', 'name = "mine"').replace("z_dim = 16", "z_dim = -3")
    )
    with pytest.raises(ZspaceError, match="z_dim"):
        load_recipe(bad)
    with pytest.raises(ZspaceError, match="unknown recipe 'nope'; known: celeba-ae"):
        load_recipe("nope")


def _fake_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rows = [
        {
            "epoch": e,
            "total": 100.0 / e,
            "reco": 90.0 / e,
            "kl": 10.0 / e,
            "val_total": 50.0,
            "val_reco": 40.0,
            "val_kl": 10.0,
        }
        for e in (1, 2)
    ]
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    z = np.random.default_rng(0).standard_normal((4000, 16)).astype(np.float32)
    p = make_params("radius", {"bin_width": 0.5})
    save_result(run, "radius", "train", p, radius_distribution(z, p), 0.0)
    row = {"n": 8, "mean_radius": 1.0, "median_distance": 1.0}
    rates = {"threshold": 1.0, "quantile": 0.95, "reference_size": 8, "space": "mu", "results": [
        {"sampler": "data", "params": {}, "rate": 0.95, **row},
        {"sampler": "normal", "params": {}, "rate": 0.25, **row},
        {"sampler": "uniform", "params": {"limit": 2.5}, "rate": 0.125, **row},
    ]}  # fmt: skip
    (run / "samples" / "rates.json").write_text(json.dumps(rates))
    judge = {"fingerprint": "f", "kind": "classes", "reference_size": 8}
    ev = {"n": 8, "k": 5, "evaluator": judge,
          "results": [{"sampler": "normal", "metrics": {"precision": 0.5}}]}  # fmt: skip
    (run / "samples" / "eval.json").write_text(json.dumps(ev))
    return run


def test_measure_reads_the_run_files(tmp_path):
    run = _fake_run(tmp_path)
    assert measure(run, "history.total") == 50.0 and measure(run, "history.epochs") == 2
    assert measure(run, "history.kl_share") == pytest.approx(0.1)
    assert measure(run, "history.val_kl_share") == pytest.approx(0.2)
    assert (measure(run, "rates.normal"), measure(run, "rates.uniform:2.5")) == (0.25, 0.125)
    assert measure(run, "rates.uniform:3") is None and measure(run, "rates.gmm") is None
    assert measure(run, "eval.normal.precision") == 0.5
    assert measure(run, "vae.logvar_mean") is None  # not computed: "not measured"
    r = np.linalg.norm(np.random.default_rng(0).standard_normal((4000, 16)), axis=1)
    assert measure(run, "radius.share:3:5") == pytest.approx(((r >= 3) & (r < 5)).mean())
    assert measure(run, "radius.share:3.1:5") is None  # not on a bin edge
    assert measure(run, "radius.gap") == pytest.approx(abs(r.mean() - 4), abs=1e-6)


def test_setup_differences_say_what_differs(tmp_path):
    from zspace.config import load_config, to_dict
    from zspace.runs.folder import write_config, write_meta

    run = _fake_run(tmp_path)
    cfg = load_config(None, ["train.batch_size=64", "train.epochs=2", "train.threads=1"])
    write_config(run, cfg)
    write_meta(run, {"kind": "vae", "splits": {"train": 900, "valid": 100}})
    recipe_cfg = to_dict(load_config(None, ["train.epochs=24"]))
    record = {
        "config": recipe_cfg,
        "setup": {"images": 170000, "epochs": 24, "known_differences": ["framework: TF"]},
        "quick": True,
    }
    diffs = setup_differences(record, run)
    assert diffs[0] == "fewer training images: 900 here, 170,000 in the reference"
    assert diffs[1] == "fewer epochs: 2 here, 24 in the reference"
    assert "train.batch_size: 64 here, 128 in the recipe" in diffs
    assert not any("threads" in d for d in diffs)  # not a set-up difference
    assert diffs[-2:] == [
        "--quick: analyses and generation shrunk for a smoke test",
        "framework: TF",
    ]


def test_recipe_list_and_show(capsys):
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    for name in recipe_names():
        assert f"\n{name} " in out
    assert "CPU" in out and "GPU" in out and "extrapolated" in out
    assert main(["recipe", "show", "celeba-ae"]) == 0
    assert capsys.readouterr().out == (recipe_dir() / "celeba-ae.toml").read_text()


@pytest.mark.parametrize(
    "args, words",
    [
        (["celeba-vae"], ["CelebA", "licence-gated", "mmlab.ie.cuhk.edu.hk", "--data PATH"]),
        (["mnist-vae"], ["MNIST", "zspace data download mnist", "--data data/mnist"]),
        (["celeba-ae", "--data", "/nowhere/celeba"], ["/nowhere/celeba not found", "--data"]),
        (["nope"], ["unknown recipe 'nope'"]),
        (["mnist-vae", "--data", ".", "--param", "tsne.perplexity=x"], ["tsne.perplexity"]),
    ],
)
def test_recipe_errors_are_one_line_with_exit_2(args, words, capsys, tmp_path):
    assert main(["recipe", "run", *args, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zspace: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err
    assert not (tmp_path / "r").exists()


def _run_recipe(name, data, tmp_path, extra=()):
    """Run a recipe quick; its data cache and evaluator go to the session's cache root
    (conftest), so the recipes of one data set build their evaluator once."""
    run = tmp_path / Path(name).stem  # a recipe file's run sits beside it, not on it
    args = [
        "recipe",
        "run",
        name,
        "--data",
        str(data),
        "--run-dir",
        str(run),
        "--quick",
        "--set",
        "train.epochs=1",
        "--no-progress",
        *extra,
    ]
    assert main(args) == 0
    return run


def _check_reference_table(run: Path, recipe_name: str) -> str:
    text = (run / "report.html").read_text()
    recipe = load_recipe(recipe_name)
    assert '<section id="reference">' in text and "Reference vs this run" in text
    rows = text.split('<table class="ref">')[1].split("</table>")[0].count("<tr>") - 1
    assert rows == len(recipe.references)
    assert "fewer epochs: 1 here" in text and "--quick" in text
    for ref in recipe.references:
        assert ref.quantity in text
    return text


def test_celeba_recipe_runs_to_its_report(shared_data_dir, tmp_path, capsys):
    small = ["--set", "data.image_size=32"]  # the suite's budget: 32x32, not the recipe's 96
    run = _run_recipe("celeba-vae", shared_data_dir / "celeba-558", tmp_path, small)
    text = _check_reference_table(run, "celeba-vae")
    assert "fewer training images: 502 here, 170,000 in the reference" in text
    # one epoch on 502 images of 32x32 is far from the reference: the loss must not "match"
    rec = json.loads((run / "recipe.json").read_text())
    total = next(r for r in rec["references"] if r["quantity"] == "history.total")
    got = measure(run, "history.total")
    lo, hi = total["range"]
    assert not (lo - total["tolerance"] <= got <= hi + total["tolerance"])  # 32x32: far below
    assert text.count("sharp") >= 4  # the sharpening factors 0, 3, 6, 7
    idx = json.loads((run / "samples" / "index.json").read_text())
    limits = {e["params"].get("limit") for e in idx if e["sampler"] == "uniform"}
    assert limits == {0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0, 8.0}
    flow = json.loads((run / "flow.json").read_text())
    assert flow["complete"]
    capsys.readouterr()
    _run_recipe("celeba-vae", shared_data_dir / "celeba-558", tmp_path, small)  # nothing to do
    assert "complete, nothing to do" in capsys.readouterr().out


def test_mnist_recipe_runs_to_its_report(shared_data_dir, tmp_path, mnist_evaluator):
    # t-SNE is left out here (the CelebA test runs it); everything else as the recipe says
    # 16x16 as in tests/test_evaluation_mnist.py, whose evaluator the session cache keeps
    extra = ["--analyses", "radius,axes,pca,kmeans,vae", "--set", "data.image_size=16"]
    run = _run_recipe("mnist-vae", shared_data_dir / "mnist", tmp_path, extra)
    assert not (run / "analysis" / "tsne.json").exists()
    text = _check_reference_table(run, "mnist-vae")
    assert "fewer training images: 9,000 here, 60,000 in the reference" in text
    assert "differs" in text or "matches" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(recipe_names()) - {"celeba-vae", "mnist-vae"}))
def test_every_other_recipe_runs_quick(name, shared_data_dir, tmp_path):
    recipe = load_recipe(name)
    data = shared_data_dir / {"celeba": "celeba-558", "mnist": "mnist"}[recipe.data]
    extra = ["--param", "tsne.n=300"]
    if recipe.is_sweep:  # the smallest and largest value are enough to see it run
        values = recipe.vary["model.fact"]
        mine = tmp_path / f"{name}.toml"
        mine.write_text(
            re.sub(
                r'"model\.fact" = \[.*\]',
                f'"model.fact" = [{values[0]!r}, {values[-1]!r}]',
                recipe.text,
            )
        )
        name = str(mine)
    run = _run_recipe(name, data, tmp_path, extra)
    page = run / ("sweep.html" if recipe.is_sweep else "report.html")
    assert page.is_file()
