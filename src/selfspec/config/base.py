from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class BaseParams:
    """Shared by every stage."""

    seed: int = knob(42, help="global seed: sampling, shuffles, training", ge=0)
    domain: str = knob("biomedical", help="selects seeds, corpus and evaluation suite (<dir>/<domain>.*)")
    seeds_dir: str = knob("seeds", help="folder holding <domain>.jsonl seed files")
    corpora_dir: str = knob("corpora", help="folder holding <domain>.yaml corpus definitions")
    # relative to the params file's folder (the repo root): what evaluation the domain has
    suites_dir: str = knob("evals/domains", help="folder holding <domain>.yaml evaluation suites")
    # A local folder with copies of public files; SELFSPEC_DATA_MIRROR overrides it. A source with a
    # URL is read from here when the copy exists, else fetched from its URL.
    data_mirror: str = knob("../shared/data", help="local mirror of public data (env SELFSPEC_DATA_MIRROR)")
    device: str = knob("auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when available")
    dtype: str = knob(
        "auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="compute dtype; auto: bf16 where the hardware runs it fast, else fp32",
    )
