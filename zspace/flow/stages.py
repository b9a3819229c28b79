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

import inspect
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from zspace.analysis.api import analyze
from zspace.analysis.runner import ANALYSES, check_names, make_params, parse_sets, split_name
from zspace.config import Config, to_toml
from zspace.config.parse import config_diff
from zspace.config.validate import did_you_mean
from zspace.core.checks import check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json, digest, read_json
from zspace.evaluation.api import check_options, evaluate
from zspace.flow.training import Log, say, train
from zspace.generation.api import generate, meaningful_rates, reconstructions
from zspace.generation.common import check_args
from zspace.generation.samplers import Fitted, parse_samplers
from zspace.latents.encode import encode
from zspace.latents.store import latents_path
from zspace.reporting.api import report
from zspace.runs.checkpoint import load_checkpoint
from zspace.runs.folder import read_config, read_history, write_history
from zspace.runs.run import Run, load_run
from zspace.training import RESUMABLE_CHANGES

FLOW_FILE = "flow.json"
FLOW_FORMAT = 1
REPORT_SAMPLERS = ("normal", "gauss", "gmm")
# what every report gets after training (``Plan``'s defaults, ``pipeline.default_samples``)
GRIDS: dict[str, Any] = {"sampler": list(REPORT_SAMPLERS)}
RECON: dict[str, Any] = {"n": 16}
RATES: dict[str, Any] = {"sampler": list(REPORT_SAMPLERS), "n": 1000}  # and the evaluation's
# the generation and evaluation options a plan takes (``with_options``): the stages each reaches
OPTIONS: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("sampler", "components", "limits", "seed"), ("grids", "rates", "evaluate")
)
OPTIONS |= {"n": ("rates", "evaluate")}  # a grid keeps its size
OPTIONS |= dict.fromkeys(("k", "rounds", "oracle", "task"), ("evaluate",))
# what a run folder may hold when training was killed before its first checkpoint
NOT_SETTINGS = ("run", "log", "progress")  # a stage's arguments that are not its settings
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
    grids: tuple[dict[str, Any], ...] = (GRIDS,)
    recon: dict[str, Any] | None = field(default_factory=lambda: dict(RECON))
    rates: dict[str, Any] | None = field(default_factory=lambda: dict(RATES))
    evaluate: dict[str, Any] | None = field(default_factory=lambda: dict(RATES))
    record: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Every setting checked here, before the first run trains (a sweep's last too)."""
        for name in check_names([*self.analysis, *(self.only or ())]):
            if not isinstance(self.analysis.get(name, {}), Mapping):
                raise ZspaceError(f"analysis {name}: expected a table of parameters")
            make_params(name, self.analysis.get(name))
        check_type("grids", self.grids, (list, tuple), "a list of generate settings")
        calls: list[tuple[str, Callable[..., Any], Callable[..., None], Any]]
        calls = [(f"generate.grids #{i + 1}", generate, check_args, g)
                 for i, g in enumerate(self.grids)]  # fmt: skip
        calls += [("generate.recon", reconstructions, check_args, self.recon),
                  ("generate.rates", meaningful_rates, check_args, self.rates),
                  ("evaluate", evaluate, check_options, self.evaluate)]  # fmt: skip
        for where, fn, check, settings in calls:
            if settings is None:
                continue
            if not isinstance(settings, Mapping):
                raise ZspaceError(f"{where}: expected a table of settings, got {settings!r:.40}")
            known = [p for p in inspect.signature(fn).parameters if p not in NOT_SETTINGS]
            for k in settings:
                if k not in known:
                    hint = f"{did_you_mean(str(k), known)}; known: {', '.join(known)}"
                    raise ZspaceError(f"{where}: unknown setting {k!r}{hint}")
            try:
                check(**settings)
            except (ZspaceError, TypeError) as exc:
                raise ZspaceError(f"{where}: {exc}") from None


def plan_from(
    params: Sequence[str] | Mapping[str, Mapping[str, Any]] = (),
    only: Sequence[str] | None = None,
) -> Plan:
    """The default plan with analysis parameters (``{name: {key: value}}`` or the CLI's
    ``NAME.KEY=VALUE``) and an optional subset of analyses (names or variants)."""
    sets = params if isinstance(params, Mapping) else parse_sets(params)
    analysis = {name: dict(p) if isinstance(p, Mapping) else p for name, p in sets.items()}
    return Plan(analysis=analysis, only=None if only is None else tuple(only))


def with_options(plan: Plan, **options: Any) -> Plan:
    """``plan`` with generation and evaluation options (``OPTIONS``: sampler,
    components, limits, seed, n = images per sampler of the rates and the evaluation,
    k, rounds, oracle, task) on every stage that takes them; None keeps the plan's.
    Every value is checked by the new Plan, before any training."""
    given = {k: v for k, v in options.items() if v is not None}
    if unknown := [k for k in given if k not in OPTIONS]:
        raise ZspaceError(f"unknown option {unknown[0]!r}; choose from {', '.join(OPTIONS)}")
    if "sampler" in given:  # as a list, so the default plan's keys stay the same
        given["sampler"] = parse_samplers(given["sampler"])
    if "components" in given:
        given["components"] = Fitted("gmm", given["components"]).settings["components"]

    def update(stage: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        mine = {k: v for k, v in given.items() if name in OPTIONS[k]}
        return None if stage is None else {**stage, **mine}

    grids = tuple(update(g, "grids") or {} for g in plan.grids)
    return replace(plan, grids=grids, rates=update(plan.rates, "rates"),
                   evaluate=update(plan.evaluate, "evaluate"))  # fmt: skip


def key(*parts: Any) -> str:
    """A stage's key in flow.json (16 hex digits of the parts' digest)."""
    return digest(list(parts))[:16]


def read_flow(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / FLOW_FILE
    try:
        flow = read_json(path) if path.is_file() else {}
    except ZspaceError:
        flow = {}
    ok = isinstance(flow, dict) and flow.get("format") == FLOW_FORMAT
    return flow if ok else {"format": FLOW_FORMAT, "stages": {}}


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
        changed = [k for k in config_diff(read_config(run_dir), cfg) if k not in RESUMABLE_CHANGES]
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
    return state == "done" and read_flow(run_dir).get("complete") == _plan_key(run_dir, cfg, plan)


def _train_key(run_dir: Path, cfg: Config) -> str:
    rows = read_history(run_dir)
    last = rows[-1] if rows else {}
    return key(to_toml(cfg), last.get("epoch"), last.get("total"))


def _plan_key(run_dir: Path, cfg: Config, plan: Plan) -> str:
    # the build's stages are part of the key: a run finished without the evaluation
    # stage is not complete once a build has it
    # True: the evaluation stage is planned (kept in the key, so older flow.json files match)
    return key(_train_key(run_dir, cfg), asdict(plan), True)


def run_stages(
    cfg: Config, run_dir: str | Path, plan: Plan | None = None, *, log: Log = None
) -> Path:
    """Bring ``run_dir`` to the end of ``plan`` (training included); returns report.html."""
    plan, run_dir = plan or Plan(), Path(run_dir)
    state, done = training_state(run_dir, cfg)
    run: Run | None = None
    if state == "new":
        if run_dir.exists():
            _clear_leftovers(run_dir)
        run = train(cfg, run_dir=run_dir, log=log)
    elif state == "partial":
        say(log)(f"{run_dir}: resuming after epoch {done} of {cfg.train.epochs}")
        run = train(cfg, run_dir=run_dir, resume=True, log=log)
    flow = read_flow(run_dir)
    page = run_dir / "report.html"
    if flow.get("complete") == _plan_key(run_dir, cfg, plan) and page.is_file():
        say(log)(f"{run_dir}: complete, nothing to do; report: {page}")
        return page
    stages: dict[str, str] = flow.setdefault("stages", {})
    tkey = _train_key(run_dir, cfg)

    for name, settings, needs, work in _steps(plan, cfg.model.variational, run_dir, log):
        k = key(tkey, name, settings)
        if stages.get(name) == k and (needs is None or needs.exists()):
            continue
        run = run or load_run(run_dir)
        work(run)
        stages[name], flow["complete"] = k, None
        atomic_write_json(run_dir / FLOW_FILE, flow)
    if plan.record is not None:
        atomic_write_json(run_dir / "recipe.json", plan.record)
    page = report(run_dir, log=log)
    flow["complete"] = _plan_key(run_dir, cfg, plan)
    atomic_write_json(run_dir / FLOW_FILE, flow)
    return page


Step = tuple[str, Any, Path | None, Callable[[Run], Any]]


def _steps(plan: Plan, variational: bool, run_dir: Path, log: Log) -> Iterator[Step]:
    """Each stage after training: its name, settings (its key), the file it leaves
    (redone when gone; None: the key alone) and its work on the loaded run."""
    yield "encode", None, latents_path(run_dir), partial(encode, log=log)
    for n, p in _analyses(plan, variational):
        out, params = run_dir / "analysis" / f"{n}.json", {n: p}
        yield f"analyze:{n}", p, out, partial(analyze, only=[n], log=log, **params)
    for i, grid in enumerate(plan.grids):
        yield f"grids:{i}", grid, None, partial(generate, log=log, **grid)
    recon, rates, evaluation = plan.recon, plan.rates, plan.evaluate
    if recon is not None:
        yield "recon", recon, None, partial(reconstructions, log=log, **recon)
    if rates is not None:
        rates_file = run_dir / "samples" / "rates.json"

        def fresh_rates(run: Run) -> Any:  # rows of an earlier plan would sit beside these
            rates_file.unlink(missing_ok=True)
            return meaningful_rates(run, log=log, **rates)

        yield "rates", rates, rates_file, fresh_rates
    if evaluation is not None:
        yield "evaluate", evaluation, None, partial(evaluate, log=log, **evaluation)


def _analyses(plan: Plan, variational: bool) -> list[tuple[str, Any]]:
    """(name, params) in the order to run them: ``plan.only`` or every analysis, then
    the variants of ``plan.analysis``; those needing a VAE only on a VAE."""
    if plan.only is not None:
        names = check_names(plan.only)
    else:
        names = [*ANALYSES, *(n for n in plan.analysis if split_name(n)[1] is not None)]
    return [
        (n, dict(plan.analysis.get(n, {})))
        for n in names
        if variational or not ANALYSES[split_name(n)[0]].needs_vae
    ]
