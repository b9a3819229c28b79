import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip on machines without a CUDA GPU."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in marked:
        item.add_marker(skip)


def shared_data() -> Path:
    return Path(os.environ.get("ZSPACE_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data_dir() -> Path:
    path = shared_data()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


def data_config(source, tmp_path, *extra):
    """A DataConfig for ``source`` with its cache under ``tmp_path``."""
    from zspace.config import load_config

    return load_config(
        None, [f'data.source="{source}"', f'data.cache_dir="{tmp_path / "cache"}"', *extra]
    ).data


# Small, fast settings for training tests: 16x16 digits, a two-layer net.
TINY = [
    "data.source=builtin:digits",
    "data.image_size=16",
    "model.z_dim=4",
    "model.encoder_filters=[8, 16]",
    "model.encoder_strides=[2, 2]",
    "train.batch_size=128",
    "train.epochs=2",
    "train.threads=1",
]


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Caches the tests build (evaluators, decoded data) go to a temporary folder, never
    into the user's ~/.cache (tests that need another root set their own)."""
    old = os.environ.get("ZSPACE_CACHE")
    os.environ["ZSPACE_CACHE"] = str(tmp_path_factory.mktemp("zspace-cache"))
    yield
    if old is None:
        os.environ.pop("ZSPACE_CACHE", None)
    else:
        os.environ["ZSPACE_CACHE"] = old
