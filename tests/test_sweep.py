"""``zspace sweep`` on the built-in digits: run folders, the page with every section and
every image loaded, no training on a second call, an interrupted sweep finished by the
next call (issue 13); plus the parts on their own (values, names, directions)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TINY, needs_chromium

import zspace
from zspace.analysis.runner import load_result, variants
from zspace.cli.main import main
from zspace.config.parse import split_list
from zspace.core.errors import ZspaceError
from zspace.flow import stages
from zspace.flow.sweeps import parse_vary, plan_runs
from zspace.reporting.sweep_page import SECTIONS, axis_values, spearman, trend_rows

VARY = ["model.fact=1e-5,0.1,1"]
# small: the radius and VAE analyses, the default generation (the plan the CLI builds)
ARGS = [
    "--analyses", "radius,vae", "--param", "radius.bin_width=0.2", "--no-progress",
    *[a for s in TINY for a in ("--set", s)],
]  # fmt: skip
PLAN = stages.plan_from(["radius.bin_width=0.2"], ["radius", "vae"])


def _sweep(out, log=lambda s: None, **kw):
    return zspace.sweep(None, VARY, out, overrides=TINY, plan=PLAN, log=log, progress=False, **kw)


@pytest.fixture(scope="module")
def done(tmp_path_factory, digits_evaluator) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    _sweep(out)
    return out


def test_one_folder_per_value_and_a_page(done):
    names = sorted(p.name for p in done.iterdir() if p.is_dir())
    assert names == ["model.fact=0.1", "model.fact=1", "model.fact=1e-5"]
    for n in names:
        run = done / n
        assert len(zspace.load_run(run).history) == 2 and (run / "report.html").is_file()
        assert zspace.load_run(run).config.model.fact == float(n.split("=")[1])
        vae = load_result(run, "vae")[0]["result"]
        assert 0 <= vae["active_units"] <= 4 and len(vae["axis_mu_var"]) == 4
    text = (done / "sweep.html").read_text()
    for sid, _ in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert text.count('href="model.fact=') == 3  # links to each run's report
    assert "http://" not in text and "https://" not in text


@needs_chromium
def test_the_page_loads_every_image_in_headless_chromium(done, tmp_path):
    from conftest import headless_chromium

    driver = headless_chromium(tmp_path / "profile")
    try:
        driver.get((done / "sweep.html").resolve().as_uri())
        ids = driver.execute_script(
            "return Array.from(document.querySelectorAll('section')).map(s => s.id)"
        )
        assert ids == [sid for sid, _ in SECTIONS]
        sizes = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        generation = driver.execute_script(
            "return document.querySelectorAll('#generation img').length"
        )
        # losses, radius, logvar, active units, the generation figures + 3 thumbnails
        assert generation >= 1 and len(sizes) == 4 + generation + 3, sizes
        assert all(c and w > 0 for c, w in sizes), sizes
        thumbs = driver.execute_script(
            "return Array.from(document.querySelectorAll('.thumbs img'))"
            ".map(i => [i.naturalWidth, i.getBoundingClientRect().width])"
        )
        assert thumbs == [[360, 360]] * 3  # large enough to see what the runs decode to
        names = driver.execute_script(
            "return Array.from(document.querySelectorAll('#numbers td.nw, #runs td.nw'))"
            ".map(td => [td.textContent, getComputedStyle(td).whiteSpace])"
        )
        assert sorted(names) == sorted([[n, "nowrap"] for n in ["model.fact=1e-5", "model.fact=0.1",
                                        "model.fact=1"]] * 2)  # fmt: skip
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()


def test_a_second_call_does_no_training(done, monkeypatch):
    stamps = {p: p.stat().st_mtime_ns for p in done.rglob("*") if p.suffix in (".pt", ".npz")}

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(stages, "train", no_training)
    lines: list[str] = []
    _sweep(done, log=lines.append)
    assert sum("complete, skipped" in line for line in lines) == 3
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_list_shows_each_run_and_its_status(done, capsys):
    assert main(["sweep", "--out", str(done), "--vary", *VARY, "--list", *ARGS]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in out] == [
        ["0", "model.fact=1e-5", "complete"],
        ["1", "model.fact=0.1", "complete"],
        ["2", "model.fact=1", "complete"],
    ]


def test_an_interrupted_sweep_is_finished_by_the_next_call(tmp_path, digits_evaluator):
    out = tmp_path / "sweep"
    # killed (SIGKILL, the trainer's test hook) once the first run's 4 epochs and the
    # second run's first epoch are written whole
    env = {**os.environ, "ZSPACE_TEST_KILL_AFTER_EPOCHS": "5"}
    cmd = [sys.executable, "-m", "zspace", "sweep", "--out", str(out), "--vary", *VARY,
           *ARGS, "--set", "train.epochs=4"]  # fmt: skip
    killed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first = out / "model.fact=1e-5"
    kept = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    assert (first / "report.html").is_file()
    assert not (out / "model.fact=1").exists()
    done_epochs = len(zspace.load_run(out / "model.fact=0.1", checkpoint="last").history)
    assert 1 <= done_epochs < 4

    # the interrupted run alone first (a job array's task), then the rest
    lines: list[str] = []
    base = ["sweep", "--out", str(out), "--vary", *VARY, *ARGS, "--set", "train.epochs=4"]
    assert main([*base, "--only", "1"]) == 0
    assert not (out / "model.fact=1").exists()
    hist = zspace.load_run(out / "model.fact=0.1").history
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    zspace.sweep(None, VARY, out, overrides=[*TINY, "train.epochs=4"], plan=PLAN,
                 log=lines.append, progress=False)  # fmt: skip
    assert lines.count("[model.fact=1e-5] complete, skipped") == 1
    assert lines.count("[model.fact=0.1] complete, skipped") == 1
    assert any(line.startswith("epoch 4/4") for line in lines)  # the third run trained
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the first run untouched
    assert len(zspace.load_run(out / "model.fact=1").history) == 4
    assert (out / "sweep.html").is_file()


def test_split_and_parse_values():
    assert split_list("1e-5, 0.1,1") == ["1e-5", "0.1", "1"]
    assert split_list("[8, 16],[16,32]") == ["[8, 16]", "[16,32]"]
    assert parse_vary(["model.fact=1,2", ("model.z_dim", [4, 8])]) == [
        ("model.fact", ["1", "2"]), ("model.z_dim", ["4", "8"])]  # fmt: skip
    runs = plan_runs(parse_vary(["model.fact=1,2", "model.z_dim=4,8"]))
    assert [r.name for r in runs] == [
        "model.fact=1,model.z_dim=4", "model.fact=1,model.z_dim=8",
        "model.fact=2,model.z_dim=4", "model.fact=2,model.z_dim=8",
    ]  # fmt: skip
    assert runs[3].overrides == ["model.fact=2", "model.z_dim=8"]
    assert plan_runs(parse_vary(["data.source=a/b,c"]))[0].name == "data.source=a_b"


@pytest.mark.parametrize(
    "vary, message",
    [
        (["model.fact"], "expected KEY=V1,V2"),
        (["model.fact=1"], "two or more values"),
        (["model.fact=1,1"], "model.fact: 1 and 1 are the same value"),
        (["model.fact=1,1.0"], "model.fact: 1 and 1.0 are the same value"),
        (["model.fact=0.5,5e-1"], "model.fact: 0.5 and 5e-1 are the same value"),
        ([("model.fact", 5)], "vary item ('model.fact', 5): expected 'KEY=V1,V2'"),
        (["fact=1,2"], "unknown key 'fact' (did you mean 'model.fact'?)"),
        (["model.fact=1,2", "model.fact=3,4"], "given twice"),
        (["model.z_dim=4,-1"], "model.z_dim=-1"),
        (["model.nope=1,2"], "unknown key 'model.nope'"),
    ],
)
def test_bad_sweeps_fail_before_any_folder(vary, message, tmp_path):
    with pytest.raises((ZspaceError, TypeError), match=re.escape(message)):
        zspace.sweep(None, vary, tmp_path / "s", overrides=TINY, log=lambda s: None)
    assert not (tmp_path / "s").exists()


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["sweep", "--out", str(tmp_path / "s"), *ARGS]) == 2
    assert "give at least one --vary" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "s"), "--vary", *VARY, "--only", "3"]) == 2
    assert "runs 0..2" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "s"), "--vary", *VARY, "--jobs", "0"]) == 2
    assert "--jobs 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    # --page alone: the page of what is there (nothing yet), no training
    assert main(["sweep", "--out", str(tmp_path / "s"), "--vary", *VARY, "--page", *ARGS]) == 0
    assert "0 of 3 runs finished" in (tmp_path / "s" / "sweep.html").read_text()
    printed = capsys.readouterr().out
    assert printed.count("sweep.html") == 1, printed  # the page named once
    assert not (tmp_path / "s" / "model.fact=1").exists()


def test_axis_values_and_rank_correlation():
    assert axis_values(["1e-5", "0.1", "1"]) == ([1e-5, 0.1, 1.0], True, None)
    assert axis_values(["2", "4", "8"])[1] is False  # a factor of 4: linear
    assert axis_values(["-1", "1"])[1] is False
    assert axis_values(["relu", "selu"]) == ([0.0, 1.0], False, ["relu", "selu"])
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 2, 3], [5, 5, 5]) is None


def test_directions_are_judged_by_rank_correlation(done):
    sweep = json.loads((done / "sweep.json").read_text())
    sweep["trends"] = [
        {"quantity": "history.epochs", "direction": "up", "min_rank_correlation": 0.8},
        {"quantity": "vae.logvar_mean", "direction": "up", "min_rank_correlation": 0.5},
        {"quantity": "rates.gmm", "direction": "up", "min_rank_correlation": 0.5},
    ]
    got = trend_rows(done, sweep)
    assert got[0]["verdict"] == "not measured"  # constant: no rank correlation
    xs = [1e-5, 0.1, 1.0]
    lv = [load_result(done / f"model.fact={v}", "vae")[0]["result"]["logvar_mean"]
          for v in ("1e-5", "0.1", "1")]  # fmt: skip
    rho = spearman(xs, lv)
    assert got[1]["rho"] == pytest.approx(rho)
    assert got[1]["verdict"] == ("holds" if rho >= 0.5 else "does not hold")
    assert got[2]["verdict"] == "not measured"  # no gmm rate in these runs


def test_analysis_variants_have_their_own_files(done, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(done / "model.fact=1", run)
    res = zspace.analyze(
        run, only=["radius", "radius@fine"], **{"radius@fine": {"bin_width": 0.05}}
    )
    assert res["radius@fine"].bin_width == 0.05 and res["radius"].bin_width == 0.5
    rec, arr = load_result(run, "radius@fine")
    assert rec["analysis"] == "radius" and rec["variant"] == "fine" and len(arr["counts"]) > 10
    assert load_result(run, "radius")[0]["variant"] is None
    zspace.analyze(run, **{"radius@a-1": {}, "vae@x": {}}, only=["radius@a-1", "vae@x"])
    assert variants(run, "radius") == ["a-1", "fine"] and variants(run, "vae") == ["x"]
    text = zspace.report(run).read_text()
    assert "Variant radius@fine" in text and "Variant radius@a-1" in text
    with pytest.raises(ZspaceError, match="label after '@'"):
        zspace.analyze(run, only=["radius@bad.label"])
    with pytest.raises(ZspaceError, match="unknown analysis 'nope'"):
        zspace.analyze(run, only=["nope@x"])


def test_active_units_follow_the_variance_of_mu():
    from zspace.analysis.vae_internals import vae_internals

    rng = np.random.default_rng(0)
    mu = rng.standard_normal((5000, 6)) * np.array([1.0, 0.5, 0.2, 0.05, 0.01, 0.0])
    lv = np.full_like(mu, -1.0)
    r = vae_internals(mu.astype(np.float32), mu.astype(np.float32), lv.astype(np.float32))
    assert r.active_units == 3  # variances 1, 0.25, 0.04 > 0.01; 0.0025, 1e-4, 0 are not
    assert np.allclose(r.axis_mu_var, mu.var(axis=0), rtol=1e-5)
    assert vae_internals(mu, mu, lv, active_threshold=1e-3).active_units == 4


@pytest.mark.slow
def test_jobs_run_in_parallel_processes(tmp_path):
    lines: list[str] = []
    out = tmp_path / "s"
    _sweep(out, log=lines.append, jobs=2)
    assert any("2 at a time, 1 thread(s) each" in line for line in lines)
    assert sum(line.endswith("] done") for line in lines) == 3
    assert (out / "sweep.html").is_file()
    for v in ("1e-5", "0.1", "1"):
        assert len(zspace.load_run(out / f"model.fact={v}").history) == 2


def test_the_page_shows_evaluation_metrics_when_the_runs_have_them(done, tmp_path):
    import shutil

    from zspace.reporting.sweep_page import build_sweep_page, collect

    out = tmp_path / "s"
    shutil.copytree(done, out)
    for i, v in enumerate(("1e-5", "0.1", "1")):
        rows = [
            {"sampler": s, "params": {}, "flags": ["mush"] * (s == "normal" and i == 0),
             "metrics": {"precision": p, "vouched_precision": p / 2, "recall": 0.5, "fd": 10.0 - i}}
            for s, p in (("real", 0.9), ("normal", 0.1 * (i + 1)), ("gmm", 0.7))
        ]  # fmt: skip
        (out / f"model.fact={v}" / "samples" / "eval.json").write_text(
            json.dumps(
                {
                    "n": 8,
                    "k": 5,
                    "results": rows,
                    "evaluator": {"fingerprint": "f", "kind": "classes", "reference_size": 8},
                }
            )  # fmt: skip
        )
    text = build_sweep_page(out).read_text()
    assert "From samples/eval.json" in text and "rate of samples/rates.json" not in text
    assert collect(out / "model.fact=1")["eval"]["normal"]["precision"] == pytest.approx(0.3)
    # the thumbnails' captions: the headline and the fidelity, flagged rows marked
    assert "FD-zspace 8, vouched precision 0.15<" in text
    assert "FD-zspace 10, vouched precision 0.05 ⚑<" in text
    assert '<ul class="flag"><li>⚑ <b>model.fact=1e-5: normal</b>: mush</li></ul>' in text


def test_a_folder_is_resumed_restarted_or_refused_never_overwritten(done, tmp_path):
    import shutil

    from zspace.config import load_config

    cfg = load_config(None, [*TINY, "model.fact=1"])
    run = tmp_path / "run"
    shutil.copytree(done / "model.fact=1", run)
    assert stages.training_state(run, cfg) == ("done", 2)
    assert stages.training_state(
        run, load_config(None, [*TINY, "model.fact=1", "train.epochs=3"])
    ) == ("partial", 2)
    with pytest.raises(ZspaceError, match=r"another configuration \(model.fact differ"):
        stages.training_state(run, load_config(None, [*TINY, "model.fact=0.5"]))
    # killed before the first checkpoint: only config.toml and meta.json -> trained afresh
    early = tmp_path / "early"
    early.mkdir()
    for name in ("config.toml", "meta.json"):
        shutil.copy(run / name, early / name)
    assert stages.training_state(early, cfg) == ("new", 0)
    (early / "notes.txt").write_text("mine")
    with pytest.raises(ZspaceError, match="holds no finished epoch"):
        stages.training_state(early, cfg)
    # history.jsonl one epoch behind its checkpoint (a kill between the two writes)
    rows = (run / "history.jsonl").read_text().splitlines()
    (run / "history.jsonl").write_text(rows[0] + "\n")
    assert stages.training_state(run, cfg) == ("done", 2)
    assert len((run / "history.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"analysis": {"radius": {"bin_width": "x"}}}, "radius.bin_width"),
        ({"analysis": {"radius": 5}}, "analysis radius: expected a table of parameters"),
        ({"only": ("radiu",)}, "unknown analysis 'radiu'"),
        ({"grids": ({"n": 0},)}, "generate.grids #1: n = 0: must be >= 1"),
        ({"grids": ({"samplr": "gmm"},)}, "unknown setting 'samplr' (did you mean 'sampler'?)"),
        ({"grids": 5}, "grids = 5: expected a list of generate settings"),
        ({"recon": {"n": 16, "sharpen": -1}}, "generate.recon: sharpen = -1: must be >= 0"),
        ({"rates": {"quantile": 1.5}}, "generate.rates: quantile = 1.5: must lie in (0, 1)"),
        ({"rates": {"limits": [1, "x"]}}, "limits = [1, 'x']: expected a number or a list"),
        ({"evaluate": {"rounds": 1}}, "evaluate: rounds = 1: a spread needs at least 2"),
        ({"evaluate": {"task": "colour"}}, "evaluate: evaluator task 'colour': choose auto"),
        ({"evaluate": {"sampler": "gmm,bogus"}}, "evaluate: unknown sampler 'bogus'"),
        ({"evaluate": 3}, "evaluate: expected a table of settings, got 3"),
    ],
)
def test_every_stage_setting_is_checked_when_the_plan_is_made(settings, words):
    """A sweep's (or pipeline's, recipe's) plan refuses a bad setting of any stage
    when it is made, so nothing trains before the error."""
    from zspace.flow.stages import Plan

    with pytest.raises((ZspaceError, TypeError), match=re.escape(words)):
        Plan(**settings)


def test_a_bad_analysis_parameter_trains_nothing(tmp_path, capsys):
    argv = ["sweep", "--out", str(tmp_path / "s"), "--vary", *VARY, *ARGS]
    assert main([*argv, "--param", "radius.bin_width=x"]) == 2
    assert "radius.bin_width" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
