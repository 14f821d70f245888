"""Embedded BM25 backend: a tantivy index on disk, no server.

Scores are Elasticsearch's: Lucene >= 8 BM25 (k1=1.2, b=0.75),
``idf(n) * f / (f + k1 * (1 - b + b * dl / avgdl))`` with ``idf(n) = ln(1 + (N - n + 0.5) / (n + 0.5))``,
summed over the query terms. tantivy computes the same idf, the same average length
(tokens / documents) and the same lossy 1-byte length norm (Lucene's ``SmallFloat.intToByte4``: exact
up to 39 terms, then ~3 significant bits), but it keeps the ``(k1 + 1)`` factor that Lucene 8 dropped
(LUCENE-8563): each score is divided by ``k1 + 1`` here. Match: float32 precision (relative error
<= 1.5e-6 measured on lengths up to 1,000 terms; ``tests/test_retrieval.py`` checks 1e-6 up to 200).
One known difference: tantivy counts every document in N and avgdl, Lucene only documents whose field
has a term, so a passage made only of stop words would shift scores slightly (the corpus stage's
``min_words`` makes that practically absent).

Why tantivy: it is the fastest option measured here (benchmarks/retrieval.py); bm25s ("lucene")
allows other k1/b but its scores drift a few percent from Lucene's on long documents (no 1-byte
norms), which changes rankings; rank-bm25 is pure Python, much slower, and scores differently. The
index is memory-mapped: opening it takes milliseconds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from selfspec.errors import missing_extra
from selfspec.retrieval import K1, TIE_MARGIN, Hit, top_k
from selfspec.retrieval.analysis import analyze, contents, query_terms

SUBDIR = "tantivy"
HEAP_BYTES = 128 * 1024 * 1024  # one writer thread: a 20k-passage corpus fits in one segment


def _tantivy():
    try:
        import tantivy
    except ImportError:
        raise missing_extra("tantivy") from None
    return tantivy


def _schema(tantivy):
    sb = tantivy.SchemaBuilder()
    # the passage itself, stored only (bytes fields need not be indexed)
    sb.add_bytes_field("doc", stored=True, indexed=False)
    # pre-analysed terms: whitespace-split, no further filtering, frequencies for BM25
    sb.add_text_field("contents", stored=False, tokenizer_name="whitespace", index_option="freq")
    return sb.build()


def build_embedded(
    passages: Iterable[dict[str, Any]], index_dir: Path, stopwords: bool, include_title: bool
) -> int:
    """Write a fresh index under ``index_dir/tantivy``; returns the number of passages indexed."""
    tantivy = _tantivy()
    path = Path(index_dir) / SUBDIR
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    index = tantivy.Index(_schema(tantivy), path=str(path))
    writer = index.writer(heap_size=HEAP_BYTES, num_threads=1)
    n = 0
    for p in passages:
        doc = tantivy.Document()
        payload = {"id": p["id"], "title": p["title"], "text": p["text"]}
        doc.add_bytes("doc", json.dumps(payload, ensure_ascii=False).encode())
        doc.add_text("contents", " ".join(analyze(contents(p["title"], p["text"], include_title), stopwords)))
        writer.add_document(doc)
        n += 1
    writer.commit()
    writer.wait_merging_threads()
    del writer, index  # release the writer lock before the files are renamed
    canonical_segment_ids(path)
    return n


def canonical_segment_ids(path: Path) -> None:
    """Rename each segment from its random UUID to one derived from its content.

    Tantivy names segments with random UUIDs, so the same passages gave a different folder (and a
    different ``dvc.lock`` hash) on every build although the segment bytes are identical. The id
    becomes a hash of the segment's files; meta.json and .managed.json (sorted) are rewritten to match.
    """
    import hashlib
    import uuid

    meta_path, managed_path = path / "meta.json", path / ".managed.json"
    meta_text = meta_path.read_text()
    managed_text = managed_path.read_text() if managed_path.is_file() else None
    for segment in json.loads(meta_text)["segments"]:
        old = uuid.UUID(segment["segment_id"])
        files = sorted(path.glob(f"{old.hex}.*"))
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.suffix.encode() + f.read_bytes())
        new = uuid.UUID(bytes=digest.digest()[:16])
        for f in files:
            f.rename(f.with_name(new.hex + f.suffix))
        meta_text = meta_text.replace(str(old), str(new))
        if managed_text is not None:
            managed_text = managed_text.replace(old.hex, new.hex)
    meta_path.write_text(meta_text)
    if managed_text is not None:  # a set, written in hash order: sorted
        managed_path.write_text(json.dumps(sorted(json.loads(managed_text)), separators=(",", ":")) + "\n")


class EmbeddedRetriever:
    """Searches the tantivy index the ``index`` stage wrote under ``index_dir``."""

    def __init__(self, index_dir: Path, stopwords: bool = True):
        tantivy = _tantivy()
        self._tantivy = tantivy
        self._index = tantivy.Index.open(str(Path(index_dir) / SUBDIR))
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self.stopwords = stopwords

    def __len__(self) -> int:
        return self._searcher.num_docs

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return [self._search_one(q, k) for q in queries]

    def _search_one(self, query: str, k: int) -> list[Hit]:
        terms = query_terms(query, self.stopwords)
        if not terms or k <= 0:
            return []
        t = self._tantivy
        clauses = [(t.Occur.Should, t.Query.term_query(self._schema, "contents", term)) for term in terms]
        result = self._searcher.search(t.Query.boolean_query(clauses), k + TIE_MARGIN, count=False)
        hits = []
        for score, address in result.hits:
            d = json.loads(self._searcher.doc(address)["doc"][0])
            hits.append(Hit(d["id"], float(score) / (K1 + 1), d["title"], d["text"]))
        return top_k(hits, k)
