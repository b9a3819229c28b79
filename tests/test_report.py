"""End to end on tiny trained runs: encode -> analyze -> report / compare, and the CLI verbs."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, copy_run, needs_chromium

import zspace
from zspace.cli.main import main
from zspace.flow.pipeline import default_samples
from zspace.latents.store import load_latents
from zspace.reporting.report import SECTIONS, samples_section

FAST = {
    "tsne": {"n": 300, "perplexity": 10, "n_iter": 100, "n_jobs": 1},
    "kmeans": {"k_max": 12, "sample": 600, "batch_size": 256, "n_init": 1},
    "pca": {"max_points": 500, "pairs": "1-2", "axis_pairs": "0-1"},
}


@pytest.fixture(scope="module")
def runs(tiny_runs, tmp_path_factory) -> dict[str, Path]:
    """Copies of the shared tiny AE and VAE with every analysis; the VAE also with the
    default samples and its report."""
    root = tmp_path_factory.mktemp("runs")
    out = {kind: copy_run(tiny_runs[kind], root / kind) for kind in ("ae", "vae")}
    for run in out.values():
        zspace.analyze(run, **FAST)
    default_samples(out["vae"], n_rate=200)
    zspace.report(out["vae"])
    return out


def test_latents_file(runs):
    lat = load_latents(runs["vae"])
    assert lat.z.dtype == np.float32 and lat.z.shape[1] == 4
    assert lat.mu.shape == lat.z.shape == lat.logvar.shape
    assert lat.label is not None and len(lat.label) == len(lat.index) == len(lat.z)
    assert load_latents(runs["ae"]).mu is None


def test_encode_is_seeded_and_eps_scale_overrides(runs, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(runs["vae"], run)
    before = load_latents(run)
    zspace.encode(run)
    assert np.array_equal(load_latents(run).z, before.z)
    zspace.encode(run, eps_scale=0.0)
    lat = load_latents(run)
    assert np.array_equal(lat.z, lat.mu) and lat.eps_scale == 0.0


def test_analysis_files(runs):
    names = {p.stem for p in (runs["vae"] / "analysis").glob("*.json")}
    assert names == {"radius", "axes", "pca", "tsne", "kmeans", "vae"}
    assert "vae" not in {p.stem for p in (runs["ae"] / "analysis").glob("*.json")}
    rec = json.loads((runs["vae"] / "analysis" / "kmeans.json").read_text())
    assert rec["params"]["k_max"] == 12 and rec["summary"]


def test_report_sections_and_self_contained(runs):
    text = (runs["vae"] / "report.html").read_text()
    for sid, _ in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert "http://" not in text and "https://" not in text
    assert "Meaningful-point rate" in text and "recon-valid" in text  # default_samples
    assert text.count("data:image/png;base64,") >= 12


def test_report_lists_samples(runs, tmp_path):
    run = tmp_path / "run"
    png = (runs["vae"] / "report.html").read_text().split("data:image/png;base64,")[1]
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "grid.png").write_bytes(base64.b64decode(png.split('"')[0]))
    index = [
        {"file": "grid.png", "kind": "generation", "sampler": "normal", "params": {"n": 16},
         "caption": "sixteen draws from N(0, I)"},
        {"file": "gone.png", "kind": "reconstruction", "sampler": "test", "params": {},
         "caption": "lost"},
    ]  # fmt: skip
    (run / "samples" / "index.json").write_text(json.dumps(index))
    text = samples_section(run)
    # the caption rule: the caption once, under its image; the parameters are not repeated
    assert text.count("sixteen draws from N(0, I)") == 1 and "n=16" not in text
    assert "<figcaption>sixteen draws from N(0, I)</figcaption>" in text
    assert text.count("data:image/png;base64,") == 1 and "gone.png is listed but missing" in text


def test_report_shows_the_rates_table(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rates = {"threshold": 2.356, "quantile": 0.95, "reference_size": 9000, "space": "mu",
             "spread": 3.7, "warning": None, "seed": 0, "results": [
                 {"sampler": "normal", "params": {}, "rate": 0.54, "n": 1000,
                  "mean_radius": 3.93, "median_distance": 2.3},
                 {"sampler": "uniform", "params": {"limit": 8.0}, "rate": 0.021, "n": 1000,
                  "mean_radius": 18.3, "median_distance": 3.8}]}  # fmt: skip
    (run / "samples" / "rates.json").write_text(json.dumps(rates))
    text = samples_section(run)
    assert "within 2.356 of a training point" in text and "9,000 reference points in mu" in text
    assert "<td>0.540</td>" in text and "limit=8" in text and "<td>0.021</td>" in text
    assert "Warning" not in text
    rates["warning"] = "the rate's threshold (31.6) is not below ..."
    (run / "samples" / "rates.json").write_text(json.dumps(rates))
    assert "Warning: the rate&#x27;s threshold (31.6)" in samples_section(run)
    (run / "samples" / "rates.json").write_text("{broken")
    with pytest.raises(zspace.ZspaceError, match="rates.json is truncated or not JSON.*--rate`"):
        samples_section(run)


def test_compare_page(runs, tmp_path):
    path = zspace.compare([runs["ae"], runs["vae"]], tmp_path / "cmp")
    text = path.read_text()
    for sid in ("runs", "losses", "latent", "radius", "kmeans", "vae", "generation"):
        assert f'<section id="{sid}">' in text
    # 3 overlays, each run's PCA spectrum and t-SNE map (captioned with its d), the VAE's
    # normal, gauss and gmm grids; the AE has no samples yet
    assert text.count("data:image/png;base64,") == 10
    assert text.count("<figcaption>t-SNE map of ae, d = 4</figcaption>") == 1
    assert '<td class="l">zspace</td>' in text.split('<section id="runs">')[1]
    generation = text.split('<section id="generation">')[1]
    assert '<th class="l">sampler</th><th>ae</th><th>vae</th>' in generation
    assert '<tr><td class="l">gauss</td><td>-</td><td>' in generation  # AE: no rate, a dash
    assert "No samples for ae" in generation and "No samples for vae" not in generation


def test_cli_errors(runs, tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    empty = tmp_path / "r"
    shutil.copytree(runs["ae"], empty)
    shutil.rmtree(empty / "latents")
    assert main(["analyze", str(empty)]) == 2
    assert "zspace encode" in capsys.readouterr().err
    assert main(["analyze", str(runs["ae"]), "--only", "radius,bogus"]) == 2
    assert "choose from radius, axes" in capsys.readouterr().err
    assert main(["analyze", str(runs["ae"]), "--only", "vae"]) == 2
    assert main(["analyze", str(runs["ae"]), "--only", "tsne", "--set", "tsne.perplexity=-1"]) == 2
    assert "perplexity" in capsys.readouterr().err
    assert main(["analyze", str(runs["ae"]), "--only", "pca", "--set", "pca.pairs=1-9"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["analyze", str(runs["ae"]), "--set", "radius.bins=3"]) == 2
    assert "radius takes" in capsys.readouterr().err


def test_cli_analyze_and_report(runs, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(runs["ae"], run, ignore=shutil.ignore_patterns("analysis"))
    assert main(["analyze", str(run), "--only", "radius,axes", "--set",
                 "radius.bin_width=0.05", "--set", "axes.width_ratio=3"]) == 0  # fmt: skip
    rec = json.loads((run / "analysis" / "radius.json").read_text())
    assert rec["params"]["bin_width"] == 0.05
    assert main(["report", str(run)]) == 0
    assert "report:" in capsys.readouterr().out
    text = (run / "report.html").read_text()
    assert text.count("Not computed yet") == 3 and "--only tsne" in text
    assert f"zspace encode {run}" not in text  # latents exist: analyze, then report
    shutil.rmtree(run / "latents")
    assert main(["report", str(run)]) == 0
    text = (run / "report.html").read_text()
    assert f"<code>zspace encode {run}</code> then <code>zspace analyze {run} --only tsne" in text


@needs_chromium
def test_report_in_headless_chromium(runs, tmp_path):
    from conftest import headless_chromium

    driver = headless_chromium(tmp_path / "profile")
    try:
        # 8 analysis figures + 3 sampler grids + 1 reconstruction grid
        pages = [(runs["vae"] / "report.html", [sid for sid, _ in SECTIONS], 12)]
        pages.append((zspace.compare([runs["ae"], runs["vae"]], tmp_path / "c"),
                      ["runs", "losses", "latent", "radius", "kmeans", "vae", "generation"],
                      10))  # fmt: skip
        for page, sections, images in pages:
            driver.get(page.resolve().as_uri())
            ids = driver.execute_script(
                "return Array.from(document.querySelectorAll('section')).map(s => s.id)"
            )
            assert ids == sections
            if page.name == "report.html":  # the rates table sits in the samples section
                rates = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#samples td:first-child'))"
                    ".map(td => td.textContent)"
                )
                assert rates == ["data", "normal", "gauss", "gmm"]
            # one caption per grid: every generated image has exactly one figcaption, and
            # its text appears nowhere else on the page (not twice, not as a heading)
            grids = driver.execute_script(
                "return Array.from(document.querySelectorAll('.row figure')).map(f => ["
                "f.querySelectorAll('figcaption').length, f.querySelector('figcaption')"
                ".textContent])"
            )
            assert grids and all(n == 1 for n, _ in grids), grids
            body = driver.execute_script("return document.body.innerText")
            for _, cap in grids:
                assert body.count(cap) == 1, cap
            # parameter lines show the values used: never None
            lines = driver.execute_script(
                "return Array.from(document.querySelectorAll('.params')).map(p => p.textContent)"
            )
            assert all("None" not in line for line in lines), lines
            assert not re.search(r"[=:(]\s*None\b", body)  # ("None of the axes" is English)
            if page.name == "report.html":
                assert len(lines) == 6 and any("r_max=" in x and "(auto)" in x for x in lines)
            sizes = driver.execute_script(
                "return Array.from(document.images).map(i => [i.complete, i.naturalWidth,"
                " i.naturalHeight])"
            )
            assert len(sizes) >= images
            assert all(c and w > 0 and h > 0 for c, w, h in sizes), sizes
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert severe == []
    finally:
        driver.quit()


def test_pipeline_ends_with_samples_and_rates_in_the_report(tmp_path, digits_evaluator):
    page = zspace.pipeline(
        None,
        [*TINY, "train.epochs=1"],
        tmp_path / "p",
        analysis=FAST,
        progress=False,
        log=lambda s: None,
    )
    run = tmp_path / "p"
    kinds = {
        (e["kind"], e["sampler"]) for e in json.loads((run / "samples" / "index.json").read_text())
    }
    assert kinds == {
        ("grid", "normal"),
        ("grid", "gauss"),
        ("grid", "gmm"),
        ("reconstruction", "encoder"),
    }
    rates = json.loads((run / "samples" / "rates.json").read_text())
    assert [r["sampler"] for r in rates["results"]] == ["data", "normal", "gauss", "gmm"]
    text = page.read_text()
    assert "Meaningful-point rate" in text and "recon-valid" in text
    assert (run / "samplers" / "gmm.npz").is_file()


def test_report_and_compare_refuse_a_folder_that_is_no_run_in_the_same_line(runs, tmp_path):
    """The pages say what every command says of a folder without config.toml
    (``runs.folder.run_file``), and of one without meta.json."""
    from zspace.runs.folder import read_config

    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(zspace.ZspaceError) as want:
        read_config(tmp_path)
    assert str(want.value) == f"{tmp_path} is not a zspace run folder (no config.toml)"
    for make in (
        lambda: zspace.report(tmp_path),
        lambda: zspace.compare([runs["ae"], tmp_path], tmp_path / "o"),
    ):
        with pytest.raises(zspace.ZspaceError) as got:
            make()
        assert str(got.value) == str(want.value)
    (tmp_path / "meta.json").rename(tmp_path / "config.toml")
    with pytest.raises(zspace.ZspaceError, match=r"is not a zspace run folder \(no meta.json\)"):
        zspace.compare([runs["ae"], tmp_path], tmp_path / "out")
