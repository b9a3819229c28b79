"""CelebA layout (folder and official-style zip) with attribute and partition files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from conftest import data_config
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.data import load_data, split_indices

NAMES = ["Smiling", "Male", "Young"]


def face(i: int) -> Image.Image:
    """178x218 like CelebA: a band of colour i in the centre square, white above and below."""
    arr = np.full((218, 178, 3), 255, np.uint8)
    arr[20:198] = (i * 30, 100, 200 - i * 30)
    return Image.fromarray(arr)


def attr_text(rows, with_id_column=False):
    header = ("image_id " if with_id_column else "") + " ".join(NAMES)
    lines = [str(len(rows)), header] + [f"{name} {' '.join(map(str, v))}" for name, v in rows]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
def celeba(tmp_path):
    root = tmp_path / "celeba"
    imgs = root / "img_align_celeba"
    imgs.mkdir(parents=True)
    for i in range(1, 6):
        face(i).save(imgs / f"{i:06d}.jpg", quality=95)
    rows = [("000001.jpg", (1, -1, 1)), ("000002.jpg", (-1, 1, 1)), ("000004.jpg", (1, 1, -1))]
    (root / "list_attr_celeba.txt").write_text(attr_text(rows), newline="")
    (root / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n"
    )
    return root


def test_folder_layout(celeba, tmp_path):
    data = load_data(data_config(f"celeba:{celeba}", tmp_path))
    assert data.count == 5 and data.shape == (96, 96, 3)  # the reference size by default
    assert data.attr_names == tuple(NAMES)
    assert data.attr.tolist() == [[1, -1, 1], [-1, 1, 1], [0, 0, 0], [1, 1, -1], [0, 0, 0]]
    assert data.details["attributes"]["images_without_row"] == 2
    s = split_indices(data, 0.1, 0)
    assert (s["train"].tolist(), s["valid"].tolist(), s["test"].tolist()) == ([0, 1, 4], [2], [3])
    # Centre crop: the white bands above and below the square are gone.
    assert data.images.min() < 250 and data.images[:, 0].max() < 250
    assert abs(int(data.images[2, 48, 48, 0]) - 90) <= 3  # image 3: red = 3 * 30


def test_zip_in_place_with_id_column_header(celeba, tmp_path):
    archive = tmp_path / "dl" / "img_align_celeba.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((celeba / "img_align_celeba").iterdir()):
            zf.write(p, f"img_align_celeba/{p.name}")
    rows = [(f"{i:06d}.jpg", (1, 1, 1)) for i in range(1, 6)]
    (archive.parent / "list_attr_celeba.txt").write_text(attr_text(rows, with_id_column=True))
    data = load_data(data_config(str(archive), tmp_path, "data.image_size=32"))  # guessed by name
    assert data.source == f"celeba:{archive}" and data.shape == (32, 32, 3)
    assert data.attr.min() == 1 and data.partition is None
    folder = load_data(data_config(f"celeba:{celeba}", tmp_path, "data.image_size=32"))
    np.testing.assert_array_equal(data.images, folder.images)


def test_truncated_attribute_file(celeba, tmp_path):
    path = celeba / "list_attr_celeba.txt"
    path.write_bytes(path.read_bytes().replace(b"3\r\n", b"202599\r\n", 1))
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"celeba:{celeba}", tmp_path))
    assert str(err.value) == f"{path}: line 1 says 202599 images but 3 rows follow (truncated?)"


def test_attribute_row_of_wrong_length(celeba, tmp_path):
    path = celeba / "list_attr_celeba.txt"
    path.write_text("1\nSmiling Male Young\n000001.jpg 1 -1\n")
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"celeba:{celeba}", tmp_path))
    assert str(err.value) == f"{path}: line 3: 2 values for 3 attributes"


def test_cache_is_reused_then_rebuilt_when_the_source_changes(celeba, tmp_path):
    first = load_data(data_config(f"celeba:{celeba}", tmp_path))
    again = load_data(data_config(f"celeba:{celeba}", tmp_path))
    assert (first.details["cache"]["state"], again.details["cache"]["state"]) == ("built", "reused")
    face(6).save(celeba / "img_align_celeba" / "000006.jpg")
    changed = load_data(data_config(f"celeba:{celeba}", tmp_path))
    assert changed.details["cache"]["state"] == "rebuilt (source changed)" and changed.count == 6
    cache_files = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert cache_files == [".json", ".lock", ".npy"]  # the stale array was replaced, not kept
