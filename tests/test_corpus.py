"""The bad-input corpus and the crash windows (issue 18).

Every corpus case runs the CLI in-process on inputs the test makes (bad files, a copy
of one tiny run) and asserts the error contract: exit code 2, exactly one stderr
line starting ``zspace: error:``, no traceback, and no file created, changed or
removed under the test's folder (the data cache, shared state, lives elsewhere).

The crash windows kill a forked child with SIGKILL at one write of a command's
sequence (a real kill -9: no ``finally`` runs, temporaries stay), then rerun or
resume in-process and compare with an uninterrupted run.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY
from conftest import copy_run as copy_shared_run
from PIL import Image

import zspace
from zspace.analysis.runner import load_result
from zspace.cli.main import main
from zspace.core import fileio
from zspace.core.errors import ZspaceError
from zspace.runs.checkpoint import load_checkpoint
from zspace.runs.folder import LOCK_FILE, read_config, read_history
from zspace.training import Callback, train_run

SETS = [x for o in TINY for x in ("--set", o)]


@pytest.fixture(scope="module")
def base_run(tiny_runs, tmp_path_factory):
    """A copy of the shared tiny VAE (TINY, encoded) with three analyses and a grid."""
    root = tmp_path_factory.mktemp("corpus-base")
    mp = pytest.MonkeyPatch()
    mp.setenv("ZSPACE_CACHE", str(root / "cache"))
    run = copy_shared_run(tiny_runs["vae"], root / "run")
    try:
        assert main(["analyze", str(run), "--only", "radius,axes,pca"]) == 0
        assert main(["generate", str(run), "-n", "8"]) == 0
    finally:
        mp.undo()
    return run


@pytest.fixture
def work(tmp_path, monkeypatch, capsys):
    """The case's folder (also the working folder); the cache lives outside it."""
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    return tmp_path


def copy_run(base_run: Path, work: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(base_run, work / name))


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            ("dir",) if p.is_dir() else (st.st_size, st.st_mtime_ns, st.st_ino)
        )
    return out


def assert_user_error(
    argv: list[str], work: Path, capsys, message: str, cleared: tuple[Path, ...] = ()
) -> str:
    """Exit 2, one line ``zspace: error: ...`` holding ``message``, nothing touched
    (but ``cleared``: a dead writer's lock file, which the next writer removes)."""
    before = snapshot(work)
    for p in cleared:
        del before[str(p.relative_to(work))]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit from parse_args
        code = exc.code
    err = capsys.readouterr().err
    after = snapshot(work)
    assert code == 2, err
    assert err.startswith("zspace: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message in err, err
    changed = sorted(set(before) ^ set(after)) + sorted(
        k for k in before.keys() & after.keys() if before[k] != after[k]
    )
    assert not changed, f"the failing command touched {changed}"
    return err


# ---------------------------------------------------------------- bad inputs


def _png(path: Path, size: int = 16, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (size, size), value).save(path)
    return path


def _train(work, *extra):
    return ["train", "--run-dir", str(work / "new"), "--no-progress", *SETS, *extra]


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _edit_json(path: Path, **changes) -> None:
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))


def case_seed(work, run):
    return _train(work, "--set", "seed=-1"), "seed = -1: must be >= 0"


def case_lr_overflow(work, run):
    return _train(work, "--set", "train.lr=1e39"), "train.lr = 1e+39: outside the range of float32"


def case_fact_overflow(work, run):
    return _train(work, "--set", "model.fact=1e39"), "model.fact = 1e+39: outside the range"


def case_int_overflow(work, run):
    return _train(work, "--set", "train.threads=100000000000"), "train.threads = 100000000000"


def case_nan(work, run):
    return _train(work, "--set", "data.noise_sigma=nan"), "data.noise_sigma = nan: must be a fin"


def case_nan_in_the_first_epoch(work, run):
    # a learning rate float32 holds but training cannot: NaN in epoch 1, no folder left
    return _train(work, "--set", "train.lr=1e30"), "non-finite loss (NaN or inf) in epoch 1"


def case_config_is_folder(work, run):
    (work / "cfg").mkdir()
    return ["train", "--config", str(work / "cfg")], "is a folder; give a .toml file"


def case_config_binary(work, run):
    (work / "bad.toml").write_bytes(b"\xff\xfe\x00seed = 1")
    return ["train", "--config", str(work / "bad.toml")], "bad.toml is not UTF-8 text"


def case_config_invalid_toml(work, run):
    (work / "bad.toml").write_text("[model\nz_dim = 3")
    return ["train", "--config", str(work / "bad.toml")], "invalid TOML"


def case_run_dir_is_file(work, run):
    (work / "afile").write_text("x")
    argv = ["train", "--run-dir", str(work / "afile"), "--no-progress", *SETS]
    return argv, "afile is a file, not a folder"


def case_run_dir_inside_file(work, run):
    (work / "afile").write_text("x")
    argv = ["train", "--run-dir", str(work / "afile" / "run"), "--no-progress", *SETS]
    return argv, "afile is a file, not a folder"


def case_run_dir_unwritable(work, run):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc (a place even root cannot create folders in)")
    argv = ["train", "--run-dir", "/proc/zspace-corpus/run", "--no-progress", *SETS]
    return argv, "--run-dir /proc/zspace-corpus/run: cannot write in /proc"


def case_run_dir_not_empty(work, run):
    copy_run(run, work, "new")
    return _train(work), "is not empty; pick another --run-dir or resume it"


def case_run_dir_without_checkpoint(work, run):
    dead = copy_run(run, work, "new")
    shutil.rmtree(dead / "checkpoints")
    return _train(work), "holds a run that stopped before its first checkpoint"


def case_z_dim_too_large(work, run):
    return _train(work, "--set", "model.z_dim=10000000"), "parameters with gradients and Adam"


def case_filters_too_large(work, run):
    argv = _train(work, "--set", "model.encoder_filters=[100000, 100000]")
    return argv, "parameters with gradients and Adam state: 2.88 TB"


def case_image_size_too_large(work, run):
    argv = _train(work, "--set", "data.image_size=100000", "--set", "model.encoder_strides=[1,1]")
    return argv, "built-in digits at 100000x100000 needs at least 18 TB"


def case_resume_missing(work, run):
    return ["train", "--run-dir", str(work / "none"), "--resume"], "run folder not found"


def case_resume_finished(work, run):
    r = copy_run(run, work)
    return ["train", "--run-dir", str(r), "--resume", "--no-progress"], "already has 2 epochs"


def case_resume_truncated_checkpoint(work, run):
    r = copy_run(run, work)
    _truncate(r / "checkpoints" / "last.pt", 1000)
    argv = ["train", "--run-dir", str(r), "--resume", "--set", "train.epochs=3", "--no-progress"]
    return argv, "last.pt is unreadable or corrupt"


def case_resume_epoch_not_kept(work, run):
    r = copy_run(run, work)
    return ["train", "--run-dir", str(r), "--resume", "7"], "no checkpoint for epoch 7"


def case_resume_hand_edited(work, run):
    r = copy_run(run, work)
    cfg = r / "config.toml"
    cfg.write_text(cfg.read_text().replace("fact = 1.0", "fact = 0.5"))
    argv = ["train", "--run-dir", str(r), "--resume", "--set", "train.epochs=3", "--no-progress"]
    return argv, "changed model.fact (1.0 in the checkpoint, 0.5 in config.toml)"


def case_preview_count_zero(work, run):
    return ["data", "preview", "builtin:digits", "--count", "0"], "--count = 0: must be >= 1"


def case_preview_count_negative(work, run):
    return ["data", "preview", "builtin:digits", "--count", "-3"], "--count = -3: must be >= 1"


def case_preview_columns_zero(work, run):
    return ["data", "preview", "builtin:digits", "--cols", "0"], "--cols = 0: must be >= 1"


def case_preview_out_is_folder(work, run):
    (work / "grids").mkdir()
    argv = ["data", "preview", "builtin:digits", "-o", str(work / "grids")]
    return argv, "grids is a folder; give a file name"


def _empty_idx(work) -> Path:
    """A folder with an IDX images file whose header says it holds 0 images."""
    (work / "idx").mkdir()
    header = b"\0\0\x08\x03" + struct.pack(">III", 0, 28, 28)
    (work / "idx" / "train-images-idx3-ubyte").write_bytes(header)
    return work / "idx"


def case_idx_without_images(work, run):
    return ["data", "info", f"mnist:{_empty_idx(work)}"], "no images"


def case_idx_truncated(work, run):
    folder = work / "idx"
    folder.mkdir()
    header = b"\0\0\x08\x03" + struct.pack(">III", 10, 28, 28)
    (folder / "train-images-idx3-ubyte").write_bytes(header + bytes(100))
    return ["data", "info", f"mnist:{folder}"], "truncated"


def case_source_missing(work, run):
    return ["data", "info", str(work / "nothing")], "path not found"


def case_encode_no_run(work, run):
    return ["encode", str(work / "nothing")], "run folder not found"


def case_encode_truncated_checkpoint(work, run):
    r = copy_run(run, work)
    _truncate(r / "checkpoints" / "best.pt", 1000)
    return ["encode", str(r)], "best.pt is unreadable or corrupt"


def case_encode_checkpoint_does_not_fit(work, run):
    r = copy_run(run, work)
    cfg = r / "config.toml"
    cfg.write_text(cfg.read_text().replace("z_dim = 4", "z_dim = 5"))
    return ["encode", str(r)], "does not fit the run's config (encoder.mu.weight is (4, 256)"


def case_encode_meta_broken(work, run):
    r = copy_run(run, work)
    _edit_json(r / "meta.json", input_shape=[1, "x", 16])
    return ["encode", str(r)], "input_shape [1, 'x', 16] is not [channels, height, width]"


def case_encode_batch_zero(work, run):
    return ["encode", str(copy_run(run, work)), "--batch-size", "0"], "batch_size = 0"


def case_analyze_truncated_latents(work, run):
    r = copy_run(run, work)
    _truncate(r / "latents" / "train.npz", 300)
    return ["analyze", str(r), "--only", "radius"], "train.npz is truncated or corrupt"


def case_analyze_object_latents(work, run):
    r = copy_run(run, work)
    np.savez(r / "latents" / "train.npz", z=np.array([{"x": 1}], dtype=object), index=[0])
    return ["analyze", str(r)], "holds object arrays (pickled Python objects); refused"


def case_analyze_foreign_latents(work, run):
    r = copy_run(run, work)
    np.savez(r / "latents" / "train.npz", z=np.arange(5.0), index=np.arange(5))
    return ["analyze", str(r)], "is not a zspace latents file: z must be an (N, d) float array"


def case_analyze_text_as_latents(work, run):
    r = copy_run(run, work)
    (r / "latents" / "train.npz").write_text("not an archive")
    return ["analyze", str(r)], "is not an .npz archive"


def case_analyze_unknown(work, run):
    return ["analyze", str(copy_run(run, work)), "--only", "bogus"], "unknown analysis 'bogus'"


def case_report_truncated_json(work, run):
    r = copy_run(run, work)
    _truncate(r / "analysis" / "radius.json", 40)
    return ["report", str(r)], "radius.json is truncated or not JSON"


def case_report_foreign_json(work, run):
    r = copy_run(run, work)
    (r / "analysis" / "axes.json").write_text("[1, 2]")
    return ["report", str(r)], "axes.json is not a zspace axes result"


def case_report_truncated_npz(work, run):
    r = copy_run(run, work)
    record = json.loads((r / "analysis" / "pca.json").read_text())
    del record["npz_sha256"]  # a result saved before the pair carried a hash: still read
    (r / "analysis" / "pca.json").write_text(json.dumps(record))
    _truncate(r / "analysis" / "pca.npz", 100)
    return ["report", str(r)], "pca.npz is truncated or corrupt"


def case_report_mismatched_pair(work, run):
    r = copy_run(run, work)
    shutil.copyfile(r / "analysis" / "axes.npz", r / "analysis" / "radius.npz")
    return ["report", str(r)], "radius.npz does not belong to radius.json"


def case_report_broken_history(work, run):
    r = copy_run(run, work)
    (r / "history.jsonl").write_text("[1]\n")
    return ["report", str(r)], "history.jsonl: line 1 is not a history row"


def case_report_broken_index(work, run):
    r = copy_run(run, work)
    (r / "samples" / "index.json").write_text('{"file": ')
    return ["report", str(r)], "index.json is truncated or not JSON"


def case_generate_image_missing(work, run):
    argv = ["generate", str(copy_run(run, work)), "--image", str(work / "nope.png")]
    return argv, "image file not found"


def case_generate_image_not_an_image(work, run):
    (work / "text.png").write_text("hello")
    argv = ["generate", str(copy_run(run, work)), "--image", str(work / "text.png")]
    return argv, "text.png does not decode as an image"


def case_generate_image_truncated(work, run):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 90, 200)).save(buf, format="PNG")
    (work / "cut.png").write_bytes(buf.getvalue()[:80])
    argv = ["generate", str(copy_run(run, work)), "--image", str(work / "cut.png")]
    return argv, "cut.png does not decode as an image"


def _png_header(path: Path, side: int) -> Path:
    """A PNG whose header claims side x side grey pixels (a few bytes: no pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    head = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b""))
    return path


def case_generate_image_bomb(work, run):
    argv = [
        "generate",
        str(copy_run(run, work)),
        "--image",
        str(_png_header(work / "b.png", 10**5)),
    ]
    return argv, "b.png does not decode as an image: Image size (10000000000 pixels) exceeds"


def case_generate_image_bomb_warning_size(work, run):
    # above PIL's warning size, below its error size: refused too, and in one line
    argv = [
        "generate",
        str(copy_run(run, work)),
        "--image",
        str(_png_header(work / "b.png", 12000)),
    ]
    return argv, "b.png does not decode as an image: Image size (144000000 pixels) exceeds"


def case_train_on_an_idx_without_images(work, run):
    argv = ["train", "--out", str(work / "new"), "--set", f'data.source="mnist:{_empty_idx(work)}"']
    return argv, "train-images-idx3-ubyte: no images (its header says 0)"


def case_old_spelling_before_an_error(work, run):
    # --set is analyze's older spelling of --param: silent, so the error stays one line
    return ["analyze", str(copy_run(run, work)), "--set", "radius.bin_width=x"], "bin_width"


def case_generate_late_failure_is_undone(work, run):
    # the grids are written before the attribute fails: the command must undo them
    argv = ["generate", str(copy_run(run, work)), "--sampler", "normal,gauss", "--attribute", "x"]
    return argv, "these latents carry no attributes"


def case_generate_interpolate_out_of_range(work, run):
    argv = ["generate", str(copy_run(run, work)), "--interpolate", "0", "99999"]
    return argv, "image 99999 does not exist"


def case_generate_subsample_zero(work, run):
    argv = ["generate", str(copy_run(run, work)), "--sampler", "gmm", "--subsample", "0"]
    return argv, "--subsample = 0: must be >= 1"


def case_generate_count_zero(work, run):
    return ["generate", str(copy_run(run, work)), "-n", "0"], "--count = 0: must be >= 1"


def case_generate_count_too_large(work, run):
    argv = ["generate", str(copy_run(run, work)), "-n", "100000000000"]
    return argv, "n = 100,000,000,000: decoding 100,000,000,000 images of 16x16x1 needs at least"


def case_generate_strength_infinite(work, run):
    argv = ["generate", str(copy_run(run, work)), "--traverse", "axis:0", "--strengths", "1,inf"]
    return argv, "argument --strengths: '1,inf': expected finite numbers"


def case_generate_sharpen_nan(work, run):
    argv = ["generate", str(copy_run(run, work)), "--sharpen", "nan"]
    return argv, "argument --sharpen: 'nan': expected finite numbers"


def case_encode_eps_scale_nan(work, run):
    argv = ["encode", str(copy_run(run, work)), "--eps-scale", "nan"]
    return argv, "--eps-scale = nan: must be a finite number"


def case_evaluate_not_encoded(work, run):
    r = copy_run(run, work)
    shutil.rmtree(r / "latents")  # fails before the evaluator is opened or anything scored
    return ["evaluate", str(r), "-n", "50"], "no latents for split 'train'"


def _recipe(work, *swaps: tuple[str, str], raw: bytes | None = None) -> list[str]:
    """``zspace recipe run`` of the shipped mnist-vae recipe with text swapped: the one
    schema check refuses it before anything (data, training) runs."""
    from zspace.flow.recipes import recipe_dir

    text = (recipe_dir() / "mnist-vae.toml").read_text()
    for old, new in swaps:
        assert old in text
        text = text.replace(old, new, 1)
    (work / "mnist-vae.toml").write_bytes(raw if raw is not None else text.encode())
    return ["recipe", "run", str(work / "mnist-vae.toml"), "--data", str(work)]


GRID = '[[generate.grids]]\nsampler = "normal,gauss,gmm"\nn = 64'


def case_recipe_not_utf8(work, run):
    return _recipe(work, raw=b"[recipe]\nname = '\xff\xfe'\n"), "mnist-vae.toml is not UTF-8 text"


def case_recipe_grids_a_number(work, run):
    uniform = '[[generate.grids]]\nsampler = "uniform"\nlimits = [1.0, 2.0, 3.0]\nn = 64\n'
    argv = _recipe(work, (GRID, "[generate]\ngrids = 5"), (uniform, ""))
    return argv, "[[grids]] must be a list of tables, not 5"


def case_recipe_recon_a_string(work, run):
    argv = _recipe(work, ("[generate.recon]\nn = 16", '[generate]\nrecon = "16"'))
    return argv, "[generate]: [recon] must be a table, not '16'"


def case_recipe_evaluate_a_number(work, run):
    table = '[evaluate]\nsampler = ["normal", "gauss", "gmm"]\nn = 1000'
    argv = _recipe(work, (table, ""), ("# The MNIST VAE", "evaluate = 3\n#"))
    return argv, "[evaluate] must be a table, not 3"


def case_recipe_timing_a_number(work, run):
    argv = _recipe(
        work, ("[recipe.timing]\n", "[recipe.timingx]\n"), ('posts = "', 'timing = 9\nposts = "')
    )
    return argv, "[recipe]: [timing] must be a table, not 9"


# recipe cases: (text swapped in the shipped mnist-vae recipe, words of the error)
RECIPE_SWAPS = {
    "unknown_section": (("[setup]", "[setpu]"), "unknown key(s) setpu (did you mean 'setup'?)"),
    "grid_unknown_setting": (
        ('"normal,gauss,gmm"\nn = 64', '"normal,gauss,gmm"\nnn = 64'),
        "generate.grids #1: unknown setting 'nn' (did you mean 'n'?)",
    ),
    "grid_count_text": (
        ('"normal,gauss,gmm"\nn = 64', '"normal,gauss,gmm"\nn = "many"'),
        "generate.grids #1: n = 'many': expected an integer",
    ),
    "evaluate_bad_oracle": (
        ('gmm"]\nn = 1000', 'gmm"]\noracle = "eyes"'),
        "evaluate: oracle 'eyes': choose one of auto, faces, none",
    ),
    "reference_typo": (
        ('quantity = "history.reco"', 'quantity = "history.recoo"'),
        "unknown quantity 'history.recoo' (did you mean 'reco'?)",
    ),
    "analysis_parameter": (
        ("k_step = 2", "k_step = 0"),
        "recipe mnist-vae: kmeans: need 1 <= k_min <= k_max and k_step >= 1",
    ),
}


# samples/eval.json and rates.json as evaluate and generate --rate write them (in short)
EVAL = {"n": 8, "k": 5, "evaluator": {"fingerprint": "f" * 16, "kind": "classes",
        "reference_size": 8}, "headline": {"metric": "fd", "higher_is_better": False},
        "results": [{"sampler": s, "params": {"n": 8}, "metrics": {"fd": 1.0, "recall": 0.5},
                     "spread": {"fd": 0.1}, "flags": []} for s in ("real", "normal")]}  # fmt: skip
RATES = {"threshold": 1.0, "quantile": 0.95, "reference_size": 8, "space": "mu", "warning": None,
         "results": [{"sampler": "normal", "params": {}, "rate": 0.5, "n": 8, "mean_radius": 2.0,
                      "median_distance": 0.5}]}  # fmt: skip


def _results(work, run, name, edit, command="report"):
    """A copy of the run (two for compare) with a good eval.json, rates.json and index.json, one
    of them then changed by ``edit`` (its content, parsed) and written back."""
    runs = [copy_run(run, work, n) for n in (("a", "b") if command == "compare" else ("a",))]
    for r in runs:
        index = json.loads((r / "samples" / "index.json").read_text())
        for file, good in (("eval", EVAL), ("rates", RATES), ("index", index)):
            got = edit(json.loads(json.dumps(good))) if file == name and r == runs[-1] else good
            (r / "samples" / f"{file}.json").write_text(json.dumps(got))
    out = ["--out", str(work / "cmp")] if command == "compare" else []
    return [command, *map(str, runs), *out]


FOREIGN = {  # (file, edit, what the line names)
    "eval_a_list": ("eval", lambda x: [x], "(the top level: missing"),
    "eval_no_evaluator": ("eval", lambda x: x.pop("evaluator") and x, "(evaluator: missing"),
    "eval_row_not_a_dict": ("eval", lambda x: x | {"results": ["normal"]}, "(results[0]: missing"),
    "eval_metric_text": (
        "eval",
        lambda x: x["results"][1]["metrics"].update(fd="low") or x,
        "results[1].metrics.fd",
    ),
    "rates_rate_text": (
        "rates",
        lambda x: x["results"][0].update(rate="1/2") or x,
        "results[0].rate",
    ),
    "index_limit_text": (
        "index",
        lambda x: x[0]["params"].update(limit="2") or x,
        "[0].params.limit",
    ),
    "rates_no_threshold": ("rates", lambda x: x.pop("threshold") and x, "(threshold: missing"),
}


@pytest.mark.parametrize("command", ["report", "compare"])
@pytest.mark.parametrize("case", list(FOREIGN))
def test_a_foreign_samples_file_is_refused_by_report_and_compare(
    case, command, base_run, work, capsys
):
    """The pages read samples/eval.json, rates.json and index.json whole before drawing: one
    line naming the file, where it departs and the command that rewrites it; nothing written."""
    name, edit, where = FOREIGN[case]
    argv = _results(work, base_run, name, edit, command)
    redo = "zspace evaluate" if name == "eval" else "zspace generate"
    err = assert_user_error(argv, work, capsys, f"{name}.json")
    assert where in err and f"rerun `{redo} {work / argv[-3 if command == 'compare' else 1]}" in err


@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_truncated_eval_file_is_refused_and_good_ones_are_shown(command, base_run, work, capsys):
    argv = _results(work, base_run, "eval", lambda x: x, command)
    assert main(argv) == 0
    page = work / "cmp" / "compare.html" if command == "compare" else work / "a" / "report.html"
    text = page.read_text()
    assert "ffffffffffffffff" in text and "No evaluation for" not in text
    assert command == "compare" or "within 1 of a training point" in text
    page.unlink()
    _truncate(work / argv[1] / "samples" / "eval.json", 30)
    assert_user_error(argv, work, capsys, "eval.json is truncated or not JSON")


def case_npy_labels_hold_objects(work, run):
    folder = work / "arrays"
    folder.mkdir()
    np.save(folder / "images.npy", np.zeros((4, 8, 8, 1), np.uint8))
    np.save(folder / "labels.npy", np.array([{}, {}, {}, {}], dtype=object), allow_pickle=True)
    return ["data", "info", f"npy:{folder}"], "labels.npy is not a readable .npy file"


def case_compare_out_is_file(work, run):
    (work / "afile").write_text("x")
    r = copy_run(run, work)
    return ["compare", str(r), str(r), "--out", str(work / "afile")], "afile is a file"


def case_argparse_unknown_command(work, run):
    return ["bogus"], "invalid choice: 'bogus'"


def case_argparse_missing_argument(work, run):
    return ["encode"], "encode: the following arguments are required: run"


def case_argparse_bad_int(work, run):
    return ["generate", "x", "-n", "many"], "invalid int value: 'many'"


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}
CASES.update(
    {
        f"recipe_{name}": (lambda swap, words: lambda work, run: (_recipe(work, swap), words))(*c)
        for name, c in RECIPE_SWAPS.items()
    }
)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_touches_nothing(name, base_run, work, capsys):
    argv, message = CASES[name](work, base_run)
    assert_user_error(argv, work, capsys, message)


# ---------------------------------------------------------------- the OS refuses


@pytest.mark.parametrize(
    "code, words", [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")]
)
def test_a_full_disk_or_a_refused_write_is_one_line_and_undone(
    base_run, work, capsys, monkeypatch, code, words
):
    """The second file generate writes fails: one line naming it, the first is undone."""
    run = copy_run(base_run, work)
    writes = {"n": 0}
    real = os.fsync

    def fsync(fd):
        writes["n"] += 1
        if writes["n"] == 2:
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    argv = ["generate", str(run), "--sampler", "normal,uniform", "--limits", "1,2"]
    err = assert_user_error(argv, work, capsys, f"cannot write {run / 'samples'}")
    assert words in err
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.undo"))


def _fail_writing(prefix: str, code: int = errno.ENOSPC):
    """An ``os.fsync`` that fails for temporaries of files whose name starts with prefix."""
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(f".{prefix}"):
            raise OSError(code, os.strerror(code))
        return real(fd)

    return fsync


def test_a_full_disk_at_the_first_checkpoint_leaves_no_run(work, capsys, monkeypatch):
    monkeypatch.setattr(fileio.os, "fsync", _fail_writing("epoch-0001.pt"))
    code = main(["train", "--run-dir", str(work / "run"), "--no-progress", *SETS])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "epoch-0001.pt: No space left on device" in err
    assert not (work / "run").exists()


# three epochs with dropout (it draws from the RNG the checkpoint must restore)
THREE = [*SETS, "--set", "train.epochs=3", "--set", "model.dropout=0.1"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted three-epoch run the interrupted ones must end up equal to."""
    run = tmp_path_factory.mktemp("corpus-straight") / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", *THREE]) == 0
    return run


def test_a_full_disk_mid_run_resumes_to_the_same_weights(straight, work, capsys, monkeypatch):
    run = work / "run"
    with monkeypatch.context() as m:
        m.setattr(fileio.os, "fsync", _fail_writing("epoch-0002.pt"))
        assert main(["train", "--run-dir", str(run), "--no-progress", *THREE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epoch-0002.pt: No space left on device" in err
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress"]) == 0
    assert _same_weights(run, straight)


def _same_weights(a: Path, b: Path) -> bool:
    wa = load_checkpoint(a / "checkpoints" / "last.pt")["model"]
    wb = load_checkpoint(b / "checkpoints" / "last.pt")["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------- real kills


def killed_at(target: str, argv: list[str], nth: int = 1, timeout: float = 120) -> None:
    """Run the CLI in a forked child that SIGKILLs itself at its ``nth`` rename onto a
    path ending with ``target``: the state a kill -9 between two writes leaves."""
    torch.set_num_threads(1)  # a forked child must not wait on the parent's thread pool
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            sys.stdout = sys.stderr = io.StringIO()
            real = os.replace
            seen = [0]

            def replace(src, dst, *a, **k):
                if str(dst).endswith(target):
                    seen[0] += 1
                    if seen[0] == nth:
                        os.kill(os.getpid(), signal.SIGKILL)
                return real(src, dst, *a, **k)

            os.replace = replace
            main(argv)
        finally:
            os._exit(3)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child running {argv} hung")
        time.sleep(0.02)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the child was not killed at {target} (exit status {status})"
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".undo")))


def test_encode_killed_at_its_write_keeps_the_old_latents_and_reruns(base_run, work, capsys):
    run, other = copy_run(base_run, work, "run"), copy_run(base_run, work, "other")
    latents = run / "latents" / "train.npz"
    old = latents.read_bytes()
    killed_at("latents/train.npz", ["encode", str(run), "--eps-scale", "0.5"])
    assert latents.read_bytes() == old  # the kill left the previous file whole
    assert _leftovers(run)  # and its temporaries
    assert main(["encode", str(run), "--eps-scale", "0.5"]) == 0
    assert main(["encode", str(other), "--eps-scale", "0.5"]) == 0
    a, b = np.load(latents), np.load(other / "latents" / "train.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert not np.array_equal(a["z"], np.load(io.BytesIO(old))["z"])
    assert _leftovers(run) == []  # the next write removed the dead writer's files


def test_analyze_killed_between_npz_and_json_is_never_drawn(base_run, work, capsys):
    run, other = copy_run(base_run, work, "run"), copy_run(base_run, work, "other")
    argv = ["analyze", str(run), "--only", "radius", "--param", "radius.bin_width=0.3"]
    killed_at("analysis/radius.json", argv)  # the new npz is in place, the json is old
    dead_lock = run / "analysis" / ".radius.json.lock"  # the killed writer's, removed by the next
    assert_user_error(
        ["report", str(run)], work, capsys, "radius.npz does not belong to", cleared=(dead_lock,)
    )
    assert main(argv) == 0
    assert main(["analyze", str(other), *argv[2:]]) == 0
    (mine, arrays), (theirs, expected) = (load_result(r, "radius") for r in (run, other))
    assert mine["result"] == theirs["result"] and mine["params"]["bin_width"] == 0.3
    assert arrays.keys() == expected.keys()
    assert all(np.array_equal(arrays[k], expected[k]) for k in arrays)
    assert _leftovers(run) == []


def test_generate_killed_before_its_index_never_shows_a_stale_caption(base_run, work, capsys):
    """The model changed (another checkpoint as best.pt), the same grid is made again
    under the same name and the kill comes before index.json: the report must not show
    the new picture under the old entry."""
    from zspace.reporting.report import samples_section

    run = copy_run(base_run, work)
    index = json.loads((run / "samples" / "index.json").read_text())
    grid = run / "samples" / next(e["file"] for e in index if e["sampler"] == "normal")
    old = grid.read_bytes()
    shutil.copyfile(run / "checkpoints" / "epoch-0001.pt", run / "checkpoints" / "best.pt")
    killed_at("samples/index.json", ["generate", str(run), "-n", "8"])
    assert grid.read_bytes() != old  # the new grid is in place, the index is the old one
    page = samples_section(run)
    assert f"{grid.name} changed after it was listed" in page and "data:image/png" not in page
    assert main(["generate", str(run), "-n", "8"]) == 0
    page = samples_section(run)
    assert "changed after" not in page and page.count("data:image/png") == 1
    assert _leftovers(run) == []


def test_training_killed_before_last_pt_resumes_to_the_same_weights(straight, work, capsys):
    run = work / "run"
    killed_at("checkpoints/last.pt", ["train", "--run-dir", str(run), "--no-progress", *THREE], 2)
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt")) == [
        "best.pt", "epoch-0001.pt", "epoch-0002.pt", "last.pt"
    ]  # fmt: skip
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress"]) == 0
    assert _same_weights(run, straight)
    assert _leftovers(run) == []


def test_training_killed_at_its_first_checkpoint_is_explained(work, capsys):
    run = work / "run"
    killed_at("epoch-0001.pt", ["train", "--run-dir", str(run), "--no-progress", *SETS])
    assert not (run / "checkpoints" / "last.pt").exists()
    dead = int((run / LOCK_FILE).read_text())  # the killed writer's lock file, not its lock
    assert not fileio._alive(dead)
    capsys.readouterr()
    argv = ["train", "--run-dir", str(run), "--resume"]
    assert_user_error(argv, work, capsys, "has no finished epoch", cleared=(run / LOCK_FILE,))
    assert_user_error(
        ["train", "--run-dir", str(run), "--no-progress", *SETS],
        work,
        capsys,
        "stopped before its first checkpoint; delete it",
    )


# ---------------------------------------------------------------- the folder loop


def test_a_folder_with_a_symlink_loop_is_listed_once(work, capsys):
    root = work / "imgs"
    for i in range(6):
        _png(root / "a" / f"{i}.png", value=20 * i)
    os.symlink(root, root / "a" / "back")
    assert main(["data", "info", f"folder:{root}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 6


# ---------------------------------------------------------------- one writer per run folder


def hold(run: Path, signals: Path, *sets: str, resume: bool = False) -> subprocess.Popen:
    """Start ``lock_holder.py`` training (or resuming) ``run`` in another process and
    return once it holds the folder; it trains on when ``signals / "go"`` exists."""
    ready = signals / "ready"
    argv = [sys.executable, str(ROOT / "tests" / "lock_holder.py"), str(run), str(ready)]
    argv += [str(signals / "go"), *(["--resume"] if resume else []), *sets]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the holder did not start: {proc.communicate()[1]}")
        time.sleep(0.02)
    return proc


def test_a_second_trainer_is_refused_while_another_process_trains(work, capsys, tmp_path_factory):
    """The other process first: it trains seed 1; this one (seed 2) is refused naming
    it and writes nothing; the folder ends up holding seed 1's run whole."""
    run, signals = work / "run", tmp_path_factory.mktemp("signals")
    proc = hold(run, signals, *TINY, "seed=1")
    argv = ["train", "--out", str(run), "--no-progress", *SETS, "--set", "seed=2"]
    assert_user_error(argv, work, capsys, f"run folder {run} is in use: process {proc.pid} is")
    (signals / "go").touch()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    proc.stderr.close()
    assert read_config(run).seed == 1 and len(read_history(run)) == 2
    assert "seed = 1" in load_checkpoint(run / "checkpoints" / "last.pt")["config"]
    assert not (run / LOCK_FILE).exists()


def test_a_training_process_refuses_a_second_trainer(work):
    """This process first: while it trains, a `zspace train` of the same folder in
    another process exits 2 with one line naming this process; nothing of it lands."""
    run, seen = work / "run", {}

    class SecondTrainer(Callback):
        def on_train_start(self, trainer) -> None:
            argv = [sys.executable, "-m", "zspace", "train", "--out", str(run), "--no-progress"]
            argv += [*SETS, "--set", "seed=2"]
            seen["done"] = subprocess.run(argv, capture_output=True, text=True, timeout=300)

    train_run(None, run_dir=run, overrides=[*TINY, "seed=1"], callbacks=[SecondTrainer()])
    done = seen["done"]
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        f"zspace: error: run folder {run} is in use: process {os.getpid()}"
    )
    assert read_config(run).seed == 1 and len(read_history(run)) == 2
    assert not (run / LOCK_FILE).exists()


def test_a_killed_trainers_lock_is_recovered(base_run, work, capsys, tmp_path_factory):
    """A resume holds the folder: a second resume is refused; kill -9 the first, and
    the next resume takes the folder over and finishes the run."""
    run, signals = copy_run(base_run, work), tmp_path_factory.mktemp("signals")
    proc = hold(run, signals, "train.epochs=3", resume=True)
    assert (run / LOCK_FILE).read_text().strip() == str(proc.pid)
    argv = ["train", "--out", str(run), "--resume", "--set", "train.epochs=3", "--no-progress"]
    assert_user_error(argv, work, capsys, f"process {proc.pid} is training it")
    proc.kill()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert (run / LOCK_FILE).is_file()  # the dead holder's file stays; its lock does not
    assert main(argv) == 0
    assert len(read_history(run)) == 3 and not (run / LOCK_FILE).exists()


def test_a_dead_writers_lock_alone_is_an_empty_folder(work):
    run = work / "new"
    run.mkdir()
    (run / LOCK_FILE).write_text("999999999\n")  # left by a writer killed in epoch 1
    assert main(_train(work)) == 0
    assert not (run / LOCK_FILE).exists() and len(read_history(run)) == 2


def test_two_evaluates_at_once_keep_both_rows(base_run, work, digits_evaluator, monkeypatch):
    """Two evaluate calls on one run, their read-modify-write of eval.json slowed so
    they overlap: both rows stay (the lock beside eval.json puts one after the other)."""
    import threading

    from zspace.evaluation import api

    run = copy_run(base_run, work)
    real, update, both = api._merged, api.update_json, threading.Barrier(2, timeout=120)
    monkeypatch.setattr(api, "_merged", lambda old, out: (time.sleep(0.3), real(old, out))[1])
    monkeypatch.setattr(api, "update_json", lambda *a: (both.wait(), update(*a))[1])
    args = {"n": 40, "k": 3, "rounds": 2, "log": None, "progress": False}
    calls = [threading.Thread(target=zspace.evaluate, args=(run, s), kwargs=args)
             for s in ("normal", "gauss")]  # fmt: skip
    for t in calls:
        t.start()
    for t in calls:
        t.join()
    rows = json.loads((run / "samples" / "eval.json").read_text())["results"]
    assert sorted(r["sampler"] for r in rows) == ["gauss", "normal", "real"]


# ---------------------------------------------------------------- the Python API misused


_PAIR = (torch.nn.Flatten(), torch.nn.Identity())  # an (encoder, decoder) pair to wrap

# (public name, call on the base run and a scratch folder, words of the error)
MISUSE = [
    ("Config", lambda run, out: zspace.Config(model=42), "model = 42: expected a ModelConfig"),
    ("Config", lambda run, out: zspace.Config(seed="1"), "seed = '1': expected an integer"),
    ("load_config", lambda run, out: zspace.load_config(42), "path = 42: expected a TOML file"),
    ("load_config", lambda run, out: zspace.load_config(None, "seed=1"), "overrides = 'seed=1'"),
    ("Run", lambda run, out: zspace.Run.load(42), "path = 42: expected a run folder or bundle"),
    ("load_run", lambda run, out: zspace.load_run(run, checkpoint=1.5), "checkpoint = 1.5"),
    ("load_run", lambda run, out: zspace.load_run(run, device=0), "device = 0"),
    ("train", lambda run, out: zspace.train(42), "config = 42: expected a Config, a TOML"),
    ("train", lambda run, out: zspace.train(None, run_dir=42), "run_dir = 42: expected a folder"),
    ("train", lambda run, out: zspace.train(None, resume=2.5), "resume = 2.5: expected False"),
    ("train", lambda run, out: zspace.train(None, log=5), "log = 5: expected a function"),
    (
        "train",
        lambda run, out: zspace.train(None, data=np.zeros((0, 1, 16, 16), np.float32)),
        "data: 0 image(s); training needs at least 2",
    ),
    (
        "train",
        lambda run, out: zspace.train(None, callbacks=5),
        "callbacks = 5",
    ),
    ("encode", lambda run, out: zspace.encode(42), "run = 42: expected a Run or a run folder"),
    ("encode", lambda run, out: zspace.encode(run, split=0), "split = 0: expected a split name"),
    ("encode", lambda run, out: zspace.encode(run, batch_size="8"), "batch_size = '8'"),
    ("analyze", lambda run, out: zspace.analyze(run, split=1), "split = 1: expected a split"),
    ("analyze", lambda run, out: zspace.analyze(run, only=[1]), "only = [1]: expected analysis"),
    ("analyze", lambda run, out: zspace.analyze(run, radius={"bin_width": "x"}), "bin_width = 'x'"),
    ("generate", lambda run, out: zspace.generate(42), "run = 42: expected a Run or a run folder"),
    (
        "generate",
        lambda run, out: zspace.generate(run, n="8"),
        "n = '8'",
    ),
    ("evaluate", lambda run, out: zspace.evaluate(42), "run = 42: expected a Run or a run folder"),
    (
        "evaluate",
        lambda run, out: zspace.evaluate(run, n="8"),
        "n = '8'",
    ),
    ("report", lambda run, out: zspace.report(42), "run = 42: expected a Run or a run folder"),
    (
        "report",
        lambda run, out: zspace.report(run, log=5),
        "log = 5",
    ),
    (
        "compare",
        lambda run, out: zspace.compare([run, run], 42),
        "out = 42",
    ),
    ("pipeline", lambda run, out: zspace.pipeline(42), "config = 42: expected a Config"),
    (
        "pipeline",
        lambda run, out: zspace.pipeline(None, "seed=1", run_dir=out),
        "overrides = 'seed=1'",
    ),
    (
        "demo",
        lambda run, out: zspace.demo(out=42),
        "out = 42",
    ),
    ("export", lambda run, out: zspace.export(run, out=42), "out = 42: expected a folder"),
    ("export", lambda run, out: zspace.export(run, n="10"), "n = '10': expected an integer"),
    ("explore", lambda run, out: zspace.explore(42), "run = 42: expected a Run or a run folder"),
    (
        "explore",
        lambda run, out: zspace.explore(run, port="80"),
        "port = '80'",
    ),
    (
        "run_recipe",
        lambda run, out: zspace.run_recipe(42),
        "name = 42",
    ),
    (
        "load_recipe",
        lambda run, out: zspace.load_recipe(42),
        "name = 42",
    ),
    (
        "sweep",
        lambda run, out: zspace.sweep(None, [("model.fact", 5)], out),
        "vary item ('model.fact', 5): expected",
    ),
    ("sweep", lambda run, out: zspace.sweep(None, ["model.fact=1,2"], out, overrides="x"), "overr"),
    ("wrap", lambda run, out: zspace.wrap(42, data="builtin:digits", run_dir=out), "type int"),
    ("wrap", lambda run, out: zspace.wrap(_PAIR, data="x", run_dir=42), "run_dir = 42: expected"),
    ("wrap", lambda run, out: zspace.wrap(_PAIR, data="x", run_dir=out, factory=5), "factory = 5"),
    ("wrap", lambda run, out: zspace.wrap(_PAIR, data="x", run_dir=out), "needs factory="),
    (
        "wrap",
        lambda run, out: zspace.wrap(_PAIR, data="x", run_dir=out, overrides=["model.z_dim=3"]),
        "overrides ['model.z_dim=3'] set more than data.* and seed",
    ),
]


def test_the_misuse_list_covers_every_public_function():
    named = {(c.values if hasattr(c, "values") else c)[0] for c in MISUSE}
    assert named == set(zspace.PUBLIC) - {"ZspaceError"}  # the exception takes any message


@pytest.mark.parametrize("name, call, words", MISUSE)
def test_public_functions_refuse_wrong_arguments_naming_them(name, call, words, base_run, work):
    """A ZspaceError, or a TypeError naming the argument, raised by zspace's own code
    before any work: nothing is written."""
    run = copy_run(base_run, work)
    before = snapshot(work)
    with pytest.raises((ZspaceError, TypeError)) as info:
        call(run, work / "out")
    assert words in str(info.value)
    assert info.traceback[-1].path.is_relative_to(ROOT / "zspace"), "raised outside zspace"
    assert snapshot(work) == before
