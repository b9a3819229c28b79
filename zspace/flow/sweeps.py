"""``zspace sweep``: one run per value of a config key (or per combination of several),
each through every stage, and the sweep page DIR/sweep.html.

Runs live in ``DIR/<key>=<value>/`` (``DIR/<k1>=<v1>,<k2>=<v2>/`` for a grid), in
the order ``--list`` prints (the first key outermost). A finished run is skipped, an
interrupted one resumes (``flow.stages``). ``jobs`` runs that many at once, each
in its own process with its share of the cores; ``only`` runs one run by index, so
a cluster job array spreads a sweep over machines and a last call without ``only``
(or with ``page_only``) builds the page.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from zspace.config import Config, apply_overrides, config_from_dict, to_dict, to_toml
from zspace.config.parse import distinct_values, split_list, toml_value
from zspace.core.checks import check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json
from zspace.core.progress import progress as switch
from zspace.flow.stages import Plan, is_complete, run_stages, training_state, with_options
from zspace.flow.training import Log, say
from zspace.flow.worker import work
from zspace.reporting.references import Reference
from zspace.reporting.sweep_page import SWEEP_FILE, build_sweep_page
from zspace.training.trainer import resolve_config

SWEEP_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-=,\[\]]")


@dataclass(frozen=True)
class SweepRun:
    index: int
    name: str  # the folder, e.g. "model.fact=1e-5"
    settings: dict[str, str]  # key -> value as written

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.settings.items()]


def parse_vary(items: Sequence[str | tuple[str, Sequence[Any]]]) -> list[tuple[str, list[str]]]:
    """``--vary KEY=V1,V2,...`` strings (or (key, values) pairs) to [(key, [texts])];
    values are compared as the run gets them (``1`` and ``1.0`` are one value)."""
    check_type("vary", items, (list, tuple), "a list of 'KEY=V1,V2' or (key, values)")
    out: list[tuple[str, list[str]]] = []
    for item in items:
        if isinstance(item, str):
            key, sep, text = item.partition("=")
            if not sep:
                raise ZspaceError(f"--vary {item!r}: expected KEY=V1,V2,... e.g. model.fact=1e-5,1")
            values = split_list(text)
        elif (
            isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], list | tuple)
        ):
            key, values = (
                str(item[0]),
                [v if isinstance(v, str) else toml_value(v) for v in item[1]],
            )
        else:
            raise TypeError(f"vary item {item!r:.60}: expected 'KEY=V1,V2' or (key, [values])")
        key = key.strip()
        if len(values) < 2:
            raise ZspaceError(f"--vary {key}: give two or more values, separated by commas")
        distinct_values(key, values)  # a known key; no two values the same run
        if key in {k for k, _ in out}:
            raise ZspaceError(f"--vary {key} is given twice")
        out.append((key, values))
    if not out:
        raise ZspaceError("sweep: give at least one --vary KEY=V1,V2,...")
    return out


def plan_runs(vary: list[tuple[str, list[str]]]) -> list[SweepRun]:
    """Every combination, the first key outermost; folder names must be distinct."""
    keys = [k for k, _ in vary]
    runs = []
    for i, combo in enumerate(itertools.product(*(v for _, v in vary))):
        settings = dict(zip(keys, combo, strict=True))
        name = ",".join(f"{k}={_UNSAFE.sub('_', v)}" for k, v in settings.items())
        runs.append(SweepRun(i, name, settings))
    if len({r.name for r in runs}) < len(runs):
        raise ZspaceError("sweep: two values give the same folder name; write them apart")
    return runs


def run_config(base: Config, run: SweepRun) -> Config:
    try:
        return config_from_dict(apply_overrides(to_dict(base), run.overrides))
    except ZspaceError as exc:
        raise ZspaceError(f"sweep run {run.name}: {exc}") from None


def status(run_dir: Path, cfg: Config, plan: Plan) -> str:
    """ "complete", "trained k/n epochs", "not started" or the error in words."""
    try:
        state, done = training_state(run_dir, cfg)
    except ZspaceError as exc:
        return f"blocked: {exc}"
    if state == "new":
        return "not started"
    if is_complete(run_dir, cfg, plan):
        return "complete"
    return f"trained {done}/{cfg.train.epochs} epochs" + (", stages left" if done else "")


def sweep(
    config: Config | str | Path | None,
    vary: Sequence[str | tuple[str, Sequence[Any]]],
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    plan: Plan | None = None,
    jobs: int = 1,
    only: int | None = None,
    list_only: bool = False,
    page_only: bool = False,
    trends: Sequence[Mapping[str, Any]] = (),
    references: Sequence[Reference] = (),
    log: Log = print,
    progress: bool | None = None,
    **options: Any,
) -> Path:
    """Train and analyse one run per value (or combination) into ``out/<key>=<value>/``
    and write ``out/sweep.html``; returns the page (``out/sweep.json`` with
    ``list_only``, the run's report with ``only``). ``config``: a Config, a TOML
    path or None (defaults), with ``overrides`` on top; ``vary``: ``"KEY=V1,V2"``
    strings or (key, values) pairs; ``options``: every run's generation and evaluation
    options, those of ``pipeline`` (``sampler``, ``n``, ``k``, ...; over ``plan``'s)."""
    out, plan, log = Path(out), with_options(plan or Plan(), **options), say(log)
    if jobs < 1:
        raise ZspaceError(f"--jobs {jobs}: must be >= 1")
    base = resolve_config(config, overrides)
    pairs = parse_vary(vary)
    runs = plan_runs(pairs)
    cfgs = [run_config(base, r) for r in runs]  # every value checked before any training
    plans = [with_values(plan, r.settings, references) for r in runs]
    if only is not None and not 0 <= only < len(runs):
        raise ZspaceError(f"--only {only}: this sweep has runs 0..{len(runs) - 1} (see --list)")
    if out.exists() and not out.is_dir():
        raise ZspaceError(f"--out {out} is a file, not a folder")
    if list_only:
        for r, c, p in zip(runs, cfgs, plans, strict=True):
            log(f"{r.index:3d}  {r.name:40s}  {status(out / r.name, c, p)}")
        return out / SWEEP_FILE
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out / SWEEP_FILE,
        {
            "format": SWEEP_FORMAT,
            "keys": [k for k, _ in pairs],
            "values": {k: v for k, v in pairs},
            "runs": [{"index": r.index, "name": r.name, "settings": r.settings} for r in runs],
            "base": to_toml(base),
            "plan": asdict(plan),
            "trends": [dict(t) for t in trends],
            "references": [r.to_json() for r in references],
        },
    )
    if not page_only:
        chosen = [runs[only]] if only is not None else runs
        todo = [r for r in chosen if not is_complete(out / r.name, cfgs[r.index], plans[r.index])]
        for r in chosen:
            if r not in todo:
                log(f"[{r.name}] complete, skipped")
        with switch(progress):
            failed = _run_all(out, todo, cfgs, plans, jobs, log)
        if failed:
            if only is None:
                build_sweep_page(out, log)
            raise ZspaceError(
                f"{len(failed)} of {len(todo)} sweep runs failed: "
                + "; ".join(f"{n}: {e}" for n, e in failed)
            )
        if only is not None:
            report = out / runs[only].name / "report.html"
            log(f"run {only} done ({report}); build the page from the finished runs with --page")
            return report
    return build_sweep_page(out, log)


def _run_all(out, todo, cfgs, plans, jobs, log) -> list[tuple[str, str]]:
    failed: list[tuple[str, str]] = []
    if jobs == 1 or len(todo) <= 1:
        for r in todo:
            log(f"== sweep run {r.index}: {r.name} ==")
            try:
                run_stages(cfgs[r.index], out / r.name, plans[r.index], log=log)
            except ZspaceError as exc:
                log(f"[{r.name}] failed: {exc}")
                failed.append((r.name, str(exc)))
        return failed
    threads = max(1, (os.cpu_count() or 1) // jobs)
    log(f"sweep: {len(todo)} runs, {jobs} at a time, {threads} thread(s) each")
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {
            pool.submit(
                work, to_dict(cfgs[r.index]), str(out / r.name), plans[r.index], threads, r.name
            ): r
            for r in todo
        }
        for fut in as_completed(futures):
            r = futures[fut]
            error = fut.result()  # a bug in a worker re-raises here
            if error:
                log(f"[{r.name}] failed: {error}")
                failed.append((r.name, error))
            else:
                log(f"[{r.name}] done")
    return failed


def with_values(plan: Plan, settings: Mapping[str, Any], references: Sequence[Reference]) -> Plan:
    """A sweep run's plan: the recipe record keeps the references that apply to it."""
    if plan.record is None:
        return plan
    refs = [r.to_json() for r in references if r.applies(settings)]
    return replace(plan, record={**plan.record, "references": refs, "sweep_values": settings})
