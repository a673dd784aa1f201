"""Every import points down: models never reach the worker, the core never reaches Kafka, Faust or Prometheus.

Read from the source with ``ast`` (every import statement, also those inside
functions, followed transitively through first-party modules), so a lazy
import deep in a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stream_app", "models", "schemas")
EDGES = ("faust", "aiokafka", "confluent_kafka", "prometheus_client")
# The pure core and the offline layers on it never talk to a broker or a metrics registry (ARCHITECTURE.md,
# "Layers"); the worker edge (stream_app/worker) and the CLI (stream_app/cli) sit above them. The folder says which.
CORE: tuple[str, ...] = ()
CORE_PACKAGES = ("stream_app.core", "stream_app.data", "stream_app.evaluation", "stream_app.sim")
# Layers from the bottom: a module may import its own layer and those below, never one above.
LAYERS = (("schemas",), ("models",), ("stream_app.settings", "stream_app.requests", "stream_app.core"),
          ("stream_app.data", "stream_app.evaluation", "stream_app.sim"), ("stream_app.worker", "stream_app.explorer"),
          ("stream_app.cli", "stream_app.settings_doc"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(module: str, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    out: set[str] = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return out


@cache
def reach(module: str) -> frozenset[str]:
    """Everything ``module`` imports, directly or through first-party modules."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in _imports(todo.pop()):
            if name not in seen:
                seen.add(name)
                if name in MODULES and name != module:
                    todo.append(name)
    return frozenset(seen)


def _top(names) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_the_graph_sees_the_edges():
    """The check itself: the worker's app reaches Faust, the model edge Prometheus (its metrics)."""
    assert "faust" in _top(reach("stream_app.worker.app")) and "prometheus_client" in _top(reach("stream_app.worker.scoring"))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("models")))
def test_models_import_nothing_of_the_worker(module):
    assert "stream_app" not in _top(reach(module)), sorted(n for n in reach(module) if n.startswith("stream_app"))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("schemas")))
def test_schemas_import_only_themselves(module):
    assert not _top(reach(module)) & {"stream_app", "models"}


def _in_core(m: str) -> bool:
    return m in CORE or any(m == p or m.startswith(p + ".") for p in CORE_PACKAGES)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in_core(m)))
def test_the_core_never_reaches_kafka_faust_or_prometheus(module):
    assert not _top(reach(module)) & set(EDGES), sorted(n for n in reach(module) if n.split(".")[0] in EDGES)


def test_no_import_cycle_at_module_level():
    graph = {m: {n for n in _imports(m, top_level_only=True) if n in MODULES and n != m} for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in graph[m]:
            assert state.get(n) != 1, f"import cycle: {' -> '.join(path[path.index(n):] + [n])}"
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def _layer(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_every_import_points_down_the_folders(module):
    """core < data, evaluation, sim < worker < cli: the folder a module is in says what it may import."""
    mine = _layer(module)
    up = sorted(n for n in _imports(module) if n in MODULES and (_layer(n) or 0) > mine)
    assert not up, f"{module} imports a layer above it: {up}"


def test_every_module_of_stream_app_has_a_layer():
    assert not [m for m in MODULES if m.startswith("stream_app.") and _layer(m) is None]
