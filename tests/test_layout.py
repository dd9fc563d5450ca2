"""The layout shows the architecture: the runtime package has no import cycle, never imports the tooling, and the
HTTP routes reach the app only through http/context.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "datafy"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str] = frozenset()) -> set[str]:  # type: ignore[assignment]
    """Every module `path` imports, at any depth of its code (function-level imports included): for
    `from package import name`, the submodule when `name` is one, else the package."""
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (imports for annotations only, never run)."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: {m for m in imports_of(path, modules) if m in modules and m != name} for name, path in paths.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search; a package's __init__ importing its own submodules is fine
    only when none of them imports the package back)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_runtime_package_has_no_import_cycle() -> None:
    assert cycle(graph()) is None, " -> ".join(cycle(graph()) or [])


def test_the_runtime_never_imports_the_tooling() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert not {m for m in imports_of(path) if m.split(".")[0] in ("devtools", "tests", "bench")}, path


def test_route_modules_import_no_other_route_module_nor_the_app() -> None:
    shared = {"datafy.http.context", "datafy.http.errors", "datafy.http.auth", "datafy.http.validation",
              "datafy.http.intake"}  # fmt: skip
    routes = {module_name(p) for p in (PACKAGE / "http").glob("*.py")} - shared - {"datafy.http", "datafy.http.app"}
    edges = graph()
    for name in routes:
        reached = {m for m in edges[name] if m.startswith("datafy.http")} - shared - {"datafy.http"}
        assert not reached, f"{name} imports {reached}"
