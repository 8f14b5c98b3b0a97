"""Our packages import each other without cycles, also counting the imports inside functions
(which only run later, so a cycle through them goes unnoticed until it bites).

Read from the source with :mod:`ast`, nothing is imported: ``from . import x`` and
``from .m import name`` count as importing the module they name; imports under
``if TYPE_CHECKING:`` are left out (they never run) — except for the bundle protocol agent's
parts, which must not depend on each other even for types (issue #10: each takes a small
protocol from :mod:`ucp_dtn.agent.contracts` instead of the whole core), and which must not
call each other's private methods either.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import bpv7
import convergence
import ucp_dtn

PACKAGES = [Path(package.__file__).parent for package in (bpv7, convergence, ucp_dtn)]


def module_files() -> dict[str, tuple[Path, bool]]:
    """Every module by dotted name, with its file and whether it is a package."""
    modules = {}
    for root in PACKAGES:
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root.parent).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            modules[".".join(parts)] = (path, is_package)
    return modules


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(
    name: str, source: str, is_package: bool, known: set[str], *, type_only: bool = False
) -> set[str]:
    """The modules of ``known`` that module ``name`` (of ``source``) imports, anywhere in its
    code (``type_only``: also under ``if TYPE_CHECKING:``)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test) and not type_only:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in known else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source, name))
    return {module for module in found if module in known and module != name}


@functools.cache
def import_graph(*, type_only: bool = False) -> dict[str, set[str]]:
    modules = module_files()
    known = set(modules)
    return {
        name: imported_modules(
            name, path.read_text(encoding="utf-8"), is_package, known, type_only=type_only
        )
        for name, (path, is_package) in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)) is not None:
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := walk(module)) is not None:
            return cycle
    return None


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    # codec -> messages at module level; the UCP envelope is imported by messages itself.
    assert "ucp_dtn.ucp.messages" in graph["ucp_dtn.ucp.codec"]
    assert "ucp_dtn.ucp._wire" in graph["ucp_dtn.ucp.messages"]
    assert "ucp_dtn.wire_schema" in graph["ucp_dtn.appapi.messages"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    sample = "def f():\n    from .codec import x\nif TYPE_CHECKING:\n    from .job import y\n"
    known = {"ucp_dtn.ucp.codec", "ucp_dtn.ucp.job"}
    assert imported_modules("ucp_dtn.ucp.sample", sample, False, known) == {"ucp_dtn.ucp.codec"}


@pytest.mark.parametrize("root", [path.name for path in PACKAGES])
def test_no_import_cycles(root: str) -> None:
    graph = import_graph()
    inside = {name for name in graph if name.split(".")[0] == root}
    cycle = find_cycle({name: graph[name] & inside for name in inside})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


AGENT = "ucp_dtn.agent"


def test_type_only_imports_count_when_asked() -> None:
    sample = "if TYPE_CHECKING:\n    from .core import AgentCore\n"
    known = {"ucp_dtn.agent.core"}
    assert imported_modules("ucp_dtn.agent.x", sample, False, known) == set()
    assert imported_modules("ucp_dtn.agent.x", sample, False, known, type_only=True) == known


def test_no_cycles_among_the_agents_modules_even_for_types() -> None:
    graph = import_graph(type_only=True)
    inside = {name for name in graph if name.startswith(AGENT + ".")}
    cycle = find_cycle({name: graph[name] & inside for name in inside})
    assert cycle is None, "import cycle in the agent: " + " -> ".join(cycle or [])
    # The parts that used to form circles take protocols, not the core or each other.
    for part in ("custody", "reception", "reports", "janitor", "neighbours"):
        imports = graph[f"{AGENT}.{part}"]
        assert f"{AGENT}.core" not in imports, part
        assert f"{AGENT}.contracts" in imports, part


def private_calls_across_modules(source: str, name: str) -> list[str]:
    """Uses of ``something._private`` in ``source`` where ``something`` is not ``self`` or
    ``cls`` and no class or function of the module itself defines ``_private``: reaching
    into another module's private state."""
    tree = ast.parse(source, name)
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            own.add(node.value)  # __slots__ entries
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)  # dataclass fields
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            and node.attr not in own
        ):
            found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_call_check_finds_calls_into_another_module() -> None:
    sample = "class A:\n    def _mine(self): ...\n    def f(self, core, a):\n"
    sample += "        a._mine()\n        self._x = 1\n        core._forget(1)\n"
    assert private_calls_across_modules(sample, "m") == ["m:6: core._forget"]


def test_no_agent_part_calls_a_private_method_of_another() -> None:
    found = []
    for name, (path, _) in sorted(module_files().items()):
        if name.startswith(AGENT + "."):
            found += private_calls_across_modules(path.read_text(encoding="utf-8"), name)
    assert found == []
