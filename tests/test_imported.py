"""Bring your own autoencoder (issue 24): ``zspace.wrap`` and ``zspace import`` make an
ordinary run folder of a plain encoder/decoder pair defined here, and every stage works
on it in fresh processes; the error contract holds for what can go wrong at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, check_onnx, copy_run

import zspace
from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.runs.imported import build

# A user's models, as they would write them: nothing of zspace in them. The factories do
# not seed, so only the weights saved at import make later processes see the same model.
MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Encoder(nn.Module):
        def __init__(self, d=4, variational=False):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.Tanh())
            self.mu = nn.Linear(32, d)
            self.logvar = nn.Linear(32, d) if variational else None

        def forward(self, x):
            h = self.body(x)
            return self.mu(h) if self.logvar is None else (self.mu(h), self.logvar(h) - 2)


    class Decoder(nn.Module):
        def __init__(self, d=4, size=16, squash=True):
            super().__init__()
            self.size = size
            last = nn.Sigmoid() if squash else nn.Identity()
            self.body = nn.Sequential(nn.Linear(d, size * size), last)

        def forward(self, z):
            return self.body(z).view(z.shape[0], 1, self.size, self.size)


    class MapAE(nn.Module):
        '''encode/decode methods and a latent map of shape (2, 4, 4).'''

        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 2, 4, stride=4)
            self.up = nn.ConvTranspose2d(2, 1, 4, stride=4)

        def encode(self, x):
            return self.down(x)

        def decode(self, z):
            return torch.sigmoid(self.up(z))


    class BranchDecoder(Decoder):
        def forward(self, z):  # a branch on the data: fine for zspace, no ONNX graph
            images = super().forward(z)
            return images if float(images.max()) <= 1 else images.clamp(0, 1)


    def ae():
        return Encoder(), Decoder()


    def untraceable():
        return Encoder(), BranchDecoder()


    def vae():
        return Encoder(variational=True), Decoder()


    def small_images():
        return Encoder(), Decoder(size=8)


    def logits():
        return Encoder(), Decoder(squash=False)
    """
)
DATA = ["--set", "data.image_size=16"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "mine.py"
    path.write_text(MODELS)
    return path


def fresh(code: str, cwd: Path, **env: str) -> str:
    """Run Python ``code`` in a new process (zspace as installed here); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zspace", *argv], cwd=cwd, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_cli_import_then_every_stage_in_fresh_processes(models, tmp_path, digits_evaluator):
    """An AE pair by factory file path: `zspace import`, then the CLI's encode, analyze,
    generate, evaluate and report in another process, which rebuilds the model from its
    origin."""
    run = tmp_path / "runs" / "ae"
    done = cli(tmp_path, "import", "--factory", f"{models}:ae", "--data", "builtin:digits",
               *DATA, "--run-dir", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in run.iterdir())
    assert files == ["code", "config.toml", "meta.json", "model.safetensors"]
    assert [p.name for p in (run / "code").iterdir()] == ["mine.py"]  # no __pycache__
    assert (run / "code" / "mine.py").read_text() == MODELS
    origin = json.loads((run / "meta.json").read_text())["origin"]
    assert origin == {
        "kind": "factory", "factory": f"{models}:ae", "weights": "model.safetensors",
        "latent_shape": [4], "variational": False, "parameters": 256 * 32 + 32 + 32 * 4 + 4
        + 4 * 256 + 256,
    }  # fmt: skip
    verbs = [
        ["encode", str(run)],
        ["analyze", str(run), "--analyses", "radius,pca,kmeans"],
        ["generate", str(run), "--sampler", "normal", "--count", "8", "--recon"],
        ["evaluate", str(run), "--sampler", "normal", "--count", "64", "--rounds", "2"],
        ["report", str(run)],
    ]
    # the verbs in one new process (a process per verb costs a torch import each: the
    # import above already showed the CLI's own process rebuilding nothing it keeps)
    fresh(
        f"""
        from zspace.cli.main import main
        for argv in {verbs!r}:
            assert main(argv) == 0, argv
        """,
        tmp_path,
    )
    lat = np.load(run / "latents" / "train.npz")
    assert lat["z"].shape[1] == 4 and "mu" not in lat.files
    assert json.loads((run / "analysis" / "radius.json").read_text())["result"]["z_dim"] == 4
    rows = json.loads((run / "samples" / "eval.json").read_text())["results"]
    assert [r["sampler"] for r in rows] == ["real", "normal"]
    recon = json.loads((run / "samples" / "reconstruction.json").read_text())["metrics"]
    assert recon["loss_kind"] == "bce" and 0 < recon["loss"] < 256 * 5  # from [0, 1] images
    page = (run / "report.html").read_text()
    assert f"factory {models}:ae" in page and "imported: no training history" in page
    assert "latent shape (4,) (d = 4)" in page and f"{origin['parameters']:,}" in page


def test_wrap_in_python_then_every_stage_and_the_explorer(models, tmp_path, digits_evaluator):
    """A variational pair through zspace.wrap in one process; encode, analyze, generate,
    evaluate and report in another; then the explorer's decode endpoint here, whose
    images are the model's own (the weights saved at import, not a fresh init)."""
    run = tmp_path / "vae"
    fresh(
        f"""
        import sys, numpy as np, torch, zspace
        sys.path.insert(0, {str(models.parent)!r})
        import mine
        model = mine.vae()
        r = zspace.wrap(model, data="builtin:digits", run_dir={str(run)!r},
                        factory={f"{models}:vae"!r}, overrides=["data.image_size=16"])
        assert r.variational and r.latent_shape == (4,) and r.epoch == 0
        with torch.no_grad():
            np.save("want.npy", model[1](torch.linspace(-1, 1, 8).view(2, 4)).numpy())
        """,
        tmp_path,
    )
    fresh(
        f"""
        import zspace
        from zspace.generation.reconstructions import reconstructions
        run = {str(run)!r}
        zspace.encode(run)
        zspace.analyze(run, only="radius,vae,pca")
        zspace.generate(run, sampler="normal", n=8)
        reconstructions(run, n=8)
        zspace.evaluate(run, sampler="normal", n=64, rounds=2)
        zspace.report(run)
        """,
        tmp_path,
    )
    loaded = zspace.load_run(run)
    assert repr(loaded) == f"Run({str(run)!r}, vae z=4, imported)"
    z = torch.linspace(-1, 1, 8).view(2, 4)
    np.testing.assert_allclose(loaded.decode(z).numpy(), np.load(tmp_path / "want.npy"), atol=1e-6)
    lat = np.load(run / "latents" / "train.npz")
    assert lat["mu"].shape == lat["logvar"].shape == lat["z"].shape and lat["z"].shape[1] == 4
    vae = json.loads((run / "analysis" / "vae.json").read_text())["result"]
    assert vae["logvar_max"] < 0  # the encoder's logvar - 2 went through as logvar
    assert "imported: no training history" in (run / "report.html").read_text()
    from test_explore_api import get, png_array, zq

    with zspace.explore(loaded) as server:
        status, headers, body = get(server, f"/api/decode?z={zq(z[0])}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    want = (np.clip(loaded.decode(z[:1]).numpy()[0, 0], 0, 1) * 255).round()
    assert np.abs(png_array(body).astype(float) - want).max() <= 1


def test_a_module_class_with_a_latent_map_rebuilds_from_its_class(models, tmp_path):
    """No factory: a module class importable by module.qualname is recorded as
    ``module:Class``; the latent's own shape is kept, analyses see it flattened."""
    run = tmp_path / "map"
    fresh(
        f"""
        import numpy as np, zspace, mine
        images = (np.random.default_rng(0).random((60, 16, 16)) * 255).astype(np.uint8)
        zspace.wrap(mine.MapAE(), data=images, run_dir={str(run)!r}, log=None)
        """,
        tmp_path,
        PYTHONPATH=f"{ROOT}{os.pathsep}{models.parent}",
    )
    origin = json.loads((run / "meta.json").read_text())["origin"]
    assert origin["factory"] == "mine:MapAE" and origin["latent_shape"] == [2, 4, 4]
    assert (run / "data" / "images.npy").is_file()  # arrays kept as zspace.train keeps them
    fresh(
        f"""
        import numpy as np, torch, zspace
        r = zspace.load_run({str(run)!r})
        assert r.latent_shape == (2, 4, 4) and r.z_dim == 32 and not r.variational
        z, mu, _ = r.encode(np.zeros((3, 16, 16), np.uint8))
        assert z.shape == (3, 32) and mu is None
        flat, shaped = r.decode(z), r.decode(z.view(3, 2, 4, 4))
        assert flat.shape == (3, 1, 16, 16) and torch.equal(flat, shaped)
        zspace.encode(r, log=None)
        """,
        tmp_path,
        PYTHONPATH=f"{ROOT}{os.pathsep}{models.parent}",
    )


def test_a_moved_run_runs_its_copy_of_the_factory_file(models, tmp_path, capsys):
    """The factory file is copied into RUN/code/ at import: the run folder moved alone
    (the file gone from where it was) loads, encodes and reports in a fresh process
    with the same weights; a run without the copy (older runs) runs the recorded path,
    and when that is gone too one line says where zspace looked and what to do."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "mine.py").write_text(MODELS)
    argv = ["import", "--factory", str(project / "models" / "mine.py") + ":vae"]
    assert main([*argv, "--data", "builtin:digits", *DATA, "--out", str(project / "run")]) == 0
    z = torch.linspace(-1, 1, 8).view(2, 4)
    want = zspace.load_run(project / "run").decode(z).numpy()
    np.save(tmp_path / "z.npy", z.numpy())
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    (project / "run").rename(moved)
    (project / "models" / "mine.py").unlink()  # the code is gone from where it was
    fresh(
        f"""
        import numpy as np, torch, zspace
        run = zspace.load_run({str(moved)!r})
        np.save("got.npy", run.decode(torch.from_numpy(np.load("z.npy"))).numpy())
        zspace.encode(run, log=None)
        zspace.report(run, log=None)
        """,
        tmp_path,
    )
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), want, atol=1e-6)
    assert np.load(moved / "latents" / "train.npz")["mu"].shape[1] == 4
    assert f"factory {project / 'models' / 'mine.py'}:vae" in (moved / "report.html").read_text()
    bundle = zspace.export(moved, "safetensors", tmp_path / "bundle", log=None)
    assert not (bundle / "code").exists()  # a bundle runs no code of its own when loaded
    with pytest.raises(ZspaceError, match=r"file not found: .*mine\.py \(nor in .*bundle/code/"):
        zspace.load_run(bundle)  # the factory file is gone from its recorded path

    old = copy_run(moved, tmp_path / "old", ignore=("code",))  # a run from before the copy
    meta = json.loads((old / "meta.json").read_text())
    meta["origin"]["factory"] = f"{models}:vae"
    (old / "meta.json").write_text(json.dumps(meta))
    np.testing.assert_allclose(zspace.load_run(old).decode(z), want, atol=1e-6)
    meta["origin"]["factory"] = f"{tmp_path / 'gone' / 'mine.py'}:vae"
    (old / "meta.json").write_text(json.dumps(meta))
    assert main(["encode", str(old)]) == 2
    assert one_error_line(capsys).endswith(
        f"file not found: {tmp_path / 'gone' / 'mine.py'} (nor in {old / 'code'}/: copy it "
        "there, or import the model anew)"
    )
    (old / "code").mkdir()
    (old / "code" / "mine.py").write_text(MODELS)
    np.testing.assert_allclose(zspace.load_run(old).decode(z), want, atol=1e-6)


def test_a_factory_reads_the_files_beside_it_while_it_is_where_it_was(tmp_path):
    """While the factory file is at its recorded path it runs there: its ``__file__`` is
    that path, so a settings file beside it is found at import and at every load."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "size.json").write_text("6")
    (project / "mine.py").write_text(
        MODELS + "\nimport json, pathlib\n\ndef sized():\n"
        "    d = json.loads((pathlib.Path(__file__).parent / 'size.json').read_text())\n"
        "    return Encoder(d), Decoder(d)\n"
    )
    spec = f"{project / 'mine.py'}:sized"
    model = build(spec)
    run = zspace.wrap(model, data="builtin:digits", factory=spec, run_dir=tmp_path / "run",
                      overrides=["data.image_size=16"], log=None)  # fmt: skip
    assert run.z_dim == 6 and (run.path / "code" / "mine.py").is_file()
    assert zspace.load_run(run.path).z_dim == 6


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zspace: error: "), err
    return lines[0]


@pytest.fixture
def bad_weights(tmp_path) -> Path:
    from safetensors.torch import save_file

    file = tmp_path / "other.safetensors"
    save_file({"encoder.mu.weight": torch.zeros(3, 32)}, str(file))
    return file


@pytest.mark.parametrize(
    "factory, extra, words",
    [
        ("nosuchmodule:build", [], "factory 'nosuchmodule:build': ModuleNotFoundError"),
        ("{models}:nothing", [], "AttributeError"),
        ("missing/file.py:build", [], "file not found: missing/file.py"),
        ("{models}:ae", ["--weights", "{bad}"], "does not fit the model of factory"),
        ("{models}:small_images", [], "the decoder returned a tensor of shape (8, 1, 8, 8)"),
        ("{models}:logits", [], "expected images in [0, 1]"),
    ],
)
def test_import_errors_are_one_line_and_leave_nothing(
    factory, extra, words, models, bad_weights, tmp_path, capsys
):
    run = tmp_path / "new" / "run"
    fill = {"models": models, "bad": bad_weights}
    argv = ["import", "--factory", factory.format(**fill), *(e.format(**fill) for e in extra)]
    code = main([*argv, "--data", "builtin:digits", *DATA, "--run-dir", str(run)])
    line = one_error_line(capsys)
    assert code == 2 and words in line
    assert not (tmp_path / "new").exists()


def test_resume_of_an_imported_run_is_refused(models, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["import", "--factory", f"{models}:vae", "--data", "builtin:digits", *DATA]
    assert main([*argv, "--out", str(run)]) == 0
    capsys.readouterr()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir())
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "is an imported model" in one_error_line(capsys)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir()) == before


def test_wrap_refuses_what_a_later_process_could_not_rebuild(models, tmp_path, tiny_runs):
    from torch import nn

    class Local(nn.Module):
        def encode(self, x):
            return x.flatten(1)

        def decode(self, z):
            return z.view(-1, 1, 16, 16)

    with pytest.raises(ZspaceError, match="cannot import it; pass factory="):
        zspace.wrap(Local(), data="builtin:digits", run_dir=tmp_path / "a")
    with pytest.raises(ZspaceError, match="needs factory='module:function'"):
        zspace.wrap((nn.Flatten(), nn.Identity()), data="builtin:digits", run_dir=tmp_path / "b")
    with pytest.raises(ZspaceError, match="cannot wrap an object of type int"):
        zspace.wrap(42, data="builtin:digits", run_dir=tmp_path / "c")
    from zspace.runs.imported import build

    with pytest.raises(ZspaceError, match="does not fit the model of factory .*Missing key"):
        zspace.wrap(build(f"{models}:ae"), data="builtin:digits", run_dir=tmp_path / "d",
                    factory=f"{models}:vae", overrides=["data.image_size=16"])  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # not even the factory file's copy
    # zspace's own runs keep their origin: zspace, and a copy of one is no imported run
    run = zspace.load_run(copy_run(tiny_runs["ae"], tmp_path / "own"))
    assert run.origin is None and "origin" not in run.meta


def test_the_docs_example_runs_as_written(tmp_path):
    """docs/models.md's model file and its wrap call, pasted as they are."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "models.md").read_text(), re.S)
    assert blocks[0].startswith("# models/mine.py")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.py").write_text(blocks[0])
    out = fresh(blocks[1], tmp_path)
    assert out.strip().endswith("Run('runs/mine', vae z=8, imported)")
    assert zspace.load_run(tmp_path / "runs" / "mine").origin["factory"] == (
        f"{(tmp_path / 'models' / 'mine.py').resolve()}:build"
    )


def test_onnx_exports_an_imported_model_that_traces_and_refuses_one_that_does_not(
    models, tmp_path, capsys
):
    """A pair with a latent vector and a module with a latent map (2, 4, 4) export; the
    graphs give the run's own numbers on a batch of another size. A decoder that
    branches on its values does not trace: one line, nothing written."""
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from zspace.runs.imported import build

    images = (np.random.default_rng(0).random((40, 16, 16)) * 255).astype(np.uint8)
    for name in ("ae", "MapAE", "untraceable"):
        spec = f"{models}:{name}"
        zspace.wrap(build(spec), data=images, run_dir=tmp_path / name, factory=spec, log=None)
    x = torch.from_numpy(images[:5, None] / 255).float()
    for name in ("ae", "MapAE"):
        check_onnx(zspace.load_run(tmp_path / name), x)
    assert main(["export", str(tmp_path / "untraceable"), "--format", "onnx"]) == 2
    line = one_error_line(capsys)
    assert "the decoder of this imported model (factory " in line and "does not export" in line
    assert not (tmp_path / "untraceable" / "export").exists()


def test_a_factory_module_is_found_in_the_working_folder(models, monkeypatch):
    """``module:function`` imports from the working folder too, as ``python -m`` does,
    also under the ``zspace`` console script (whose sys.path lacks it)."""
    from zspace.runs.imported import build

    monkeypatch.chdir(models.parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(models.parent))])
    monkeypatch.delitem(sys.modules, "mine", raising=False)
    encoder, decoder = build("mine:vae")
    assert type(encoder).__name__ == "Encoder" and encoder.logvar is not None


def test_compare_draws_no_loss_line_or_legend_entry_for_an_imported_run(
    models, tmp_path, tiny_runs, monkeypatch
):
    """An imported run has no training history: it is absent from the loss figure's
    legend, and two imported runs get no (empty) loss figure at all."""
    from zspace.reporting.figures import overlay_losses

    monkeypatch.syspath_prepend(str(models.parent))
    import mine

    runs = [tmp_path / n for n in ("one", "two")]
    for run in runs:
        zspace.wrap(mine.ae(), data="builtin:digits", run_dir=run, factory="mine:ae",
                    overrides=["data.image_size=16"], log=None)  # fmt: skip
    legend = overlay_losses([("ae", [{"epoch": 1, "total": 2.0}]), ("one", [])]).axes[0]
    assert [t.get_text() for t in legend.get_legend().get_texts()] == ["ae train"]
    both = zspace.compare(runs, tmp_path / "cmp", log=None).read_text()
    assert "data:image/png" not in both.split('<section id="losses">')[1].split("</section>")[0]
    mixed = zspace.compare([tiny_runs["ae"], runs[0]], tmp_path / "cmp2", log=None).read_text()
    losses = mixed.split('<section id="losses">')[1].split("</section>")[0]
    assert (
        losses.count("data:image/png") == 1 and "No training history (imported) for one" in losses
    )
