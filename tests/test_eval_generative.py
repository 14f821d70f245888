"""The generative tasks' parsers and metrics (evals/tasks/biomed_gen/utils.py): forgiving of form,
never of content; exact metric values; the per-sample contract the paired statistics rely on; and
a model that writes noise scores near zero, not the majority class."""

from __future__ import annotations

import importlib.util
import json
import random
import string

import pytest
import yaml

from tests.conftest import REPO

SUITE = REPO / "evals/tasks/biomed_gen"
TASKS = ["pubmedqa_gen", "pubmedqa_long", "ncbi_disease_ner", "jnlpba_ner", "chemprot_rel"]


def _load_utils():
    spec = importlib.util.spec_from_file_location("biomed_gen_utils", SUITE / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


U = _load_utils()


class _TaskLoader(yaml.SafeLoader):
    pass


_TaskLoader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


def task_yaml(name: str) -> dict:
    return yaml.load((SUITE / f"{name}.yaml").read_text(), Loader=_TaskLoader)


# --- parsers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Breast-Cancer.", "breast cancer"),
        ("  the  Ovarian   cancer ", "ovarian cancer"),  # leading article, spacing
        ("IL-2", "il 2"),
        ("IL2", "il2"),  # punctuation becomes a space; it never joins words
        ('"V- (D) -J"', "v d j"),
        ("the", "the"),  # an article alone is kept
        ("tumours", "tumours"),  # no stemming: plural stays distinct from "tumour"
        ("ＡＬＤ", "ald"),  # NFKC: full-width letters
    ],
)
def test_normaliser(text, expected):
    assert U.normalise(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes", "yes"),
        ("No.", "no"),
        ("  MAYBE, the data are mixed", "maybe"),
        ("Answer: no", "no"),
        ("**Yes**", "yes"),
        ("The answer is yes.", "yes"),
        ("Answer: The answer is: maybe", "maybe"),
        ("The answer to the question is yes", "yes"),  # seen from SmolLM2-135M
        ("Yes, there is no link", "yes"),
        ("No, no.", "no"),
        ("Yes, no, maybe, no,", ""),  # the option list copied (seen from SmolLM2-135M) is no answer
        ("The answer is yes, no or maybe", ""),
        ("yes or no", ""),
        ("yesterday the trial ended", ""),  # a word that starts like a label is not one
        ("The study shows yes", ""),  # the label must come first: no search through the text
        ("Nope", ""),
        ("", ""),
    ],
)
def test_yes_no_maybe_parser(text, expected):
    assert U.parse_yes_no_maybe(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Inhibition", "inhibition"),
        ("inhibitor.", "inhibition"),
        ("Answer: Antagonist", "antagonist"),
        ("agonistic", "agonist"),
        ("Activator of the receptor", "activation"),
        ("Upregulation", "activation"),
        ("Down-regulation", ""),  # "down" is not a label word
        ("substrate", "substrate"),
        ("Product", "substrate"),  # PRODUCT-OF is in CPR:9
        ("The chemical inhibits it", ""),  # first word must name the group
        ("binding", ""),
        ("activation, inhibition, agonist, antagonist", ""),  # the options copied (SmolLM2, chat)
        ("Inhibition, inhibitor", "inhibition"),  # one group named twice is still an answer
    ],
)
def test_relation_parser(text, expected):
    assert U.parse_relation(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("breast cancer, Ovarian Cancer; ALD", {"breast cancer", "ovarian cancer", "ald"}),
        ("Diseases: ataxia\n- Wilms tumor\n* gout", {"ataxia", "wilms tumor", "gout"}),
        ("1. IL-2\n2) NF-kappa B | p50", {"il 2", "nf kappa b", "p50"}),
        ("Answer: none", set()),
        ("None.", set()),
        ("No diseases are mentioned.", set()),
        ("N/A", set()),
        ("gout, gout, Gout.", {"gout"}),  # duplicates count once
        ("breast and ovarian cancer", {"breast and ovarian cancer"}),  # "and" never splits a mention
        ("The disease mentioned is gout. It is rare", {"gout", "it is rare"}),  # prose counts as listed
        ("The diseases are gout and ataxia.", {"gout and ataxia"}),
    ],
)
def test_mention_list_parser(text, expected):
    assert U.parse_mentions(text) == expected


# --- metrics: exact values ---------------------------------------------------------------------------


def test_mention_counts_are_entity_level_on_normalised_strings():
    gold = ["breast cancer", "ALD", "ALD"]
    assert U.score_mentions(gold, "Breast-cancer, ald, cancer")["f1"] == [2, 1, 0]
    assert U.score_mentions([], "none")["f1"] == [0, 0, 0]  # nothing to find, nothing listed
    assert U.score_mentions([], "gout")["f1"] == [0, 1, 0]
    assert U.score_mentions(["gout"], "none")["f1"] == [0, 0, 1]


def test_micro_precision_recall_f1_sum_counts_over_documents():
    items = [(2, 1, 0), [0, 0, 2], (1, 0, 1)]  # tuples and JSON lists mixed
    assert U.precision(items) == 0.75  # 3 / (3 + 1)
    assert U.recall(items) == 0.5  # 3 / (3 + 3)
    assert U.f1(items) == 0.6  # 6 / (6 + 1 + 3)
    assert U.f1([(0, 0, 0)]) == U.precision([(0, 0, 0)]) == U.recall([(0, 0, 0)]) == 0.0


def test_macro_f1_over_gold_and_predicted_classes_unparseable_is_a_miss():
    items = [("yes", "yes"), ("yes", "no"), ("no", "no"), ("maybe", ""), ("no", "yes")]
    # yes: tp 1 fp 1 fn 1 -> 0.5; no: tp 1 fp 1 fn 1 -> 0.5; maybe: tp 0 -> 0
    assert U.macro_f1(items) == pytest.approx(1 / 3)
    assert U.macro_f1(json.loads(json.dumps(items))) == pytest.approx(1 / 3)
    assert U.macro_f1([("yes", "")]) == 0.0


def test_rouge_l_is_stemmed_f_measure():
    assert U.rouge_l("Metformin may help.", "Metformin may help.") == 1.0
    # LCS "metformin help" (helps -> help): P 2/2, R 2/3 -> F 0.8
    assert U.rouge_l("Metformin may help.", "metformin helps") == pytest.approx(0.8)
    assert U.rouge_l("Metformin may help.", "") == 0.0


# --- the contract with the paired statistics --------------------------------------------------------

DOCS = {
    "pubmedqa_gen": [
        {"question": "Q1?", "context": "C1", "answer": "yes", "long_answer": "L"},
        {"question": "Q2?", "context": "C2", "answer": "no", "long_answer": "L"},
        {"question": "Q3?", "context": "C3", "answer": "maybe", "long_answer": "L"},
    ],
    "ncbi_disease_ner": [
        {"question": "S1", "entities": {"Disease": ["gout", "breast cancer"]}},
        {"question": "S2", "entities": {"Disease": []}},
        {"question": "S3", "entities": {"Disease": ["ALD"]}},
    ],
    "chemprot_rel": [
        {"question": "S1", "answer": "inhibition"},
        {"question": "S2", "answer": "agonist"},
        {"question": "S3", "answer": "inhibition"},
    ],
}
ANSWERS = {
    "pubmedqa_gen": ["Yes.", "maybe", "Maybe so"],
    "ncbi_disease_ner": ["Gout, arthritis", "none", "ALD"],
    "chemprot_rel": ["Inhibitor", "antagonist", "none"],
}
RESULTS = {"pubmedqa_gen": "pubmedqa_gen_results", "ncbi_disease_ner": "ncbi_results",
           "chemprot_rel": "chemprot_results"}  # fmt: skip


def _aggregate(task: str, metric: str, values: list):
    spec = next(m for m in task_yaml(task)["metric_list"] if m["metric"] == metric)
    agg = spec["aggregation"]
    return sum(values) / len(values) if agg == "mean" else getattr(U, agg[1].split(".")[1])(values)


@pytest.mark.parametrize("task", sorted(DOCS))
def test_aggregating_any_resample_of_per_doc_values_gives_the_metric_of_that_resample(task):
    """What the bootstrap does: resample the logged per-doc values (after a JSON round trip) and
    aggregate. It must equal scoring the resampled documents as a task of their own."""
    process = getattr(U, RESULTS[task])
    per_doc = [process(d, [a]) for d, a in zip(DOCS[task], ANSWERS[task], strict=True)]
    logged = json.loads(json.dumps(per_doc))
    resample = [1, 0, 2, 2]  # indices drawn with replacement
    for metric in logged[0]:
        direct = _aggregate(task, metric, [per_doc[i][metric] for i in resample])
        assert _aggregate(task, metric, [logged[i][metric] for i in resample]) == direct
    expected = {
        # no->maybe wrong, yes, maybe, maybe right; F1 yes 1, no 0, maybe 4/5
        "pubmedqa_gen": {"acc": 0.75, "macro_f1": 0.6},
        # tp 0+1+1+1, fp 0+1+0+0 (arthritis), fn 0+1+0+0 (breast cancer)
        "ncbi_disease_ner": {"f1": 0.75, "precision": 0.75, "recall": 0.75},
        # agonist->antagonist, inhibition right, inhibition->"" twice; F1 inhibition 2/4, others 0
        "chemprot_rel": {"acc": 0.25, "macro_f1": 1 / 6},
    }[task]
    got = {m: _aggregate(task, m, [logged[i][m] for i in resample]) for m in expected}
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("task", TASKS)
def test_each_task_declares_its_primary_metric_and_short_greedy_generation(task):
    cfg = task_yaml(task)
    metrics = [m["metric"] for m in cfg["metric_list"]]
    assert cfg["metadata"]["primary_metric"] in metrics
    assert cfg["output_type"] == "generate_until"
    gen = cfg["generation_kwargs"]
    assert gen["do_sample"] is False and gen["max_gen_toks"] <= 64 and gen["until"]
    assert cfg["doc_to_text"][0] == "!function" and hasattr(U, cfg["doc_to_text"][1].split(".")[1])


def test_group_biomed_gen_holds_the_five_tasks():
    group = yaml.load((SUITE / "_biomed_gen.yaml").read_text(), Loader=_TaskLoader)
    assert group["group"] == "biomed_gen" and group["task"] == TASKS


# --- noise scores near zero ---------------------------------------------------------------------------

DISEASES = ["gout", "breast cancer", "ovarian cancer", "ataxia", "cystic fibrosis", "hemophilia",
            "Wilms tumor", "myotonic dystrophy", "adrenoleukodystrophy", "colorectal cancer"]  # fmt: skip
FILLER = (
    "patients with the mutation were followed for years and most of them carried one allele "
    "of the gene that was expressed in the kidney liver and brain of affected families"
).split()


def ner_docs(n: int, rng: random.Random) -> list[dict]:
    """Synthetic sentences: a third without a disease, the rest with one or two."""
    docs = []
    for i in range(n):
        found = [] if i % 3 == 0 else rng.sample(DISEASES, 1 + i % 2)
        words = rng.sample(FILLER, 8) + [w for d in found for w in ["with", d]]
        docs.append({"question": " ".join(words) + ".", "entities": {"Disease": found}})
    return docs


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + " ,.;\n") for _ in range(rng.randint(1, 60)))


def random_words(rng: random.Random, vocab: list[str]) -> str:
    """Corpus words in random order, some comma-separated: what a babbling model writes."""
    return " ".join(w + ("," if rng.random() < 0.3 else "") for w in rng.choices(vocab, k=rng.randint(1, 12)))


def test_noise_scores_near_zero_while_the_gold_answer_scores_one():
    rng = random.Random(0)
    docs = ner_docs(300, rng)
    vocab = sorted({w for d in docs for w in d["question"].rstrip(".").split()} | {"yes", "no", "maybe"})
    gold = [U.ncbi_results(d, [U.ncbi_target(d)])["f1"] for d in docs]
    assert U.f1(gold) == 1.0  # the target, parsed back, is a perfect answer (including "none")
    for noise in (lambda: random_string(rng), lambda: random_words(rng, vocab)):
        assert U.f1([U.ncbi_results(d, [noise()])["f1"] for d in docs]) < 0.05
    echo = [U.ncbi_results(d, [d["question"]])["f1"] for d in docs]  # repeating the input
    assert U.f1(echo) < 0.05

    labels = [rng.choice(["yes"] * 5 + ["no"] * 3 + ["maybe"] * 2) for _ in range(300)]
    for noise in (lambda: random_string(rng), lambda: random_words(rng, vocab)):
        pairs = [U.pubmedqa_gen_results({"answer": g}, [noise()]) for g in labels]
        assert sum(p["acc"] for p in pairs) / len(pairs) < 0.05  # majority class would get ~0.5
        assert U.macro_f1([p["macro_f1"] for p in pairs]) < 0.05
    relations = [rng.choice(["inhibition", "activation", "substrate"]) for _ in range(300)]
    relation_vocab = vocab + ["inhibition", "activation", "agonist", "antagonist", "substrate"]
    pairs = [U.chemprot_results({"answer": g}, [random_words(rng, relation_vocab)]) for g in relations]
    assert sum(p["acc"] for p in pairs) / len(pairs) < 0.05


def test_rouge_of_random_strings_is_zero_and_of_random_words_far_below_a_paraphrase():
    rng = random.Random(1)
    reference = "Metformin reduced admissions in adults with type 2 diabetes and should be considered."
    strings = [U.rouge_l(reference, random_string(rng)) for _ in range(200)]
    assert sum(strings) / len(strings) < 0.01
    babble = [U.rouge_l(reference, random_words(rng, FILLER)) for _ in range(200)]
    paraphrase = U.rouge_l(reference, "In adults with type 2 diabetes, metformin reduced admissions.")
    assert sum(babble) / len(babble) < 0.1 < 0.5 < paraphrase
