"""The architecture holds: no import cycles (imports inside functions and under TYPE_CHECKING
count), no underscore name imported across modules, few loose modules at the top of ``audit/``,
no module far over 400 lines (docs/architecture.md has the map)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("audit", "dashboard")
MAX_LOOSE = 12
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[module_name(path)] = path
    return out


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) falls in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(imported module, name taken from it or None) for every import anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name, known)
                if target:
                    out.append((target, None))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # ``from pkg import module``
                    out.append((sub, None))
                elif (target := resolve(base, known)) is not None:
                    out.append((target, alias.name))
    return out


def graph() -> tuple[dict[str, set[str]], list[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    private = []
    for mod, path in known.items():
        for target, name in imports_of(mod, path, known):
            if target == mod:
                continue
            # a package's own __init__ is imported implicitly by its modules: not an edge back
            if mod.startswith(target + ".") and known[target].name == "__init__.py":
                continue
            edges[mod].add(target)
            if name and name.startswith("_") and not name.startswith("__"):
                private.append(f"{mod} imports {target}.{name}")
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path: Path) -> None:
    """The checks below can fail: a planted cycle is a component, a planted private import is named."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    known = {"audit.x": tmp_path / "x.py", "audit.y": tmp_path / "y.py"}
    known["audit.x"].write_text("def f():\n    from audit.y import _hidden, shown\n")
    assert imports_of("audit.x", known["audit.x"], known) == [("audit.y", "_hidden"), ("audit.y", "shown")]


def test_no_import_cycles() -> None:
    edges, _ = graph()
    assert cycles(edges) == []


def test_no_private_names_across_modules() -> None:
    _, private = graph()
    assert private == []


def test_few_loose_modules_at_the_top_of_audit() -> None:
    loose = sorted(p.name for p in (ROOT / "audit").glob("*.py"))
    assert len(loose) <= MAX_LOOSE, loose


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_module_far_over_400_lines(pkg: str) -> None:
    long = {
        module_name(p): n
        for p in (ROOT / pkg).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
