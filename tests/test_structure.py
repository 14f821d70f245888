"""The house's shape, read from the source with ``ast`` (nothing imported): no import cycle, libraries
never import stages, and every stage's dvc.yaml deps cover the code it runs.

Imports inside functions count: a lazy import is still a dependency, only a cheaper one.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SRC = REPO / "src"
# Entry points sit above the stages and may import them: the CLI dispatches to them by name.
ENTRY = ("selfspec.cli", "selfspec.stages")
# What a stage imports that cannot change its outputs, so dvc.yaml need not list it: the named
# exceptions (messages only) and the params schema (params are deps through ``params:``).
NOT_OUTPUT_CODE = ("selfspec.errors", "selfspec.config")


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(src: Path = SRC) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / "selfspec").rglob("*.py"))}


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """selfspec modules that ``path`` imports (module level or inside functions)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # ``from pkg import module``
    return {m for m in found if m in known and m != name}


@cache
def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    known = modules(src)
    return {name: imported(path, name, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_facades(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without a package ``__init__``'s lazy imports of its own submodules: a factory such
    as ``generation.open_generator`` choosing a backend is the package itself, not a back edge."""
    return {v: {w for w in ws if not w.startswith(f"{v}.")} for v, ws in graph.items()}


def stage_arrows(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(library, stage)`` pairs: a library module importing a stage."""
    return sorted(
        (v, w)
        for v, ws in graph.items()
        for w in ws
        if w.startswith("selfspec.stages") and not v.startswith(ENTRY)
    )


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` may run, not looking inside NOT_OUTPUT_CODE (the params schema imports
    the model-source parser to validate ``prepare_model.source``; that runs no stage code)."""
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        if v not in seen and not v.startswith(NOT_OUTPUT_CODE):
            seen.add(v)
            todo.extend(graph[v])
    return seen


def uncovered(stage: str, deps: list[str], graph: dict[str, set[str]], src: Path = SRC) -> list[str]:
    """Source files in ``stage``'s import closure that no dvc.yaml dep (file or folder) covers."""
    known = modules(src)
    root = src.parent
    covered = [root / d for d in deps]
    missing = []
    for name in sorted(closure(graph, f"selfspec.stages.{stage}") - {"selfspec"}):
        path = known[name]
        if not any(path == d or d in path.parents for d in covered):
            missing.append(path.relative_to(root).as_posix())
    return missing


def dvc_stages(text: str | None = None) -> dict[str, dict]:
    return yaml.safe_load(text or (REPO / "dvc.yaml").read_text())["stages"]


# --- the specification -------------------------------------------------------------------------


def test_the_import_graph_has_no_cycle():
    assert cycles(package_facades(import_graph())) == []


def test_no_library_module_imports_a_stage():
    assert stage_arrows(import_graph()) == []


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_dvc_deps_cover_the_code_each_stage_runs(stage):
    deps = [d for d in dvc_stages()[stage].get("deps", []) if isinstance(d, str)]
    assert uncovered(stage, deps, import_graph()) == []


def test_every_dvc_stage_has_its_module():
    assert {f"selfspec.stages.{s}" for s in dvc_stages()} <= set(modules())


# --- the checks themselves can fail ------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_a_lazy_back_import_is_a_cycle_and_a_stage_import_is_an_arrow(tmp_path):
    src = _package(tmp_path, {
        "selfspec/__init__.py": "",
        "selfspec/stages/__init__.py": "",
        "selfspec/stages/train.py": "from selfspec.training import publish\n",
        "selfspec/training/__init__.py": "",
        "selfspec/training/publish.py": "def f():\n    from selfspec.stages.train import save\n",
        "selfspec/generation/__init__.py": "def open():\n    from selfspec.generation import hf\n",
        "selfspec/generation/hf.py": "from . import Sampling\nfrom ..stages import train\n",
    })  # fmt: skip
    graph = import_graph(src)
    assert graph["selfspec.generation.hf"] == {
        "selfspec.generation",
        "selfspec.stages",
        "selfspec.stages.train",
    }
    # generation/__init__ -> hf -> generation is the package's own backend factory, not a cycle
    assert sorted(cycles(graph)) == [
        ["selfspec.generation", "selfspec.generation.hf"],
        ["selfspec.stages.train", "selfspec.training.publish"],
    ]
    assert cycles(package_facades(graph)) == [["selfspec.stages.train", "selfspec.training.publish"]]
    assert stage_arrows(graph) == [
        ("selfspec.generation.hf", "selfspec.stages"),
        ("selfspec.generation.hf", "selfspec.stages.train"),
        ("selfspec.training.publish", "selfspec.stages.train"),
    ]


@pytest.mark.parametrize(
    ("stage", "dropped", "now_uncovered"),
    [
        ("gen_inputs", "src/selfspec/prompts",
         {"src/selfspec/prompts/__init__.py", "src/selfspec/prompts/inputs.py"}),
        ("gen_responses", "src/selfspec/retrieval", {"src/selfspec/retrieval/__init__.py"}),
        ("train", "src/selfspec/stages/train.py", {"src/selfspec/stages/train.py"}),
    ],
)  # fmt: skip
def test_removing_a_dep_from_a_copy_of_dvc_yaml_is_caught(stage, dropped, now_uncovered):
    text = (REPO / "dvc.yaml").read_text()
    deps = dvc_stages(text)[stage]["deps"]
    assert dropped in deps
    kept = [d for d in deps if d != dropped]
    missing = set(uncovered(stage, kept, import_graph()))
    assert now_uncovered <= missing
    assert all(m.startswith(dropped) for m in missing)


@pytest.mark.parametrize(("stage", "constant"), [("build_corpus", "PASSAGES"), ("gen_instructions", "OUTPUT"),
                                                 ("gen_inputs", "OUTPUT"), ("gen_responses", "OUTPUT"),
                                                 ("filter_records", "OUTPUT")])  # fmt: skip
def test_the_output_table_names_the_file_each_stage_writes(stage, constant):
    import importlib

    from selfspec.outputs import MAIN_FILE, main_file

    assert getattr(importlib.import_module(f"selfspec.stages.{stage}"), constant) == MAIN_FILE[stage]
    assert main_file(stage) == Path("data") / stage / MAIN_FILE[stage]
