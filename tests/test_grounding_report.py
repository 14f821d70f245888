"""The report's data-quality part: support and agreement distributions and task types, generated
vs kept (issue 13, "Done when")."""

from __future__ import annotations

import json

from selfspec.report.quality import distribution, grounding_rows, grounding_stats
from tests.test_report import fake_pipeline_outputs


def test_distribution_bins_scores_and_counts_records_without_one():
    d = distribution([0.0, 0.19, 0.2, 0.5, 1.0, None])
    assert d["bins"] == {"0.0-0.2": 2, "0.2-0.4": 1, "0.4-0.6": 1, "0.6-0.8": 0, "0.8-1.0": 1}
    assert (d["n"], d["none"], d["mean"], d["median"]) == (5, 1, 0.378, 0.2)
    assert distribution([None]) == {
        "n": 0,
        "none": 1,
        "mean": None,
        "median": None,
        "bins": d["bins"] | {k: 0 for k in d["bins"]},
    }


def test_grounding_stats_put_generated_beside_kept():
    generated = [
        {"support": 0.1, "agreement": 0.4, "task_type": "yes_no_qa", "input_source": "corpus"},
        {"support": 0.9, "agreement": None, "task_type": "factoid_qa", "input_source": "none"},
    ]
    stats = grounding_stats(generated, generated[1:])
    assert stats["support"]["generated"]["n"] == 2 and stats["support"]["kept"]["mean"] == 0.9
    assert stats["task_types"] == {"generated": {"yes_no_qa": 1, "factoid_qa": 1}, "kept": {"factoid_qa": 1}}
    rows = dict((label, (g, k)) for label, g, k in grounding_rows(stats))
    assert rows["agreement in 0.4-0.6"] == (1, 0) and rows["task type: yes_no_qa"] == (1, 0)
    assert rows["input source: corpus"] == (1, 0) and rows["support none"] == (0, 0)


def test_the_rendered_report_shows_the_grounding_table_and_histogram(in_tmp_repo):
    from selfspec.config import Params
    from selfspec.report import collect
    from selfspec.report.render import render

    fake_pipeline_outputs(in_tmp_repo)
    (in_tmp_repo / "data/gen_responses").mkdir(parents=True)
    rows = [
        {"id": "r0", "support": 0.25, "agreement": 0.8, "task_type": "definition", "input_source": "none"}
    ]
    (in_tmp_repo / "data/gen_responses/responses.jsonl").write_text(json.dumps(rows[0]) + "\n")
    html, md = render(collect(Params()), in_tmp_repo / "reports")
    assert "| support mean | 0.2500 | None |" in md.read_text()  # the kept fixture records carry no score
    assert "| task type: definition | 1 | 2 |" in md.read_text()
    page = html.read_text()
    assert 'id="grounding"' in page and 'id="support" alt="support scores, generated vs kept"' in page
