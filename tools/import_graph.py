"""Print zspace's module -> module import arrows, their cycles and the arrows that point up
the stage order of docs/architecture.md.

Rules (issue 26): module-level and function-level imports count; imports under
``if TYPE_CHECKING:`` do not; ``from zspace.pkg import x`` imports ``zspace/pkg/__init__.py``
unless ``x`` is a submodule. Usage: ``python tools/import_graph.py [--arrows]``; exit 1 when
there is a cycle or an upward arrow.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zspace"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }


def arrows(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the zspace modules it imports (by the rules above)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + [base] * bool(base))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            elif (
                isinstance(node, ast.Call)
                and ast.unparse(node.func).endswith("import_module")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                targets = [str(node.args[0].value)]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod and target != "zspace":
                    edges[mod].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def stage_order() -> list[list[str]]:
    """The stage order listed in docs/architecture.md: the lines of its ``Stage order``
    block, each ``N. folder, folder`` (earlier stages first)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- stages -->")[1]
    stages = []
    for line in block.splitlines():
        match = re.match(r"\s*\d+\.\s+(.*)", line)
        if match:
            stages.append(re.findall(r"`([\w.]+)`", match.group(1)))
        elif stages and not line.strip():
            break
    return stages


def stage_of(module: str, stages: list[list[str]]) -> int:
    """The stage of a module: the stage listing its top-level folder (or module)."""
    top = ".".join(module.split(".")[:2])
    for i, names in enumerate(stages):
        if top in (f"zspace.{n}" for n in names):
            return i
    raise KeyError(f"{module}: its folder is in no stage of docs/architecture.md")


def upward(edges: dict[str, set[str]], stages: list[list[str]]) -> list[str]:
    return sorted(
        f"{m} ({stage_of(m, stages)}) -> {t} ({stage_of(t, stages)})"
        for m, targets in edges.items()
        for t in targets
        if m != "zspace" and stage_of(t, stages) > stage_of(m, stages)
    )


def main() -> int:
    edges = arrows(modules())
    if "--arrows" in sys.argv:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f"{m} -> {t}")
    found = cycles(edges)
    try:
        up = upward(edges, stage_order())
    except (FileNotFoundError, IndexError, KeyError) as exc:
        up = [f"no stage order: {exc}"]
    n = sum(map(len, edges.values()))
    print(f"{len(edges)} modules, {n} arrows, {len(found)} cycles, {len(up)} upward arrows")
    for comp in found:
        print("cycle: " + " <-> ".join(comp))
    for line in up:
        print("up: " + line)
    return 1 if found or up else 0


if __name__ == "__main__":
    sys.exit(main())
