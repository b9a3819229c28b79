"""The real files under $ZSPACE_TEST_DATA (default ../shared/data): skipped when absent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from zspace.config import load_config
from zspace.data import load_data, split_indices

TEST_DATA = shared_data().resolve()
MNIST = TEST_DATA / "mnist"
CELEBA_ZIP = TEST_DATA / "celeba-558" / "img_align_celeba.zip"
CIFAR = TEST_DATA / "cifar10-jpg"


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"test data absent: {path}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def load(source, cache, *extra):
    return load_data(
        load_config(None, [f'data.source="{source}"', f'data.cache_dir="{cache}"', *extra]).data
    )


def sha(arr) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


@needs(MNIST)
def test_mnist_t10k(cache):
    data = load(f"mnist:{MNIST}", cache)
    assert data.count == 10_000 and data.shape == (28, 28, 1)
    assert np.bincount(data.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert data.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert sha(data.images[0]) == "8f6a418c9a639f9e14e96feca47a97df2a35a0a68ae2875431c5c80e05536941"
    assert round(float(np.mean(data.images)), 2) == 33.79
    assert data.partition is None  # t10k alone: a seeded validation split, no test split
    assert sorted(split_indices(data, 0.1, 0)) == ["train", "valid"]


@needs(CELEBA_ZIP)
def test_celeba_558_zip(cache):
    data = load(f"celeba:{CELEBA_ZIP}", cache)
    assert data.count == 558 and data.shape == (96, 96, 3)
    assert len(data.attr_names) == 40 and data.attr_names[:2] == (
        "5_o_Clock_Shadow",
        "Arched_Eyebrows",
    )
    assert data.details["attributes"]["images_with_row"] == 100
    assert int((data.attr != 0).any(axis=1).sum()) == 100
    assert data.attr[0, :4].tolist() == [-1, 1, 1, -1]
    assert sha(data.images[0]) == "6461190b0052c21894253104e3e859e80f4b7617d1e587f4e67d808a593e5838"
    again = load(f"celeba:{CELEBA_ZIP}", cache)
    assert again.details["cache"]["state"] == "reused"


@needs(CIFAR)
def test_cifar10_jpeg_folder(cache):
    data = load(f"folder:{CIFAR}", cache)
    assert data.count == 10_000 and data.shape == (32, 32, 3)
    assert data.label_names == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert sha(data.images[0]) == "74b7a25666474a50de282dcaa02e75236f4e1c66d80b9a552f20c19ad700d4bc"
