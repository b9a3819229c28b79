"""Recipes: the reference's experiments as files shipped in the package (zspace/recipes/).

A recipe is a TOML file with its own sections:

- ``[recipe]``: name, title, one-line summary, the data kind it needs, the posts it
  reproduces, ``[recipe.timing]`` (measured CPU and estimated GPU throughput);
- ``[config]``: the training configuration, validated by ``config_from_dict`` as
  any config; ``data.source`` holds ``{data}`` where ``--data PATH`` goes;
- ``[analysis]``: parameters per analysis, variants as ``"tsne@p10-e16"``, and
  ``only = [...]`` to run a subset (default: every analysis plus the variants);
- ``[generate]``: ``[[generate.grids]]`` (one ``zspace generate`` call each),
  ``[generate.recon]``, ``[generate.rates]``; ``[evaluate]``;
- ``[setup]``: the reference's set-up (images, epochs, known differences), which the
  report compares with the run's; ``[[reference]]``: the published numbers with
  their tolerances (``zspace.reporting.references``);
- ``[sweep]`` (sweep recipes): ``vary`` = {key: values} and ``[[sweep.trend]]``.

``run_recipe`` runs one through ``flow.stages`` (resumable) or, for a sweep recipe,
through ``flow.sweeps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from zspace.analysis.runner import check_names, parse_sets, split_name
from zspace.config import Config, apply_overrides, config_from_dict, to_dict
from zspace.config.parse import loads_toml
from zspace.core.checks import PATH, check_hooks, check_type
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_text
from zspace.core.progress import progress as switch
from zspace.flow.stages import Plan, run_stages, with_options
from zspace.flow.sweeps import parse_vary, plan_runs, run_config, sweep
from zspace.flow.training import Log, say
from zspace.reporting.references import Reference, check_keys, check_quantity, parse_reference

DATA_KINDS = ("celeba", "mnist", "builtin")
# where to get each data set and how to point zspace at it (one line each)
WHERE = {
    "celeba": (
        "CelebA aligned and cropped (img_align_celeba.zip or the img_align_celeba/ folder, "
        "with list_attr_celeba.txt) is licence-gated: accept the agreement and download it "
        "from the official site, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, then "
        "pass --data PATH (the zip, the folder, or the folder holding them)"
    ),
    "mnist": (
        "MNIST (IDX files train-*/t10k-*): `zspace data download mnist` saves it to "
        "./data/mnist (official site: http://yann.lecun.com/exdb/mnist/); then pass "
        "--data data/mnist"
    ),
}
TOP = {"recipe", "config", "analysis", "generate", "evaluate", "setup", "reference", "sweep"}
GENERATE_KEYS = {"grids", "recon", "rates"}
HEAD = ("title", "summary", "data", "posts")  # [recipe]'s texts besides the name
# --quick: sizes for a smoke test of a recipe (the report says it ran quick)
QUICK_ANALYSIS = {
    "tsne": {"n": 500, "n_iter": 100},
    "kmeans": {"k_max": 10, "sample": 500, "n_init": 1},
    "pca": {"max_points": 1000},
}
QUICK_N = 128
QUICK_GMM = {"components": [1, 2, 4]}  # a short BIC search for the fitted GMM


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    summary: str
    data: str
    posts: str
    text: str = field(repr=False)
    config: dict[str, Any] = field(repr=False)
    analysis: dict[str, dict[str, Any]] = field(repr=False)
    generate: dict[str, Any] = field(repr=False)
    evaluate: dict[str, Any] | None = field(repr=False)
    setup: dict[str, Any] = field(repr=False)
    references: tuple[Reference, ...] = field(repr=False)
    timing: dict[str, Any] = field(repr=False)
    vary: dict[str, list[Any]] | None = field(default=None, repr=False)
    # directions the reference describes across a sweep (checked on the sweep page):
    # quantity, direction ("up"/"down" as the first varied key grows), min_rank_correlation
    trends: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    notes: str = field(default="", repr=False)
    only: tuple[str, ...] | None = field(default=None, repr=False)  # analyses; None: all

    @property
    def is_sweep(self) -> bool:
        return self.vary is not None

    def base_config(self, data: str | Path | None, overrides: Sequence[str] = ()) -> Config:
        """The training config with ``--data`` filled in and ``overrides`` applied."""
        raw = _fill(self.config, "" if data is None else str(data))
        return config_from_dict(apply_overrides(raw, list(overrides)))

    def expected_seconds(self) -> dict[str, float | None]:
        """Training time of the recipe as written (all its runs), on CPU and GPU,
        from the per-image throughputs in ``[recipe.timing]``."""
        t = self.timing
        images = float(t.get("images", 0)) * float(self.config["train"]["epochs"])
        runs = math.prod(len(values) for values in (self.vary or {}).values())
        rates = {dev: t.get(f"{dev}_images_per_s") for dev in ("cpu", "gpu")}
        return {dev: runs * images / float(rate) if rate else None for dev, rate in rates.items()}


def _fill(raw: Any, data: str) -> Any:
    if isinstance(raw, dict):
        return {k: _fill(v, data) for k, v in raw.items()}
    if isinstance(raw, str):
        return raw.replace("{data}", data)
    return raw


def recipe_dir() -> Path:
    return Path(str(resources.files("zspace") / "recipes"))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.toml"))


def list_recipes() -> list[Recipe]:
    """Every shipped recipe, parsed and validated."""
    return [load_recipe(n) for n in recipe_names()]


def load_recipe(name: str | Path) -> Recipe:
    """A shipped recipe by name, or a recipe file of your own by path."""
    check_type("name", name, PATH, "a recipe name or a .toml file (str or Path)")
    path = Path(name)
    if path.suffix != ".toml":
        path = recipe_dir() / f"{name}.toml"
        if not path.is_file():
            raise ZspaceError(
                f"unknown recipe {str(name)!r}; known: {', '.join(recipe_names())} "
                "(or give a path to a .toml recipe file)"
            )
    elif not path.is_file():
        raise ZspaceError(f"recipe file not found: {path}")
    text = read_text(path)
    return parse_recipe(loads_toml(text, f"recipe {path.name}"), text, path.stem)


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = raw.get(key, {})
    if not isinstance(v, Mapping):
        raise ZspaceError(f"{where}: [{key}] must be a table, not {v!r:.40}")
    return dict(v)


def _tables(raw: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    v = raw.get(key, [])
    if not isinstance(v, list) or not all(isinstance(t, Mapping) for t in v):
        raise ZspaceError(f"{where}: [[{key}]] must be a list of tables, not {v!r:.40}")
    return [dict(t) for t in v]


def parse_recipe(raw: Mapping[str, Any], text: str, stem: str) -> Recipe:
    """The one schema check of a recipe, before anything runs: the type of every
    section, known keys (with a did-you-mean), the config, analysis, generation and
    evaluation settings as a run gets them (``flow.stages.Plan``), and the reference
    quantities a run can produce."""
    where = f"recipe {stem}"
    try:
        recipe = _parse(raw, text, stem, where)
        plan_for(recipe)  # every setting of the stages after training
    except ZspaceError as exc:
        msg = str(exc)
        raise ZspaceError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return recipe


def _parse(raw: Mapping[str, Any], text: str, stem: str, where: str) -> Recipe:
    check_keys(raw, TOP, where)
    head = _table(raw, "recipe", where)
    for key in ("name", *HEAD):
        if not isinstance(head.get(key), str) or not head[key]:
            raise ZspaceError(f"{where}: [recipe].{key} is missing")
    if head["name"] != stem:
        raise ZspaceError(f"{where}: [recipe].name is {head['name']!r}, the file says {stem!r}")
    if head["data"] not in DATA_KINDS:
        raise ZspaceError(f"{where}: [recipe].data must be one of {', '.join(DATA_KINDS)}")
    timing = _table(head, "timing", f"{where} [recipe]")
    config = _table(raw, "config", where)
    src = (config.get("data") or {}).get("source", "")
    if head["data"] != "builtin" and "{data}" not in src:
        raise ZspaceError(f"{where}: config.data.source must hold {{data}} (where --data goes)")
    cfg = config_from_dict(_fill(config, "DATA"))  # validates; the path is not read here
    analysis = _table(raw, "analysis", where)
    only = analysis.pop("only", None)
    if only is not None:
        if not isinstance(only, list) or not all(isinstance(n, str) for n in only):
            raise ZspaceError(f"{where}: analysis.only must be a list of analysis names")
        check_names(only)
    for name in check_names(analysis):
        _table(analysis, name, f"{where} [analysis]")
    gen = _table(raw, "generate", where)
    check_keys(gen, GENERATE_KEYS, f"{where} [generate]")
    gen["grids"] = _tables(gen, "grids", f"{where} [generate]")
    for key in ("recon", "rates"):
        if key in gen:
            gen[key] = _table(gen, key, f"{where} [generate]")
    evaluate = _table(raw, "evaluate", where) if "evaluate" in raw else None
    setup = _table(raw, "setup", where)
    refs = _tables(raw, "reference", where)
    references = tuple(
        parse_reference(r, f"{where} reference #{i + 1}") for i, r in enumerate(refs)
    )
    vary, trends = None, ()
    if "sweep" in raw:
        vary, trends = _sweep(_table(raw, "sweep", where), cfg, where)
    for r in references:
        for key in r.where:
            if vary is None or key not in vary:
                raise ZspaceError(f"{where}: reference {r.quantity} applies where {key} = ...")
    return Recipe(
        name=stem,
        **{key: head[key] for key in HEAD},
        text=text,
        config=config,
        analysis=analysis,
        generate=gen,
        evaluate=evaluate,
        setup=setup,
        references=references,
        timing=timing,
        vary=vary,
        trends=trends,
        notes=str(head.get("notes", "")),
        only=None if only is None else tuple(only),
    )


def _sweep(table: dict[str, Any], cfg: Config, where: str):
    check_keys(table, {"vary", "trend"}, f"{where} [sweep]")
    vary = table.get("vary")
    if not isinstance(vary, Mapping) or not vary:
        raise ZspaceError(f"{where}: [sweep].vary must map config keys to lists of values")
    for key, values in vary.items():
        if not isinstance(values, list) or len(values) < 2:
            raise ZspaceError(f"{where}: sweep.vary.{key} needs a list of two or more values")
    # each value must make a valid config, and no two the same run (sweeps.parse_vary)
    for r in plan_runs(parse_vary([(k, v) for k, v in vary.items()])):
        run_config(cfg, r)
    trends = []
    for i, t in enumerate(_tables(table, "trend", f"{where} [sweep]")):
        w = f"{where} sweep.trend #{i + 1}"
        check_keys(t, {"quantity", "direction", "min_rank_correlation", "quote", "source"}, w)
        check_quantity(str(t.get("quantity", "")), w)
        if t.get("direction") not in ("up", "down"):
            raise ZspaceError(f"{w}: direction must be 'up' or 'down'")
        rho = t.get("min_rank_correlation")
        if not isinstance(rho, (int, float)) or not 0 < rho <= 1:
            raise ZspaceError(f"{w}: min_rank_correlation must be in (0, 1]")
        trends.append({"quote": "", "source": "", **t, "min_rank_correlation": float(rho)})
    return {k: list(v) for k, v in vary.items()}, tuple(trends)


def check_data(recipe: Recipe, data: str | Path | None) -> None:
    """A one-line error naming the set, where to get it and how to pass it."""
    if recipe.data == "builtin":
        return
    if data is None:
        raise ZspaceError(f"recipe {recipe.name} needs its data set: {WHERE[recipe.data]}")
    if not Path(data).expanduser().exists():
        raise ZspaceError(
            f"recipe {recipe.name}: --data {data} not found. {WHERE[recipe.data][0].upper()}"
            f"{WHERE[recipe.data][1:]}"
        )


def plan_for(
    recipe: Recipe,
    params: Sequence[str] = (),
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    **options: Any,
) -> Plan:
    """The recipe's analyses, generation and evaluation as a Plan. ``params``
    (``NAME.KEY=VALUE``) override a recipe parameter of NAME and of every variant
    ``NAME@...``; ``NAME@LABEL.KEY=VALUE`` one variant only. ``only``: run these
    analyses instead of the recipe's (a name stands for itself and its variants).
    ``options`` (``pipeline``'s: sampler, n, k, ...) win over the recipe's settings and
    --quick, like ``params``; the reference table names them."""
    analysis = {k: dict(v) for k, v in recipe.analysis.items()}

    def family(name: str) -> list[str]:  # the name and, for an analysis, its variants
        return [name, *(n for n in analysis if split_name(n)[0] == name and n != name)]

    sets: dict[str, dict[str, Any]] = {k: dict(v) for k, v in QUICK_ANALYSIS.items() if quick}
    for name, given in parse_sets(params).items():  # the command line wins over --quick
        sets.setdefault(name, {}).update(given)
    for name, given in sets.items():
        for t in family(name):
            analysis.setdefault(t, {}).update(given)
    gen = recipe.generate
    grids = tuple(dict(g) for g in gen.get("grids", ()))
    recon = dict(gen["recon"]) if "recon" in gen else None
    rates = dict(gen["rates"]) if "rates" in gen else None
    evaluate = dict(recipe.evaluate) if recipe.evaluate is not None else None
    if quick:
        grids = tuple({**g, "n": min(int(g.get("n", 64)), 16), **QUICK_GMM} for g in grids)
        for stage in (s for s in (rates, evaluate) if s is not None):
            stage.update(n=min(int(stage.get("n", 1000)), QUICK_N), **QUICK_GMM)
    chosen = recipe.only
    if only is not None:
        check_names(only)
        chosen = tuple(n for want in only for n in family(want))
    rec = {
        "recipe": recipe.name,
        "title": recipe.title,
        "posts": recipe.posts,
        "config": to_dict(recipe.base_config("DATA")),  # resolved: lists broadcast
        "setup": recipe.setup,
        "quick": quick,
        "references": [r.to_json() for r in recipe.references],
    }
    if given := {k: v for k, v in options.items() if v is not None}:
        rec["options"] = given  # the reference table names them
    plan = Plan(analysis=analysis, only=chosen, grids=grids, recon=recon, rates=rates,
                evaluate=evaluate, record=rec)  # fmt: skip
    return with_options(plan, **given)


def run_recipe(
    name: str | Path,
    data: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    params: Sequence[str] = (),
    run_dir: str | Path | None = None,
    quick: bool = False,
    analyses: Sequence[str] | None = None,
    jobs: int = 1,
    only: int | None = None,
    list_only: bool = False,
    page_only: bool = False,
    log: Log = print,
    progress: bool | None = None,
    **options: Any,
) -> Path:
    """Run a recipe end to end (train -> encode -> analyze -> generate -> evaluate ->
    report) into ``run_dir`` (default runs/<recipe>); a sweep recipe runs its sweep
    there and writes sweep.html. Calling again resumes or skips what is done.
    ``analyses`` replaces the recipe's analyses; ``jobs``, ``only``, ``list_only``
    and ``page_only`` are the sweep's (``zspace sweep``); ``options``: the generation
    and evaluation options of ``pipeline`` (``sampler``, ``n``, ``k``, ...), over the
    recipe's. Returns the report (or the sweep page)."""
    check_type("data", data, (*PATH, type(None)), "the data set's path or None")
    for what, items in (("overrides", overrides), ("params", params)):
        check_type(what, items, (list, tuple), "a list of strings", each=str)
    check_hooks(log, progress)
    recipe = load_recipe(name)
    if not recipe.is_sweep and (only is not None or list_only or page_only or jobs != 1):
        raise ZspaceError(
            f"recipe {recipe.name} is one run: --jobs, --only, --list and --page are for "
            "sweep recipes"
        )
    if not (list_only or page_only):
        check_data(recipe, data)
    out = Path(run_dir) if run_dir is not None else Path("runs") / recipe.name
    cfg = recipe.base_config(data, overrides)
    plan = plan_for(recipe, params, quick=quick, only=analyses, **options)
    if recipe.is_sweep:
        assert recipe.vary is not None
        return sweep(
            cfg,
            list(recipe.vary.items()),
            out,
            plan=plan,
            jobs=jobs,
            only=only,
            list_only=list_only,
            page_only=page_only,
            trends=recipe.trends,
            references=recipe.references,
            log=log,
            progress=progress,
        )
    say(log)(f"recipe {recipe.name}: {recipe.title} -> {out}")
    with switch(progress):
        return run_stages(cfg, out, plan, log=log)
