"""Reference numbers beside a run's own: the entries a recipe carries, how each is
read from the run folder, the verdict, and what differs in the set-up.

An entry names a ``quantity`` (see ``QUANTITIES``), the reference's ``value`` or
``range = [lo, hi]``, and exactly one tolerance: ``tolerance`` (absolute),
``rel_tolerance`` (a share of the value) or ``factor`` (for numbers that span
orders of magnitude: [lo / factor, hi * factor]). The verdict is **matches** when
the measured number lies within the range widened by the tolerance, **differs**
otherwise, and **not measured** when the run lacks the file it comes from; no
number is called matching unless it is inside that interval. ``reading`` marks an
entry whose source states it in words ("no faces from N(0, I)"): the number is
zspace's reading of those words, shown as such.

Verdicts are computed when the page is written, from the saved results (nothing is
recomputed), so a re-run analysis shows its new verdict at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analysis.common import AnalysisResult
from zspace.analysis.runner import ANALYSES, load_result, split_name
from zspace.config import to_dict
from zspace.config.validate import did_you_mean
from zspace.core.display import esc
from zspace.core.errors import ZspaceError
from zspace.evaluation.reading import METRICS
from zspace.generation.samplers import SAMPLERS
from zspace.reporting.evaluation import labelled
from zspace.reporting.html import Html, optional_json, table
from zspace.reporting.text import listed, num
from zspace.runs.folder import read_config, read_history, read_meta

RECIPE_FILE = "recipe.json"
# config keys that change where or how fast a run goes, not what it computes
NOT_SETUP = {
    "data.source",
    "data.cache_dir",
    "train.device",
    "train.threads",
    "train.keep_checkpoints",
    "train.compile",
    "train.log",
}
TOLERANCES = ("tolerance", "rel_tolerance", "factor")
TEXTS = ("tolerance_note", "quote", "source", "conditions", "reading")  # an entry's words
ENTRY_KEYS = {"quantity", "value", "range", *TOLERANCES, *TEXTS, "where"}

HISTORY = ["total", "reco", "kl", "kl_raw", "val_total", "val_reco", "val_kl", "kl_share",
           "val_kl_share", "epochs", "fact", "lr", "seconds"]  # fmt: skip
# quantity prefix -> what it reads (the rest of the name is documented in docs/recipes.md)
QUANTITIES = {
    "history": f"last epoch of history.jsonl: {', '.join(HISTORY)} (kl_share = kl / total)",
    "rates": "samples/rates.json: rates.SAMPLER or rates.uniform:LIMIT (data = the control)",
    "eval": "samples/eval.json: eval.SAMPLER[:LIMIT].METRIC (precision, recall, fd, ...)",
    "recon": "samples/reconstruction.json: recon.psnr, recon.ssim, recon.loss",
    **{name: f"analysis/{name}.json: a number of its result" for name in ANALYSES},
}
WORDS = {
    "history.total": "training loss per image (last epoch)",
    "history.reco": "training reconstruction loss per image",
    "history.kl": "fact * KL per image (training)",
    "history.val_total": "validation loss per image",
    "history.val_reco": "validation reconstruction loss per image",
    "history.kl_share": "KL share of the training loss",
    "history.val_kl_share": "KL share of the validation loss",
    "radius.peak": "radius peak",
    "radius.mean": "mean radius",
    "radius.min": "smallest radius",
    "radius.max": "largest radius",
    "radius.gap": "|mean radius - sqrt(z_dim)|",
    "vae.logvar_mean": "mean logvar",
    "vae.logvar_min": "smallest logvar",
    "vae.logvar_max": "largest logvar",
    "vae.diff_max": "max |z - mu| (one component)",
    "vae.diff_above_share": "share of components with |z - mu| > 0.05",
    "vae.radius_rel_mean": "mean relative radius difference z vs mu",
    "vae.radius_rel_max": "max relative radius difference z vs mu",
    "vae.radius_abs_mean": "mean absolute radius difference z vs mu",
    "vae.active_units": "active units (Burda et al.)",
    "kmeans.strength": "KMeans elbow strength",
    "kmeans.best_k": "k of the strongest KMeans bend",
    "axes.flagged": "axes flagged off-centre or broad",
    "rates.normal": "meaningful-point rate of N(0, I)",
}


@dataclass(frozen=True)
class Reference:
    """One published number (or range) with its tolerance and where it comes from."""

    quantity: str
    lo: float
    hi: float
    kind: str  # which of TOLERANCES the entry gives
    tol: float  # its value
    tolerance_note: str = ""
    quote: str = ""
    source: str = ""
    conditions: str = ""
    reading: str = ""
    where: dict[str, Any] = field(default_factory=dict)

    def bounds(self) -> tuple[float, float]:
        """The interval the report calls "matches"."""
        lo, hi, t = self.lo, self.hi, self.tol
        if self.kind == "factor":
            return (lo / t if lo > 0 else lo * t), (hi * t if hi > 0 else hi / t)
        if self.kind == "rel_tolerance":
            return lo - t * abs(lo), hi + t * abs(hi)
        return lo - t, hi + t

    def verdict(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "not measured"
        lo, hi = self.bounds()
        return "matches" if lo <= value <= hi else "differs"

    def shown(self) -> str:
        """ "16.5-16.75 ± 0.5", "6.1e-05 within a factor 3", ..."""
        ref = num(self.lo) if self.lo == self.hi else f"{num(self.lo)} to {num(self.hi)}"
        if self.kind == "factor":
            return f"{ref} within a factor {self.tol:g}"
        if self.kind == "rel_tolerance":
            return f"{ref} ± {100 * self.tol:g} %"
        return f"{ref} ± {num(self.tol)}"

    def applies(self, settings: Mapping[str, Any]) -> bool:
        """True when every ``where`` key has this value in ``settings`` (a sweep run's)."""
        return all(
            key in settings and _same(settings[key], want) for key, want in self.where.items()
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"quantity": self.quantity}
        out.update({"value": self.lo} if self.lo == self.hi else {"range": [self.lo, self.hi]})
        out[self.kind] = self.tol
        out.update({k: getattr(self, k) for k in TEXTS if getattr(self, k)})
        if self.where:
            out["where"] = dict(self.where)
        return out


def _same(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(a) == str(b)


def parse_reference(raw: Mapping[str, Any], where: str) -> Reference:
    """One ``[[reference]]`` table to a Reference; ``where`` names it in errors."""
    if not isinstance(raw, Mapping):
        raise ZspaceError(f"{where}: expected a table")
    check_keys(raw, ENTRY_KEYS, where)
    q = raw.get("quantity")
    if not isinstance(q, str) or not q:
        raise ZspaceError(f"{where}: 'quantity' is missing")
    check_quantity(q, where)
    if ("value" in raw) == ("range" in raw):
        raise ZspaceError(f"{where} ({q}): give exactly one of 'value' and 'range'")
    if "value" in raw:
        lo = hi = _number(raw["value"], f"{where} ({q}).value")
    else:
        rng = raw["range"]
        if not isinstance(rng, list) or len(rng) != 2:
            raise ZspaceError(f"{where} ({q}).range: expected [low, high]")
        lo, hi = (_number(v, f"{where} ({q}).range") for v in rng)
        if lo > hi:
            raise ZspaceError(f"{where} ({q}).range: low {lo} is above high {hi}")
    given = [k for k in TOLERANCES if k in raw]
    if len(given) != 1:
        raise ZspaceError(
            f"{where} ({q}): give exactly one tolerance ({', '.join(TOLERANCES)}); "
            "every reference number needs the interval within which it matches"
        )
    tol = _number(raw[given[0]], f"{where} ({q}).{given[0]}")
    if tol < 0 or (given[0] == "factor" and tol <= 1):
        raise ZspaceError(f"{where} ({q}).{given[0]} = {tol}: must be >= 0 (factor > 1)")
    texts = {k: raw.get(k, "") for k in TEXTS}
    if wrong := [k for k, v in texts.items() if not isinstance(v, str)]:
        raise ZspaceError(f"{where} ({q}).{wrong[0]}: expected a string")
    if not texts["source"]:
        raise ZspaceError(f"{where} ({q}): 'source' (where the number is published) is missing")
    cond = raw.get("where", {})
    if not isinstance(cond, Mapping):
        raise ZspaceError(f"{where} ({q}).where: expected a table of config keys")
    return Reference(q, lo, hi, given[0], tol, **texts, where=dict(cond))


def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """A table of a recipe (or of its references) holds only keys it knows."""
    unknown = sorted(map(str, set(table) - allowed))
    if unknown:
        hint = did_you_mean(unknown[0], sorted(allowed))
        raise ZspaceError(
            f"{where}: unknown key(s) {', '.join(unknown)}{hint}; allowed: "
            f"{', '.join(sorted(allowed))}"
        )


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ZspaceError(f"{where}: expected a number, got {v!r}")
    return float(v)


RECON = ["psnr", "ssim", "loss"]
DERIVED = {  # quantities ``measure`` computes from an analysis result
    "radius": ["gap", "share:LO:HI"],
    "axes": ["flagged", "off_centre", "broad"],
    "vae": ["diff_above_share", "active_share"],
}


def check_quantity(q: str, where: str = "quantity") -> None:
    """A quantity ``measure`` can read from a run: a known source, then a name that
    source holds (a history column, a sampler and metric, a number of the result)."""
    head, dot, rest = q.partition(".")
    base = split_name(head)[0]
    if base not in QUANTITIES or not dot or not rest:
        raise ZspaceError(
            f"{where}: unknown quantity {q!r}; it starts with one of {', '.join(QUANTITIES)}"
        )
    if base in ("rates", "eval"):
        spec, _, metric = rest.rpartition(".") if base == "eval" else (rest, "", "")
        if spec.partition(":")[0] not in (*SAMPLERS, "data" if base == "rates" else "real"):
            raise ZspaceError(f"{where}: {q!r} names no sampler; samplers: {', '.join(SAMPLERS)}")
        if base == "rates":
            return
        names, rest = list(METRICS), metric
    elif base in ("history", "recon"):
        names = HISTORY if base == "history" else RECON
    else:
        result: Any = next(c for c in AnalysisResult.__subclasses__() if c.name == base)
        names = [f.name for f in fields(result) if str(f.type).split(" |")[0] in ("int", "float")]
        names += DERIVED.get(base, [])
        rest = "share:LO:HI" if base == "radius" and rest.startswith("share:") else rest
    if rest not in names:
        raise ZspaceError(
            f"{where}: unknown quantity {q!r}{did_you_mean(rest, names)}; after {head}. "
            f"comes one of {', '.join(names)}"
        )


# ---------------------------------------------------------------- measuring


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def measure(run_dir: str | Path, quantity: str) -> float | None:
    """The run's value of ``quantity`` from its saved files, or None when absent."""
    run_dir = Path(run_dir)
    head, _, rest = quantity.partition(".")
    if head == "history":
        rows = read_history(run_dir)
        if not rows:
            return None
        last = rows[-1]
        if rest == "epochs":
            return float(len(rows))
        if rest in ("kl_share", "val_kl_share"):
            pre = "val_" if rest.startswith("val") else ""
            kl, total = _float(last.get(f"{pre}kl")), _float(last.get(f"{pre}total"))
            return kl / total if kl is not None and total else None
        return _float(last.get(rest))
    if head in ("rates", "eval"):  # a sampler's rate, or its metric in eval.json
        spec, _, metric = rest.rpartition(".") if head == "eval" else (rest, "", "")
        name, _, limit = spec.partition(":")  # uniform:2.5: its row of limit 2.5
        row = next((r for _, r in labelled(run_dir, head) if r["sampler"] == name and _same(
            (r.get("params") or {}).get("limit"), limit or None)), {})  # fmt: skip
        return _float((row.get("metrics") or {}).get(metric) if metric else row.get("rate"))
    if head == "recon":
        rec = optional_json(run_dir / "samples" / "reconstruction.json") or {}
        return _float((rec.get("metrics") or {}).get(rest))
    loaded = load_result(run_dir, head)
    if loaded is None:
        return None
    rec, arr = loaded
    r = rec.get("result", {})
    base = split_name(head)[0]
    if base == "radius" and rest.startswith("share:"):
        return _radius_share(r, arr, rest)
    if base == "radius" and rest == "gap":  # how far the mean lies from sqrt(z_dim)
        mean, exp = _float(r.get("mean")), _float(r.get("expected"))
        return abs(mean - exp) if mean is not None and exp is not None else None
    if base == "axes" and rest in ("flagged", "off_centre", "broad"):
        flagged = r.get("flagged") or []
        if rest == "flagged":
            return float(len(flagged))
        word = "off" if rest == "off_centre" else "broad"
        return float(sum(word in str(f.get("why", "")) for f in flagged))
    if base == "vae" and rest == "diff_above_share":
        total = (r.get("n") or 0) * (r.get("z_dim") or 0)
        return r["diff_above"] / total if total and "diff_above" in r else None
    if base == "vae" and rest == "active_share":
        au, d = _float(r.get("active_units")), _float(r.get("z_dim"))
        return au / d if au is not None and d else None
    return _float(r.get(rest))


def _radius_share(r: dict, arr: dict, rest: str) -> float | None:
    """Share of points with lo <= R < hi from the saved histogram ("share:14:19"), when
    lo and hi fall on bin edges (else None: not readable at this bin width)."""
    try:
        _, lo_s, hi_s = rest.split(":")
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        return None
    edges, counts = arr.get("edges"), arr.get("counts")
    if edges is None or counts is None or not r.get("n"):
        return None
    tol = 1e-6 * max(1.0, float(np.abs(edges).max()))
    i = np.flatnonzero(np.abs(edges - lo) <= tol)
    j = np.flatnonzero(np.abs(edges - hi) <= tol)
    if lo <= edges[0]:
        i = np.array([0])
    if hi >= edges[-1]:
        j = np.array([len(edges) - 1])
    if not len(i) or not len(j):
        return None
    return float(counts[i[0] : j[0]].sum() / r["n"])


# ---------------------------------------------------------------- the set-up


def setup_differences(record: Mapping[str, Any], run_dir: str | Path) -> list[str]:
    """What differs between the reference's set-up and this run, in words."""
    run_dir = Path(run_dir)
    setup = record.get("setup") or {}
    out: list[str] = []
    try:
        meta = read_meta(run_dir)
    except ZspaceError:
        meta = {}
    n_train = (meta.get("splits") or {}).get("train")
    if setup.get("images") and n_train is not None and int(n_train) != int(setup["images"]):
        what = "fewer" if n_train < setup["images"] else "more"
        out.append(
            f"{what} training images: {n_train:,} here, {int(setup['images']):,} in the reference"
        )
    epochs = len(read_history(run_dir))
    if setup.get("epochs") and epochs != int(setup["epochs"]):
        what = "fewer" if epochs < setup["epochs"] else "more"
        out.append(f"{what} epochs: {epochs} here, {int(setup['epochs'])} in the reference")
    recipe_cfg = record.get("config")
    if isinstance(recipe_cfg, Mapping) and (run_dir / "config.toml").is_file():
        mine = to_dict(read_config(run_dir))
        # not compared: where or how fast a run goes, the values this sweep run varies, and
        # the epochs when said above against the reference's count
        skip = NOT_SETUP | set(record.get("sweep_values") or {})
        skip |= {"train.epochs"} if setup.get("epochs") else set()
        for section, values in recipe_cfg.items():
            if not isinstance(values, Mapping):
                if mine.get(section) != values:
                    out.append(f"{section}: {mine.get(section)!r} here, {values!r} in the recipe")
                continue
            for key, want in values.items():
                got = (mine.get(section) or {}).get(key)
                if f"{section}.{key}" not in skip and listed(got) != listed(want):
                    out.append(f"{section}.{key}: {got!r} here, {want!r} in the recipe")
    if record.get("quick"):
        out.append("--quick: analyses and generation shrunk for a smoke test")
    if options := record.get("options"):
        out.append("options given: " + ", ".join(f"{k}={v}" for k, v in options.items()))
    out += [str(d) for d in setup.get("known_differences", [])]
    return out


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN/recipe.json (written by ``zspace recipe run``), or None for other runs."""
    rec = optional_json(Path(run_dir) / RECIPE_FILE)
    return rec if isinstance(rec, dict) else None


def rows(record: Mapping[str, Any], run_dir: str | Path) -> list[dict[str, Any]]:
    """One dict per reference entry: the entry, the measured value and the verdict."""
    out = []
    for i, raw in enumerate(record.get("references") or []):
        ref = parse_reference(raw, f"{RECIPE_FILE} reference #{i + 1}")
        value = measure(run_dir, ref.quantity)
        out.append({"ref": ref, "value": value, "verdict": ref.verdict(value)})
    return out


# ---------------------------------------------------------------- the page section

VERDICT_STYLE = {"matches": "ok", "differs": "bad", "not measured": "na"}
VERDICT_STYLE |= {"holds": "ok", "does not hold": "bad"}  # a sweep's directions


REFERENCE_HEAD = ["quantity", "reference (± tolerance)", "source and its conditions"]
REFERENCE_HEAD += ["this run", "verdict"]


def verdict_cell(verdict: str) -> Html:
    return Html(esc(verdict), VERDICT_STYLE.get(verdict, ""))


def words(quantity: str) -> str:
    """What a quantity is, in the pages' names (``WORDS``; an evaluation metric by the
    evaluation tables' name, ``reading.METRICS``)."""
    head, _, rest = quantity.partition(".")
    sampler, _, metric = rest.rpartition(".")
    if head == "eval" and metric in METRICS:
        return f"{METRICS[metric]} of {sampler.replace(':', ' limit=')}"
    return WORDS.get(quantity, "")


def reference_row(ref: Reference, value: float | None) -> list[Any]:
    """A reference's row (``REFERENCE_HEAD``): the quantity, its number with the
    tolerance, its source, this run's number and the verdict."""
    shown = esc(ref.shown())
    if ref.tolerance_note:
        shown += f"<br><small>tolerance: {esc(ref.tolerance_note)}</small>"
    if ref.reading:
        shown += f"<br><small>zspace's reading of words: {esc(ref.reading)}</small>"
    quote = f"&ldquo;{esc(ref.quote)}&rdquo;<br>" if ref.quote else ""
    return [
        Html(f"{esc(words(ref.quantity))}<br><small><code>{esc(ref.quantity)}</code></small>"),
        Html(shown),
        Html(f"{quote}<small>{esc(ref.source)}; {esc(ref.conditions)}</small>"),
        num(value),
        verdict_cell(ref.verdict(value)),
    ]


def references_html(run_dir: str | Path) -> str | None:
    """The "reference vs this run" section body of a recipe run's report, or None."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is None:
        return None
    got = rows(record, run_dir)
    counts = {v: sum(r["verdict"] == v for r in got) for v in VERDICT_STYLE}
    title = esc(record.get("title") or record.get("recipe", ""))
    html = (
        f"<p>Recipe <b>{esc(record.get('recipe', '?'))}</b>: {title}. "
        f"{esc(record.get('posts', ''))}</p>"
    )
    if not got:
        html += "<p>The reference publishes no numbers for this experiment.</p>"
    else:
        html += (
            f'<p class="key">{counts["matches"]} of {len(got)} reference numbers match this '
            f"run, {counts['differs']} differ, {counts['not measured']} not measured. "
            "A number matches only inside the reference's value or range widened by the "
            "tolerance shown.</p>"
        ) + table(REFERENCE_HEAD, [reference_row(r["ref"], r["value"]) for r in got], 3, "ref")
    diffs = setup_differences(record, run_dir)
    if not diffs:
        return html + "<p>The set-up is the reference's as far as the recipe knows it.</p>"
    items = "".join(f"<li>{esc(d)}</li>" for d in diffs)
    return html + f"<p>What differs in the set-up from the reference's:</p><ul>{items}</ul>"
