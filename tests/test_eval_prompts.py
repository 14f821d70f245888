"""The generative tasks through lm-eval on the tiny model: prompts are the training renderer's text
for ``train.template`` (alpaca and chat), identical for the base and the specialized model, along the
path the evaluate stages take (``evaluate_base.run``); without a template they refuse to render."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfspec.config import load_params
from selfspec.errors import StageError
from tests.conftest import REPO
from tests.fixtures.evals.builders import build_eval_mirror, sources_for_mirror

pytestmark = pytest.mark.integration
TASKS = ["pubmedqa_gen", "pubmedqa_long", "ncbi_disease_ner", "jnlpba_ner", "chemprot_rel"]


def prepared_repo(root: Path, template: str):
    """evals/ (the shipped suite) and fixture data prepared by the real stage; params for ``template``."""
    from selfspec.stages import prepare_evals

    (root / "evals").symlink_to(REPO / "evals")
    mirror = build_eval_mirror(root / "mirror", only=("pubmedqa", "ncbi_disease", "jnlpba", "chemprot"))
    sources = sources_for_mirror(REPO / "evals/sources.yaml", root / "sources.yaml", mirror)
    sets = "[pubmedqa,ncbi_disease,jnlpba,chemprot]"
    params = load_params(REPO / "params.yaml", [
        f"base.data_mirror={mirror}", f"prepare_evals.sources={sources}", f"prepare_evals.datasets={sets}",
        f"train.template={template}", "evaluate.tasks=[biomed_gen]", "evaluate.limit=2",
        "evaluate.batch_size=2",
    ])  # fmt: skip
    prepare_evals.main(params)
    return params


def prompts_and_answers(output) -> dict[tuple[str, int], tuple[str, str]]:
    return {
        (task, s["doc_id"]): (s["arguments"][0][0], s["filtered_resps"][0])
        for task, samples in output.samples.items()
        for s in samples
    }


@pytest.mark.parametrize("template", ["alpaca", "chat"])
def test_base_and_specialized_read_the_training_template_text_identically(
    in_tmp_repo, tiny_model_dir, lora_adapter, template
):
    import torch

    from selfspec.evaluation.harness import load_model
    from selfspec.evaluation.stage import plan
    from selfspec.io import read_jsonl
    from selfspec.stages import evaluate_base
    from selfspec.training.data import render_prompt

    params = prepared_repo(in_tmp_repo, template)
    tm, task_plan = plan(params, "evaluate_base")
    assert task_plan.run == ["biomed_gen"]
    runs = {}
    for name, adapter in (("base", None), ("specialized", lora_adapter)):
        model, tok = load_model(tiny_model_dir, torch.float32, "cpu", adapter_dir=adapter)
        runs[name] = prompts_and_answers(evaluate_base.run(model, tok, task_plan.run, tm, params, "cpu"))
    assert sorted({task for task, _ in runs["base"]}) == sorted(TASKS)
    assert len(runs["base"]) == 5 * 2 and runs["base"].keys() == runs["specialized"].keys()
    base_prompts = {k: p for k, (p, _) in runs["base"].items()}
    assert base_prompts == {k: p for k, (p, _) in runs["specialized"].items()}
    assert any(runs["base"][k][1] != runs["specialized"][k][1] for k in runs["base"]), "adapter had no effect"

    # the text is the training renderer's, for the instruction and input the task builds
    sentence = read_jsonl("data/prepare_evals/ncbi_disease.jsonl")[0]["question"]
    instruction = (
        "List every disease mentioned in the sentence, copied as written and separated by commas. "
        'If it mentions none, write "none".'
    )
    expected = render_prompt({"instruction": instruction, "input": sentence}, template, tok)
    assert base_prompts[("ncbi_disease_ner", 0)] == expected
    marker = "### Instruction:\n" if template == "alpaca" else "<|user|>\n"
    assert all(p.count(marker) == 1 for p in base_prompts.values())


def test_a_generative_task_without_training_template_is_refused(in_tmp_repo, tiny_model_dir):
    import torch

    from selfspec.evaluation.harness import evaluate, load_model
    from selfspec.evaluation.stage import plan

    params = prepared_repo(in_tmp_repo, "alpaca")
    tm, task_plan = plan(params, "evaluate_base")
    model, tok = load_model(tiny_model_dir, torch.float32, "cpu")
    with pytest.raises(StageError, match="without a training template"):
        evaluate(model, tok, ["chemprot_rel"], tm, params.evaluate, 0, "cpu", template=None)
