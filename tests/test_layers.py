"""The layout keeps its promises: imports run one way (no circle), psycopg and the PostgreSQL
store are imported only inside ``execo_engine/store/``, and the launcher, the CLI and the
pytest plugin know no store medium (only :mod:`execo_engine.store.locations` and the
contract). Read from the source with ``ast``, imports inside functions included."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("execo_engine", "pytest_execo")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    """``{module: modules of ours it imports}``."""
    files = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    return {
        name: {imported for imported in imports_of(path) if imported in files} - {name}
        for name, path in files.items()
    }


def test_no_import_circle():
    edges = graph()
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError(" -> ".join([*stack[stack.index(module) :], module]))
        if module in done:
            return
        for imported in sorted(edges[module]):
            visit(imported, [*stack, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert len(done) == len(edges) > 40  # every module seen (a renamed tree would be empty)


def test_only_the_store_knows_its_media():
    medium = ("execo_engine.store.directory", "execo_engine.store.postgresql", "psycopg")
    for path in [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]:
        name = module_name(path)
        if name.startswith("execo_engine.store"):
            continue
        leaks = sorted(i for i in imports_of(path) if i.startswith(medium))
        assert leaks == [], f"{name} imports {leaks}: go through execo_engine.store.locations"


def test_the_engine_of_record_logs_holds_no_medium():
    for path in (ROOT / "execo_engine" / "store" / "log").glob("*.py"):
        imported = imports_of(path)
        assert not {"fcntl", "psycopg"} & imported, path
        assert not any(
            i.startswith(("execo_engine.store.directory", "execo_engine.store.post"))
            for i in imported
        ), path


def render() -> str:
    """The import graph as text: each module, and the modules of ours it imports."""
    edges = graph()
    return "\n".join(
        textwrap.fill(
            f"{name} imports {', '.join(sorted(edges[name])) or 'nothing of ours'}",
            width=88,
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
        for name in sorted(edges)
    )


if __name__ == "__main__":  # the architecture page shows it (docs/_hooks/generated.py)
    print(render())
