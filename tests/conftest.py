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


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HAVE_CHROMIUM = CHROMIUM.exists() and CHROMEDRIVER.exists()
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="no Chromium here")


def headless_chromium(profile: Path, size: str = "1300,1000"):
    """A headless Chromium driver with a fresh profile, the browser log kept (the flags
    the brief asks for: no network, no updates, no first-run); the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync",
             "--disable-quic"]  # fmt: skip
    for arg in [*flags, f"--user-data-dir={profile}", f"--window-size={size}"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
