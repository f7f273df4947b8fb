"""The shape of the package, as docs/architecture.md draws it, checked from the source.

The import graph is built from the AST of every module of ``configcat_segment/`` (the
migrations aside: they are frozen history), without importing anything. It counts
imports at module level and inside functions alike: a function-level import is still a
dependency, only a later one.

``if TYPE_CHECKING:`` imports are **counted** too. They never run, but they say that one
module knows the types of another, which is what a reader (and mypy) follows; leaving them
out would let a lower layer quietly lean on a higher one's types. So a module that needs
a type from above is a layering problem to solve, not to hide.

``from package import name`` counts as importing ``package.name`` when that is a module,
and the package's ``__init__`` otherwise.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = "configcat_segment"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# The layers, lowest first. A unit (a subpackage, or a top-level module) may import units
# of its own layer or of lower ones, never of a higher one; and the units import each
# other without a cycle. docs/architecture.md draws the same picture.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    # Pure helpers: no settings, no models, no I/O of the app's own.
    (
        "foundation",
        frozenset(
            {"version", "constants", "text", "compat", "forksafe", "logthrottle", "header_names"}
        ),
    ),
    # Signal objects only (what projects connect to); sent from the layers above.
    ("signals", frozenset({"signals"})),
    # The one settings dict, and what is checked against it.
    (
        "settings",
        frozenset({"conf", "settings_validators", "redaction", "exceptions", "validators"}),
    ),
    # Segment's protocol: payloads, batching, retry verdicts, the guarded HTTP transport.
    ("segment", frozenset({"segment"})),
    # The tables: connections, receipts, events (the outbox and the log), counters; the
    # index operations their migrations use; and the SQL the database runs for them
    # (the event log's search index and event counts, kept by triggers).
    ("models", frozenset({"models", "migration_operations", "database"})),
    # Writing events (the outbox) and delivering them (dispatcher, runner, backends).
    ("delivery", frozenset({"delivery"})),
    # The two producers of events: flag changes (webhooks) and flag evaluations.
    ("producers", frozenset({"webhooks", "evaluations"})),
    # Changes missed by webhooks, found in ConfigCat's audit log.
    ("reconcile", frozenset({"reconcile"})),
    # Health, metrics, alerts, the admin's test event.
    ("operations", frozenset({"operations"})),
    # What a project touches: admin, event log, commands, URLs, middleware, checks, the
    # process hooks, the public entry points.
    (
        "surface",
        frozenset(
            {
                "(root)",
                "admin",
                "apps",
                "checks",
                "eventlog",
                "forms",
                "lifecycle",
                "management",
                "middleware",
                "serializers",
                "tasks",
                "templatetags",
                "testing",
                "urls",
                "users",
            }
        ),
    ),
)

# Pure rule modules that a lower layer may read although their package sits higher: the
# settings and the connection model validate what users type against them. Each must
# stay pure: it imports (even transitively) nothing of the app but foundation modules and
# other rule modules, so it cannot close a loop. (The tidier fix, moving them into a
# package of their own below the settings, is left for a calmer day: other branches are
# editing them.)
RULE_MODULES = frozenset(
    {
        f"{PACKAGE}.segment.addresses",  # ALLOWED_ENDPOINT_HOSTS entries
        f"{PACKAGE}.segment.regions",  # Segment regions and custom endpoints
        f"{PACKAGE}.segment.payloads",  # (via evaluations.payloads)
        f"{PACKAGE}.evaluations.exposure",  # flag key patterns, exposure policies
        f"{PACKAGE}.evaluations.privacy",  # personal data policies
        f"{PACKAGE}.evaluations.policies",  # a connection's policy fields
        f"{PACKAGE}.evaluations.payloads",  # Experiment Viewed modes
        f"{PACKAGE}.evaluations.evaluated_user",  # (via evaluations.payloads)
    }
)

MAX_LINES = 300
# Modules allowed over MAX_LINES, each with the reason. Keep it empty if at all possible.
LONG_MODULES: Mapping[str, str] = {}


# -- the graph ---------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    }


MODULES = source_files()


def _resolve(target: str) -> str:
    """``target``, or the nearest enclosing module of the package that exists."""
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def imports_of(name: str, path: Path) -> set[str]:
    """The app's modules that module ``name`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else _resolve(target))
    return {m for m in found if m in MODULES and m != name}


def module_graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def unit_of(module: str) -> str:
    """The subpackage or top-level module ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


GRAPH = module_graph()
LAYER_OF = {unit: number for number, (_, units) in enumerate(LAYERS) for unit in units}
LAYER_NAMES = [name for name, _ in LAYERS]


def unit_graph() -> dict[str, set[str]]:
    """Units and the units they import, edges into rule modules aside."""
    graph: dict[str, set[str]] = {unit_of(m): set() for m in GRAPH}
    for module, targets in GRAPH.items():
        for target in targets - RULE_MODULES:
            if unit_of(target) != unit_of(module):
                graph[unit_of(module)].add(unit_of(target))
    return graph


# -- the assertions ----------------------------------------------------------------------


def test_the_graph_sees_the_imports_it_should():
    # A guard for the checks below: a parser that found nothing would pass them all.
    assert f"{PACKAGE}.delivery.outbox" in GRAPH[f"{PACKAGE}.webhooks.receipts"]
    assert f"{PACKAGE}.conf" in GRAPH[f"{PACKAGE}.segment.transport"]
    # Function-level imports count (schedule imports run inside a method) ...
    assert f"{PACKAGE}.reconcile.run" in GRAPH[f"{PACKAGE}.reconcile.schedule"]
    # ... and so do TYPE_CHECKING ones (the package root's names for its lazy attributes).
    assert f"{PACKAGE}.evaluations.buffer" in GRAPH[PACKAGE]
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    assert cycles(GRAPH) == []


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in GRAPH}
    assert units - LAYER_OF.keys() == set(), "add new packages and modules to LAYERS"
    assert LAYER_OF.keys() - units == set(), "LAYERS names a unit that is gone"


def test_units_import_only_their_own_layer_or_lower_ones():
    upward = sorted(
        f"{module} ({LAYER_NAMES[LAYER_OF[unit_of(module)]]}) imports {target} "
        f"({LAYER_NAMES[LAYER_OF[unit_of(target)]]})"
        for module, targets in GRAPH.items()
        for target in targets - RULE_MODULES
        if LAYER_OF[unit_of(target)] > LAYER_OF[unit_of(module)]
    )
    assert upward == []


def test_no_cycle_between_units():
    assert cycles(unit_graph()) == []


def test_the_lower_layers_import_none_of_the_higher_packages():
    # Spelled out for the packages a change and an evaluation pass through.
    graph = unit_graph()
    assert graph["segment"] & {"models", "delivery", "webhooks", "evaluations"} == set()
    assert graph["models"] & {"delivery", "webhooks", "evaluations", "reconcile"} == set()
    assert graph["delivery"] & {"webhooks", "evaluations", "reconcile", "operations"} == set()
    higher = {"admin", "eventlog", "management", "operations", "reconcile"}
    for unit in ("segment", "models", "delivery", "webhooks", "evaluations"):
        assert graph[unit] & higher == set(), unit


@pytest.mark.parametrize("module", sorted(RULE_MODULES))
def test_rule_modules_are_pure(module):
    allowed = LAYERS[0][1]
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for target in GRAPH[current]:
            if target in seen:
                continue
            seen.add(target)
            assert target in RULE_MODULES or unit_of(target) in allowed, (
                f"{module} reaches {target}"
            )
            todo.append(target)


def test_no_module_is_over_the_line_limit():
    long = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    over = {name: n for name, n in long.items() if n > MAX_LINES and name not in LONG_MODULES}
    assert over == {}
    assert set(LONG_MODULES) <= set(long), "LONG_MODULES names a module that is gone"


def test_importing_the_package_loads_neither_models_nor_the_configcat_sdk():
    code = (
        "import sys, configcat_segment; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('configcatclient', 'django.db.models', 'configcat_segment.models'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT.parent,
    )
    assert result.stdout.strip() == "[]"
