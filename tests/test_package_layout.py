"""The package's shape: no import cycle among lecture_utils' modules, no private name read across them, no
function too long to read in one go."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lecture_utils"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports, at module level and inside functions alike."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module: the module itself
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_sees_lazy_imports_inside_functions():
    graph = _graph()
    assert "lecture_utils.models" in graph["lecture_utils.experiment.conditions"]  # imported inside build_model only
    assert "lecture_utils.cached" in graph["lecture_utils.data"]


def test_the_lesson_half_does_not_import_the_experiment_half():
    # lessons read results through the notebooks; in the package only these two cross over (see experiment/)
    crossing = {name for name, imported in _graph().items() if not name.startswith("lecture_utils.experiment")
                and any(m.startswith("lecture_utils.experiment") for m in imported)}
    assert crossing == {"lecture_utils.notebook", "lecture_utils.exercises.answers"}


def test_lecture_utils_has_no_import_cycle():
    assert _cycle(_graph()) is None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_reads(path: Path) -> list[str]:
    """Private names of another lecture_utils module that `path` imports or reads as ``module._name``."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("lecture_utils")):
            found += [f"from {node.module} import {a.name}" for a in node.names if _private(a.name)]
            # `from lecture_utils import data`: data is a module whose private names stay its own
            modules |= {a.asname or a.name for a in node.names if not _private(a.name)}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name.startswith("lecture_utils")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_reads_another_modules_private_names():
    # a private name used elsewhere is code in the wrong room: make it public where it is, or move it
    reads = {_module_name(f): _private_reads(f) for f in PACKAGE.rglob("*.py")}
    assert {name: found for name, found in reads.items() if found} == {}


def test_the_private_name_rule_sees_both_forms(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from lecture_utils.data import _pick\nfrom lecture_utils import datasets\n"
                     "x = datasets._IMAGE_EXTENSIONS\ny = datasets.SPLITS\n")
    assert _private_reads(probe) == ["from lecture_utils.data import _pick", "datasets._IMAGE_EXTENSIONS"]


def test_no_function_is_over_60_lines():
    # a longer function does several things; each its own name reads (and tests) better than one long body
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long[f"{_module_name(path)}.{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}


def test_reading_results_imports_no_torch_at_module_level():
    graph = _graph()
    for name in ("lecture_utils.experiment.store", "lecture_utils.experiment.conditions", "lecture_utils.augment"):
        tree = ast.parse((PACKAGE.parent / f"{name.replace('.', '/')}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not any(m == "torch" or m.startswith("torch.") for m in names), name
    assert "lecture_utils.data" not in graph["lecture_utils.experiment.store"]
