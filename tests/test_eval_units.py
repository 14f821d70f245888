"""Pure logic of the evaluate stages: metric names, comparison, gate, task plan, config check, chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfspec.errors import StageError
from selfspec.evaluation.compare import chart, compare, gate
from selfspec.evaluation.harness import flat_metrics, metric_name
from selfspec.evaluation.publish import mlflow_metrics
from selfspec.evaluation.stage import check_same_config

# MLflow's rule for metric keys (mlflow.utils.validation): these characters only.
MLFLOW_KEY = re.compile(r"^[/\w.\- ]*$")

LM_EVAL_OUT = {
    "results": {
        "pubmedqa": {"alias": "pubmedqa", "acc,none": 0.5, "acc_stderr,none": 0.05, "acc_norm,none": 0.6,
                     "acc_norm_stderr,none": 0.049, "sample_len": 100},
        "gen": {"exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": "N/A"},
        "mmlu_medical": {"acc,none": 0.3, "acc_stderr,none": 0.02},
    },
    "n-samples": {"pubmedqa": {"original": 500, "effective": 100}, "gen": {"effective": 4},
                  "mmlu_a": {"effective": 10}, "mmlu_b": {"effective": 20}},
    "group_subtasks": {"mmlu_medical": ["mmlu_a", "mmlu_b"]},
}  # fmt: skip


def test_lm_eval_keys_become_mlflow_safe_metric_names():
    assert metric_name("acc,none") == ("acc", False)
    assert metric_name("acc_norm_stderr,none") == ("acc_norm", True)
    assert metric_name("exact_match,strict-match") == ("exact_match-strict-match", False)


def test_flat_metrics_keep_values_stderrs_and_counts_and_drop_na():
    flat = flat_metrics(LM_EVAL_OUT)
    assert flat["pubmedqa"] == {
        "acc": 0.5,
        "acc_stderr": 0.05,
        "acc_norm": 0.6,
        "acc_norm_stderr": 0.049,
        "n": 100,
    }
    assert flat["gen"] == {"exact_match-strict-match": 0.25, "n": 4}  # "N/A" stderr dropped
    assert flat["mmlu_medical"]["n"] == 30  # a group counts its members


def _cmp(base: float, spec: float):
    b = {"pubmedqa": {"acc_norm": base, "acc_norm_stderr": 0.02, "n": 100}}
    s = {"pubmedqa": {"acc_norm": spec, "acc_norm_stderr": 0.03, "n": 100}}
    return compare(b, s)


def test_comparison_has_both_scores_delta_and_stderrs():
    row = _cmp(0.5, 0.56)["pubmedqa"]["acc_norm"]
    assert row == {"base": 0.5, "specialized": 0.56, "delta": pytest.approx(0.06), "base_stderr": 0.02,
                   "specialized_stderr": 0.03}  # fmt: skip


@pytest.mark.parametrize(
    ("base", "spec", "margin", "promoted"),
    [(0.50, 0.56, 0.01, True), (0.50, 0.505, 0.01, False), (0.50, 0.45, 0.0, False), (0.50, 0.50, 0.0, True),
     (0.50, 0.48, -0.05, True), (0.60, 0.50, 0.01, False)],
)  # fmt: skip
def test_gate_promotes_only_when_delta_reaches_the_margin(base, spec, margin, promoted):
    decision = gate(_cmp(base, spec), "pubmedqa", "acc_norm", margin)
    assert decision["promoted"] is promoted
    assert decision["delta"] == pytest.approx(spec - base)
    assert decision["primary"] == "pubmedqa/acc_norm" and decision["margin"] == margin


def test_gate_on_a_skipped_task_does_not_promote_and_says_why():
    decision = gate(_cmp(0.1, 0.9), "medmcqa", "acc", 0.0)
    assert decision["promoted"] is False and "not evaluated" in decision["reason"]


def test_mlflow_metric_keys_are_valid_and_complete():
    cmp = {"mmlu_medical_cloze": {"acc_norm": {"base": 0.3, "specialized": 0.35, "delta": 0.05,
                                               "base_stderr": 0.01, "specialized_stderr": None}}}  # fmt: skip
    metrics = mlflow_metrics(cmp, {"promoted": True, "delta": 0.05})
    assert metrics == {
        "eval/mmlu_medical_cloze/acc_norm/base": 0.3, "eval/mmlu_medical_cloze/acc_norm/specialized": 0.35,
        "eval/mmlu_medical_cloze/acc_norm/delta": 0.05, "eval/mmlu_medical_cloze/acc_norm/base_stderr": 0.01,
        "eval/gate/promoted": 1.0, "eval/gate/delta": 0.05,
    }  # fmt: skip
    assert all(MLFLOW_KEY.match(k) for k in metrics)


def test_base_run_with_other_settings_is_refused():
    base = {"config": {"tasks": ["pubmedqa"], "limit": 100, "dtype": "bfloat16"}}
    check_same_config(base, {"tasks": ["pubmedqa"], "limit": 100, "dtype": "bfloat16"}, "evaluate")
    with pytest.raises(StageError, match="limit: base 100 vs now 50.*dvc repro evaluate_base"):
        check_same_config(base, {"tasks": ["pubmedqa"], "limit": 50, "dtype": "bfloat16"}, "evaluate")


def test_chart_is_a_png(tmp_path):
    path = chart(_cmp(0.5, 0.56), tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- task plan -------------------------------------------------------------------------------------


def _index(tmp_path: Path):
    from selfspec.evaluation.tasks import task_manager

    return task_manager([str(Path(__file__).parents[1] / "evals/tasks")]).task_index


def test_plan_skips_tasks_of_unavailable_sets_and_runs_the_rest(in_tmp_repo):
    from selfspec.evaluation.tasks import plan_tasks

    Path("data/prepare_evals/fewshot").mkdir(parents=True)
    for name in ("data/prepare_evals/pubmedqa.jsonl", "data/prepare_evals/fewshot/pubmedqa.jsonl"):
        Path(name).write_text("{}\n")
    index = _index(in_tmp_repo)
    unavailable = {"medmcqa", *(f"mmlu_{s}" for s in ("anatomy", "clinical_knowledge", "college_biology",
                   "college_medicine", "medical_genetics", "professional_medicine"))}  # fmt: skip
    plan = plan_tasks(index, ["pubmedqa", "medmcqa_cloze", "mmlu_medical"], unavailable, "evaluate_base")
    assert plan.run == ["pubmedqa"]
    assert set(plan.skipped) == {"medmcqa_cloze", "mmlu_medical"}
    assert "['medmcqa']" in plan.skipped["medmcqa_cloze"]
    with pytest.raises(StageError, match="medqa_4options.*not found; run `dvc repro prepare_evals`"):
        plan_tasks(index, ["medqa_4options"], unavailable, "evaluate_base")  # missing, and not explained
    with pytest.raises(StageError, match="'pubmed_qa' is not in evaluate.include_path"):
        plan_tasks(index, ["pubmed_qa"], unavailable, "evaluate_base")
    with pytest.raises(StageError, match="no task can run"):
        plan_tasks(index, ["medmcqa"], unavailable, "evaluate_base")


def test_an_extra_suite_plugs_in_through_include_path_alone(in_tmp_repo):
    """A folder of YAMLs + its name in evaluate.tasks: no code. Its missing data is an error."""
    from selfspec.evaluation.tasks import plan_tasks, task_manager

    Path("my_evals").mkdir()
    Path("my_evals/my_task.yaml").write_text(
        "task: my_task\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: data/mine/q.jsonl\n"
        "output_type: multiple_choice\ntest_split: test\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: ['a', 'b']\ndoc_to_target: 0\n"
    )
    index = task_manager([str(Path(__file__).parents[1] / "evals/tasks"), "my_evals"]).task_index
    with pytest.raises(StageError, match=r"my_task: data files \['data/mine/q.jsonl'\] not found"):
        plan_tasks(index, ["my_task"], set(), "evaluate_base")
    Path("data/mine").mkdir(parents=True)
    Path("data/mine/q.jsonl").write_text('{"question": "Q?"}\n')
    assert plan_tasks(index, ["my_task"], set(), "evaluate_base").run == ["my_task"]
