"""CIFAR-10 python batches on fake batches the tests write (same structure as the
official files: a protocol-2 pickle of a dict with bytes keys)."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
from conftest import data_config

from zspace.core.errors import ZspaceError
from zspace.data import load_data, split_indices


def batch(n, seed, labels=None):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"labels": list(labels if labels is not None else rng.integers(0, 10, n).tolist()),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def dump(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


@pytest.fixture
def cifar_dir(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "data_batch_1").write_bytes(dump(batch(6, 1)))
    (d / "data_batch_2").write_bytes(dump(batch(4, 2)))
    (d / "test_batch").write_bytes(dump(batch(3, 3, [0, 1, 9])))
    names = [n.encode() for n in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")]
    (d / "batches.meta").write_bytes(dump({b"label_names": names, b"num_vis": 3072}))
    return d


def test_batches_folder(cifar_dir, tmp_path):
    data = load_data(data_config(f"cifar10:{cifar_dir}", tmp_path))
    assert data.count == 13 and data.shape == (32, 32, 3)
    raw = batch(6, 1)[b"data"][0]
    # Channel-planar rows: R plane, G plane, B plane -> HWC.
    np.testing.assert_array_equal(data.images[0, :, :, 0].ravel(), raw[:1024])
    np.testing.assert_array_equal(data.images[0, :, :, 2].ravel(), raw[2048:])
    assert data.labels[-3:].tolist() == [0, 1, 9]
    assert data.label_names == tuple("abcdefghij")
    assert split_indices(data, 0.1, 0)["test"].tolist() == [10, 11, 12]


def test_parent_folder_guess_and_tar(cifar_dir, tmp_path):
    data = load_data(data_config(str(tmp_path), tmp_path))  # parent of cifar-10-batches-py, guessed
    assert data.source.startswith("cifar10:") and data.count == 13
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_dir, arcname="cifar-10-batches-py")
    from_tar = load_data(data_config(f"cifar10:{archive}", tmp_path))
    np.testing.assert_array_equal(from_tar.images, data.images)


def test_test_batch_alone_has_no_partition(tmp_path):
    (tmp_path / "test_batch").write_bytes(dump(batch(5, 3)))
    data = load_data(data_config(f"cifar10:{tmp_path}", tmp_path, "data.image_size=16"))
    assert data.partition is None and data.shape == (16, 16, 3)
    assert data.label_names[0] == "airplane"  # no batches.meta: the official names


def test_refuses_foreign_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"cifar10:{tmp_path}", tmp_path))
    assert str(err.value) == (
        f"{tmp_path / 'data_batch_1'}: truncated or not a CIFAR-10 batch "
        "(refusing to load posix.system)"
    )


def test_truncated_batch(tmp_path):
    blob = dump(batch(5, 1))
    (tmp_path / "data_batch_1").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ZspaceError, match=r"data_batch_1: truncated or not a CIFAR-10 batch"):
        load_data(data_config(f"cifar10:{tmp_path}", tmp_path))


def test_label_count_mismatch(tmp_path):
    bad = batch(5, 1)
    bad[b"labels"] = bad[b"labels"][:4]
    (tmp_path / "data_batch_1").write_bytes(dump(bad))
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"cifar10:{tmp_path}", tmp_path))
    assert str(err.value) == f"{tmp_path / 'data_batch_1'}: 4 labels for 5 images"


def test_truncated_archive(cifar_dir, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(cifar_dir, arcname="cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(
        ZspaceError,
        match=r"cifar-10-python.tar.gz: truncated or not a CIFAR-10 "
        r"archive",
    ):
        load_data(data_config(f"cifar10:{archive}", tmp_path))


def test_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"cifar10:{tmp_path / 'x'}", tmp_path))
    assert str(err.value) == (
        f"cifar10:{tmp_path / 'x'}: no CIFAR-10 batches (data_batch_1..5, test_batch) "
        f"in {tmp_path / 'x'}"
    )


def test_a_folder_of_images_is_pointed_to_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "jpgs"
    (root / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "cat" / "0001.jpg")
    with pytest.raises(ZspaceError, match=f"holds image files: read them with folder:{root}"):
        load_data(data_config(f"cifar10:{root}", tmp_path))
