"""Result tables and one-line summaries, shared by the terminal output and the page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zspace.perceptron.descent import DescentResult

if TYPE_CHECKING:
    from zspace.perceptron.study import PerceptronResult

COLUMNS = ("#", "k1", "k2", "K1", "K2", "target", "A", "Err")


def table_rows(result: PerceptronResult, run: DescentResult) -> list[list[str]]:
    """Per sample: scaled and raw features, target, the neuron's output and |A - t| / t."""
    rows = []
    for i, ((k1, k2), (K1, K2), t, a, e) in enumerate(
        zip(result.k, result.samples.K, result.samples.target, run.outputs, run.errors, strict=True)
    ):
        scaled = [f"{k1:.6f}", f"{k2:.6f}"]
        rows.append([str(i), *scaled, f"{K1:g}", f"{K2:g}", f"{t:g}", f"{a:.6f}", f"{e:.6f}"])
    return rows


def scaling_line(result: PerceptronResult) -> str:
    sc = result.scaling
    if sc.per_sample:
        how = "no fitted parameters"
    else:
        how = (
            f"k1 = K1 * {sc.scale[0]:.6g} + {sc.shift[0]:.6g}, "
            f"k2 = K2 * {sc.scale[1]:.6g} + {sc.shift[1]:.6g}"
        )
    return f"scaling {sc.name}: {sc.description}; {how}"


def surface_line(result: PerceptronResult) -> str:
    s, m = result.surface, result.mesh
    if s is None or m is None:
        return "cost surface: skipped"
    w1, w2 = s.w_min
    return (
        f"cost surface: {s.w1.size} x {s.w2.size} mesh, axis arange({m.start:g}, {m.stop:g}, "
        f"{m.step:g}): C_min = {s.c_min:.6g} at (w1, w2) = ({w1:.4f}, {w2:.4f}) "
        f"[{s.seconds:.2f} s, {s.threads} thread(s)]"
    )


def descent_line(run: DescentResult) -> str:
    w1, w2 = run.final
    return (
        f"{run.mode} descent from ({run.start[0]:g}, {run.start[1]:g}), eta {run.eta:g}, "
        f"decrease {run.decrease:g}, {run.steps} steps: (w1, w2) = ({w1:.4f}, {w2:.4f}), "
        f"C = {run.costs[-1]:.6g}, total error {run.total_error:.6f}"
    )


def format_text(rows: list[list[str]], columns: tuple[str, ...] = COLUMNS) -> str:
    """A right-aligned plain-text table."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [columns, *rows]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in lines)


def report_text(result: PerceptronResult) -> str:
    """What the CLI prints: scaling, surface minimum, and both descent tables."""
    parts = [scaling_line(result), surface_line(result)]
    for run in (result.stochastic, result.batch):
        parts += ["", descent_line(run), format_text(table_rows(result, run))]
    return "\n".join(parts)
