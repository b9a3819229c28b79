"""Issue 23's failure, reproduced on images made here and trained from in-memory arrays.

A letters set (tests/letters.py: A-J in Pillow's bundled font, 5 % textured or
grey-gradient glyphs), 3,000 images at 16x16, given to ``zspace.train`` as arrays.
The AE's N(0, I) images are grey mush that lands among a few gradient glyphs in the
evaluator's feature space: classic precision scores it at or above the real floor.
The headline (FD-zspace), the vouched precision and the flags do not fall for it,
and ``zspace evaluate`` / ``zspace evaluator info`` read the run's own saved images.
"""

import contextlib
import io
import json
import re

import numpy as np
import pytest
from letters import letters

import zspace
from zspace.cli.main import main
from zspace.config import load_config
from zspace.evaluation import evaluator as E


@pytest.fixture(scope="module")
def letters_run(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setattr(E, "IMAGE_BUDGET", 20_000)  # 8 evaluator epochs: held-out accuracy ~0.96
    root = tmp_path_factory.mktemp("letters")
    x, y = letters(3000, size=16, odd=0.05)
    cfg = load_config(None, [
        "model.z_dim=8", "model.variational=false", "model.encoder_filters=[16, 32]",
        "model.encoder_strides=[2, 2]", "train.epochs=10", "train.lr=0.002",
        "train.batch_size=64", "train.threads=1", f'data.cache_dir="{root / "cache"}"',
    ])  # fmt: skip
    out = io.StringIO()
    try:
        run = zspace.train(cfg, run_dir=root / "run", data=x, labels=y, log=print, progress=False)
        zspace.encode(run)
        zspace.generate(run, "normal,gmm", n=16, components=4)
        with contextlib.redirect_stdout(out):
            args = ["evaluate", str(run.path), "--sampler", "normal,gmm", "--components", "4"]
            assert main([*args, "-n", "300", "--no-progress"]) == 0
        zspace.report(run)
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return run.path, out.getvalue()


def test_mush_fools_classic_precision_but_not_the_headline_or_the_flags(letters_run):
    run, printed = letters_run
    ev = json.loads((run / "samples" / "eval.json").read_text())
    assert ev["headline"] == {"metric": "fd", "higher_is_better": False}
    assert ev["fidelity"] == {"metric": "vouched_precision", "higher_is_better": True}
    assert ev["evaluator"]["data"]["source"] == f"npy:{run / 'data'}"
    assert [r["sampler"] for r in ev["results"]] == ["real", "normal", "gmm"]
    real, normal, gmm = ({**r["metrics"], "flags": r["flags"]} for r in ev["results"])
    # today's failure: classic precision and density put the mush at or above the floor
    assert normal["precision"] >= real["precision"] - 0.02 and normal["density"] > 0.8
    assert normal["coverage"] < 0.1 * real["coverage"]
    # the headline orders them as the grids do; the fidelity is at most half the floor's
    assert real["fd"] < gmm["fd"] < normal["fd"]
    assert normal["vouched_precision"] <= real["vouched_precision"] / 2
    assert gmm["vouched_precision"] > normal["vouched_precision"]
    assert real["flags"] == [] and gmm["flags"] == []
    assert len(normal["flags"]) == 2 and "reach 90 % of the real floor's" in normal["flags"][0]
    assert "300 images fall in the balls of" in normal["flags"][1]
    held = ev["results"][1]["capture"]["held_by"]
    assert held == round(normal["coverage"] * ev["evaluator"]["reference_size"]) and held < 30
    # the CLI: a line per row with its flags, the table sorted by the headline, marked rows
    assert "  FLAG: precision" in printed and f"! normal: {normal['flags'][0]}" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("    ")]
    assert [r[0] for r in rows if r[0] in ("real", "gmm", "normal")] == ["real", "gmm", "normal"]
    assert [r[1] for r in rows if r[0] == "normal"] == ["!"]


def test_the_report_shows_the_headline_first_and_the_flags(letters_run):
    run, _ = letters_run
    page = (run / "report.html").read_text()
    table = page[page.index('<table id="eval-table">') :]
    head = table[: table.index("</tr>")]
    assert head.index("FD-zspace (headline)") < head.index("vouched precision (fidelity)")
    assert head.index("vouched precision") < head.index("<th>precision</th>")
    body = table[: table.index("</table>")]
    assert body.index(">real<") < body.index(">gmm<") < body.index(">normal ⚑<")
    assert '<ul class="flag"><li>⚑ <b>normal</b>: precision' in page
    beside = page[page.index('data-sampler="normal"') :]
    assert "normal ⚑" in beside[: beside.index("</table>")]


def test_a_run_trained_on_arrays_has_its_evaluator(letters_run, capsys):
    run, _ = letters_run
    assert main(["evaluator", "info", str(run)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "fresh" and info["source"] == f"npy:{run / 'data'}"
    ev = json.loads((run / "samples" / "eval.json").read_text())
    assert info["fingerprint"] == ev["evaluator"]["fingerprint"]
    assert np.isclose(info["accuracy"], ev["evaluator"]["accuracy"])


def test_compare_marks_and_explains_flagged_rows(letters_run, tmp_path):
    import shutil

    run, _ = letters_run
    other = tmp_path / "other"
    shutil.copytree(run, other)
    ev = json.loads((other / "samples" / "eval.json").read_text())
    for r in ev["results"]:
        r["flags"] = []  # as if another model's N(0, I) were fine
    (other / "samples" / "eval.json").write_text(json.dumps(ev))
    page = zspace.compare([run, other], tmp_path / "cmp").read_text()
    part = page[page.index("<h4>normal</h4>") :]
    part = part[: part.index("<h4>", 5)]
    heads = re.findall(r"<th>([^<]*)</th>", part[: part.index("</tr>")])
    assert heads[0].endswith("run ⚑") and heads[1].endswith("other")  # the runs, in order
    assert part.index("FD-zspace (headline)") < part.index("vouched precision (fidelity)")
    flags = re.findall(r"<li>⚑ <b>([^<]*)</b>: ([^<]*)</li>", part)
    assert [(name, text[:9]) for name, text in flags] == [(heads[0][:-2], "precision"),
                                                          (heads[0][:-2], "300 of 30")]  # fmt: skip
