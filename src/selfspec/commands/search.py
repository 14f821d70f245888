"""``selfspec search "query" [-k N]``: the top passages from the configured retriever."""

from __future__ import annotations

import argparse
import textwrap


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="+", help="the query text (several words need no quotes)")
    p.add_argument("-k", type=int, default=5, help="how many passages to print (default: 5)")
    p.add_argument("--width", type=int, default=100, help="wrap passage text at this width")


def main(args: argparse.Namespace, params) -> int:
    from selfspec.retrieval import open_retriever

    query = " ".join(args.query)
    hits = open_retriever(params).search([query], args.k)[0]
    if not hits:
        print(f"no passage matches {query!r}")
        return 1
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:>2}. {hit.id}  score {hit.score:.3f}  {hit.title}")
        print(textwrap.indent(textwrap.fill(hit.text, args.width - 4), "    "))
    return 0
