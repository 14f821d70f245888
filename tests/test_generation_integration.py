"""Real runs on the tiny model: the transformers backend, determinism of the whole chain, and
resume after a run is SIGKILLed mid-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfspec.generation import Sampling

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures" / "generation"
REPO = Path(__file__).parents[1]
# Loose filters: the tiny model writes random words, and these runs test mechanics, not quality.
TINY = [
    "base.dtype=float32",
    "generation.batch_size=2",
    "gen_instructions.n_instructions=12",
    "gen_instructions.max_new_tokens=24",
    "gen_instructions.max_prompts=40",
    "gen_instructions.task_verbs=[]",
    "gen_instructions.min_words=1",
    "gen_inputs.max_new_tokens=24",
    "gen_inputs.min_words=1",
    "gen_responses.max_new_tokens=24",
    "gen_responses.n_demos=2",
    "gen_responses.passage_max_words=20",
    "gen_responses.demo_max_words=20",
    "filter_records.truncated=keep",
    "filter_records.min_support=0",  # the tiny model's words are noise: no grounding filter
    "filter_records.check_labels=false",
    "filter_records.max_repeat_ratio=1.0",
]


def make_repo(root: Path, model: Path) -> Path:
    """A pipeline folder: the tiny model as models/prepare_model, fixture seeds and corpus."""
    (root / "models").mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # the CLI needs one; in-process runs too
    (root / "models" / "prepare_model").symlink_to(model, target_is_directory=True)
    (root / "seeds").mkdir()
    shutil.copy(FIXTURES / "seeds.jsonl", root / "seeds" / "biomedical.jsonl")
    (root / "data" / "build_corpus").mkdir(parents=True)
    shutil.copy(FIXTURES / "passages.jsonl", root / "data" / "build_corpus" / "passages.jsonl")
    return root


def test_transformers_backend_is_seeded_batched_and_stops(tiny_model_dir):
    import torch

    from selfspec.generation.hf import TransformersGenerator
    from selfspec.stages.prepare_model import load_prepared

    model, tokenizer = load_prepared(tiny_model_dir, dtype=torch.float32)
    gen = TransformersGenerator(model, tokenizer, "cpu")
    prompts = ["Aspirin inhibits", "The BRCA1 gene is associated with hereditary breast"]
    sampling = Sampling(max_new_tokens=12, temperature=1.0, top_p=0.9)
    first, again = gen.generate(prompts, sampling, 5), gen.generate(prompts, sampling, 5)
    other = gen.generate(prompts, sampling, 6)
    assert first == again and first != other
    assert all(c.completion_tokens <= 12 and c.prompt_tokens > 0 for c in first)
    greedy = gen.generate(prompts, Sampling(max_new_tokens=12, temperature=0), 0)
    stop = greedy[0].text[2:4]
    stopped = gen.generate(prompts, Sampling(max_new_tokens=12, temperature=0, stop=(stop,)), 0)[0]
    assert stop not in stopped.text and greedy[0].text.startswith(stopped.text)
    assert stopped.finish_reason == "stop"


def run_chain(root: Path, extra: list[str] = ()) -> dict[str, bytes]:
    """index + the four generation stages in-process; returns each output's bytes."""
    from selfspec.config import load_params
    from selfspec.stages import filter_records, gen_inputs, gen_instructions, gen_responses, index

    cwd = os.getcwd()
    os.chdir(root)
    try:
        params = load_params("params.yaml", [*TINY, *extra])
        for stage in (index, gen_instructions, gen_inputs, gen_responses, filter_records):
            stage.main(params)
        outputs = ["gen_instructions/instructions.jsonl", "gen_inputs/inputs.jsonl"]
        outputs += ["gen_responses/responses.jsonl", "filter_records/records.jsonl"]
        return {name: (root / "data" / name).read_bytes() for name in outputs}
    finally:
        os.chdir(cwd)


def test_same_params_and_seed_give_byte_identical_outputs(tmp_path, trained_tiny):
    a = run_chain(make_repo(tmp_path / "a", trained_tiny))
    b = run_chain(make_repo(tmp_path / "b", trained_tiny))
    c = run_chain(make_repo(tmp_path / "c", trained_tiny), ["base.seed=7"])
    assert a == b
    assert a["gen_instructions/instructions.jsonl"] != c["gen_instructions/instructions.jsonl"]
    records = [json.loads(line) for line in a["filter_records/records.jsonl"].splitlines()]
    assert records and all(len(r["seed_ids"]) == 3 for r in records)
    assert any(r["passages"] for r in records)  # tiny-model gibberish may match no passage at all
    assert not list((tmp_path / "a" / "data" / ".partial").glob("*"))  # cleaned up after success


def stage_cmd(stage: str) -> list[str]:
    overrides = [arg for o in TINY for arg in ("-S", o)]
    return [sys.executable, "-m", "selfspec.cli", stage, *overrides, "-S", "gen_responses.retrieval=false"]


def write_inputs(root: Path, n: int) -> None:
    words = ["aspirin", "fever", "gout", "sepsis", "BRCA1", "stroke", "metformin", "asthma"]
    (root / "data" / "gen_inputs").mkdir(parents=True)
    with open(root / "data" / "gen_inputs" / "inputs.jsonl", "w") as f:
        for i in range(n):
            instruction = f"Explain {words[i % 8]} and {words[(i * 3) % 8]} in case {i}."
            record = {"id": f"ins-{i:05d}", "instruction": instruction, "input": "", "needs_input": False}
            f.write(json.dumps({**record, "seed_ids": ["g1"], "batch": i}) + "\n")


def test_a_killed_run_resumes_without_loss_or_duplication(tmp_path, trained_tiny):
    full, killed = (make_repo(tmp_path / name, trained_tiny) for name in ("full", "killed"))
    for root in (full, killed):
        write_inputs(root, 80)
    subprocess.run(stage_cmd("gen_responses"), cwd=full, check=True, capture_output=True)

    proc = subprocess.Popen(stage_cmd("gen_responses"), cwd=killed, stderr=subprocess.PIPE)
    partial = killed / "data" / ".partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(partial.glob("gen_responses-*.jsonl"))
        if files and len(files[0].read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(files[0].read_bytes().splitlines()) - 1  # the first line is the format header
    assert proc.returncode == -signal.SIGKILL and done_before < 40, "the run finished before the kill"
    assert not (killed / "data" / "gen_responses" / "responses.jsonl").exists()

    subprocess.run(stage_cmd("gen_responses"), cwd=killed, check=True, capture_output=True)
    out = (killed / "data" / "gen_responses" / "responses.jsonl").read_bytes()
    assert out == (full / "data" / "gen_responses" / "responses.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in out.splitlines()]
    assert len(ids) == 80 == len(set(ids))
    metrics = json.loads((killed / "metrics" / "gen_responses.json").read_text())
    assert metrics["resumed_batches"] >= done_before and metrics["batches"] == 40
    assert not files[0].exists()


def tiny_generator(model_dir: Path, bos: bool = False, penalize_prompt: bool = False):
    """The transformers backend on the tiny model; ``bos``: its tokenizer adds ``<s>`` the way
    Llama, Mistral and Gemma tokenizers do (the fixture's, like SmolLM2's, adds nothing)."""
    import torch
    from tokenizers import processors

    from selfspec.generation.hf import TransformersGenerator
    from selfspec.stages.prepare_model import load_prepared

    model, tokenizer = load_prepared(model_dir, dtype=torch.float32)
    if bos:
        bos_id = tokenizer.bos_token_id
        template = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos_id)])
        tokenizer.backend_tokenizer.post_processor = template
    return TransformersGenerator(model, tokenizer, "cpu", penalize_prompt=penalize_prompt)


def test_a_stop_string_ends_generation_however_many_tokens_it_spans(trained_tiny):
    gen = tiny_generator(trained_tiny)
    prompts = ["Task 1: Explain"]
    free = gen.generate(prompts, Sampling(max_new_tokens=40, temperature=0), 0)[0]
    stop = free.text[1:40]  # long: more tokens than a 12-token tail window ever holds
    assert len(gen.tokenizer(stop, add_special_tokens=False).input_ids) > 12
    stopped = gen.generate(prompts, Sampling(max_new_tokens=40, temperature=0, stop=(stop,)), 0)[0]
    assert stopped.text == free.text[:1] and stopped.finish_reason == "stop"
    # generation ended where the stop string was complete, not at max_new_tokens
    assert stopped.completion_tokens < free.completion_tokens == 40


def test_repetition_penalty_counts_generated_tokens_only_unless_asked(trained_tiny):
    prompt = ["### Task: Explain what a hazard ratio means to a patient.\n### Task:"]
    plain, strong = Sampling(1, temperature=0), Sampling(1, temperature=0, repetition_penalty=1e4)
    gen = tiny_generator(trained_tiny)
    first = gen.generate(prompt, plain, 0)[0].text
    # the model's next token is one its prompt holds
    assert set(gen.tokenizer(first).input_ids) <= set(gen.tokenizer(prompt[0]).input_ids)
    # nothing generated yet, so a generated-only penalty leaves that first token alone...
    assert gen.generate(prompt, strong, 0)[0].text == first
    # ...while penalising the prompt too (transformers' default) pushes the model off it
    assert tiny_generator(trained_tiny, penalize_prompt=True).generate(prompt, strong, 0)[0].text != first
    # and the penalty still acts on what was generated
    free = gen.generate(prompt, Sampling(30, temperature=0), 0)[0].text
    assert gen.generate(prompt, Sampling(30, 0, repetition_penalty=1e4), 0)[0].text != free
