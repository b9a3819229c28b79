"""Run folders written by zspace 0.1.0 (before the one-house restructuring, issue 26) load,
encode, analyse and report with the same numbers. ``tests/data/runs-0.1.0`` holds a tiny
AE (with its latents and two analyses) and a tiny VAE (checkpoint only), trained on the
built-in digits at 16x16 by the code of commit ff16d26."""

import json
import shutil
from html import escape
from pathlib import Path

import numpy as np
import pytest

import zspace

OLD = Path(__file__).parent / "data" / "runs-0.1.0"


@pytest.fixture
def old_runs(tmp_path):
    """A writable copy (reports and analyses write into the folder)."""
    shutil.copytree(OLD, tmp_path / "runs")
    return tmp_path / "runs"


def test_an_old_ae_encodes_its_data_to_the_latents_it_saved(old_runs):
    run = zspace.load_run(old_runs / "ae")
    assert run.epoch == 2 and not run.variational and run.input_shape == (1, 16, 16)
    saved = np.load(old_runs / "ae" / "latents" / "train.npz")
    data, splits = run.data()
    assert np.array_equal(splits["train"], saved["index"])
    z, mu, logvar = run.encode(data.images[saved["index"]])
    assert mu is None and logvar is None
    np.testing.assert_allclose(z.numpy(), saved["z"], rtol=1e-5, atol=1e-5)
    assert len(run.history) == 2


def test_old_analyses_are_reproduced_and_reported(old_runs):
    ae = old_runs / "ae"
    before = {
        n: json.loads((ae / "analysis" / f"{n}.json").read_text()) for n in ("radius", "axes")
    }
    page = zspace.report(ae, log=None)
    html = page.read_text()
    for rec in before.values():
        assert escape(rec["summary"]) in html  # the saved results are shown as they were
    zspace.analyze(ae, only=["radius", "axes"], log=None)  # recomputed from the old latents
    for name, rec in before.items():
        again = json.loads((ae / "analysis" / f"{name}.json").read_text())
        assert again["summary"] == rec["summary"]
        assert again["result"] == rec["result"]


def test_an_old_vae_loads_decodes_and_reports(old_runs):
    run = zspace.load_run(old_runs / "vae")
    assert run.variational and run.epoch == 2
    images = run.decode(np.zeros((3, 4), np.float32))
    assert tuple(images.shape) == (3, 1, 16, 16)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    z, mu, logvar = run.encode(np.zeros((2, 16, 16), np.uint8)[:, None].repeat(1, 1))
    assert z.shape == mu.shape == logvar.shape == (2, 4)
    assert zspace.report(run, log=None).is_file()
