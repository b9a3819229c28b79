"""The mechanisms behind the error contract (issue 18): the I/O layer's one-line errors,
the undo journal, stale temporaries, the size guards and the CLI's last net."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import zspace
from zspace.cli.main import main
from zspace.config import load_config
from zspace.core import fileio, resources
from zspace.core.errors import ZspaceError
from zspace.models.autoencoder import AutoEncoder, count_parameters
from zspace.models.footprint import check_model_fits, model_sizes

QUIET = {"log": lambda _m: None, "progress": False}


# ---------------------------------------------------------------- writing


def test_undo_on_error_restores_every_file_and_removes_new_folders(tmp_path):
    old = fileio.atomic_write_text(tmp_path / "kept.txt", "before")
    with pytest.raises(ZspaceError, match="half-way"):
        with fileio.undo_on_error():
            fileio.atomic_write_text(tmp_path / "kept.txt", "after")
            fileio.atomic_write_text(tmp_path / "kept.txt", "after again")
            fileio.atomic_write_json(tmp_path / "new" / "deep" / "x.json", {"a": 1})
            assert (tmp_path / "new" / "deep" / "x.json").is_file()
            raise ZspaceError("half-way")
    assert old.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]  # no backup left


def test_undo_on_error_commits_and_cleans_its_backups(tmp_path):
    fileio.atomic_write_text(tmp_path / "a.txt", "1")
    with fileio.undo_on_error():
        fileio.atomic_write_text(tmp_path / "a.txt", "2")
        with fileio.undo_on_error():  # nested blocks join the outer one
            fileio.atomic_write_text(tmp_path / "b.txt", "3")
    assert (tmp_path / "a.txt").read_text() == "2" and (tmp_path / "b.txt").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_an_undone_update_json_leaves_neither_its_file_nor_its_lock(tmp_path):
    with pytest.raises(ZspaceError, match="later"):
        with fileio.undo_on_error():
            fileio.update_json(tmp_path / "samples" / "index.json", lambda old: [old])
            raise ZspaceError("later")
    assert list(tmp_path.iterdir()) == []


def test_shared_files_stay_out_of_the_journal(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with fileio.undo_on_error():
            fileio.atomic_write_text(tmp_path / "cache.json", "shared", undoable=False)
            raise KeyboardInterrupt
    assert (tmp_path / "cache.json").read_text() == "shared"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_write_removes_its_own_stale_temporaries(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = [tmp_path / f".x.json.{dead}-abc123.tmp", tmp_path / f".x.json.{dead}-def.undo"]
    live = tmp_path / f".x.json.{alive}-abc123.tmp"  # another writer, still running
    other = tmp_path / f".y.json.{dead}-abc123.tmp"  # another file's: not ours to judge
    old_style = tmp_path / ".x.json.k2j4_9zq.tmp"  # no pid (older zspace): by age
    for p in [*stale, live, other, old_style]:
        p.write_text("junk")
    os.utime(old_style, (0, 0))
    fileio.atomic_write_json(tmp_path / "x.json", {"ok": True})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["x.json", live.name, other.name])


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.mkdir(), "it is a folder"),
        (lambda p: (p.parent / "blocker").write_text("x"), "is a file, not a folder"),
    ],
)
def test_writes_refused_by_the_layout_are_one_line(tmp_path, make, words):
    target = tmp_path / "out.json"
    make(target)
    if words.startswith("is a file"):
        target = tmp_path / "blocker" / "out.json"
    with pytest.raises(ZspaceError, match=words):
        fileio.atomic_write_json(target, {})


def test_a_full_disk_is_named_with_the_file(tmp_path, monkeypatch):
    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(ZspaceError, match=r"cannot write .*big.bin: No space left on device"):
        fileio.atomic_write_bytes(tmp_path / "big.bin", b"x" * 100)
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too


def test_check_writable_probes_without_leaving_anything(tmp_path):
    fileio.check_writable(tmp_path / "a" / "b" / "run", "--run-dir", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(ZspaceError, match="--out .*f is a file, not a folder"):
        fileio.check_writable(tmp_path / "f" / "grid.png", "--out")


def test_atomic_path_publishes_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "data.npy"
    with fileio.atomic_path(target) as tmp:  # a writer that needs a path: a memory map
        assert tmp.parent == target.parent and not target.exists()
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(3,))[:] = 7
    assert np.load(target).tolist() == [7, 7, 7]
    with pytest.raises(KeyboardInterrupt), fileio.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert np.load(target).tolist() == [7, 7, 7]  # the old file, and no temporary
    assert [p.name for p in target.parent.iterdir()] == ["data.npy"]


# ---------------------------------------------------------------- locks and shared files


def _add_rows(path: Path, who: int, rows: int) -> None:
    for i in range(rows):
        fileio.update_json(path, lambda old, i=i: [*(old or []), [who, i]])


def _write_pairs(path: Path, who: int, rows: int) -> None:
    for i in range(rows):
        fileio.write_pair(path, {"who": who, "i": i}, {"x": np.full(50, who * 1000 + i)})


def _read_pairs(path: Path, who: int, rows: int) -> None:
    """Read the pair until the writers are done (``who`` of them); any refusal fails."""
    done = os.path.join(os.path.dirname(os.path.dirname(path)), "writers.done")
    while not os.path.exists(done) or len(open(done).read()) < who:
        if path.exists():
            record, arrays = fileio.read_pair(path)
            assert (arrays["x"] == record["who"] * 1000 + record["i"]).all()


def _in_processes(target, path, n: int = 4, rows: int = 25, reader=None) -> None:
    """``target(path, who, rows)`` in ``n`` forked processes at once (real processes:
    flock is between open files, so threads of one process would not show a race),
    and ``reader(path, n, rows)`` beside them until they are all done."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=(path, w, rows)) for w in range(n)]
    if reader is not None:
        procs.append(ctx.Process(target=reader, args=(path, n, rows)))
    for p in procs:
        p.start()
    for p in procs[:n]:
        p.join(60)
        assert p.exitcode == 0
        with open(path.parent.parent / "writers.done", "a") as fh:
            fh.write("x")
    for p in procs[n:]:
        p.join(60)
        assert p.exitcode == 0


def test_update_json_keeps_every_writers_rows(tmp_path):
    path = tmp_path / "samples" / "eval.json"
    _in_processes(_add_rows, path)
    rows = json.loads(path.read_text())
    assert sorted(map(tuple, rows)) == [(w, i) for w in range(4) for i in range(25)]
    assert sorted(p.name for p in path.parent.iterdir()) == ["eval.json"]  # no lock file left


def test_pairs_written_at_once_stay_pairs(tmp_path):
    path = tmp_path / "analysis" / "radius.json"
    _in_processes(_write_pairs, path, reader=_read_pairs)
    record, arrays = fileio.read_pair(path)  # the npz is the one its json names
    assert (arrays["x"] == record["who"] * 1000 + record["i"]).all()
    assert sorted(p.name for p in path.parent.iterdir()) == ["radius.json", "radius.npz"]


def test_a_held_lock_refuses_naming_its_holder_and_a_removed_one_is_retaken(tmp_path):
    path = tmp_path / "run" / ".writer.lock"
    with fileio.locked(path, remove=True):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(ZspaceError, match=f"^held by {os.getpid()}$"):
            with fileio.locked(path, busy="held by {pid}"):
                pass
    assert not path.exists()
    # a waiter that opened the file before its holder removed it locks the new one
    real_stat, calls = os.stat, []

    def stat(p, *a, **k):
        if p == path and not calls:
            calls.append(p)
            path.unlink()  # as if the last holder removed it between open and flock
        return real_stat(p, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fileio.os, "stat", stat)
        with fileio.locked(path, busy="held by {pid}", remove=True):
            assert calls and path.read_text() == f"{os.getpid()}\n"
    assert not path.exists()


def test_progress_none_keeps_the_enclosing_switch():
    """--no-progress around a public function's progress=None keeps bars off, and
    progress=True around it keeps them on (None is not "back to the terminal")."""
    from zspace.core.progress import bar, progress

    with progress(True), progress(None), bar(total=1) as shown:
        assert not shown.disable
    with progress(False), progress(None), bar(total=1) as hidden:
        assert hidden.disable


# ---------------------------------------------------------------- reading


def test_read_npz_names_what_is_wrong(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(3))
    assert fileio.read_npz(good)["a"].tolist() == [0, 1, 2]
    objects = tmp_path / "objects.npz"
    np.savez(objects, a=np.array([None, {}], dtype=object))
    with pytest.raises(ZspaceError, match="holds object arrays .*refused; redo it"):
        fileio.read_npz(objects, "redo it")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(ZspaceError, match="cut.npz is truncated or corrupt"):
        fileio.read_npz(cut)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ZspaceError, match="is not an .npz archive"):
        fileio.read_npz(text)


def test_read_json_and_text(tmp_path):
    (tmp_path / "half.json").write_text('{"a": [1, 2')
    with pytest.raises(ZspaceError, match=r"half.json is truncated or not JSON .*; rerun it"):
        fileio.read_json(tmp_path / "half.json", "rerun it")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ZspaceError, match="is not UTF-8 text"):
        fileio.read_text(tmp_path / "bin.txt")
    with pytest.raises(ZspaceError, match="cannot read .*: it is a folder"):
        fileio.read_bytes(tmp_path)


# ---------------------------------------------------------------- config numbers


@pytest.mark.parametrize(
    "override, words",
    [
        ("seed=-1", "seed = -1: must be >= 0"),
        ("seed=10000000000000000000", "seed = 10000000000000000000: too large"),
        ("train.batch_size=4294967296", "train.batch_size = 4294967296: too large"),
        ("model.encoder_filters=[8, 99999999999]", "model.encoder_filters = 99999999999"),
        ("train.lr=1e39", "train.lr = 1e+39: outside the range of float32"),
        ("train.lr=1e-40", "train.lr = 1e-40: outside the range of float32"),
        ("model.eps_scale=1e400", "model.eps_scale = inf: must be a finite number"),
    ],
)
def test_numbers_must_fit_the_machine_types(override, words):
    with pytest.raises(ZspaceError, match=words.replace("+", r"\+")):
        load_config(None, [override])


def test_zero_and_ordinary_numbers_still_pass():
    cfg = load_config(None, ["model.fact=0", "train.lr=3e-38", "seed=4294967295"])
    assert cfg.model.fact == 0.0 and cfg.seed == 4294967295


# ---------------------------------------------------------------- sizes


def test_model_sizes_are_exact_without_allocating(tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["model.enc_dense=32", "model.batch_norm=true"])
    sizes = model_sizes(cfg.model, (1, 16, 16))
    assert sizes.parameters == count_parameters(AutoEncoder(cfg.model, (1, 16, 16)))
    # conv 8x8x8 and 16x4x4 (each + BN + activation), dense, mu, logvar, ... > 0
    assert sizes.activations_per_image > 8 * 8 * 8 * 3


def test_small_models_are_counted_on_the_cpu_as_on_the_meta_device(monkeypatch):
    """A small model's activations come from a real one-image forward (milliseconds,
    not the meta device's seconds of first-use setup): the same counts, and the
    caller's random stream untouched."""
    import zspace.models.footprint as footprint

    cfg = load_config(None, ["model.z_dim=8", "model.variational=true"])
    torch.manual_seed(3)
    state = torch.get_rng_state()
    on_cpu = model_sizes(cfg.model, (3, 32, 32))
    assert torch.equal(torch.get_rng_state(), state)
    monkeypatch.setattr(footprint, "REAL_FORWARD_MAX_PARAMETERS", 0)
    assert model_sizes(cfg.model, (3, 32, 32)) == on_cpu


def test_the_memory_guard_refuses_what_the_machine_cannot_hold():
    """The default VAE with z_dim 10^7 on 32x32 images: 246 billion parameters (3.9 TB
    with gradients and Adam), checked against this machine's MemAvailable while
    allocating nothing (a real attempt dies in the allocator or the OOM killer)."""
    avail, _ = resources.available_memory()
    cfg = load_config(None, ["model.z_dim=10000000"])
    sizes = model_sizes(cfg.model, (1, 32, 32))
    # every z dimension adds a row to mu and logvar and a column to the decoder's dense
    # layer, each 8192 (128 x 8 x 8) wide, and one bias in each of mu and logvar
    one = count_parameters(AutoEncoder(load_config(None, ["model.z_dim=1"]).model, (1, 32, 32)))
    assert sizes.parameters == one + (10**7 - 1) * (3 * 8192 + 2) == 245_780_193_409
    if sizes.training_bytes(128) <= avail:
        pytest.skip(f"this machine has {avail / 1e12:.1f} TB available")
    with pytest.raises(ZspaceError) as info:
        check_model_fits(cfg.model, (1, 32, 32), torch.device("cpu"), batch=128)
    text = str(info.value)
    assert "245,780,193,409 parameters with gradients and Adam state: 3.93 TB" in text
    assert re.search(r"but only [0-9.]+ [kMGT]B are available \(", text)
    assert "reduce model.z_dim (10,000,000)" in text


def test_a_small_machine_refuses_a_small_model(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: (1000, "a test's limit"))
    with pytest.raises(ZspaceError, match=r"needs at least .*, but only 1 kB are available"):
        zspace.train(load_config(None, tiny_overrides), run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_loading_a_run_is_guarded_too(tiny_runs, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: (100, "a test's limit"))
    with pytest.raises(ZspaceError, match=r"this model \(5,817 parameters"):
        zspace.load_run(tiny_runs["vae"])


def test_the_cache_refuses_a_disk_it_cannot_fit(tmp_path, monkeypatch):
    from PIL import Image

    from zspace.data.sources import load_data

    for i in range(3):
        Image.new("L", (8, 8), i).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(resources, "free_disk", lambda _p: 10)
    cfg = load_config(
        None, [f'data.source="folder:{tmp_path}"', f'data.cache_dir="{tmp_path / "c"}"']
    )
    with pytest.raises(
        ZspaceError, match=r"the data cache of 3 images at 8x8x1 needs at least 192"
    ):
        load_data(cfg.data)
    assert not list((tmp_path / "c").glob("*.npy"))


# ---------------------------------------------------------------- noise on stderr


@pytest.mark.filterwarnings("error")
def test_no_warning_with_one_batch_and_no_validation(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["data.valid_fraction=0", "train.batch_size=4096"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert [r["val_total"] for r in run.history] == [None, None]


def test_a_foreign_checkpoint_is_refused_without_a_warning(tmp_path, capsys):
    import pickle

    from zspace.runs.checkpoint import load_checkpoint

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": 1, "model": object()}, protocol=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ZspaceError):
            load_checkpoint(path)


# ---------------------------------------------------------------- the CLI's net


def _boom(exc):
    def cmd(_args):
        raise exc

    return cmd


@pytest.mark.parametrize(
    "exc, words",
    [
        (OSError(errno.EROFS, "Read-only file system", "/data/x"), "/data/x: Read-only file"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
        (MemoryError(), "out of memory; try a smaller model"),
        (ZspaceError("first\n  second"), "first; second"),
    ],
)
def test_environment_failures_are_one_line(exc, words, monkeypatch, capsys):
    import zspace.cli.flow as cli

    monkeypatch.setattr(cli, "_demo", _boom(exc))
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zspace: error: ") and err.count("\n") == 1 and words in err


def test_a_bug_stays_a_traceback(monkeypatch):
    import zspace.cli.flow as cli

    monkeypatch.setattr(cli, "_demo", _boom(FileNotFoundError(errno.ENOENT, "gone", "/x")))
    with pytest.raises(FileNotFoundError):
        main(["demo"])


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "preview", "--count", "x"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err == (
        "zspace: error: data preview: argument --count: invalid int value: 'x' "
        "(see zspace data preview --help)\n"
    )


def test_analysis_results_carry_their_arrays_hash(tmp_path, tiny_runs):
    from conftest import copy_run

    from zspace.analysis.runner import load_result

    run = zspace.load_run(copy_run(tiny_runs["vae"], tmp_path / "r"))
    zspace.analyze(run, only=["radius"])
    record = json.loads((run.path / "analysis" / "radius.json").read_text())
    import hashlib

    data = (run.path / "analysis" / "radius.npz").read_bytes()
    assert record["npz_sha256"] == hashlib.sha256(data).hexdigest()
    record2, arrays = load_result(run.path, "radius")
    assert record2 == record and arrays and all(len(a) for a in arrays.values())
