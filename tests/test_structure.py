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
MAX_TOP_LEVEL_MODULES = 15  # the chain and a few shared modules; everything else lives in a package


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


def loaded_by_name(path: Path, modules: set[str]) -> set[str]:
    """The auditlens modules a module loads by name (``import_module``, ``__import__``): every string in it
    that names one, as ``auditlens.x.y``, as ``x.y`` or ``x.y:attribute`` (the registry's form), or
    relative to its package (``.x``). A module that never names ``import_module`` loads nothing so."""
    text = path.read_text()
    if "import_module" not in text and "__import__" not in text:
        return set()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value.partition(":")[0]
            for candidate in (value, f"auditlens.{value}", f"{package}{value}" if value.startswith(".") else ""):
                if candidate in modules and candidate != name:
                    found.add(candidate)
    return found


def graph(by_name: bool = False) -> dict[str, set[str]]:
    """Module -> the auditlens modules it imports; ``by_name``: and those it loads by name."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) | (loaded_by_name(p, modules) if by_name else set())
            for p in paths}


def room(module: str) -> str:
    """The room a module belongs to: a top-level module, or the top-level package it is in."""
    return ".".join(module.split(".")[:2])


def rooms(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The arrows between rooms (the package's own face, ``auditlens/__init__``, hands names on lazily and
    is no room)."""
    found: dict[str, set[str]] = {}
    for module, targets in edges.items():
        if module == "auditlens":
            continue
        found.setdefault(room(module), set()).update(room(t) for t in targets if room(t) != room(module))
    return found


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


def test_no_room_imports_upward_not_even_by_name():
    """Between rooms (top-level modules and packages) every arrow points down: a cycle of rooms is an arrow
    back up. Modules loaded by name (the registry's ``"checks.probe:probe"``, ``import_module``) count."""
    assert cycles(rooms(graph(by_name=True))) == []


def test_names_a_module_loads_by_name_are_found():
    edges = graph(by_name=True)
    assert {"auditlens.checks.probe", "auditlens.behaviour.checks"} <= edges["auditlens.registry"]
    assert cycles(rooms({"auditlens.a.x": {"auditlens.b"}, "auditlens.b": {"auditlens.a.y"}})) == [
        ["auditlens.a", "auditlens.b"]]


def test_the_top_level_is_short_and_holds_no_command_module():
    """A newcomer reads the flow from the folder list: the commands live in ``cli/``, each capability in
    its package; at most a handful of shared modules stand at the top."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert [name for name in top if name.endswith("_cli.py")] == []
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


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
