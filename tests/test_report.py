"""The specialization report: what it collects from a pipeline's outputs, and that it renders."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO


def fake_pipeline_outputs(root: Path) -> None:
    """The files a finished pipeline leaves behind, in their documented shapes."""
    shutil.copytree(REPO / "seeds", root / "seeds")
    (root / "metrics").mkdir()
    (root / "metrics/filter_records.json").write_text(
        json.dumps({"kept": 3, "dropped": {"near_duplicate": 2, "empty": 1}})
    )
    (root / "metrics/train.json").write_text(json.dumps({"final_loss": 1.25, "steps": 10}))
    (root / "metrics/evaluate.json").write_text(
        json.dumps(
            {
                "pubmedqa": {
                    "acc": {
                        "base": 0.50,
                        "specialized": 0.56,
                        "delta": 0.06,
                        "base_stderr": 0.02,
                        "specialized_stderr": 0.02,
                    }
                },
                "gate": {"promoted": True, "primary": "pubmedqa/acc", "margin": 0.0},
            }
        )
    )
    records = [
        {
            "id": f"r{i}",
            "instruction": instr,
            "input": "" if i else "An abstract.",
            "output": f"Answer {i}.",
            "task_type": tt,
            "seed_ids": ["bio_001"],
            "passages": [{"id": "p1", "score": 7.5}] if i < 2 else [],
        }
        for i, (instr, tt) in enumerate(
            [
                ("Define sepsis.", "definition"),
                ("List causes of anaemia.", "list_qa"),
                ("Define asthma.", "definition"),
            ]
        )
    ]
    (root / "data/filter_records").mkdir(parents=True)
    (root / "data/filter_records/records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "data/build_corpus").mkdir(parents=True)
    (root / "data/build_corpus/passages.jsonl").write_text(
        json.dumps(
            {
                "id": "p1",
                "title": "Sepsis",
                "text": "Sepsis is organ dysfunction caused by infection.",
                "source": "test",
            }
        )
        + "\n"
    )


@pytest.fixture
def pipeline_root(in_tmp_repo):
    fake_pipeline_outputs(in_tmp_repo)
    return in_tmp_repo


def test_collect_reports_grounding_diversity_and_examples_with_passage_text(pipeline_root):
    from selfspec.config import Params
    from selfspec.report import collect

    ctx = collect(Params(), n_examples=2)
    assert ctx["seeds"]["n_seeds"] >= 80
    assert ctx["data"]["n_records"] == 3
    assert ctx["data"]["grounded_share"] == pytest.approx(2 / 3)
    assert ctx["data"]["task_types"] == {"definition": 2, "list_qa": 1}
    assert ctx["data"]["top_first_words"] == {"define": 2, "list": 1}
    first = ctx["examples"][0]
    assert first["passages"][0]["text"].startswith("Sepsis is organ dysfunction")
    assert ctx["stages"]["filter_records"]["dropped"] == {"near_duplicate": 2, "empty": 1}


def test_render_writes_html_and_markdown_with_the_comparison(pipeline_root):
    from selfspec.config import Params
    from selfspec.report import collect
    from selfspec.report.render import render

    html, md = render(collect(Params()), pipeline_root / "reports")
    text = md.read_text()
    assert "| pubmedqa | acc | 0.5000 ± 0.0200 | 0.5600 ± 0.0200 | +0.0600 |" in text
    assert "near_duplicate" in text
    page = html.read_text()
    assert 'id="evaluation"' in page and "+0.0600" in page
    assert (
        'id="filtering" alt="kept and dropped records by stage and reason" src="data:image/png;base64,'
        in page
    )
    assert "<script" not in page and "http" not in page.split("<body>")[1], "self-contained, no CDN"


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.integration
def test_report_renders_in_headless_chromium(pipeline_root):
    """A real browser parses the report: the DOM it builds has every section and table."""
    from selfspec.config import Params
    from selfspec.report import collect
    from selfspec.report.render import render

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium on this machine: apt-get install chromium (make test does it when root)")
    html, _ = render(collect(Params()), pipeline_root / "reports")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={pipeline_root / 'chrome'}",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for anchor in ('id="title"', 'id="seed-types"', 'id="data-stats"', 'id="evaluation"'):
        assert anchor in dom
    shot = pipeline_root / "shot.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1000,2000", html.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000, "a rendered page, not a blank one"


def test_zero_examples_is_an_empty_list_not_a_crash(pipeline_root):
    from selfspec.io import read_jsonl
    from selfspec.report import examples

    records = read_jsonl(pipeline_root / "data/filter_records/records.jsonl")
    assert examples(records, pipeline_root / "data/build_corpus/passages.jsonl", 0) == []
    assert len(examples(records, pipeline_root / "data/build_corpus/passages.jsonl", 2)) == 2
