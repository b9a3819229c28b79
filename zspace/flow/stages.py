"""One run through every stage, resumable: train -> encode -> analyze -> generate ->
rates -> evaluate -> report, each skipped when its output is already there.

``RUN/flow.json`` records, per finished stage, a key made of the stage's settings
and the key of the training it depends on (the last history row). A call with the
same settings skips what is recorded, resumes an interrupted training from its last
checkpoint, and redoes a later stage only when its settings or the training
changed. Every file is written atomically, so a run killed at any point is
finished by calling again. Recipes and sweeps run their runs through this.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zspace.analysis.api import analyze
from zspace.analysis.runner import (
    ANALYSES,
    check_names,
    make_params,
    parse_sets,
    split_name,
)
from zspace.config import Config, to_dict, to_toml
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json
from zspace.evaluation.api import evaluate
from zspace.flow.training import train
from zspace.generation.api import generate, meaningful_rates, reconstructions
from zspace.latents.encode import encode
from zspace.latents.store import latents_path
from zspace.reporting.api import report
from zspace.runs.checkpoint import load_checkpoint
from zspace.runs.folder import read_config, read_history, write_history
from zspace.training import RESUMABLE_CHANGES

FLOW_FILE = "flow.json"
FLOW_FORMAT = 1
REPORT_SAMPLERS = ("normal", "gauss", "gmm")
# what a run folder may hold when training was killed before its first checkpoint
FIRST_EPOCH_LEFTOVERS = {"config.toml", "meta.json", "history.jsonl", "checkpoints", "tb", "data"}


@dataclass(frozen=True)
class Plan:
    """What runs after training: plain data, so a sweep's worker processes get it as is.

    ``analysis``: parameters per analysis or variant (``tsne@p10-e16``); ``only``:
    the analyses to run (None: all that apply, plus the variants named). ``grids``:
    keyword arguments of one ``generate`` call each. ``recon``, ``rates``,
    ``evaluate``: keyword arguments of ``reconstructions``, ``meaningful_rates`` and
    ``evaluate``, or None to skip. ``record``: written as RUN/recipe.json (the
    reference table of a recipe run) before the report."""

    analysis: dict[str, dict[str, Any]] = field(default_factory=dict)
    only: tuple[str, ...] | None = None
    grids: tuple[dict[str, Any], ...] = ({"sampler": list(REPORT_SAMPLERS)},)
    recon: dict[str, Any] | None = field(default_factory=lambda: {"n": 16})
    rates: dict[str, Any] | None = field(
        default_factory=lambda: {"sampler": list(REPORT_SAMPLERS), "n": 1000}
    )
    evaluate: dict[str, Any] | None = field(
        default_factory=lambda: {"sampler": list(REPORT_SAMPLERS), "n": 1000}
    )
    record: dict[str, Any] | None = None


def plan_from(params: Sequence[str] = (), only: Sequence[str] | None = None) -> Plan:
    """The default plan with CLI analysis parameters (``NAME.KEY=VALUE``) and an
    optional subset of analyses (names or variants)."""
    analysis = {k: dict(v) for k, v in parse_sets(params).items()}
    for name, given in analysis.items():
        make_params(name, given)  # a bad value fails before any training
    return Plan(analysis=analysis, only=None if only is None else tuple(check_names(only)))


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_flow(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / FLOW_FILE
    try:
        flow = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        flow = {}
    return flow if flow.get("format") == FLOW_FORMAT else {"format": FLOW_FORMAT, "stages": {}}


def _config_diff(a: Config, b: Config) -> list[str]:
    da, db = to_dict(a), to_dict(b)
    out = []
    for section, values in da.items():
        if isinstance(values, dict):
            out += [f"{section}.{k}" for k, v in values.items() if db[section][k] != v]
        elif db[section] != values:
            out.append(section)
    return out


def training_state(run_dir: Path, cfg: Config) -> tuple[str, int]:
    """("new" | "partial" | "done", epochs trained) of the run folder for this config;
    a folder holding another experiment is an error, never overwritten."""
    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new", 0
    if not last.is_file():
        extra = {p.name for p in run_dir.iterdir()} - FIRST_EPOCH_LEFTOVERS
        if extra or any((run_dir / "checkpoints").glob("*.pt")):
            raise ZspaceError(
                f"{run_dir} is not empty and holds no finished epoch of a zspace run; "
                "remove it or choose another folder"
            )
        return "new", 0  # killed before the first checkpoint: started again
    if (run_dir / "config.toml").is_file():
        changed = [k for k in _config_diff(read_config(run_dir), cfg) if k not in RESUMABLE_CHANGES]
        if changed:
            raise ZspaceError(
                f"{run_dir} holds a run with another configuration ({', '.join(changed)} "
                "differ); remove it or choose another folder"
            )
    done = len(read_history(run_dir))
    if done < cfg.train.epochs:
        # history.jsonl follows the checkpoint; a kill between them leaves it one short
        state = load_checkpoint(last)
        if int(state["epoch"]) > done and state.get("history"):
            write_history(run_dir, state["history"])
            done = int(state["epoch"])
    return ("done" if done >= cfg.train.epochs else "partial"), done


def _clear_leftovers(run_dir: Path) -> None:
    for name in FIRST_EPOCH_LEFTOVERS:
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def is_complete(run_dir: str | Path, cfg: Config, plan: Plan) -> bool:
    """True when every stage of ``plan`` is recorded as done for this config."""
    run_dir = Path(run_dir)
    try:
        state, _ = training_state(run_dir, cfg)
    except ZspaceError:
        return False
    if state != "done":
        return False
    flow = read_flow(run_dir)
    return flow.get("complete") == _plan_key(run_dir, cfg, plan)


def _train_key(run_dir: Path, cfg: Config) -> str:
    rows = read_history(run_dir)
    last = rows[-1] if rows else {}
    return digest(to_toml(cfg), last.get("epoch"), last.get("total"))


def _plan_key(run_dir: Path, cfg: Config, plan: Plan) -> str:
    # the build's stages are part of the key: a run finished without the evaluation
    # stage is not complete once a build has it
    # True: the evaluation stage is planned (kept in the key, so older flow.json files match)
    return digest(_train_key(run_dir, cfg), asdict(plan), True)


def run_stages(
    cfg: Config,
    run_dir: str | Path,
    plan: Plan | None = None,
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> Path:
    """Bring ``run_dir`` to the end of ``plan`` (training included); returns report.html."""
    plan = plan or Plan()
    run_dir = Path(run_dir)
    state, done = training_state(run_dir, cfg)
    if state == "new":
        if run_dir.exists():
            _clear_leftovers(run_dir)
        run = train(cfg, run_dir=run_dir, log=log, progress=progress)
    elif state == "partial":
        log(f"{run_dir}: resuming after epoch {done} of {cfg.train.epochs}")
        run = train(cfg, run_dir=run_dir, resume=True, log=log, progress=progress)
    else:
        run = None
    flow = read_flow(run_dir)
    if (
        flow.get("complete") == _plan_key(run_dir, cfg, plan)
        and (run_dir / "report.html").is_file()
    ):
        log(f"{run_dir}: complete, nothing to do")
        return run_dir / "report.html"
    stages: dict[str, str] = flow.setdefault("stages", {})
    tkey = _train_key(run_dir, cfg)

    def step(name: str, settings: Any, needs: Path | None, work: Callable[[], Any]) -> None:
        key = digest(tkey, name, settings)
        if stages.get(name) == key and (needs is None or needs.exists()):
            return
        work()
        stages[name] = key
        flow["complete"] = None
        atomic_write_json(run_dir / FLOW_FILE, flow)

    def loaded():
        nonlocal run
        if run is None:
            from zspace.runs.run import load_run

            run = load_run(run_dir)
        return run

    step("encode", None, latents_path(run_dir), lambda: encode(loaded(), "train", log=log))
    for name, params in _analyses(plan, loaded):
        out = run_dir / "analysis" / f"{name}.json"

        def analyze_one(n: str = name, p: Any = params) -> Any:
            return analyze(loaded(), split="train", only=[n], log=log, **{n: p})

        step(f"analyze:{name}", params, out, analyze_one)
    for i, grid in enumerate(plan.grids):

        def grids(g: dict[str, Any] = grid) -> Any:
            return generate(loaded(), log=log, **g)

        step(f"grids:{i}", grid, None, grids)
    recon, rates, evaluation = plan.recon, plan.rates, plan.evaluate
    if recon is not None:
        step("recon", recon, None, lambda: reconstructions(loaded(), log=log, **recon))
    if rates is not None:
        rates_file = run_dir / "samples" / "rates.json"
        step("rates", rates, rates_file, lambda: _rates(loaded(), rates, log))
    if evaluation is not None:
        step("evaluate", evaluation, None, lambda: _evaluate(loaded(), evaluation, log))
    if plan.record is not None:
        atomic_write_json(run_dir / "recipe.json", plan.record)
    page = report(run_dir, log)
    flow["complete"] = _plan_key(run_dir, cfg, plan)
    atomic_write_json(run_dir / FLOW_FILE, flow)
    return page


def _analyses(plan: Plan, loaded: Callable[[], Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) in the order to run them: ``plan.only`` or every analysis that
    applies to this run, then the variants of ``plan.analysis``."""
    names = list(plan.only) if plan.only is not None else list(ANALYSES)
    if plan.only is None:
        names += [n for n in plan.analysis if split_name(n)[1] is not None and n not in names]
    check_names(names)
    variational = loaded().variational
    return [
        (n, dict(plan.analysis.get(n, {})))
        for n in names
        if variational or not ANALYSES[split_name(n)[0]].needs_vae
    ]


def _rates(run: Any, settings: dict[str, Any], log: Callable[[str], None]) -> None:
    # a fresh rates.json: rows from an earlier plan would sit beside this one's
    path = run.path / "samples" / "rates.json"
    if path.is_file():
        path.unlink()
    meaningful_rates(run, log=log, **settings)


def _evaluate(run: Any, settings: dict[str, Any], log: Callable[[str], None]) -> None:
    evaluate(run, log=log, progress=False, **settings)
