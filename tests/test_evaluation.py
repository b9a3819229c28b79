"""The evaluator on image sets the tests make: its cache (reuse, rebuilds, the lock),
its fallbacks, and what its metrics say about noise, grey, one repeated image and
copies of training images."""

import json
import threading

import numpy as np
import pytest

from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.data import ImageData
from zspace.evaluation import evaluator as E
from zspace.evaluation.api import score_images
from zspace.evaluation.faces import available, detect_faces
from zspace.evaluation.reading import row_flags

SIZE = 16


def shapes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey 16x16 images of three classes: a horizontal bar, a vertical bar, a square,
    each at a random place, on a noisy dark background."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    img = rng.normal(20, 8, (n, SIZE, SIZE))
    for i, lab in enumerate(labels):
        a, b = rng.integers(2, SIZE - 6, 2)
        if lab == 0:
            img[i, a : a + 2, 2:-2] += 200
        elif lab == 1:
            img[i, 2:-2, b : b + 2] += 200
        else:
            img[i, a : a + 5, b : b + 5] += 200
    return np.clip(img, 0, 255).astype(np.uint8)[..., None], labels


def shape_data(n: int = 1500, seed: int = 0, labels: bool = True, source="test:shapes"):
    images, lab = shapes(n, seed)
    return ImageData(images, source, labels=lab if labels else None)


def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    restore = one_thread()
    monkeypatch.setattr(E, "epochs_for", lambda n: 3)  # these tests are of the plumbing
    monkeypatch.setattr(E, "REFERENCE_FRACTION", 0.4)
    yield
    restore()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One evaluator on the shapes, for the tests that only read it."""
    import pytest as _pytest

    restore = one_thread()
    mp = _pytest.MonkeyPatch()
    mp.setattr(E, "IMAGE_BUDGET", 4000)
    mp.setattr(E, "REFERENCE_FRACTION", 0.4)
    root = tmp_path_factory.mktemp("ev")
    data = shape_data()
    ev = E.open_evaluator(data, cache_dir=str(root), progress=False)
    mp.undo()
    restore()
    return data, ev, root


def test_split_is_fixed_disjoint_and_complete():
    a, b = E.split(1000), E.split(1000)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    joined = np.concatenate(list(a.values()))
    assert len(joined) == len(np.unique(joined)) == 1000
    assert len(a["reference_a"]) == len(a["reference_b"]) == 200  # 0.4 here, two halves
    with pytest.raises(ZspaceError, match="at least 40 images"):
        E.split(30)


def test_classifier_evaluator_meta_and_files(built):
    data, ev, root = built
    assert ev.task == "classes" and ev.state == "built" and ev.has_classifier
    assert ev.meta["accuracy"] > 0.9  # the shapes are easy; held-out reference images
    assert ev.reference.shape == (len(ev.index_a), 64)
    assert not set(ev.index_a) & set(ev.index_b)
    meta = json.loads((ev.folder / "meta.json").read_text())
    assert meta["data"]["fingerprint"] == E.data_fingerprint(data)
    assert meta["version"] == E.EVALUATOR_VERSION and meta["split"]["reference_a"] == 300
    assert ev.folder.parent == root / "evaluators"
    weights = ev.folder / meta["build"] / "weights.pt"
    import torch

    state = torch.load(weights, weights_only=True)  # a plain zspace checkpoint
    assert state["format"] == 1 and "model" in state
    assert [p.name for p in ev.folder.iterdir() if p.name.startswith("build-")] == [meta["build"]]


def test_metrics_agree_with_what_the_images_are(built):
    data, ev, _ = built
    opts = {"k": 5, "rounds": 30, "seed": 0, "face_oracle": False}
    n = len(ev.index_b)
    floor = score_images(ev, data.images[ev.index_b], **opts)
    fresh = score_images(ev, shapes(n, seed=7)[0], **opts)  # new draws of the same recipe
    rng = np.random.default_rng(1)
    noise = score_images(ev, rng.integers(0, 256, (n, SIZE, SIZE, 1), dtype=np.uint8), **opts)
    grey = score_images(ev, np.full((n, SIZE, SIZE, 1), 128, np.uint8), **opts)
    mean = np.rint(data.images.mean(0)).astype(np.uint8)
    one = score_images(ev, np.repeat(mean[None], n, axis=0), **opts)
    train = E.split(data.count)["train"][:4]
    copies = score_images(ev, np.repeat(data.images[train], n // 4, axis=0), **opts)

    fm, fs = floor["metrics"], floor["spread"]
    assert fm["density"] == pytest.approx(1.0, abs=0.25)
    assert fm["coverage"] == pytest.approx(1 - 2**-5, abs=0.05)
    for name in ("precision", "vouched_precision", "recall", "density", "coverage", "fd", "kid"):
        both = np.hypot(fs[name], fresh["spread"][name])
        assert abs(fresh["metrics"][name] - fm[name]) <= 3 * both + 1e-9, name
    for junk in (noise, grey):
        assert junk["metrics"]["precision"] <= 0.05
        assert junk["metrics"]["fd"] > 20 * (fm["fd"] + 3 * fs["fd"])
        assert junk["metrics"]["confident_share"] < fm["confident_share"] / 2
    assert one["metrics"]["recall"] <= 0.02 and one["metrics"]["coverage"] <= 0.05
    assert copies["metrics"]["precision"] >= 0.9 and copies["metrics"]["coverage"] <= 0.1
    # copies crowd into a few balls: vouched precision reads that as low fidelity (a known
    # limit, docs/evaluation.md), and both flags fire
    assert copies["metrics"]["vouched_precision"] < 0.5
    flags = row_flags({**copies, "params": {"n": n}}, floor, len(ev.reference))
    assert len(flags) == 2 and "two thirds in" in flags[1]
    assert sum(floor["labels"]) == n and min(floor["labels"]) > 0.2 * n  # all three shapes
    assert sum(x > 0 for x in one["labels"]) == 1  # one image, one class


def test_reused_then_rebuilt_when_data_geometry_task_or_version_change(
    built, monkeypatch, tmp_path
):
    data, ev, root = built
    logs = []
    again = E.open_evaluator(data, cache_dir=str(root), log=logs.append, progress=False)
    assert again.state == "reused" and again.fingerprint == ev.fingerprint
    assert logs[0].startswith("evaluator: reused")
    # a changed data set: the same source, one image different -> rebuilt in place
    root2 = tmp_path / "c"
    data = shape_data(300, seed=9)
    E.open_evaluator(data, cache_dir=str(root2), progress=False)
    images = data.images.copy()
    images[0] = 255 - images[0]
    changed = ImageData(images, data.source, labels=data.labels)
    logs.clear()
    ev2 = E.open_evaluator(changed, cache_dir=str(root2), log=logs.append, progress=False)
    assert ev2.state == "rebuilt" and any("the data changed" in line for line in logs)
    assert len(list((root2 / "evaluators").glob("*/meta.json"))) == 1  # in place
    # another geometry -> its own evaluator
    small = ImageData(
        np.ascontiguousarray(data.images[:, ::2, ::2]), data.source, labels=data.labels
    )
    ev3 = E.open_evaluator(small, cache_dir=str(root2), progress=False)
    assert ev3.state == "built" and ev3.folder != ev2.folder and "8x8x1" in ev3.folder.name
    # another task -> its own evaluator
    ev4 = E.open_evaluator(changed, cache_dir=str(root2), task="rotation", progress=False)
    assert ev4.state == "built" and ev4.task == "rotation" and not ev4.has_classifier
    # a new evaluator version -> rebuilt, the reason logged
    monkeypatch.setattr(E, "EVALUATOR_VERSION", E.EVALUATOR_VERSION + 1)
    logs.clear()
    ev5 = E.open_evaluator(changed, cache_dir=str(root2), log=logs.append, progress=False)
    assert ev5.state == "rebuilt" and any("evaluator version" in line for line in logs)
    assert ev5.fingerprint != ev2.fingerprint


def test_damaged_weights_are_rebuilt_not_trusted(built, tmp_path):
    data = shape_data(200, seed=3)
    ev = E.open_evaluator(data, cache_dir=str(tmp_path), progress=False)
    weights = ev.folder / ev.meta["build"] / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    logs = []
    again = E.open_evaluator(data, cache_dir=str(tmp_path), log=logs.append, progress=False)
    assert again.state == "rebuilt" and any("does not match its meta.json" in x for x in logs)
    with pytest.raises(ZspaceError, match="build it with `zspace evaluator train`"):
        E.open_evaluator(shape_data(200, seed=4), cache_dir=str(tmp_path), build=False)


def test_two_builders_at_once_build_once(monkeypatch, tmp_path):
    data = shape_data(200, seed=5)
    builds = []
    real_build = E._build

    def counting(*args, **kwargs):
        builds.append(1)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(E, "_build", counting)
    out = []

    def worker():
        out.append(E.open_evaluator(data, cache_dir=str(tmp_path), progress=False))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(out) == 2
    assert out[0].fingerprint == out[1].fingerprint
    assert sorted(e.state for e in out) == ["built", "reused"]


def test_missing_labels_fall_back_with_a_logged_line(tmp_path):
    from zspace.data.builtin import digits_images

    logs = []
    data = ImageData(digits_images(16)[0][:800], "test:unlabelled")  # digits have an up
    ev = E.open_evaluator(data, cache_dir=str(tmp_path), log=logs.append, progress=False)
    assert ev.task == "rotation" and not ev.has_classifier
    assert any("no labels; falling back to rotation-prediction features" in x for x in logs)
    assert ev.meta["accuracy"] > 0.5  # four turns: chance is 0.25
    with pytest.raises(ZspaceError, match="has no class labels"):
        E.resolve_task(data, "classes")


def test_attributes_need_enough_attributed_images(monkeypatch, tmp_path):
    images, labels = shapes(600, seed=8)
    # attribute 0: "horizontal bar"; attribute 1: "square"; only known for some images
    attr = np.stack([np.where(labels == 0, 1, -1), np.where(labels == 2, 1, -1)], 1)
    few = attr.astype(np.int8).copy()
    few[100:] = 0
    data = ImageData(images, "test:attrs", attr=few, attr_names=("Bar", "Square"))
    logs = []
    assert E.resolve_task(data, "auto", logs.append)[0] == "rotation"
    assert "only 100 of 600 images carry attributes (an attribute classifier needs 2000)" in logs[0]
    with pytest.raises(ZspaceError, match="needs at least 2000"):
        E.resolve_task(data, "attributes")
    monkeypatch.setattr(E, "MIN_ATTRIBUTED", 500)  # a small set the test can train on
    data = ImageData(images, "test:attrs", attr=attr.astype(np.int8), attr_names=("Bar", "Sq"))
    ev = E.open_evaluator(data, cache_dir=str(tmp_path), progress=False)
    assert ev.task == "attributes" and ev.multilabel and ev.meta["accuracy"] > 0.85
    scored = score_images(ev, images[ev.index_b], k=5, rounds=10, seed=0, face_oracle=False)
    truth = (attr[ev.index_b] > 0).mean(0)
    np.testing.assert_allclose(scored["labels"], truth, atol=0.15)  # share positive per attribute


@pytest.mark.skipif(not available(), reason="opencv-python-headless (zspace[faces]) absent")
def test_face_oracle_on_made_images():
    rng = np.random.default_rng(0)
    assert detect_faces(rng.integers(0, 256, (20, 96, 96, 3), dtype=np.uint8)).mean() <= 0.1
    assert not detect_faces(np.full((5, 96, 96, 1), 128, np.uint8)).any()
    with pytest.raises(ZspaceError, match="uint8"):
        detect_faces(np.zeros((2, 8, 8, 3), np.float32))


def test_face_oracle_without_opencv_is_one_line(monkeypatch):
    import builtins

    from zspace.evaluation import faces

    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("no cv2")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    faces._detector.cache_clear()
    with pytest.raises(ZspaceError, match=r"pip install 'zspace\[faces\]'"):
        faces.detect_faces(np.zeros((1, 8, 8, 1), np.uint8))
    assert not faces.available()
    faces._detector.cache_clear()


def test_evaluator_cli_info_and_errors(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["evaluator", "info", "builtin:digits", "--size", "16", "--cache-dir", cache]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "absent" and info["task"] == "classes"
    assert "digits-16x16x1-classes" in info["folder"]
    assert main(["evaluator", "info", "builtin:nope", "--cache-dir", cache]) == 2
    assert "unknown built-in set" in capsys.readouterr().err
    args = ["evaluator", "train", "builtin:digits", "--size", "16", "--task", "attributes"]
    assert main([*args, "--cache-dir", cache]) == 2
    assert "carry attributes" in capsys.readouterr().err
