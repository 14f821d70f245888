"""The benchmark on a tiny model and fixture data in the public formats: every task YAML loads and
scores with the prompts of lm-eval's built-in tasks; base vs adapter differ; the stages write the
documented files, log into the training run in MLflow and move alias ``champion`` by the gate."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from selfspec.config import load_params
from selfspec.io import read_json, read_jsonl
from tests.conftest import REPO
from tests.fixtures.evals.builders import (
    build_eval_mirror,
    medmcqa_rows,
    medqa_rows,
    mmlu_rows,
    sources_for_mirror,
)

pytestmark = pytest.mark.integration
MODEL_NAME = "biomedical-expert"


def builtin(module_path: str):
    """A preprocessing module of lm-eval's built-in tasks (the reference prompts)."""
    import lm_eval

    path = Path(lm_eval.__file__).parent / "tasks" / module_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def builtin_mmlu_prompt(folder: str, row: dict) -> str:
    """lm-eval's built-in MMLU anatomy prompt (description + doc_to_text) for a cais/mmlu row."""
    import lm_eval
    import yaml
    from lm_eval.utils import apply_template

    tasks = Path(lm_eval.__file__).parent / "tasks/mmlu" / folder
    template = next(tasks.glob("_*template_yaml")).read_text()
    doc_to_text = yaml.safe_load(template)["doc_to_text"]
    description = yaml.safe_load((tasks / "mmlu_anatomy.yaml").read_text())["description"]
    return description + apply_template(doc_to_text, row)


@pytest.fixture
def adapter_dir(lora_adapter) -> Path:
    return lora_adapter


def make_repo(root: Path, tiny_model_dir: Path, overrides=()):
    """A project folder: evals/ (the shipped suite), the tiny base model, prepared fixture data."""
    from selfspec.stages import prepare_evals

    (root / "evals").symlink_to(REPO / "evals")
    (root / "models").mkdir()
    (root / "models/prepare_model").symlink_to(tiny_model_dir)
    mirror = build_eval_mirror(root / "mirror")
    sources = sources_for_mirror(REPO / "evals/sources.yaml", root / "sources.yaml", mirror)
    params = load_params(
        REPO / "params.yaml", [f"base.data_mirror={mirror}", f"prepare_evals.sources={sources}", *overrides]
    )
    prepare_evals.main(params)
    return params


MC_TASKS = ["pubmedqa", "medmcqa", "medmcqa_cloze", "medqa_4options", "medqa_4options_cloze", "mmlu_medical",
            "mmlu_medical_cloze"]  # fmt: skip


def chosen_is_gold(sample: dict) -> float:
    """1.0 when the highest log-likelihood choice is the gold one (recomputed from the logged
    log-likelihoods, independently of lm-eval's own ``acc``)."""
    lls = [ll for ll, _ in sample["filtered_resps"]]
    choices = [cont.strip() for _, cont in sample["arguments"]]
    gold = sample["target"] if isinstance(sample["target"], int) else choices.index(sample["target"].strip())
    return float(max(range(len(lls)), key=lls.__getitem__) == gold)


def test_every_task_yaml_loads_and_scores_with_builtin_prompts(in_tmp_repo, tiny_model_dir):
    from selfspec.evaluation.harness import evaluate, load_model
    from selfspec.evaluation.tasks import task_manager

    overrides = ["evaluate.limit=2", "base.dtype=float32", f"evaluate.tasks=[{','.join(MC_TASKS)}]"]
    params = make_repo(in_tmp_repo, tiny_model_dir, overrides)
    tm = task_manager(params.evaluate.include_path)
    model, tok = load_model("models/prepare_model", __import__("torch").float32, "cpu")
    out = evaluate(model, tok, params.evaluate.tasks, tm, params.evaluate, 0, "cpu", params.train.template)
    generative = {"pubmedqa_gen", "pubmedqa_long", "ncbi_disease_ner", "jnlpba_ner", "chemprot_rel"}
    leaves = {n for n, e in tm.task_index.items() if not n.startswith("_") and e.kind.name == "TASK"}
    mc_leaves = leaves - generative  # those are tests/test_eval_generative.py's (biomed_gen)
    assert mc_leaves <= set(out.samples) and {"mmlu_medical", "mmlu_medical_cloze"} <= set(out.metrics)
    for task in mc_leaves & set(out.samples):
        # acc is the share of documents whose most likely choice is the gold one, over exactly 2
        per_doc = [chosen_is_gold(s) for s in out.samples[task]]
        assert [s["acc"] for s in out.samples[task]] == per_doc, task
        assert out.metrics[task]["acc"] == sum(per_doc) / 2 and out.metrics[task]["n"] == 2, task
    leaves = [t for t in out.samples if t.startswith("mmlu_") and not t.endswith("_cloze")]
    assert len(leaves) == 6 and out.metrics["mmlu_medical"]["n"] == 12
    assert out.metrics["mmlu_medical"]["acc"] == pytest.approx(sum(out.metrics[t]["acc"] for t in leaves) / 6)
    assert "acc_norm" in out.metrics["pubmedqa"] and "acc_norm" in out.metrics["mmlu_anatomy_cloze"]

    def prompt(task: str) -> str:
        return out.samples[task][0]["arguments"][0][0]

    pqal = json.loads((in_tmp_repo / "mirror/pubmedqa/ori_pqal.json").read_text())
    first_test = read_jsonl("data/prepare_evals/pubmedqa.jsonl")[0]["id"]
    assert prompt("pubmedqa") == builtin("pubmedqa/preprocess_pubmedqa.py").doc_to_text(pqal[first_test])
    assert prompt("medmcqa") == builtin("medmcqa/utils_medmcqa.py").doc_to_text(medmcqa_rows()[0])
    row = medqa_rows()[0]
    hf_row = {"sent1": row["question"], **{f"ending{k}": row["options"][c] for k, c in enumerate("ABCD")}}
    assert prompt("medqa_4options") == builtin("medqa/preprocess_medqa.py").doc_to_text(hf_row)
    mmlu_row = mmlu_rows("anatomy", 1)[0]
    for task, folder in (("mmlu_anatomy", "default"), ("mmlu_anatomy_cloze", "continuation")):
        assert prompt(task) == builtin_mmlu_prompt(folder, mmlu_row), task
    assert [a[1] for a in out.samples["medmcqa_cloze"][0]["arguments"]] == [
        " the liver",
        " the kidney",
        " the lung",
        " the heart",
    ]


def _mlflow_training_run(tmp: Path, monkeypatch) -> dict:
    """A tracking store with a finished training run and a registered version, as train leaves it."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
    client = MlflowClient()
    exp = client.create_experiment("selfspec-test", artifact_location=(tmp / "artifacts").as_uri())
    run = client.create_run(exp)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL_NAME)
    mv = client.create_model_version(MODEL_NAME, f"runs:/{run.info.run_id}/adapter", run_id=run.info.run_id)
    return {
        "tracking_uri": f"sqlite:///{tmp}/mlflow.db",
        "experiment_id": exp,
        "run_id": run.info.run_id,
        "model_name": MODEL_NAME,
        "version": str(mv.version),
        "alias": "candidate",
    }


ROW_KEYS = {"base", "specialized", "delta", "ci_low", "ci_high", "n", "p_value", "better", "worse"} | {
    "base_stderr",
    "specialized_stderr",
}
GATE_TASKS = [
    "evaluate.tasks=[pubmedqa,medmcqa_cloze,medqa_4options]",
    "evaluate.limit={default: 4, pubmedqa: 5}",
    "evaluate.primary_task=pubmedqa",
    "evaluate.primary_metric=acc_norm",
    "evaluate.n_boot=200",
]


def test_stages_compare_log_to_mlflow_and_gate_both_ways(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from selfspec.stages import evaluate, evaluate_base

    params = make_repo(in_tmp_repo, tiny_model_dir, [*GATE_TASKS, "evaluate.margin=-1.0"])
    shutil.copytree(adapter_dir, "models/train/adapter")
    registry = _mlflow_training_run(in_tmp_repo, monkeypatch)
    Path("registry").mkdir()
    Path("registry").mkdir(exist_ok=True)
    Path("registry/train.json").write_text(json.dumps(registry))

    evaluate_base.main(params)
    base_metrics = read_json("metrics/evaluate_base.json")
    assert base_metrics["pubmedqa"]["n"] == 5 and base_metrics["medqa_4options"]["n"] == 4  # per-task limits
    assert base_metrics["skipped"] == []
    evaluate.main(params)  # margin -1: any interval's lower bound reaches it

    metrics = read_json("metrics/evaluate.json")
    assert set(metrics) == {"pubmedqa", "medmcqa_cloze", "medqa_4options", "gate", "skipped", "timing"}
    assert metrics["timing"]["examples"] > 0 and "timing" not in read_json("data/evaluate/run.json")
    for task in ("pubmedqa", "medmcqa_cloze", "medqa_4options"):
        base_s = {s["doc_id"]: s for s in read_jsonl(f"data/evaluate_base/samples/{task}.jsonl")}
        spec_s = {s["doc_id"]: s for s in read_jsonl(f"data/evaluate/samples/{task}.jsonl")}
        assert set(base_s) == set(spec_s) and all(
            base_s[d]["doc_hash"] == spec_s[d]["doc_hash"] for d in base_s
        )
        for metric, row in metrics[task].items():
            assert set(row) == ROW_KEYS
            diffs = [spec_s[d][metric] - base_s[d][metric] for d in base_s]  # the per-doc 0/1 values
            assert row["delta"] == pytest.approx(sum(diffs) / len(diffs)) and row["n"] == len(diffs)
            assert (row["better"], row["worse"]) == (diffs.count(1.0), diffs.count(-1.0))
            assert row["ci_low"] <= row["delta"] <= row["ci_high"] and row["p_value"] is not None
        assert metrics[task]["acc"]["base"] == base_metrics[task]["acc"]
    gate = metrics["gate"]
    assert gate["promoted"] is True and gate["alias"] == "champion" and gate["primary"] == "pubmedqa/acc_norm"
    row = metrics["pubmedqa"]["acc_norm"]
    assert gate["reason"] == (f"pubmedqa/acc_norm: delta {row['delta']:+.4f}, 95% CI [{row['ci_low']:+.4f}, "
                              f"{row['ci_high']:+.4f}] >= margin -1.0000")  # fmt: skip
    assert Path("data/evaluate/comparison.png").read_bytes()[:4] == b"\x89PNG"
    for stage in ("evaluate_base", "evaluate"):
        assert read_json(f"data/{stage}/results/pubmedqa.json")["n-samples"]["effective"] == 5

    base_ll = [s["filtered_resps"] for s in read_jsonl("data/evaluate_base/samples/pubmedqa.jsonl")]
    spec_ll = [s["filtered_resps"] for s in read_jsonl("data/evaluate/samples/pubmedqa.jsonl")]
    assert len(base_ll) == len(spec_ll) == 5 and base_ll != spec_ll, (
        "the merged adapter changes log-likelihoods"
    )

    client = MlflowClient()
    run = client.get_run(registry["run_id"])
    key = "eval/pubmedqa/acc_norm"
    for side in ("base", "delta", "ci_low", "ci_high", "p_value"):
        assert run.data.metrics[f"{key}/{side}"] == pytest.approx(row[side]), side
    assert run.data.metrics["eval/gate/promoted"] == 1.0
    assert run.data.metrics["eval/gate/ci_low"] == pytest.approx(row["ci_low"])
    assert run.data.tags["eval.gate"] == gate["reason"].split(";")[0]
    artifacts = {a.path for a in client.list_artifacts(registry["run_id"], "evaluate")}
    assert artifacts == {"evaluate/comparison.png", "evaluate/comparison.json"}
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == registry["version"]

    # the same model under a margin it cannot reach: not promoted, and the alias it held goes
    evaluate.main(load_params(REPO / "params.yaml", [*_overrides(params), "evaluate.margin=1.0"]))
    again = read_json("metrics/evaluate.json")
    assert again["pubmedqa"] == metrics["pubmedqa"], "same seed, same documents: the same interval"
    gate = again["gate"]
    assert gate["promoted"] is False and gate["alias"] is None and "] < margin +1.0000" in gate["reason"]
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert client.get_run(registry["run_id"]).data.metrics["eval/gate/promoted"] == 0.0


def _overrides(params) -> list[str]:
    return [
        f"base.data_mirror={params.base.data_mirror}",
        f"prepare_evals.sources={params.prepare_evals.sources}",
        *GATE_TASKS,
    ]


def test_evaluate_refuses_a_base_run_with_other_settings(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    from selfspec.errors import StageError
    from selfspec.stages import evaluate, evaluate_base

    params = make_repo(in_tmp_repo, tiny_model_dir, ["evaluate.tasks=[pubmedqa]", "evaluate.limit=2"])
    shutil.copytree(adapter_dir, "models/train/adapter")
    Path("registry").mkdir()
    Path("registry").mkdir(exist_ok=True)
    Path("registry/train.json").write_text(json.dumps(_mlflow_training_run(in_tmp_repo, monkeypatch)))
    evaluate_base.main(params)
    other = load_params(
        REPO / "params.yaml",
        [f"base.data_mirror={params.base.data_mirror}", "evaluate.tasks=[pubmedqa]", "evaluate.limit=3"],
    )
    with pytest.raises(StageError, match="limit: base 2 vs now 3"):
        evaluate.main(other)


def test_evaluate_pairs_by_document_and_refuses_base_scores_of_other_documents(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    from selfspec.errors import StageError
    from selfspec.stages import evaluate, evaluate_base

    overrides = ["evaluate.tasks=[pubmedqa]", "evaluate.limit=3", "evaluate.primary_task=pubmedqa"]
    params = make_repo(in_tmp_repo, tiny_model_dir, [*overrides, "evaluate.primary_metric=acc"])
    shutil.copytree(adapter_dir, "models/train/adapter")
    Path("registry").mkdir(exist_ok=True)
    Path("registry/train.json").write_text(json.dumps(_mlflow_training_run(in_tmp_repo, monkeypatch)))
    evaluate_base.main(params)
    samples = Path("data/evaluate_base/samples/pubmedqa.jsonl")
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:2]) + "\n")  # the base side lost document 2
    with pytest.raises(StageError, match=r"pubmedqa: base and specialized scored different documents.*"
                       r"only specialized: \[\(2, 'none'\)\]"):  # fmt: skip
        evaluate.main(params)
    edited = json.loads(lines[1])
    edited["doc_hash"] = "0" * 64  # same id, another document
    samples.write_text("\n".join([lines[0], json.dumps(edited), lines[2]]) + "\n")
    with pytest.raises(StageError, match=r"documents \[\(1, 'none'\)\] differ .*doc_hash"):
        evaluate.main(params)


EXTRA_SUITE = REPO / "tests/fixtures/evals/extra_suite"


def _suite_utils():
    """The fixture suite's own metric code, as lm-eval loads it (``!function utils...``)."""
    spec = importlib.util.spec_from_file_location("extra_suite_utils", EXTRA_SUITE / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_extra_suite_is_scored_compared_and_gated_like_the_builtin_tasks(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    """A folder of YAMLs with its own utils.py (a generative task with a corpus-level F1 and a
    multiple-choice task, in one group): include_path + tasks, nothing else."""
    from selfspec.stages import evaluate, evaluate_base

    shutil.copytree(EXTRA_SUITE, "my_evals")
    overrides = ["evaluate.include_path=[evals/tasks,my_evals]", "evaluate.tasks=[my_suite]",
                 "evaluate.limit={default: 6, my_mc: null}", "evaluate.primary_task=my_suite",
                 "evaluate.primary_metric=pooled", "evaluate.margin=-1.0", "evaluate.n_boot=200"]  # fmt: skip
    params = make_repo(in_tmp_repo, tiny_model_dir, overrides)
    shutil.copytree(adapter_dir, "models/train/adapter")
    Path("registry").mkdir(exist_ok=True)
    Path("registry/train.json").write_text(json.dumps(_mlflow_training_run(in_tmp_repo, monkeypatch)))
    evaluate_base.main(params)
    evaluate.main(params)

    metrics = read_json("metrics/evaluate.json")
    assert set(metrics) == {"my_gen", "my_mc", "my_suite", "gate", "skipped", "timing"}
    gen, mc, pooled = metrics["my_gen"]["f1"], metrics["my_mc"]["acc"], metrics["my_suite"]["pooled"]
    utils = _suite_utils()
    for stage, side in (("evaluate_base", "base"), ("evaluate", "specialized")):
        samples = read_jsonl(f"data/{stage}/samples/my_gen.jsonl")
        # the suite's process_results on the generated text gives the logged [tp, fp, fn] ...
        per_doc = [utils.process_gen(s["doc"], [s["filtered_resps"][0]])["f1"] for s in samples]
        assert [s["f1"] for s in samples] == per_doc and len(per_doc) == 6  # limit: default 6
        assert sum(fp for _, fp, _ in per_doc) > 0, "the model wrote words, and they were scored"
        # ... and its own aggregation over them is the reported number
        assert gen[side] == pytest.approx(utils.micro_f1(per_doc))
    gen_text = [s["filtered_resps"][0] for s in read_jsonl("data/evaluate/samples/my_gen.jsonl")]
    assert gen_text != [s["filtered_resps"][0] for s in read_jsonl("data/evaluate_base/samples/my_gen.jsonl")]
    assert mc["n"] == 8 and mc["p_value"] is not None  # my_mc: null, all 8 documents; 0/1 per doc: McNemar
    assert gen["n"] == 6 and gen["p_value"] is None  # corpus-level F1: interval only
    assert gen["ci_low"] <= gen["delta"] <= gen["ci_high"]
    assert pooled["base"] == pytest.approx((gen["base"] + mc["base"]) / 2)
    assert pooled["delta"] == pytest.approx((gen["delta"] + mc["delta"]) / 2) and pooled["n"] == 14
    gate = metrics["gate"]
    assert gate["primary"] == "my_suite/pooled" and gate["promoted"] is True and gate["alias"] == "champion"
    assert gate["reason"].startswith(f"my_suite/pooled: delta {pooled['delta']:+.4f}, 95% CI [")


def test_dvc_metrics_diff_compares_the_paired_numbers_of_two_experiments(tmp_path):
    """metrics/evaluate.json stays flat enough for `dvc metrics diff`: every number of a row is a
    leaf it compares (two seeds: the same deltas, other intervals)."""
    import subprocess

    from lm_eval.api.metrics import mean

    from selfspec.evaluation.compare import compare, gate
    from selfspec.evaluation.tasks import GroupSpec, Suite, TaskSpec

    suite = Suite({"qa": TaskSpec({"acc": mean}, "acc", 40)}, {"g": GroupSpec(["qa"], [])}, {"qa": "g"})
    base = [{"doc_id": i, "doc_hash": str(i), "metrics": ["acc"], "acc": float(i % 2)} for i in range(40)]
    spec = [{**s, "acc": float(i % 3 != 0)} for i, s in enumerate(base)]

    def write(seed: int) -> dict:
        cmp = compare({"qa": base}, {"qa": spec}, suite, seed=seed, n_boot=200, confidence=0.95)
        doc = {**cmp, "gate": gate(cmp, "g", "pooled", 0.0, 0.95), "skipped": [], "timing": {"seconds": 1.0}}
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics/evaluate.json").write_text(json.dumps(doc))
        return cmp

    def sh(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    stage = "stages:\n  evaluate:\n    cmd: 'true'\n    metrics:\n      - metrics/evaluate.json:\n"
    (tmp_path / "dvc.yaml").write_text(stage + "          cache: false\n")
    old = write(1)
    sh("git", "add", "-A")
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed 1")
    new = write(2)
    diff = json.loads(sh("dvc", "metrics", "diff", "--json"))["metrics/evaluate.json"]
    for key, (task, metric) in {"qa.acc.ci_low": ("qa", "acc"), "g.pooled.ci_low": ("g", "pooled")}.items():
        was, now = old[task][metric]["ci_low"], new[task][metric]["ci_low"]
        assert diff[key] == {"old": was, "new": now, "diff": pytest.approx(now - was)}
    assert diff["gate.ci_low"]["new"] == new["g"]["pooled"]["ci_low"]
    assert not {"qa.acc.delta", "qa.acc.base", "qa.acc.n", "g.pooled.delta"} & set(diff)  # unchanged
    shown = json.loads(sh("dvc", "metrics", "show", "--json"))[""]["data"]["metrics/evaluate.json"]["data"]
    assert shown["qa"]["acc"] == {k: v for k, v in new["qa"]["acc"].items() if v is not None}
