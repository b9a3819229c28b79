"""Attribute vectors on real CelebA images (../shared/data/celeba-558, attributes for
the first 100 images only): skipped when the data are absent."""

import numpy as np
import pytest
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.data import load_data
from zspace.generation import api
from zspace.latents.encode import encode
from zspace.latents.store import load_latents
from zspace.training import train_run as train


@pytest.fixture(scope="module")
def celeba_run(tmp_path_factory):
    from conftest import shared_data

    zip_path = shared_data() / "celeba-558" / "img_align_celeba.zip"
    if not zip_path.is_file():
        pytest.skip(f"test data absent: {zip_path}")
    root = tmp_path_factory.mktemp("celeba")
    overrides = [
        f'data.source="celeba:{zip_path}"',
        f'data.cache_dir="{root / "cache"}"',
        "data.image_size=32",
        "model.z_dim=8",
        "model.encoder_filters=[8, 16]",
        "model.encoder_strides=[2, 2]",
        "train.epochs=1",
        "train.batch_size=64",
        "train.threads=1",
    ]
    run = train(None, run_dir=root / "run", overrides=overrides, progress=False, log=lambda s: None)
    encode(run, "train")
    return run


def test_attribute_vector_uses_only_images_the_file_covers(celeba_run, monkeypatch):
    from zspace.generation import paths

    lat = load_latents(celeba_run, "train")
    col = lat.attr[:, lat.attr_names.index("Smiling")]
    assert (col == 0).sum() > 350 and 0 < (col > 0).sum() < (col != 0).sum() <= 100
    mu = lat.mu.astype(np.float64)
    expected = mu[col > 0].mean(0) - mu[col < 0].mean(0)
    used = []
    real = paths.traverse
    monkeypatch.setattr(paths, "traverse", lambda z0, v, s: used.append(v) or real(z0, v, s))
    entry = api.attribute(celeba_run, "Smiling", strengths=[0, 1, 2], count=3)
    assert len(used) == 3
    np.testing.assert_allclose(used[0], expected, rtol=1e-12)
    assert f"|v| = {np.linalg.norm(expected):.2f}" in entry["caption"]
    # counting the 450-odd uncovered images as "not smiling" would give another vector
    wrong = mu[col > 0].mean(0) - mu[col <= 0].mean(0)
    assert np.linalg.norm(wrong - expected) > 0.1 * np.linalg.norm(expected)
    with Image.open(celeba_run.path / "samples" / entry["file"]) as grid:
        assert grid.mode == "RGB" and grid.width >= 3 * 32  # 3 strengths across


def test_attribute_picks_faces_known_to_lack_it(celeba_run):
    data = load_data(celeba_run.config.data)
    col = data.attr[:, data.attr_names.index("Eyeglasses")]
    assert (col < 0).any() and (col > 0).any()
    entry = api.attribute(celeba_run, "Eyeglasses", strengths=[0, 1], count=2)
    assert "images without Eyeglasses" in entry["caption"]
    chosen = entry["params"]["images"]
    assert len(chosen) == 2 and (col[chosen] < 0).all()  # known without, not merely unknown
    with pytest.raises(ZspaceError, match="unknown attribute 'smile'; did you mean Smiling"):
        api.attribute(celeba_run, "smile")
