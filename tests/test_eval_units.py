"""Pure logic of the evaluate stages: metric names, MLflow keys, task plan, limits, config check, chart
(the paired statistics and the gate: tests/test_eval_paired.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfspec.errors import StageError
from selfspec.evaluation.compare import chart
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


def test_mlflow_metric_keys_are_valid_and_complete():
    row = {"base": 0.3, "specialized": 0.35, "delta": 0.05, "ci_low": -0.01, "ci_high": 0.11, "p_value": 0.2,
           "n": 100, "better": 9, "worse": 4, "base_stderr": 0.01, "specialized_stderr": None}  # fmt: skip
    decision = {"promoted": True, "delta": 0.05, "ci_low": -0.01, "ci_high": 0.11, "reason": "..."}
    metrics = mlflow_metrics({"mmlu_medical_cloze": {"acc_norm": row}}, decision)
    key = "eval/mmlu_medical_cloze/acc_norm"
    assert metrics == {
        f"{key}/base": 0.3, f"{key}/specialized": 0.35, f"{key}/delta": 0.05, f"{key}/ci_low": -0.01,
        f"{key}/ci_high": 0.11, f"{key}/p_value": 0.2, f"{key}/n": 100.0, f"{key}/base_stderr": 0.01,
        "eval/gate/promoted": 1.0, "eval/gate/delta": 0.05, "eval/gate/ci_low": -0.01,
        "eval/gate/ci_high": 0.11,
    }  # fmt: skip
    assert all(MLFLOW_KEY.match(k) for k in metrics)


def test_base_run_with_other_settings_is_refused():
    base = {"config": {"tasks": ["pubmedqa"], "limit": 100, "dtype": "bfloat16"}}
    check_same_config(base, {"tasks": ["pubmedqa"], "limit": 100, "dtype": "bfloat16"}, "evaluate")
    with pytest.raises(StageError, match="limit: base 100 vs now 50.*dvc repro evaluate_base"):
        check_same_config(base, {"tasks": ["pubmedqa"], "limit": 50, "dtype": "bfloat16"}, "evaluate")


def test_chart_is_a_forest_plot_png_with_one_row_per_task_metric(tmp_path):
    from PIL import Image

    def row(delta, low, high):
        return {"base": 0.5, "specialized": 0.5 + delta, "delta": delta, "ci_low": low, "ci_high": high}

    few = {"pubmedqa": {"acc": row(0.02, -0.01, 0.05)}}
    many = {**few, "biomed_gen": {"pooled": row(0.03, 0.01, 0.05)}, "ner": {"f1": row(-0.1, -0.2, -0.01)}}
    small, large = (
        chart(few, tmp_path / "a.png"),
        chart(many, tmp_path / "b.png", primary="biomed_gen/pooled"),
    )
    assert large.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (w1, h1), (w2, h2) = Image.open(small).size, Image.open(large).size
    assert w1 == w2 and h2 > h1  # rows stack vertically
    with pytest.raises(ValueError, match="comparison is empty"):
        chart({}, tmp_path / "c.png")


def test_limit_is_an_int_null_or_a_per_task_mapping_and_anything_else_is_refused(tmp_path):
    from selfspec.config import load_params
    from selfspec.errors import ConfigError

    params = Path(__file__).parents[1] / "params.yaml"
    assert load_params(params).evaluate.limit == {"default": 100, "pubmedqa": 200}
    assert load_params(params, ["evaluate.limit=40"]).evaluate.limit == 40
    assert load_params(params, ["evaluate.limit=null"]).evaluate.limit is None
    assert load_params(params, ["evaluate.limit.pubmedqa=null"]).evaluate.limit == {
        "default": 100,
        "pubmedqa": None,
    }
    with pytest.raises(
        ConfigError,
        match=r"-S evaluate.limit.pubmedqa=0: evaluate.limit.pubmedqa: expected a positive int or null, got 0",  # noqa: E501
    ):
        load_params(params, ["evaluate.limit.pubmedqa=0"])
    with pytest.raises(ConfigError, match=r"evaluate.limit: expected a positive int, null .* got 'all'"):
        load_params(params, ["evaluate.limit=all"])
    with pytest.raises(ConfigError, match=r"evaluate.limit: expected .* got -5"):
        load_params(params, ["evaluate.limit=-5"])


def test_a_per_task_limit_naming_no_known_task_is_refused():
    from selfspec.evaluation.tasks import check_limit_keys

    index = {"pubmedqa": object(), "mmlu_medical": object()}
    check_limit_keys(index, {"default": 3, "pubmedqa": 5, "mmlu_medical": None}, "evaluate_base")
    check_limit_keys(index, 7, "evaluate_base")
    with pytest.raises(StageError, match=r"evaluate.limit: \['pubmedq'\] are not tasks or groups"):
        check_limit_keys(index, {"pubmedq": 5}, "evaluate_base")


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


def test_a_gate_on_a_task_outside_the_suite_fails_before_the_evaluation():
    from selfspec.config.evaluate import EvaluateParams
    from selfspec.evaluation.tasks import GroupSpec, Suite, TaskSpec
    from selfspec.stages.evaluate import check_primary

    suite = Suite({"pubmedqa_gen": TaskSpec({}, "acc", 3)}, {"biomed_gen": GroupSpec(["pubmedqa_gen"], [])})
    check_primary(EvaluateParams(primary_task="biomed_gen"), suite, {})
    check_primary(EvaluateParams(primary_task="pubmedqa_gen"), suite, {})
    check_primary(
        EvaluateParams(primary_task="medmcqa"), suite, {"medmcqa": "data unavailable"}
    )  # says so later
    with pytest.raises(StageError, match=r"evaluate.primary_task 'biomed_ge' is not in evaluate.tasks"):
        check_primary(EvaluateParams(primary_task="biomed_ge"), suite, {})


def test_the_report_shows_each_rows_interval_and_p_value_and_the_gate_reason():
    from selfspec.report.render import evaluation_rows

    evaluation = {
        "biomed_gen": {"pooled": {"base": 0.2, "specialized": 0.231, "delta": 0.031, "ci_low": 0.004,
                                  "ci_high": 0.058, "p_value": None}},
        "pubmedqa": {"acc": {"base": 0.5, "specialized": 0.4, "delta": -0.1, "ci_low": -0.2, "ci_high": -0.01,
                             "p_value": 0.021484375}},
        "gate": {"promoted": True, "reason": "biomed_gen/pooled: ..."},
        "skipped": [], "timing": {"seconds": 1.0},
    }  # fmt: skip
    rows, gate = evaluation_rows(evaluation)
    assert [(r["task"], r["interval"], r["p"]) for r in rows] == [
        ("biomed_gen", "[+0.0040, +0.0580]", "-"),
        ("pubmedqa", "[-0.2000, -0.0100]", "0.0215"),
    ]
    assert gate["reason"] == "biomed_gen/pooled: ..."


def test_the_suite_holds_each_tasks_own_aggregation_primary_metric_and_size_and_its_groups(in_tmp_repo):
    """Read from lm-eval's Task objects of the fixture extra suite (and a tag made of its tasks)."""
    import shutil

    from selfspec.evaluation.tasks import load_suite, resolve_limits, task_manager

    shutil.copytree(Path(__file__).parent / "fixtures/evals/extra_suite", "my_evals")
    for name in ("my_gen", "my_mc"):  # the same tasks under a tag, in a second folder
        text = (
            Path(f"my_evals/{name}.yaml").read_text().replace(f"task: {name}", f"task: {name}_t\ntag: my_tag")
        )
        Path("tagged").mkdir(exist_ok=True)
        Path(f"tagged/{name}.yaml").write_text(text)
    shutil.copy("my_evals/utils.py", "tagged/utils.py")
    tm = task_manager(["my_evals", "tagged"])
    suite = load_suite(tm, ["my_suite", "my_tag"])
    gen, mc = suite.tasks["my_gen"], suite.tasks["my_mc"]
    assert (gen.primary, gen.size, gen.aggregation["f1"].__name__) == ("f1", 8, "micro_f1")
    assert gen.aggregation["f1"]([[1, 0, 1], [1, 2, 0]]) == pytest.approx(4 / 7)  # tp 2, fp 2, fn 1
    assert (mc.primary, mc.size, mc.aggregation["acc"].__name__) == ("acc", 8, "mean")
    assert (
        suite.groups["my_suite"].members == ["my_gen", "my_mc"] and suite.groups["my_suite"].aggregate == []
    )
    assert suite.groups["my_tag"].members == ["my_gen_t", "my_mc_t"]
    assert suite.parent == {
        "my_gen": "my_suite",
        "my_mc": "my_suite",
        "my_gen_t": "my_tag",
        "my_mc_t": "my_tag",
    }
    assert resolve_limits({"default": 3, "my_suite": 5, "my_mc_t": None}, suite) == {
        "my_gen": 5, "my_mc": 5, "my_gen_t": 3, "my_mc_t": None,
    }  # fmt: skip
