"""End to end on MNIST t10k (../shared/data, skipped when absent): `zspace evaluate`
on a small AE ranks its fitted GMM above N(0, I), and the report shows each sampler's
table beside its grid (headless Chromium)."""

import json
import re

import pytest
from conftest import needs_chromium

from zspace.cli.main import main


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, mnist_evaluator):
    from conftest import shared_data

    mnist = shared_data() / "mnist"
    if not (mnist / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"test data absent: {mnist}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("mnist")
    run = root / "ae"
    settings = [
        f'data.source="mnist:{mnist}"',  # the session's cache: the recipe test reuses it
        "data.image_size=16", "model.z_dim=8", "model.variational=false",
        "model.encoder_filters=[16, 32]", "model.encoder_strides=[2, 2]",
        "train.epochs=4", "train.threads=1",
    ]  # fmt: skip
    try:
        args = ["train", "--run-dir", str(run), "--no-progress"]
        assert main(args + [a for s in settings for a in ("--set", s)]) == 0
        assert main(["encode", str(run)]) == 0
        assert main(["generate", str(run), "--sampler", "normal,gmm", "--components", "4"]) == 0
        assert (
            main(["evaluate", str(run), "--sampler", "normal,gmm", "--components", "4",
                  "-n", "300", "--no-progress"]) == 0
        )  # fmt: skip
        assert main(["report", str(run)]) == 0
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return run


def test_evaluate_ranks_gmm_above_normal(mnist_run, capsys):
    ev = json.loads((mnist_run / "samples" / "eval.json").read_text())
    rows = {r["sampler"]: r for r in ev["results"]}
    assert [r["sampler"] for r in ev["results"]] == ["real", "normal", "gmm"]
    assert ev["evaluator"]["kind"] == "classes" and ev["evaluator"]["accuracy"] > 0.85
    assert ev["n"] == 300 and ev["k"] == 5 and ev["fd_name"] == "FD-zspace"
    real, normal, gmm = rows["real"]["metrics"], rows["normal"]["metrics"], rows["gmm"]["metrics"]
    assert gmm["precision"] > normal["precision"] + 5 * rows["gmm"]["spread"]["precision"]
    assert gmm["fd"] < normal["fd"] and real["fd"] < gmm["fd"]
    assert gmm["confident_share"] >= normal["confident_share"]
    # the floor; coverage is below 1 - 2^-k because 300 generated images meet 1,500 real ones
    assert real["precision"] > 0.8 and real["coverage"] > 0.45
    assert set(rows["normal"]["spread"]) == set(normal)
    assert gmm["vouched_precision"] > normal["vouched_precision"]
    assert all(r["flags"] == [] for r in ev["results"])  # precision 0 for mush: nothing to flag
    # the second call reuses the cached evaluator (logged) and keeps the real row first
    # (no --no-progress: stderr is no terminal here, so the one switch keeps bars off)
    assert main(["evaluate", str(mnist_run), "--sampler", "normal", "-n", "300"]) == 0
    out, err = capsys.readouterr()
    assert err == "", err
    head, real_row = next(
        (lines[i - 1], lines[i]) for lines in [out.splitlines()]
        for i, line in enumerate(lines) if line.split()[:1] == ["real"]
    )  # fmt: skip
    metric_columns = len(re.split(r"\s{2,}", head.strip())) - 1
    cells = re.findall(r"-?[\d,]+(?:\.\d+)? ± [\d,]+(?:\.\d+)?", real_row)
    assert len(cells) == metric_columns > 5, (head, real_row)  # value ± spread, as on pages
    rows_printed = [
        w[0] for w in map(str.split, out.splitlines()) if w[:1] in (["real"], ["normal"])
    ]
    assert "evaluator: reused" in out and rows_printed == ["real", "normal"]
    again = json.loads((mnist_run / "samples" / "eval.json").read_text())
    assert [r["sampler"] for r in again["results"]] == ["real", "gmm", "normal"]


def test_evaluate_errors_are_one_line(mnist_run, capsys, tmp_path):
    assert main(["evaluate", str(mnist_run), "--sampler", "bogus"]) == 2
    assert "unknown sampler 'bogus'" in capsys.readouterr().err
    assert main(["evaluate", str(mnist_run), "-n", "0"]) == 2
    assert "n = 0" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["evaluate", str(mnist_run), "--task", "attributes", "-n", "50"]) == 2
    assert "carry attributes" in capsys.readouterr().err


@needs_chromium
def test_report_shows_the_table_beside_the_grids(mnist_run, tmp_path):
    from conftest import headless_chromium

    driver = headless_chromium(tmp_path / "profile")
    try:
        driver.get((mnist_run / "report.html").resolve().as_uri())
        first = driver.execute_script(
            "return Array.from(document.querySelectorAll('#eval-table tr td:first-child'))"
            ".map(td => td.textContent)"
        )
        assert first == ["real", "gmm", "normal"]  # the floor, then by the headline
        placed = driver.execute_script(
            """return Array.from(document.querySelectorAll('table.eval-beside')).map(t => {
                 const img = t.closest('.graded').querySelector('img');
                 const a = img.getBoundingClientRect(), b = t.getBoundingClientRect();
                 return [t.dataset.sampler, img.naturalWidth > 0, b.left >= a.right - 1,
                         b.top < a.bottom && a.top < b.bottom, t.rows.length];
               })"""
        )
        assert sorted(p[0] for p in placed) == ["gmm", "normal"]
        assert all(p[1] and p[2] and p[3] and p[4] >= 8 for p in placed), placed
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
