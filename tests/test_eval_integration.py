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


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model whose B matrices are non-zero, so outputs differ from the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


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


def test_every_task_yaml_loads_and_scores_with_builtin_prompts(in_tmp_repo, tiny_model_dir):
    from selfspec.evaluation.harness import evaluate, load_model
    from selfspec.evaluation.tasks import task_manager

    params = make_repo(in_tmp_repo, tiny_model_dir, ["evaluate.limit=2", "base.dtype=float32"])
    tm = task_manager(params.evaluate.include_path)
    model, tok = load_model("models/prepare_model", __import__("torch").float32, "cpu")
    out = evaluate(model, tok, params.evaluate.tasks, tm, params.evaluate, 0, "cpu")
    leaves = {n for n in tm.task_index if not n.startswith("_")} - {"mmlu_medical", "mmlu_medical_cloze"}
    assert leaves <= set(out.metrics) and {"mmlu_medical", "mmlu_medical_cloze"} <= set(out.metrics)
    for task, metrics in out.metrics.items():
        assert 0.0 <= metrics["acc"] <= 1.0 and metrics["n"] >= 2, task
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


def test_stages_compare_log_to_mlflow_and_gate_both_ways(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient
    from selfspec.stages import evaluate, evaluate_base

    tasks = "evaluate.tasks=[pubmedqa,medmcqa_cloze,medqa_4options]"
    params = make_repo(in_tmp_repo, tiny_model_dir, [tasks, "evaluate.limit=4", "evaluate.margin=-1.0"])
    shutil.copytree(adapter_dir, "models/train/adapter")
    registry = _mlflow_training_run(in_tmp_repo, monkeypatch)
    Path("registry").mkdir()
    Path("registry/train.json").write_text(json.dumps(registry))

    evaluate_base.main(params)
    base_metrics = read_json("metrics/evaluate_base.json")
    assert base_metrics["pubmedqa"]["n"] == 4 and base_metrics["skipped"] == []
    evaluate.main(params)  # margin -1: any result passes

    metrics = read_json("metrics/evaluate.json")
    assert set(metrics) == {"pubmedqa", "medmcqa_cloze", "medqa_4options", "gate", "skipped", "timing"}
    assert metrics["timing"]["examples"] > 0 and "timing" not in read_json("data/evaluate/run.json")
    for task in ("pubmedqa", "medmcqa_cloze", "medqa_4options"):
        for row in metrics[task].values():
            assert set(row) == {"base", "specialized", "delta", "base_stderr", "specialized_stderr"}
            assert row["delta"] == pytest.approx(row["specialized"] - row["base"])
        assert metrics[task]["acc"]["base"] == base_metrics[task]["acc"]
    assert metrics["gate"]["promoted"] is True and metrics["gate"]["alias"] == "champion"
    assert Path("data/evaluate/comparison.png").read_bytes()[:4] == b"\x89PNG"
    for stage in ("evaluate_base", "evaluate"):
        assert read_json(f"data/{stage}/results/pubmedqa.json")["n-samples"]["effective"] == 4

    base_ll = [s["filtered_resps"] for s in read_jsonl("data/evaluate_base/samples/pubmedqa.jsonl")]
    spec_ll = [s["filtered_resps"] for s in read_jsonl("data/evaluate/samples/pubmedqa.jsonl")]
    assert len(base_ll) == len(spec_ll) == 4 and base_ll != spec_ll, (
        "the merged adapter changes log-likelihoods"
    )

    client = MlflowClient()
    run = client.get_run(registry["run_id"])
    key = "eval/pubmedqa/acc_norm"
    assert run.data.metrics[f"{key}/base"] == pytest.approx(metrics["pubmedqa"]["acc_norm"]["base"])
    assert run.data.metrics[f"{key}/delta"] == pytest.approx(metrics["pubmedqa"]["acc_norm"]["delta"])
    assert run.data.metrics["eval/gate/promoted"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(registry["run_id"], "evaluate")}
    assert artifacts == {"evaluate/comparison.png", "evaluate/comparison.json"}
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == registry["version"]

    # the same model under a margin it cannot reach: not promoted, and the alias it held goes
    evaluate.main(load_params(REPO / "params.yaml", [*_overrides(params), "evaluate.margin=1.0"]))
    gate = read_json("metrics/evaluate.json")["gate"]
    assert gate["promoted"] is False and gate["alias"] is None and "< margin +1.0000" in gate["reason"]
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert client.get_run(registry["run_id"]).data.metrics["eval/gate/promoted"] == 0.0


def _overrides(params) -> list[str]:
    return [
        f"base.data_mirror={params.base.data_mirror}",
        f"prepare_evals.sources={params.prepare_evals.sources}",
        "evaluate.tasks=[pubmedqa,medmcqa_cloze,medqa_4options]",
        "evaluate.limit=4",
    ]


def test_evaluate_refuses_a_base_run_with_other_settings(
    in_tmp_repo, tiny_model_dir, adapter_dir, monkeypatch
):
    from selfspec.errors import StageError
    from selfspec.stages import evaluate, evaluate_base

    params = make_repo(in_tmp_repo, tiny_model_dir, ["evaluate.tasks=[pubmedqa]", "evaluate.limit=2"])
    shutil.copytree(adapter_dir, "models/train/adapter")
    Path("registry").mkdir()
    Path("registry/train.json").write_text(json.dumps(_mlflow_training_run(in_tmp_repo, monkeypatch)))
    evaluate_base.main(params)
    other = load_params(
        REPO / "params.yaml",
        [f"base.data_mirror={params.base.data_mirror}", "evaluate.tasks=[pubmedqa]", "evaluate.limit=3"],
    )
    with pytest.raises(StageError, match="limit: base 2 vs now 3"):
        evaluate.main(other)
