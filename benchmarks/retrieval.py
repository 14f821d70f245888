"""Retrieval quality and speed on the default corpus (corpora/<domain>.yaml through the data mirror).

For each of PubMedQA's 500 non-test questions, is the question's own abstract (in the corpus) among
the top 1 / 5 / 10 passages? Measured with the title searched (the shipped default; PubMedQA's
question *is* the article title, so this is nearly an exact-match lookup) and on abstract text
only (the honest retrieval test). Also: corpus and index build time, index load time, queries/s of
the embedded backend vs rank-bm25 over the same tokens, corpus and queries (a ratio from one run),
and peak RSS of this process after each phase.

    python benchmarks/retrieval.py                    # params.yaml, 200 queries for the speed test
    python benchmarks/retrieval.py --speed-queries 500 --params params.yaml
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from selfspec.config import load_params
from selfspec.corpus.sources import locate
from selfspec.corpus.spec import load_spec
from selfspec.io import read_json
from selfspec.retrieval.analysis import analyze, contents, query_terms
from selfspec.retrieval.embedded import EmbeddedRetriever, build_embedded
from selfspec.stages import build_corpus

KS = (1, 5, 10)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def build(params):
    spec = load_spec(build_corpus.corpus_path(params))
    exclusions = build_corpus.load_exclusions(spec, params.data_mirror)
    docs = build_corpus.load_documents(spec, params.data_mirror, [])
    passages, _ = build_corpus.run(docs, params.build_corpus, exclusions)
    return spec, exclusions, passages


def questions(spec, params, exclusions) -> list[tuple[str, str]]:
    """(question, pmid) for the PubMedQA items outside the test split."""
    src = next(s for s in spec.sources if s.name == "pubmedqa")
    pqal = read_json(locate(src.file, spec.base_dir, params.data_mirror))
    return [(item["QUESTION"], pmid) for pmid, item in pqal.items() if pmid not in exclusions]


def recall(retriever, qs: list[tuple[str, str]]) -> dict[int, float]:
    results = retriever.search([q for q, _ in qs], max(KS))
    found = {k: 0 for k in KS}
    for (_, pmid), hits in zip(qs, results, strict=True):
        ranks = [i for i, h in enumerate(hits) if h.id.split("#")[0] == f"pmid:{pmid}"]
        for k in KS:
            found[k] += bool(ranks) and ranks[0] < k
    return {k: found[k] / len(qs) for k in KS}


def speed(passages, queries: list[str], index_dir: Path, stopwords: bool) -> tuple[float, float]:
    from rank_bm25 import BM25Okapi

    retriever = EmbeddedRetriever(index_dir, stopwords)
    _, t_embedded = timed(retriever.search, queries, 10)
    tokenized = [analyze(contents(p["title"], p["text"], True), stopwords) for p in passages]
    bm25 = BM25Okapi(tokenized)
    _, t_rank = timed(lambda: [bm25.get_top_n(query_terms(q, stopwords), passages, n=10) for q in queries])
    return len(queries) / t_embedded, len(queries) / t_rank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--speed-queries", type=int, default=200, help="queries timed on both backends")
    args = ap.parse_args()
    params = load_params(args.params)
    stop = params.index.stopwords
    (spec, exclusions, passages), t_corpus = timed(build, params)
    mem = {"corpus": peak_mb()}
    qs = questions(spec, params, exclusions)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="selfspec-bench-") as tmp:
        for include_title in (True, False):
            index_dir = Path(tmp) / f"title{int(include_title)}"
            _, t_index = timed(build_embedded, passages, index_dir, stop, include_title)
            retriever, t_load = timed(EmbeddedRetriever, index_dir, stop)
            rows[include_title] = (recall(retriever, qs), t_index, t_load)
        mem["index"] = peak_mb()
        speed_qs = [q for q, _ in qs[: args.speed_queries]]
        qps_embedded, qps_rank = speed(passages, speed_qs, Path(tmp) / "title1", stop)
        mem["rank-bm25"] = peak_mb()
    report(len(passages), len(qs), t_corpus, rows, len(speed_qs), qps_embedded, qps_rank, mem)


def report(n_passages, n_q, t_corpus, rows, n_speed, qps_embedded, qps_rank, mem) -> None:
    print(f"\ncorpus: {n_passages} passages, built in {t_corpus:.1f} s; {n_q} PubMedQA non-test questions\n")
    print("| searched fields | recall@1 | recall@5 | recall@10 | index build s | index load ms |")
    print("|---|---|---|---|---|---|")
    for include_title, (r, t_index, t_load) in rows.items():
        name = "title + text (default)" if include_title else "text only"
        print(f"| {name} | {r[1]:.3f} | {r[5]:.3f} | {r[10]:.3f} | {t_index:.2f} | {t_load * 1000:.1f} |")
    print(f"\nspeed, {n_speed} queries, top 10, one thread:")
    print("| backend | queries/s |\n|---|---|")
    print(f"| embedded (tantivy) | {qps_embedded:.0f} |\n| rank-bm25 (BM25Okapi) | {qps_rank:.1f} |")
    print(f"| **ratio embedded / rank-bm25** | **{qps_embedded / qps_rank:.0f}x** |")
    print("\npeak RSS of this process (MB): " + ", ".join(f"after {k} {v:.0f}" for k, v in mem.items()))


if __name__ == "__main__":
    main()
