"""``train.source: gold``: real labelled examples of the gated suite's tasks, asked as the suite asks.

The tasks are the members of ``evaluate.primary_task`` (biomedical: the ``biomed_gen`` group), read
from their lm-eval YAMLs in ``evaluate.include_path``. Each example is the pair the task's own
``doc_to_text`` builds: the suite's ``utils.py`` ends every prompt in ``render(instruction, input)``,
and this module loads its own copy of that file with ``render`` bound to a recorder, so the pair is
the suite's, not a copy of its texts; the trainer then renders it through ``train.template`` exactly
as the evaluation does. The output is the task's ``doc_to_target`` (yes / no / maybe, the
conclusion, "mention, mention" or "none", the CPR group): what its parser reads as fully correct.

Never a document that evaluate scores. lm-eval scores the first ``evaluate.limit`` documents of a
task's test file, in file order (``selfspec.evaluation.tasks.sample_indices``); where several tasks
read one file (PubMedQA: three), the largest of their limits counts. Examples come from:

- the data set's ``fewshot`` split when prepare_evals wrote one (PubMedQA: the 500 labelled PQA-L
  questions outside the 500-PMID test split); the whole test split is then kept out, whatever the
  limit. Only the letter-choice ``pubmedqa`` task ever reads that split, as demonstrations when
  ``evaluate.num_fewshot`` > 0, never as scored documents;
- else the test file's documents after the evaluated ones (NCBI-disease, JNLPBA, ChemProt: dev splits).
  A document there is a sentence: the CoNLL files mark no abstracts, so the first unevaluated
  sentences may share an abstract with the last evaluated one (never the sentence itself).

A candidate is dropped when its id or its text equals that of an evaluated document: the files hold
repeated sentences. The text is the question and context as a sequence of words (case, spacing and
punctuation folded), so ChemProt's entity marks drop out and the same sentence with another pair
marked is the same document (within the pool, only a verbatim repeat is dropped: another pair of one
sentence is another example). ``train.gold_per_task`` examples per task are then drawn, seeded by
``base.seed`` and the task's name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, StageError

log = logging.getLogger(__name__)

STAGE = "train"
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Function:
    """A ``!function module.name`` reference of a task YAML (lm-eval resolves it beside the YAML)."""

    ref: str


@dataclass
class Index:
    tasks: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)  # name -> (config, folder)
    groups: dict[str, list[str]] = field(default_factory=dict)  # name -> member names


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: Function(loader.construct_scalar(node)))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: cannot parse YAML: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("include"), str):
        data = {**_yaml(path.parent / data["include"]), **data}
    return data if isinstance(data, dict) else {}


def index_suite(include_path: list[str]) -> Index:
    """The task and group configs of every YAML under ``include_path`` (as lm-eval indexes them)."""
    index = Index()
    for folder in include_path:
        for path in sorted(Path(folder).rglob("*.yaml")):
            cfg = _yaml(path)
            if "group" in cfg:
                index.groups[cfg["group"]] = [t for t in cfg.get("task") or [] if isinstance(t, str)]
            elif isinstance(cfg.get("task"), str):
                index.tasks[cfg["task"]] = (cfg, path.parent)
    return index


def leaf_tasks(index: Index, name: str) -> list[str]:
    if name in index.tasks:
        return [name]
    if name not in index.groups:
        raise StageError(STAGE, f"train.source=gold: evaluate.primary_task {name!r} is no task or group "
                         "in evaluate.include_path")  # fmt: skip
    return [leaf for member in index.groups[name] for leaf in leaf_tasks(index, member)]


def split_file(cfg: dict[str, Any]) -> Path | None:
    files = (cfg.get("dataset_kwargs") or {}).get("data_files") or {}
    return Path(files["test"]) if isinstance(files, dict) and isinstance(files.get("test"), str) else None


def task_limit(index: Index, task: str, limit: Any) -> int | None:
    """``evaluate.limit`` of one task: its own key, else a group's that holds it, else ``default``."""
    if not isinstance(limit, dict):
        return limit
    for key in (task, *(g for g, members in index.groups.items() if task in members)):
        if key in limit:
            return limit[key]
    return limit.get("default")


def evaluated_count(index: Index, path: Path, limit: Any, n_docs: int) -> int:
    """How many leading documents of ``path`` some task scores (the largest limit of its readers)."""
    limits = [task_limit(index, t, limit) for t, (cfg, _) in index.tasks.items() if split_file(cfg) == path]
    return n_docs if None in limits else min(n_docs, max(limits, default=0))


def identity(doc: dict[str, Any]) -> str:
    text = " ".join(str(doc.get(key) or "") for key in ("question", "context"))
    return hashlib.sha256(" ".join(_WORDS.findall(text.casefold())).encode()).hexdigest()


def _recording_utils(path: Path) -> Any:
    """A private copy of a suite's ``utils.py`` whose ``render`` returns the (instruction, input) pair."""
    spec = importlib.util.spec_from_file_location(f"selfspec_gold_{path.parent.name}_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise StageError(STAGE, f"train.source=gold: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.render = lambda instruction, input_text="": (instruction, input_text)
    return module


def instruction_form(task: str, cfg: dict[str, Any], folder: Path) -> tuple[Callable, Callable]:
    """``(doc -> (instruction, input), doc -> answer)`` of an instruction-style generative task."""
    text, target = cfg.get("doc_to_text"), cfg.get("doc_to_target")
    if (
        cfg.get("output_type") != "generate_until"
        or not isinstance(text, Function)
        or cfg.get("process_docs")
    ):
        raise StageError(STAGE, f"train.source=gold: task {task} is not an instruction-style generative task "
                         "(generate_until, doc_to_text a utils function, no process_docs)")  # fmt: skip
    modules: dict[str, Any] = {}

    def function(ref: Function) -> Callable:
        name, _, attr = ref.ref.rpartition(".")
        module = modules.setdefault(name, _recording_utils(folder / f"{name}.py"))
        return getattr(module, attr)

    if isinstance(target, Function):
        return function(text), function(target)
    if isinstance(target, str) and target.isidentifier():
        return function(text), lambda doc: doc[target]
    raise StageError(
        STAGE, f"train.source=gold: task {task}: doc_to_target {target!r} is no field or function"
    )


def candidates(index: Index, task: str, limit: Any) -> tuple[list[dict[str, Any]], Path, int]:
    """The documents a gold example of ``task`` may come from, the file they are in and how many
    leading test documents are evaluated."""
    from selfspec.io import read_jsonl

    path = split_file(index.tasks[task][0])
    if path is None or not path.is_file():
        raise StageError(STAGE, f"train.source=gold: task {task}: test data {path} not found; "
                         "run `dvc repro prepare_evals`")  # fmt: skip
    docs = read_jsonl(path)
    n_eval = evaluated_count(index, path, limit, len(docs))
    fewshot = path.parent / "fewshot" / path.name
    if fewshot.is_file():  # a split of its own: the whole test split stays out, whatever the limit
        pool_path, pool, seen = fewshot, read_jsonl(fewshot), docs
    else:
        pool_path, pool, seen = path, docs[n_eval:], docs[:n_eval]
    seen_ids, seen_keys = {d.get("id") for d in seen}, {identity(d) for d in seen}
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in pool:
        if doc.get("id") not in seen_ids and identity(doc) not in seen_keys:
            # a line repeated verbatim is one document; one sentence with other pairs marked is not
            kept.setdefault((str(doc.get("question")), str(doc.get("context"))), doc)
    return list(kept.values()), pool_path, n_eval


def task_examples(index: Index, task: str, params) -> tuple[list[dict[str, Any]], Path]:
    """``train.gold_per_task`` training records of one task, in file order."""
    cfg, folder = index.tasks[task]
    to_pair, to_target = instruction_form(task, cfg, folder)
    pool, path, n_eval = candidates(index, task, params.evaluate.limit)
    pool = [d for d in pool if str(to_target(d) or "").strip()]  # a PubMedQA item may lack its conclusion
    k = params.train.gold_per_task
    if len(pool) < k:
        raise StageError(STAGE, f"train.gold_per_task={k}: task {task} has {len(pool)} documents in {path} "
                         f"apart from the {n_eval} evaluated (evaluate.limit): lower either")  # fmt: skip
    picks = sorted(random.Random(f"{params.base.seed}:{task}").sample(range(len(pool)), k))
    return [_example(task, pool[i], to_pair, to_target) for i in picks], path


def _example(task: str, doc: dict[str, Any], to_pair: Callable, to_target: Callable) -> dict[str, Any]:
    pair = to_pair(doc)
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise StageError(STAGE, f"train.source=gold: task {task}: doc_to_text does not build its prompt "
                         "with render(instruction, input): no instruction to train on")  # fmt: skip
    return {"instruction": pair[0], "input": pair[1], "output": to_target(doc), "source": "gold",
            "task": task, "doc_id": doc["id"]}  # fmt: skip


def gold_records(params) -> tuple[list[dict[str, Any]], list[Path]]:
    """The gold examples of every task of ``evaluate.primary_task``, task by task; and the files read."""
    name = params.evaluate.primary_task
    if not name:
        raise StageError(STAGE, "train.source=gold: evaluate.primary_task is null and no domain suite set it")
    index = index_suite(params.evaluate.include_path)
    records, paths = [], []
    for task in leaf_tasks(index, name):
        examples, path = task_examples(index, task, params)
        log.info("gold: %d examples of %s from %s", len(examples), task, path)
        records += examples
        paths.append(path)
    return records, list(dict.fromkeys(paths))
