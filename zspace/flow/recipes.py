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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from zspace.analysis.runner import check_names, make_params, parse_sets, split_name
from zspace.config import Config, apply_overrides, config_from_dict, to_dict
from zspace.config.parse import loads_toml, toml_value
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_text
from zspace.core.progress import progress as switch
from zspace.flow.stages import Plan, run_stages
from zspace.flow.sweeps import sweep
from zspace.flow.training import Log, say
from zspace.generation.samplers import check_sampler
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
GRID_KEYS = {"sampler", "n", "cols", "seed", "limits", "sharpen", "components", "subsample"}
RECON_KEYS = {"n", "split", "cols", "seed", "sharpen"}
RATE_KEYS = {"sampler", "n", "limits", "seed", "reference_size", "quantile", "components"}
RATE_KEYS |= {"subsample"}
EVAL_KEYS = {"sampler", "n", "k", "seed", "limits", "components", "subsample", "oracle", "task"}
EVAL_KEYS |= {"rounds"}
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
        runs = 1
        for values in (self.vary or {}).values():
            runs *= len(values)
        out: dict[str, float | None] = {}
        for dev in ("cpu", "gpu"):
            rate = t.get(f"{dev}_images_per_s")
            out[dev] = runs * images / float(rate) if rate else None
        return out


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
        raise ZspaceError(f"{where}: [{key}] must be a table")
    return dict(v)


def parse_recipe(raw: Mapping[str, Any], text: str, stem: str) -> Recipe:
    """Check every section of a recipe (config, analyses, generation, references)."""
    where = f"recipe {stem}"
    check_keys(raw, TOP, where)
    head = _table(raw, "recipe", where)
    for key in ("name", "title", "summary", "data", "posts"):
        if not isinstance(head.get(key), str) or not head[key]:
            raise ZspaceError(f"{where}: [recipe].{key} is missing")
    if head["name"] != stem:
        raise ZspaceError(f"{where}: [recipe].name is {head['name']!r}, the file says {stem!r}")
    if head["data"] not in DATA_KINDS:
        raise ZspaceError(f"{where}: [recipe].data must be one of {', '.join(DATA_KINDS)}")
    timing = dict(head.get("timing", {}))
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
    check_names(analysis)
    for name, params in analysis.items():
        if not isinstance(params, Mapping):
            raise ZspaceError(f"{where}: [analysis.{name}] must be a table")
        make_params(name, params, cfg.seed)
    gen = _table(raw, "generate", where)
    check_keys(gen, GENERATE_KEYS, f"{where} [generate]")
    grids = gen.get("grids", [])
    if not isinstance(grids, list):
        raise ZspaceError(f"{where}: [[generate.grids]] must be a list of tables")
    for i, g in enumerate(grids):
        check_keys(g, GRID_KEYS, f"{where} generate.grids #{i + 1}")
        _samplers(g.get("sampler", "normal"), f"{where} generate.grids #{i + 1}")
    if "recon" in gen:
        check_keys(gen["recon"], RECON_KEYS, f"{where} [generate.recon]")
    if "rates" in gen:
        check_keys(gen["rates"], RATE_KEYS, f"{where} [generate.rates]")
        _samplers(gen["rates"].get("sampler", "normal"), f"{where} [generate.rates]")
    evaluate = raw.get("evaluate")
    if evaluate is not None:
        check_keys(evaluate, EVAL_KEYS, f"{where} [evaluate]")
    setup = _table(raw, "setup", where)
    refs = raw.get("reference", [])
    if not isinstance(refs, list):
        raise ZspaceError(f"{where}: [[reference]] must be a list of tables")
    references = tuple(
        parse_reference(r, f"{where} reference #{i + 1}") for i, r in enumerate(refs)
    )
    vary, trends = None, ()
    if "sweep" in raw:
        vary, trends = _sweep(_table(raw, "sweep", where), config, where)
    for r in references:
        for key in r.where:
            if vary is None or key not in vary:
                raise ZspaceError(f"{where}: reference {r.quantity} applies where {key} = ...")
    return Recipe(
        name=stem,
        title=head["title"],
        summary=head["summary"],
        data=head["data"],
        posts=head["posts"],
        text=text,
        config=config,
        analysis=analysis,
        generate=gen,
        evaluate=dict(evaluate) if evaluate is not None else None,
        setup=setup,
        references=references,
        timing=timing,
        vary=vary,
        trends=trends,
        notes=str(head.get("notes", "")),
        only=None if only is None else tuple(only),
    )


def _samplers(value: Any, where: str) -> None:
    names = value.split(",") if isinstance(value, str) else list(value)
    for n in names:
        try:
            check_sampler(str(n).strip())
        except ZspaceError as exc:
            raise ZspaceError(f"{where}: {exc}") from None


def _sweep(table: dict[str, Any], config: dict[str, Any], where: str):
    check_keys(table, {"vary", "trend"}, f"{where} [sweep]")
    vary = table.get("vary")
    if not isinstance(vary, Mapping) or not vary:
        raise ZspaceError(f"{where}: [sweep].vary must map config keys to lists of values")
    for key, values in vary.items():
        if not isinstance(values, list) or len(values) < 2:
            raise ZspaceError(f"{where}: sweep.vary.{key} needs a list of two or more values")
        for v in values:  # each value must make a valid config
            config_from_dict(_fill(apply_overrides(config, [f"{key}={toml_value(v)}"]), "D"))
    trends = []
    for i, t in enumerate(table.get("trend", [])):
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
) -> Plan:
    """The recipe's analyses, generation and evaluation as a Plan. ``params``
    (``NAME.KEY=VALUE``) override a recipe parameter of NAME and of every variant
    ``NAME@...``; ``NAME@LABEL.KEY=VALUE`` one variant only. ``only``: run these
    analyses instead of the recipe's (a name stands for itself and its variants)."""
    analysis = {k: dict(v) for k, v in recipe.analysis.items()}
    sets: dict[str, dict[str, Any]] = {}
    if quick:
        sets = {k: dict(v) for k, v in QUICK_ANALYSIS.items()}
    for name, given in parse_sets(params).items():  # the command line wins over --quick
        sets.setdefault(name, {}).update(given)
    for name, given in sets.items():
        targets = [name]
        if split_name(name)[1] is None:
            targets += [n for n in analysis if split_name(n)[0] == name and n != name]
        for t in targets:
            analysis.setdefault(t, {}).update(given)
    for name, p in analysis.items():
        make_params(name, p)  # a bad --param fails before training
    gen = recipe.generate
    grids = tuple(dict(g) for g in gen.get("grids", ()))
    recon = dict(gen["recon"]) if "recon" in gen else None
    rates = dict(gen["rates"]) if "rates" in gen else None
    evaluate = dict(recipe.evaluate) if recipe.evaluate is not None else None
    if quick:
        grids = tuple({**g, "n": min(int(g.get("n", 64)), 16), **QUICK_GMM} for g in grids)
        if rates is not None:
            rates.update(n=min(int(rates.get("n", 1000)), QUICK_N), **QUICK_GMM)
        if evaluate is not None:
            evaluate.update(n=min(int(evaluate.get("n", 1000)), QUICK_N), **QUICK_GMM)
    chosen = recipe.only
    if only is not None:
        check_names(only)
        chosen = tuple(
            n
            for want in only
            for n in [want, *(a for a in analysis if split_name(a)[0] == want and a != want)]
        )
    rec = {
        "recipe": recipe.name,
        "title": recipe.title,
        "posts": recipe.posts,
        "config": to_dict(recipe.base_config("DATA")),  # resolved: lists broadcast
        "setup": recipe.setup,
        "quick": quick,
        "references": [r.to_json() for r in recipe.references],
    }
    return Plan(
        analysis=analysis,
        only=chosen,
        grids=grids,
        recon=recon,
        rates=rates,
        evaluate=evaluate,
        record=rec,
    )


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
) -> Path:
    """Run a recipe end to end (train -> encode -> analyze -> generate -> evaluate ->
    report) into ``run_dir`` (default runs/<recipe>); a sweep recipe runs its sweep
    there and writes sweep.html. Calling again resumes or skips what is done.
    ``analyses`` replaces the recipe's analyses; ``jobs``, ``only``, ``list_only``
    and ``page_only`` are the sweep's (``zspace sweep``). Returns the report (or the
    sweep page)."""
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
    plan = plan_for(recipe, params, quick=quick, only=analyses)
    if recipe.is_sweep:
        assert recipe.vary is not None
        vary = [(k, [toml_value(v) for v in vals]) for k, vals in recipe.vary.items()]
        return sweep(
            cfg,
            vary,
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
