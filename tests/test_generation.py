"""Generation building blocks: stop strings, seeds, the partial file, the batch runner, prompts, parsers."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from selfspec.errors import BackendError, ConfigError
from selfspec.generation import Completion, Sampling, cut_at_stop, derive_seed
from selfspec.generation.resume import BatchRunner, PartialStore
from selfspec.generation.text import RougePool, repeat_ratio, truncate_words
from selfspec.prompts import Prompt, load_prompt
from selfspec.prompts.inputs import parse_input
from selfspec.prompts.instructions import needs_input, parse_tasks

REPO = Path(__file__).resolve().parents[1]


class EchoGenerator:
    """Fake backend: the completion names the prompt and the seed; counts its calls."""

    name = "echo"

    def __init__(self):
        self.calls: list[tuple[list[str], int]] = []

    def generate(self, prompts, sampling, seed):
        self.calls.append((list(prompts), seed))
        return [Completion(f"{p}|{seed}", 3, 2, "stop") for p in prompts]

    def describe(self):
        return {"backend": self.name}


def test_cut_at_stop_uses_the_earliest_stop_string():
    assert cut_at_stop("abc\n\nTask 9: x", ["Task 9:", "\n\n"]) == ("abc", True)
    assert cut_at_stop("no stop here", ["###"]) == ("no stop here", False)


def test_derived_seeds_are_stable_and_differ_by_part():
    assert derive_seed(42, "gen_inputs", 0) == derive_seed(42, "gen_inputs", 0)
    assert derive_seed(42, "gen_inputs", 0) != derive_seed(42, "gen_inputs", 1)
    assert 0 <= derive_seed("x") < 2**31


def test_partial_store_round_trips_batches(tmp_path):
    store = PartialStore(tmp_path / "p.jsonl")
    store.append(0, [{"a": 1}])
    store.append(1, [{"a": 2}])
    assert store.load() == {0: [{"a": 1}], 1: [{"a": 2}]}


def test_partial_store_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / "p.jsonl"
    store = PartialStore(path)
    store.append(0, [{"a": 1}])
    with open(path, "a") as f:
        f.write('{"batch": 1, "results": [{"a"')  # killed mid-write
    assert store.load() == {0: [{"a": 1}]}
    store.append(1, [{"a": 2}])  # the file is whole again: the next line starts cleanly
    assert store.load() == {0: [{"a": 1}], 1: [{"a": 2}]}


def test_runner_replays_stored_batches_and_generates_the_rest(tmp_path):
    store = PartialStore(tmp_path / "p.jsonl")
    first = BatchRunner(EchoGenerator(), Sampling(8), 7, "s", store)
    first.run(0, ["a", "b"])
    gen = EchoGenerator()
    resumed = BatchRunner(gen, Sampling(8), 7, "s", store)
    again = resumed.run(0, ["a", "b"])
    new = resumed.run(1, ["c"])
    assert [c.text for c in again] == [f"a|{derive_seed(7, 's', 0)}", f"b|{derive_seed(7, 's', 0)}"]
    assert gen.calls == [(["c"], derive_seed(7, "s", 1))]  # batch 0 was not generated again
    assert new[0].text == f"c|{derive_seed(7, 's', 1)}"
    assert resumed.stats.resumed_batches == 1 and resumed.stats.completion_tokens == 6


def rouge_test_texts() -> list[str]:
    """The seed instructions and variants of them that land on either side of the thresholds:
    words dropped, reordered, repeated, re-cased, and non-ASCII (rouge-score drops µ, β, °)."""
    import random

    from selfspec.seeds import load_seeds

    rng = random.Random(0)
    texts = [s.instruction for s in load_seeds(REPO / "seeds" / "biomedical.jsonl")][:40]
    for text in texts[:25]:
        ws = text.split()
        texts.append(" ".join(w for w in ws if rng.random() > 0.2))  # some words dropped
        texts.append(" ".join(ws[len(ws) // 2 :] + ws[: len(ws) // 2]))  # halves swapped
        texts.append(f"{text} {ws[0]} {ws[0]} the the")  # repeats: multiset, not set, overlap
        texts.append(text.upper().replace("A", "α", 1) + " 5 µg, 37 °C")
    return texts + ["", "?!", "β", "the", "the the the"]


def test_rouge_pool_scores_and_decisions_are_rouge_scores_exactly():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    texts = rouge_test_texts()
    pool, kept = RougePool(texts[:20]), texts[:20]
    decided = {t: 0 for t in (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)}
    for text in texts[20:]:
        expected = [scorer.score(k, text)["rougeL"].fmeasure for k in kept]
        assert pool.scores(text) == expected  # the same floats, not approximately
        assert pool.max_similarity(text) == max(expected)
        for t in decided:
            assert pool.exceeds(text, t) == (max(expected) > t), (text, t)
            decided[t] += max(expected) > t
        pool.add(text)  # the pool grows as in gen_instructions; the prefix indexes follow
        kept.append(text)
    assert decided[0.7] > 20 and decided[0.3] > decided[0.7] > decided[0.9] and decided[1.0] == 0
    assert RougePool().max_similarity("x") == 0.0 and not RougePool().exceeds("x", 0.5)


def test_repeat_ratio_flags_loops_not_prose():
    loop = "the patient was treated with metformin " * 6
    assert repeat_ratio(loop) > 0.7
    assert repeat_ratio("Metformin lowers hepatic glucose production and improves insulin sensitivity.") == 0
    assert truncate_words("a b c d", 2) == "a b ..."


def test_missing_template_variable_is_an_error():
    with pytest.raises(ConfigError, match="domain"):
        load_prompt("instructions").render(tasks=["x"])
    with pytest.raises(ConfigError, match="'instruction' is undefined"):
        Prompt("t", "{{ instruction }}", ()).render()


def test_instruction_prompt_is_a_raw_numbered_list():
    text = load_prompt("instructions").render(domain="biomedical", tasks=["Do A.", "Do B."])
    assert text.endswith("Task 1: Do A.\nTask 2: Do B.\nTask 3:")
    assert "<|" not in text  # no chat template


def test_parse_tasks_continues_the_open_task_then_numbered_lines():
    tasks, cut = parse_tasks(" List drugs for gout.\nTask 5: Explain ketoacidosis.\nTask 6: Name", False)
    assert tasks == ["List drugs for gout.", "Explain ketoacidosis.", "Name"] and cut == 0
    # at the token limit the last task may be cut mid-sentence: dropped and counted
    tasks, cut = parse_tasks(" List drugs for gout.\nTask 5: Explain keto", True)
    assert tasks == ["List drugs for gout."] and cut == 1
    # a line that is not a new task ends the list (the model left the pattern)
    tasks, cut = parse_tasks(" What is sepsis?\nA: It is an infection.\nTask 6: junk", True)
    assert tasks == ["What is sepsis?"] and cut == 0


def test_needs_input_agrees_with_the_seed_files_inputs():
    from selfspec.seeds import load_seeds

    seeds = load_seeds(REPO / "seeds" / "biomedical.jsonl")
    agree = sum(needs_input(s.instruction) == bool(s.instances[0].input) for s in seeds)
    assert agree / len(seeds) >= 0.9
    assert needs_input("Summarize the following abstract.") and not needs_input("What causes gout?")


def test_parse_input_trims_a_truncated_context_to_a_full_sentence():
    assert (
        parse_input(" A 50-year-old man has chest pain. He is sweat", True)
        == "A 50-year-old man has chest pain."
    )
    assert parse_input(" no sentence end", True) == ""
    assert parse_input(" Complete input\n", False) == "Complete input"


def test_vllm_backend_missing_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm":
            raise ImportError("no vllm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    from selfspec.generation.vllm_backend import _import_vllm

    with pytest.raises(BackendError, match=r"pip install 'selfspec\[vllm\]'"):
        _import_vllm()


class FakeLLM:
    """Stands in for ``vllm.LLM``, which needs a GPU: records what the backend passes it and
    answers each prompt with the text "ok"."""

    def __init__(self, tokenizer=None, **kwargs):
        from types import SimpleNamespace

        self.tokenizer, self.kwargs, self.prompts = tokenizer, kwargs, []
        context = kwargs.get("max_model_len") or 2048  # None: the model's own
        config = SimpleNamespace(max_model_len=context, dtype=f"torch.{kwargs.get('dtype', 'float16')}")
        self.llm_engine = SimpleNamespace(model_config=config)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, use_tqdm=True):
        from types import SimpleNamespace

        self.prompts += prompts
        choice = SimpleNamespace(text="ok", token_ids=[5], finish_reason="stop")
        return [SimpleNamespace(outputs=[choice], prompt_token_ids=p["prompt_token_ids"]) for p in prompts]


@contextmanager
def fake_vllm():
    """A ``vllm`` module whose ``LLM`` is a FakeLLM; yields the LLMs it built."""
    import sys
    from types import ModuleType

    built: list[FakeLLM] = []
    module = ModuleType("vllm")
    module.SamplingParams = lambda **kwargs: kwargs
    module.LLM = lambda **kwargs: built.append(FakeLLM(**kwargs)) or built[-1]
    saved = sys.modules.get("vllm")
    sys.modules["vllm"] = module
    try:
        yield built
    finally:
        sys.modules.pop("vllm")
        if saved is not None:
            sys.modules["vllm"] = saved


def test_vllm_sizes_its_kv_cache_from_params_and_names_its_dtype():
    from selfspec.config import default_params
    from selfspec.generation.vllm_backend import VLLMGenerator

    overrides = ["base.dtype=bfloat16", "generation.vllm_max_model_len=8192"]
    params = default_params([*overrides, "generation.vllm_gpu_memory_utilization=0.5"])
    with fake_vllm() as built:
        gen = VLLMGenerator.from_params(params, "models/x")
    kwargs = built[0].kwargs
    assert (kwargs["max_model_len"], kwargs["gpu_memory_utilization"], kwargs["dtype"]) == (
        8192,
        0.5,
        "bfloat16",
    )
    assert gen.describe()["dtype"] == "bfloat16" and gen.describe()["max_model_len"] == 8192
    with fake_vllm() as built:
        default = VLLMGenerator.from_params(default_params(), "models/x")
    assert built[0].kwargs["max_model_len"] is None  # 0: the model's own context length
    assert default.describe() != gen.describe()  # the dtype is part of the resume key


def test_vllm_cuts_a_long_prompt_to_its_context_keeping_the_end(tiny_model_dir):
    from transformers import AutoTokenizer

    from selfspec.generation.vllm_backend import VLLMGenerator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    llm = FakeLLM(tokenizer, max_model_len=40)
    prompt = "Aspirin inhibits cyclooxygenase. " * 20 + "The BRCA1 gene"
    with fake_vllm():
        out = VLLMGenerator(llm, "tiny").generate([prompt], Sampling(16), 0)
    ids = llm.prompts[0]["prompt_token_ids"]
    assert len(ids) == 40 - 16 and out[0].prompt_tokens == 24
    assert ids == tokenizer(prompt).input_ids[-24:]


def test_vllm_refuses_a_repetition_penalty_it_would_apply_to_the_prompt():
    from selfspec.errors import ConfigError
    from selfspec.generation.vllm_backend import VLLMGenerator

    with fake_vllm(), pytest.raises(ConfigError, match="generation.penalize_prompt=true"):
        VLLMGenerator(FakeLLM(), "x").generate(["p"], Sampling(8, repetition_penalty=1.1), 0)


def test_openai_backend_needs_its_base_url(monkeypatch):
    from selfspec.config.generation import GenerationParams
    from selfspec.generation.openai_api import OpenAIGenerator

    monkeypatch.delenv("SELFSPEC_OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="SELFSPEC_OPENAI_BASE_URL"):
        OpenAIGenerator.from_env(GenerationParams())


def test_inspect_shows_records_with_their_provenance(in_tmp_repo, capsys):
    import json
    import shutil

    from selfspec.cli import main

    fixtures = REPO / "tests" / "fixtures" / "generation"
    shutil.copy(REPO / "params.yaml", "params.yaml")  # a missing params file is an error
    Path("seeds").mkdir()
    shutil.copy(fixtures / "seeds.jsonl", "seeds/biomedical.jsonl")
    Path("data/build_corpus").mkdir(parents=True)
    shutil.copy(fixtures / "passages.jsonl", "data/build_corpus/passages.jsonl")
    Path("data/filter_records").mkdir(parents=True)
    record = {"id": "ins-00007", "instruction": "What causes gout?", "input": "", "output": "Uric acid."}
    record |= {"task_type": "", "seed_ids": ["g2"], "passages": [{"id": "p2", "score": 4.25}]}
    Path("data/filter_records/records.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["inspect", "filter_records", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "== ins-00007" in out and "Uric acid." in out
    assert "seed g2: What is the mechanism of action of metformin?" in out
    assert "passage p2 score 4.250 Metformin: Metformin is a first-line drug" in out
    assert main(["inspect", "gen_inputs"]) == 1  # no output yet: a clean error


# --- resume safety (issue 15): a saved batch never attaches to other prompts -------------------


def test_a_saved_batch_is_replayed_only_for_the_prompts_it_was_made_from(tmp_path):
    store = PartialStore(tmp_path / "p.jsonl")
    BatchRunner(EchoGenerator(), Sampling(8), 7, "s", store).run(0, ["a", "b"])
    gen = EchoGenerator()
    resumed = BatchRunner(gen, Sampling(8), 7, "s", store)
    out = resumed.run(0, ["b", "a"])  # same batch index, prompts reordered (e.g. a new sort order)
    seed = derive_seed(7, "s", 0)
    assert [c.text for c in out] == [f"b|{seed}", f"a|{seed}"]  # not the saved "a|..", "b|.."
    assert gen.calls == [(["b", "a"], seed)] and resumed.stats.resumed_batches == 0
    again = BatchRunner(EchoGenerator(), Sampling(8), 7, "s", store)  # the redone batch is what is kept
    assert [c.text for c in again.run(0, ["b", "a"])] == [f"b|{seed}", f"a|{seed}"]
    assert again.stats.resumed_batches == 1


def test_a_partial_file_of_an_older_format_is_refused_and_left_alone(tmp_path):
    from selfspec.errors import StageError

    path = tmp_path / "p.jsonl"
    old = '{"batch": 0, "results": [{"text": "x", "prompt_tokens": 1, "completion_tokens": 1, ' \
          '"finish_reason": "stop"}]}\n'  # fmt: skip
    path.write_text(old)  # written by the format without a header or prompt hashes
    with pytest.raises(StageError, match=rf"{path}: a partial file of format 1 \(no header\), .* format 2"):
        BatchRunner(EchoGenerator(), Sampling(8), 7, "s", PartialStore(path))
    assert path.read_text() == old


def test_the_header_is_written_once_and_a_new_file_round_trips(tmp_path):
    store = PartialStore(tmp_path / "p.jsonl")
    store.append(0, [{"a": 1}], "h0")
    store.append(1, [{"a": 2}], "h1")
    assert (tmp_path / "p.jsonl").read_text().splitlines()[0] == '{"format": 2}'
    assert store.load_batches() == {0: ("h0", [{"a": 1}]), 1: ("h1", [{"a": 2}])}


def _store_path(tmp_path, inputs=()):
    from selfspec.config import default_params
    from selfspec.generation.resume import partial_store

    params = default_params()
    return partial_store("gen_responses", params, EchoGenerator(), [], list(inputs)).path


def test_the_resume_key_changes_with_the_prompt_code(tmp_path, monkeypatch):
    from selfspec.generation import resume

    package = tmp_path / "fakeprompts"
    package.mkdir()
    (package / "__init__.py").write_text("def render(x):\n    return x\n")
    (package / "responses.yaml").write_text("template: '{{ x }}'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(resume, "PROMPT_CODE", ("fakeprompts",))
    before = _store_path(tmp_path)
    assert _store_path(tmp_path) == before, "the same code gives the same key"
    (package / "responses.yaml").write_text("template: 'Answer: {{ x }}'\n")
    after_template = _store_path(tmp_path)
    (package / "__init__.py").write_text("def render(x):\n    return x.strip()\n")
    assert len({before, after_template, _store_path(tmp_path)}) == 3


def test_the_resume_key_changes_with_the_retrieval_index_files(tmp_path):
    from selfspec.generation.resume import index_files

    index = tmp_path / "index"
    (index / "tantivy").mkdir(parents=True)
    (index / "manifest.json").write_text('{"backend": "embedded"}')
    (index / "tantivy/seg.store").write_bytes(b"postings v1")
    before = _store_path(tmp_path, index_files(index))
    (index / "tantivy/seg.store").write_bytes(b"postings v2")  # same manifest, other index content
    assert _store_path(tmp_path, index_files(index)) != before
