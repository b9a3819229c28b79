"""IDX reader (MNIST family) on small files the tests write."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import data_config

from zspace.core.errors import ZspaceError
from zspace.data import load_data, split_indices


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write(path, arr, gz=True):
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def images(n, seed=0, size=28):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.fixture
def mnist_dir(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    write(d / "train-images-idx3-ubyte.gz", images(12, 1))
    write(d / "train-labels-idx1-ubyte.gz", np.arange(12) % 10)
    write(d / "t10k-images-idx3-ubyte.gz", images(5, 2))
    write(d / "t10k-labels-idx1-ubyte.gz", np.array([9, 8, 7, 6, 5]))
    return d


def test_folder_with_train_and_t10k(mnist_dir, tmp_path):
    data = load_data(data_config(f"mnist:{mnist_dir}", tmp_path))
    assert data.count == 17 and data.shape == (28, 28, 1)
    np.testing.assert_array_equal(data.images[:12, ..., 0], images(12, 1))
    np.testing.assert_array_equal(data.images[12:, ..., 0], images(5, 2))
    assert data.labels.tolist() == [*(np.arange(12) % 10), 9, 8, 7, 6, 5]
    assert data.label_names == tuple(str(i) for i in range(10))
    splits = split_indices(data, 0.25, seed=0)
    assert splits["test"].tolist() == [12, 13, 14, 15, 16]
    assert len(splits["train"]) == 9 and len(splits["valid"]) == 3


def test_t10k_alone_raw_files_and_guess(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    write(d / "t10k-images-idx3-ubyte", images(6), gz=False)
    write(d / "t10k-labels-idx1-ubyte", np.arange(6), gz=False)
    data = load_data(data_config(str(d), tmp_path))  # a bare path: guessed from the file names
    assert data.source == f"mnist:{d}"
    assert data.count == 6 and data.partition is None
    assert data.labels.tolist() == list(range(6))


def test_single_images_file_finds_labels_beside_it(mnist_dir, tmp_path):
    data = load_data(data_config(f"mnist:{mnist_dir / 't10k-images-idx3-ubyte.gz'}", tmp_path))
    assert data.count == 5 and data.labels.tolist() == [9, 8, 7, 6, 5]


def test_windows_style_names_and_prefix(tmp_path):
    d = tmp_path / "emnist"
    d.mkdir()
    write(d / "emnist-letters-train-images.idx3-ubyte", images(3), gz=False)
    data = load_data(data_config(f"mnist:{d}", tmp_path))
    assert data.count == 3 and data.labels is None


def test_resize_and_channels(mnist_dir, tmp_path):
    data = load_data(
        data_config(f"mnist:{mnist_dir}", tmp_path, "data.image_size=32", "data.channels=3")
    )
    assert data.shape == (32, 32, 3)
    assert np.array_equal(data.images[..., 0], data.images[..., 2])


def test_truncated_data(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    raw = idx_bytes(images(4))
    (d / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"mnist:{d}", tmp_path))
    assert str(err.value) == (
        f"{d / 'train-images-idx3-ubyte'}: truncated: the header announces 4x28x28 values "
        "(3136 bytes) but only 3036 bytes follow"
    )


def test_truncated_gzip(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    blob = gzip.compress(idx_bytes(images(50)))
    (d / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(
        ZspaceError,
        match=r"train-images-idx3-ubyte.gz: truncated or corrupt gzip "
        r"file \(Compressed file ended",
    ):
        load_data(data_config(f"mnist:{d}", tmp_path))


def test_wrong_magic(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "train-images-idx3-ubyte").write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"mnist:{d}", tmp_path))
    assert str(err.value) == (
        f"{d / 'train-images-idx3-ubyte'}: not an IDX file (magic number 0x89504e47)"
    )


def test_labels_file_where_images_expected(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    write(d / "train-images-idx3-ubyte", np.arange(5), gz=False)
    with pytest.raises(ZspaceError, match=r"expected images \(IDX magic 2051"):
        load_data(data_config(f"mnist:{d}", tmp_path))


def test_label_count_mismatch(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    write(d / "train-images-idx3-ubyte.gz", images(4))
    write(d / "train-labels-idx1-ubyte.gz", np.arange(3))
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"mnist:{d}", tmp_path))
    assert str(err.value) == f"{d / 'train-labels-idx1-ubyte.gz'}: 3 labels for 4 images"


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"mnist:{tmp_path / 'nope'}", tmp_path))
    assert str(err.value) == f"mnist:{tmp_path / 'nope'}: path not found: {tmp_path / 'nope'}"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZspaceError, match=r"no IDX images file"):
        load_data(data_config(f"mnist:{tmp_path / 'empty'}", tmp_path))


def test_several_sets_in_one_folder(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    write(d / "emnist-letters-train-images-idx3-ubyte.gz", images(2))
    write(d / "emnist-digits-train-images-idx3-ubyte.gz", images(2))
    with pytest.raises(
        ZspaceError,
        match=r"several IDX sets in one folder \(emnist-digits, "
        r"emnist-letters\)",
    ):
        load_data(data_config(f"mnist:{d}", tmp_path))


def test_class_names_from_classes_txt_and_the_config(mnist_dir, tmp_path):
    """classes.txt beside the files names the classes; data.class_names renames them;
    a count that misses a class is one line naming the file or the key."""
    letters = "abcdefghij"
    (mnist_dir / "classes.txt").write_text("\n".join(letters) + "\n\n")  # blank lines skipped
    assert load_data(data_config(f"mnist:{mnist_dir}", tmp_path)).label_names == tuple(letters)
    one = data_config(f"mnist:{mnist_dir / 't10k-images-idx3-ubyte.gz'}", tmp_path)
    assert load_data(one).label_names == tuple(letters)  # beside a single images file too
    named = data_config(
        f"mnist:{mnist_dir}", tmp_path, f"data.class_names={','.join('ABCDEFGHIJ')}"
    )
    assert load_data(named).label_names == tuple("ABCDEFGHIJ")
    short = data_config(f"mnist:{mnist_dir}", tmp_path, "data.class_names=A,B")
    with pytest.raises(
        ZspaceError, match=r"^data.class_names: 2 names for the 10 classes of mnist:"
    ):
        load_data(short)
    (mnist_dir / "classes.txt").write_text("a\nb\n")
    with pytest.raises(ZspaceError, match=r"classes.txt: 2 class names for labels 0..9$"):
        load_data(data_config(f"mnist:{mnist_dir}", tmp_path))
    unlabelled = tmp_path / "bare"
    unlabelled.mkdir()
    write(unlabelled / "t10k-images-idx3-ubyte", images(3), gz=False)
    with pytest.raises(ZspaceError, match=r"2 names for the 0 classes of mnist:.*bare$"):
        load_data(data_config(f"mnist:{unlabelled}", tmp_path, "data.class_names=A,B"))
