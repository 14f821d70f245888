"""Paired statistics of base vs specialized: bootstrap intervals on known data, McNemar / sign test
against hand computations, pairing by document, pooled groups, and the gate at its boundary."""

from __future__ import annotations

import numpy as np
import pytest
from lm_eval.api.metrics import mean

from selfspec.errors import StageError
from selfspec.evaluation.compare import POOLED, check_reproduces, compare, gate
from selfspec.evaluation.paired import boot_indices, pair, replicates, rng_for, sign_test
from selfspec.evaluation.tasks import GroupSpec, Suite, TaskSpec, resolve_limits, sample_indices


def samples(values, metric="acc", hashes=None, filt="none"):
    """lm-eval's per-sample log: one entry per document with the metric's per-doc value."""
    hashes = hashes or [f"h{i}" for i in range(len(values))]
    return [{"doc_id": i, "doc_hash": h, "filter": filt, "metrics": [metric], metric: v}
            for i, (v, h) in enumerate(zip(values, hashes, strict=True))]  # fmt: skip


def suite_of(**tasks) -> Suite:
    """Tasks with lm-eval's ``mean`` aggregation of ``acc`` (or the given TaskSpec)."""
    specs = {
        name: t if isinstance(t, TaskSpec) else TaskSpec({"acc": mean}, "acc", t) for name, t in tasks.items()
    }
    return Suite(tasks=specs, parent={n: n for n in specs})


def run(base, spec, suite, seed=42, n_boot=1000):
    return compare(base, spec, suite, seed=seed, n_boot=n_boot, confidence=0.95)


BIN_BASE = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1]
BIN_SPEC = [1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1]


def test_identical_sides_give_delta_zero_with_interval_zero_zero_and_p_one():
    row = run({"t": samples(BIN_BASE)}, {"t": samples(BIN_BASE)}, suite_of(t=20))["t"]["acc"]
    assert (row["delta"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
    assert row["p_value"] == 1.0 and row["better"] == row["worse"] == 0 and row["n"] == 20
    assert row["base"] == row["specialized"] == pytest.approx(11 / 20)


def test_a_constant_shift_of_one_gives_delta_one_with_interval_one_one():
    base = [0.1 * i for i in range(30)]
    row = run({"t": samples(base)}, {"t": samples([v + 1 for v in base])}, suite_of(t=30))["t"]["acc"]
    assert row["delta"] == pytest.approx(1.0)
    assert row["ci_low"] == pytest.approx(1.0) and row["ci_high"] == pytest.approx(1.0)
    assert row["better"] == 30 and row["worse"] == 0 and row["p_value"] == pytest.approx(2 * 0.5**30)


def test_interval_is_the_percentile_of_jointly_resampled_paired_deltas():
    row = run({"t": samples(BIN_BASE)}, {"t": samples(BIN_SPEC)}, suite_of(t=20), n_boot=500)["t"]["acc"]
    idx = np.random.default_rng(np.random.SeedSequence([42, __import__("zlib").crc32(b"t")])).integers(
        0, 20, size=(500, 20)
    )
    deltas = np.asarray(BIN_SPEC)[idx].mean(axis=1) - np.asarray(BIN_BASE)[idx].mean(axis=1)
    assert (row["ci_low"], row["ci_high"]) == tuple(np.quantile(deltas, [0.025, 0.975]))
    assert row["delta"] == pytest.approx((15 - 11) / 20)
    assert row["ci_low"] < row["delta"] < row["ci_high"]


def test_the_bootstrap_is_reproducible_from_the_seed_and_changes_with_it():
    args = ({"t": samples(BIN_BASE)}, {"t": samples(BIN_SPEC)}, suite_of(t=20))
    first, again, other = run(*args, seed=42), run(*args, seed=42), run(*args, seed=7)
    assert first == again
    assert (first["t"]["acc"]["ci_low"], first["t"]["acc"]["ci_high"]) != (
        other["t"]["acc"]["ci_low"],
        other["t"]["acc"]["ci_high"],
    )
    # a task's stream depends on its name, not on which other tasks run with it
    both = run({**args[0], "u": samples(BIN_SPEC)}, {**args[1], "u": samples(BIN_BASE)}, suite_of(t=20, u=20))
    assert both["t"] == first["t"]


def test_mcnemar_exact_p_value_matches_the_hand_computation():
    # 1 document only base gets right, 9 only specialized: two-sided exact binomial(10, 1/2) tail
    # P = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024; concordant documents do not count.
    base = [1] * 5 + [0] * 5 + [1] + [0] * 9
    spec = [1] * 5 + [0] * 5 + [0] + [1] * 9
    assert sign_test(base, spec) == {"p_value": pytest.approx(22 / 1024), "better": 9, "worse": 1}
    # 5 discordant, all one way: P = 2 / 2^5
    assert sign_test([0] * 5 + [1] * 3, [1] * 5 + [1] * 3)["p_value"] == pytest.approx(0.0625)
    assert sign_test([1, 0], [1, 0]) == {"p_value": 1.0, "better": 0, "worse": 0}
    # corpus-level per-doc values (lists) have no per-doc difference
    assert sign_test([[1, 0, 0]], [[0, 1, 0]]) == {"p_value": None, "better": None, "worse": None}


def micro_f1(items):
    """A corpus-level aggregation as a generative NER task has: per-doc [tp, fp, fn]."""
    tp, fp, fn = (sum(col) for col in zip(*items, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_corpus_level_metrics_are_recomputed_by_the_tasks_aggregation_on_each_resample():
    base = [[1, 1, 0], [0, 0, 2], [2, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]]
    spec = [[1, 0, 0], [1, 0, 1], [2, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]
    suite = suite_of(ner=TaskSpec({"f1": micro_f1}, "f1", 6))
    row = run({"ner": samples(base, "f1")}, {"ner": samples(spec, "f1")}, suite, n_boot=200)["ner"]["f1"]
    assert row["base"] == pytest.approx(2 * 4 / (8 + 2 + 4)) and row["specialized"] == pytest.approx(14 / 15)
    idx = boot_indices(6, 200, rng_for(42, "ner"))
    r = replicates(base, spec, micro_f1, idx)
    assert r.base_reps[3] == pytest.approx(micro_f1([base[i] for i in idx[3]]))
    assert r.specialized_reps[3] == pytest.approx(micro_f1([spec[i] for i in idx[3]]))
    assert (row["ci_low"], row["ci_high"]) == tuple(
        np.quantile(r.specialized_reps - r.base_reps, [0.025, 0.975])
    )
    assert row["p_value"] is None


def test_pairing_is_by_document_and_other_documents_are_an_error():
    shuffled = list(reversed(samples(BIN_SPEC)))  # order on disk does not matter, the doc id does
    paired = pair("t", samples(BIN_BASE), shuffled)
    assert paired.doc_ids == list(range(20)) and paired.values["acc"] == (BIN_BASE, BIN_SPEC)
    with pytest.raises(
        StageError, match=r"t: base and specialized scored different documents.*only base: \[\(19"
    ):
        pair("t", samples(BIN_BASE), samples(BIN_SPEC[:19]))
    changed = samples(BIN_SPEC, hashes=[f"h{i}" if i != 3 else "other" for i in range(20)])
    with pytest.raises(StageError, match=r"documents \[\(3, 'none'\)\] differ.*doc_hash"):
        pair("t", samples(BIN_BASE), changed)
    with pytest.raises(StageError, match="doc_id 0 .* twice"):
        pair("t", samples(BIN_BASE) + samples([1]), samples(BIN_SPEC))
    with pytest.raises(StageError, match="no specialized per-sample scores for task t"):
        run({"t": samples(BIN_BASE)}, {}, suite_of(t=20))


def test_a_filter_becomes_part_of_the_metric_label():
    base = samples([1, 0], "exact_match", filt="strict-match")
    spec = samples([1, 1], "exact_match", filt="strict-match")
    suite = suite_of(g=TaskSpec({"exact_match": mean}, "exact_match", 2))
    assert run({"g": base}, {"g": spec}, suite)["g"]["exact_match-strict-match"]["delta"] == 0.5


def test_pooled_group_is_the_unweighted_mean_of_member_primaries_resampled_within_each():
    ner = TaskSpec({"f1": micro_f1}, "f1", 6)
    suite = suite_of(qa=20, ner=ner)
    suite.groups["biomed_gen"] = GroupSpec(["qa", "ner"], [])
    base = {"qa": samples(BIN_BASE), "ner": samples([[1, 1, 0]] * 3 + [[0, 0, 1]] * 3, "f1")}
    spec = {"qa": samples(BIN_SPEC), "ner": samples([[1, 0, 0]] * 6, "f1")}
    out = run(base, spec, suite, n_boot=300)
    pooled = out["biomed_gen"][POOLED]
    assert pooled["base"] == pytest.approx((out["qa"]["acc"]["base"] + out["ner"]["f1"]["base"]) / 2)
    assert pooled["delta"] == pytest.approx((out["qa"]["acc"]["delta"] + out["ner"]["f1"]["delta"]) / 2)
    assert pooled["n"] == 26 and pooled["p_value"] is None
    qa = replicates(BIN_BASE, BIN_SPEC, mean, boot_indices(20, 300, rng_for(42, "qa")))
    ner_r = replicates([v["f1"] for v in base["ner"]], [v["f1"] for v in spec["ner"]], micro_f1,
                       boot_indices(6, 300, rng_for(42, "ner")))  # fmt: skip
    deltas = ((qa.specialized_reps - qa.base_reps) + (ner_r.specialized_reps - ner_r.base_reps)) / 2
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])))


def test_group_with_lm_eval_aggregation_weights_members_by_size_as_lm_eval_does():
    suite = suite_of(a=20, b=4)
    suite.groups["mmlu"] = GroupSpec(["a", "b"], [("acc", True)])
    base = {"a": samples(BIN_BASE), "b": samples([0, 0, 0, 0])}
    out = run(base, {"a": samples(BIN_BASE), "b": samples([1] * 4)}, suite)
    assert set(out["mmlu"]) == {"acc"}
    assert out["mmlu"]["acc"]["base"] == pytest.approx(11 / 24)  # (11 + 0) / (20 + 4): a document-level mean
    assert out["mmlu"]["acc"]["delta"] == pytest.approx(4 / 24)


def test_a_pooled_member_without_its_primary_metric_is_an_error():
    suite = suite_of(qa=TaskSpec({"acc": mean}, "f1", 20))
    suite.groups["g"] = GroupSpec(["qa"], [])
    with pytest.raises(StageError, match=r"group g: primary metric of \['qa'\].*have \['acc'\]"):
        run({"qa": samples(BIN_BASE)}, {"qa": samples(BIN_SPEC)}, suite)


def test_per_sample_values_must_reproduce_lm_evals_own_numbers():
    cmp = run({"t": samples(BIN_BASE)}, {"t": samples(BIN_SPEC)}, suite_of(t=20))
    check_reproduces(cmp, {"t": {"acc": 0.55}}, {"t": {"acc": 0.75}})
    with pytest.raises(
        StageError, match="t/acc: per-sample values give 0.75 for specialized, lm-eval reported 0.7"
    ):
        check_reproduces(cmp, {"t": {"acc": 0.55}}, {"t": {"acc": 0.7}})


# --- gate ------------------------------------------------------------------------------------------


def _row(delta, low, high):
    return {
        "g": {
            POOLED: {"base": 0.5, "specialized": 0.5 + delta, "delta": delta, "ci_low": low, "ci_high": high}
        }
    }


@pytest.mark.parametrize(
    ("low", "margin", "promoted"),
    [(0.0, 0.0, True), (-1e-9, 0.0, False), (0.004, 0.0, True), (0.004, 0.005, False), (0.005, 0.005, True),
     (-0.02, -0.03, True), (-0.04, -0.03, False)],
)  # fmt: skip
def test_gate_promotes_only_when_the_lower_bound_reaches_the_margin(low, margin, promoted):
    decision = gate(_row(0.03, low, 0.06), "g", POOLED, margin, 0.95)
    assert decision["promoted"] is promoted
    assert decision["ci_low"] == low and decision["ci_high"] == 0.06 and decision["primary"] == "g/pooled"


def test_gate_decision_states_the_interval():
    decision = gate(_row(0.031, 0.004, 0.058), "g", POOLED, 0.0, 0.95)
    assert decision["reason"] == "g/pooled: delta +0.0310, 95% CI [+0.0040, +0.0580] >= margin +0.0000"
    # a positive delta whose interval crosses zero is not an improvement
    decision = gate(_row(0.031, -0.004, 0.066), "g", POOLED, 0.0, 0.95)
    assert decision["promoted"] is False
    assert decision["reason"] == "g/pooled: delta +0.0310, 95% CI [-0.0040, +0.0660] < margin +0.0000"


def test_gate_on_a_task_that_was_not_evaluated_does_not_promote_and_says_why():
    decision = gate(_row(0.5, 0.4, 0.6), "medmcqa", "acc", -1.0, 0.95)
    assert decision["promoted"] is False and "not evaluated" in decision["reason"]


# --- per-task limits -------------------------------------------------------------------------------


def test_limit_resolves_per_leaf_task_by_own_name_then_its_group_then_default():
    sizes = {"pubmedqa": 500, "ner": 900, "anat": 135, "cm": 173}
    suite = Suite(
        tasks={name: TaskSpec({}, "acc", size) for name, size in sizes.items()},
        parent={"pubmedqa": "pubmedqa", "ner": "biomed_gen", "anat": "mmlu", "cm": "mmlu"},
    )
    limit = {"default": 300, "pubmedqa": 500, "mmlu": None, "cm": 100}
    assert resolve_limits(limit, suite) == {"pubmedqa": 500, "ner": 300, "anat": None, "cm": 100}
    assert resolve_limits(150, suite) == dict.fromkeys(suite.tasks, 150)
    indices = sample_indices(limit, suite)
    assert set(indices) == {"pubmedqa", "ner", "cm"}  # anat: all its documents (not in lm-eval's samples)
    assert indices["ner"] == list(range(300)) and indices["pubmedqa"] == list(range(500))
    assert sample_indices(1000, suite)["anat"] == list(range(135))  # never past the split's end


def test_a_per_sample_metric_without_an_aggregation_is_an_error():
    suite = suite_of(t=TaskSpec({"f1": micro_f1}, "f1", 20))
    with pytest.raises(StageError, match="t: per-sample metric 'acc' has no aggregation"):
        run({"t": samples(BIN_BASE)}, {"t": samples(BIN_SPEC)}, suite)
