"""Folder and zip of images: labels from sub-folders or CSV, split folders, bad files."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest
from conftest import data_config
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.data import load_data, split_indices
from zspace.data.readers.folder import infer_structure


def solid(path, color, size=(20, 16), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if isinstance(color, int) else "RGB"
    Image.new(mode, size, color).save(path, format=fmt)
    return path


@pytest.fixture
def classes(tmp_path):
    root = tmp_path / "pets"
    solid(root / "cat" / "a.png", (255, 0, 0))
    solid(root / "cat" / "b.jpg", (0, 255, 0))
    solid(root / "dog10" / "c.webp", (0, 0, 255), fmt="WEBP")
    solid(root / "dog2" / "d.bmp", (10, 20, 30))
    (root / "notes.txt").write_text("not an image")
    return root


def test_subfolders_are_labels(classes, tmp_path):
    data = load_data(data_config(f"folder:{classes}", tmp_path))
    assert data.count == 4
    assert data.shape == (16, 16, 3)  # centre crop of the first image (20x16), native size
    assert data.label_names == ("cat", "dog2", "dog10")  # natural order
    assert data.labels.tolist() == [0, 0, 2, 1]
    assert data.images[0, 8, 8].tolist() == [255, 0, 0]
    assert data.images[3, 8, 8].tolist() == [10, 20, 30]
    assert data.details["cache"]["state"] == "built"


def test_zip_read_in_place_and_size(classes, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(classes.rglob("*")):
            if p.is_file():
                zf.write(p, f"pets/{p.relative_to(classes).as_posix()}")
    data = load_data(data_config(str(archive), tmp_path, "data.image_size=8"))  # guessed: a zip
    assert data.source == f"folder:{archive}" and data.shape == (8, 8, 3)
    assert data.label_names == ("cat", "dog2", "dog10")


def test_csv_overrides_subfolders(classes, tmp_path):
    (classes / "labels.csv").write_text(
        "filename,label\ncat/a.png,x\ncat/b.jpg,y\nc.webp,y\ndog2/d.bmp,x\nmissing.png,z\n"
    )
    data = load_data(data_config(f"folder:{classes}", tmp_path))
    assert data.label_names == ("x", "y")
    assert data.labels.tolist() == [0, 1, 1, 0]


def test_csv_without_a_row_for_an_image(classes, tmp_path):
    (classes / "labels.csv").write_text("cat/a.png,x\n")
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"folder:{classes}", tmp_path))
    assert str(err.value) == (
        f"{classes / 'labels.csv'}: no label for 3 of 4 image(s) (e.g. cat/b.jpg)"
    )


def test_split_folders_give_the_partition():
    names = ["d/train/cat/1.png", "d/train/dog/2.png", "d/val/cat/3.png", "d/test/dog/4.png"]
    s = infer_structure(names)
    assert s.partition.tolist() == [0, 0, 1, 2]
    assert s.label_names == ("cat", "dog") and s.labels.tolist() == [0, 1, 0, 1]
    flat = infer_structure(["img_align_celeba/1.jpg", "img_align_celeba/2.jpg"])
    assert flat.labels is None and flat.partition is None


def test_corrupt_files_are_skipped_with_one_summary(tmp_path, caplog):
    root = tmp_path / "imgs"
    for i in range(5):
        solid(root / f"{i}.jpg", (i * 40, 0, 0))
    (root / "2.jpg").write_bytes((root / "2.jpg").read_bytes()[:200])  # truncated JPEG
    (root / "4.jpg").write_bytes(b"not a jpeg at all")
    with caplog.at_level(logging.WARNING, logger="zspace.data"):
        data = load_data(data_config(f"folder:{root}", tmp_path))
    assert data.count == 3 and data.details["skipped"] == 2
    assert [r.getMessage().split(" (e.g.")[0] for r in caplog.records] == [
        f"folder:{root}: skipped 2 unreadable image(s) of 5"
    ]
    assert [int(v) for v in data.images[:, 8, 8, 0]] == [0, 40, 120]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="zspace.data"):
        again = load_data(data_config(f"folder:{root}", tmp_path))  # from the cache: same summary
    assert again.details["cache"]["state"] == "reused" and len(caplog.records) == 1


def test_nothing_usable(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"junk")
    (root / "b.png").write_bytes(b"junk")
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"folder:{root}", tmp_path))
    assert str(err.value).startswith(
        f"folder:{root}: none of the 2 image(s) could be read (e.g. a.jpg: UnidentifiedImageError"
    )


def test_empty_and_missing(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(f"folder:{tmp_path / 'empty'}", tmp_path))
    assert str(err.value) == f"folder:{tmp_path / 'empty'}: no image files in {tmp_path / 'empty'}"
    with pytest.raises(ZspaceError) as err:
        load_data(data_config(str(tmp_path / "missing"), tmp_path))
    assert str(err.value) == f"data.source '{tmp_path / 'missing'}': path not found"


def test_grey_folder_and_explicit_conversion(tmp_path):
    root = tmp_path / "grey"
    solid(root / "a.png", 200, size=(10, 10))
    solid(root / "b.png", 100, size=(10, 10))
    data = load_data(data_config(f"folder:{root}", tmp_path))
    assert data.shape == (10, 10, 1) and data.images[:, 0, 0, 0].tolist() == [200, 100]
    rgb = load_data(data_config(f"folder:{root}", tmp_path, "data.channels=3"))
    assert rgb.shape == (10, 10, 3) and rgb.images[1, 0, 0].tolist() == [100, 100, 100]
    with pytest.raises(ZspaceError, match=r"data.task = 'recolor' needs colour images"):
        load_data(data_config(f"folder:{root}", tmp_path, 'data.task="recolor"'))


def test_unknown_kind_lists_known_ones(tmp_path):
    with pytest.raises(ZspaceError) as err:
        load_data(data_config("imagenet:/x", tmp_path))
    assert str(err.value) == (
        "data.source 'imagenet:/x': unknown kind 'imagenet' "
        "(known: builtin, celeba, cifar10, folder, mnist, npy)"
    )


def test_geometry_center_crop_and_squash(tmp_path):
    root = tmp_path / "g"
    img = np.zeros((40, 20, 3), np.uint8)  # 20 wide, 40 high
    img[:10] = 255  # top quarter white: cut away by the centre crop
    solid(root / "a.png", (0, 0, 0))
    Image.fromarray(img).save(root / "a.png")
    centre = load_data(data_config(f"folder:{root}", tmp_path, "data.image_size=10"))
    assert centre.images.max() == 0
    squash = load_data(
        data_config(f"folder:{root}", tmp_path, "data.image_size=10", 'data.crop="none"')
    )
    assert squash.images[0, 0, 5].tolist() == [255, 255, 255] and squash.images[0, 9].max() == 0


def test_splits_of_a_folder_without_partition(classes, tmp_path):
    data = load_data(data_config(f"folder:{classes}", tmp_path))
    s = split_indices(data, 0.25, 0)
    assert sorted([*s["train"], *s["valid"]]) == [0, 1, 2, 3] and len(s["valid"]) == 1


def test_serial_process_and_thread_decoding_agree(tmp_path):
    import threading

    from zspace.data.readers.decode import decode_to_npy
    from zspace.data.readers.geometry import Geometry
    from zspace.data.readers.imagefiles import list_images

    root = tmp_path / "many"
    rng = np.random.default_rng(1)
    for i in range(70):
        solid(root / f"{i:02d}.png", tuple(int(v) for v in rng.integers(0, 256, 3)))
    (root / "33.png").write_bytes(b"broken")
    files = list_images(root, "t")
    geo = Geometry(8, 8, 3)
    serial = decode_to_npy(files, geo, tmp_path / "a.npy", label="t", workers=1)
    forked = decode_to_npy(files, geo, tmp_path / "b.npy", label="t", workers=2)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()  # another Python thread running: fork is unsafe, threads are used
    try:
        threaded = decode_to_npy(files, geo, tmp_path / "c.npy", label="t", workers=2)
    finally:
        stop.set()
        other.join()
    assert serial.failures == forked.failures == threaded.failures
    assert [name for name, _ in serial.failures] == ["33.png"]
    a, b, c = (np.load(tmp_path / f"{k}.npy") for k in "abc")
    assert a.shape == (69, 8, 8, 3) and np.array_equal(a, b) and np.array_equal(a, c)
