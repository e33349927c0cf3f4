"""The house stays easy to change: imports point down (no cycle, nothing imports the pytest glue),
modules stay small, ruff stays clean. Read from the source with ast; nothing is imported."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "auditlens"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The auditlens modules ``path`` imports (relative imports resolved; ``from pkg import sub`` counts sub)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in edges:
        if node not in index:
            visit(node)
    return found


def without_package_faces(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` only hands its modules' names on; importing ``pkg.sub`` runs it, but a
    cycle through it is not a cycle of the code. Edges to a package are kept; edges *from* an
    ``__init__`` to its own submodules are dropped."""
    packages = {p for p in edges if (PACKAGE.parent / p.replace(".", "/") / "__init__.py").is_file()}
    return {m: {t for t in targets if not (m in packages and t.startswith(m + "."))} for m, targets in edges.items()}


def test_the_import_graph_has_no_cycle():
    assert cycles(without_package_faces(graph())) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_in_the_library_imports_the_pytest_glue():
    importers = {m for m, targets in graph().items() if not m.startswith("auditlens.plugin")
                 and any(t.startswith("auditlens.plugin") for t in targets)}
    assert importers == set()


def test_the_core_does_not_import_pytest():
    glue = {p for p in PACKAGE.rglob("*.py") if "plugin" in p.relative_to(PACKAGE).parts}
    importing = [p.relative_to(PACKAGE) for p in sorted(PACKAGE.rglob("*.py")) if p not in glue
                 and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "pytest" in ast.unparse(n).split()
                         for n in ast.walk(ast.parse(p.read_text())))]
    assert importing == []


def test_every_module_is_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed (pip install '.[dev]')")
def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "."], cwd=PACKAGE.parent.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_command_line_starts_without_torch():
    code = "import sys, auditlens.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_public_names_resolve_on_first_use():
    import auditlens

    for name in auditlens.__all__:
        assert getattr(auditlens, name) is not None, name
    assert auditlens.capture.__module__ == "auditlens.engine.capture"  # the function, not a subpackage
