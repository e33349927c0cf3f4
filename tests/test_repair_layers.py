"""repair/ stands beside mutation/, not on it: both run the user's suite through report.suite_process, and
nothing in repair/ imports mutation/ (read from the source with ast; nothing is imported)."""

import ast
from pathlib import Path

REPAIR = Path(__file__).parent.parent / "src" / "auditlens" / "repair"


def imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports, relative ones written as their dots and name (``..mutation.suite``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found |= {base} | {f"{base}{'' if base.endswith('.') else '.'}{alias.name}" for alias in node.names}
    return found


def from_mutation(module: str) -> bool:
    """Whether ``module``, imported from a module of repair/, is auditlens.mutation or a module of it."""
    return any(module == name or module.startswith(f"{name}.") for name in ("auditlens.mutation", "..mutation"))


def test_nothing_in_repair_imports_mutation():
    importing = {str(p.relative_to(REPAIR)): sorted(m for m in imported_modules(p) if from_mutation(m))
                 for p in sorted(REPAIR.glob("*.py"))}
    assert {file: modules for file, modules in importing.items() if modules} == {}


def test_the_check_sees_an_import_of_mutation():
    assert from_mutation("..mutation.suite") and from_mutation("auditlens.mutation") and from_mutation("..mutation")
    assert not from_mutation(".mutation") and not from_mutation("..mutations") and not from_mutation("..report")
