"""selfspec.sources and its callers: what counts as "unavailable" (skipped, when allowed) and what is
a bug (fails the stage); what a stage read is recorded (links + sha256) and tagged on the MLflow run."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from selfspec.errors import DataError, SourceUnavailableError
from selfspec.sources import Input, record_inputs


@pytest.fixture
def hub_online(monkeypatch):
    """``datasets.load_dataset`` replaced by a function raising what a test gives: no hub runs here,
    and the failure under test is the loader's, not the network's."""
    import datasets

    import selfspec.evaluation.sources as eval_sources

    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(eval_sources, "hub_reachable", lambda: None)

    def failing_with(error: BaseException) -> None:
        def load_dataset(*args, **kwargs):
            raise error

        monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    return failing_with


HF_ONLY = {"format": "medmcqa", "hf": {"dataset": "org/set", "split": "validation"}}


def _eval_source(tmp_path: Path):
    import yaml

    from selfspec.evaluation.sources import load_sources

    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"datasets": {"set": HF_ONLY}}))
    return load_sources(tmp_path / "sources.yaml")


@pytest.mark.parametrize(
    "error", [ConnectionError("connection refused"), FileNotFoundError("no such dataset"), TimeoutError()]
)
def test_an_unreachable_hf_dataset_is_unavailable(tmp_path, hub_online, error):
    from selfspec.stages.prepare_evals import fetch_all

    hub_online(error)
    raw = fetch_all(_eval_source(tmp_path), ["set"], None)
    assert isinstance(raw["set"], SourceUnavailableError) and "hf:org/set[validation]" in str(raw["set"])


def test_a_bug_in_loading_fails_the_stage_instead_of_being_skipped(tmp_path, hub_online):
    """``except Exception`` used to turn this into "unavailable" (skipped with allow_missing)."""
    from selfspec.stages.prepare_evals import fetch_all

    hub_online(KeyError("split"))
    with pytest.raises(KeyError, match="split"):
        fetch_all(_eval_source(tmp_path), ["set"], None)


def test_corpus_hf_source_skips_only_unavailability(tmp_path, hub_online):
    from selfspec.corpus.sources import read_source
    from selfspec.corpus.spec import parse_spec

    spec = parse_spec(
        {"sources": [{"name": "x", "kind": "hf", "dataset": "org/x", "fields": {"text": "t"}}]}, tmp_path
    )
    hub_online(ConnectionError("offline"))
    with pytest.raises(SourceUnavailableError, match="hf:org/x"):
        list(read_source(spec.sources[0], tmp_path, None))
    hub_online(TypeError("bad argument"))
    with pytest.raises(TypeError, match="bad argument"):
        list(read_source(spec.sources[0], tmp_path, None))


def test_record_inputs_links_each_file_and_replaces_the_folder_whole(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "a").mkdir(parents=True)
    (mirror / "a/data.jsonl").write_text('{"x": 1}\n')
    root = tmp_path / "data/external"
    (root / "stage").mkdir(parents=True)
    (root / "stage/stale.json").write_text("{}")  # from an earlier run: must not survive
    entries = record_inputs("stage", {"data": Input(mirror / "a/data.jsonl", "mirror", None, "a/data.jsonl")},
                            {"gone": "not found"}, root=root)  # fmt: skip
    assert sorted(p.name for p in (root / "stage").iterdir()) == ["data.jsonl", "inputs.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((root / "stage").stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    assert (root / "stage/data.jsonl").readlink() == (mirror / "a/data.jsonl").resolve()
    sha = hashlib.sha256(b'{"x": 1}\n').hexdigest()
    assert entries["data"] == {"origin": "mirror", "url": None, "mirror_path": "a/data.jsonl", "bytes": 9,
                               "sha256": sha, "link": "data.jsonl"}  # fmt: skip
    assert json.loads((root / "stage/inputs.json").read_text()) == entries
    assert entries["gone"] == {"origin": None, "unavailable": "not found"}
    assert str(tmp_path) not in json.dumps(entries), (
        "no absolute path: the record is the same on every machine"
    )
    from selfspec.tracking import input_hashes

    assert input_hashes(tmp_path) == {"stage.data": entries["data"]["sha256"]}


def test_train_run_tags_carry_the_sha256_of_every_recorded_input(tmp_path, monkeypatch):
    from selfspec import tracking
    from selfspec.config import default_params
    from selfspec.io import sha256_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "corpus.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "pqal.json").write_text("{}")
    record_inputs("build_corpus", {"pubmedqa": Input(tmp_path / "corpus.jsonl", "mirror")})
    record_inputs("prepare_evals", {"pubmedqa.pqal": Input(tmp_path / "pqal.json", "url")})
    tags = tracking.run_tags(default_params())
    assert {k: v for k, v in tags.items() if k.startswith("input.")} == {
        "input.sha256.build_corpus.pubmedqa": sha256_file(tmp_path / "corpus.jsonl"),
        "input.sha256.prepare_evals.pubmedqa.pqal": sha256_file(tmp_path / "pqal.json"),
    }


def test_json_errors_name_the_column_once(tmp_path):
    """The message used to read "Unterminated string starting at at column 7"."""
    from selfspec.io import read_jsonl

    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": "unterminated')
    with pytest.raises(DataError) as e:
        read_jsonl(path)
    assert str(e.value) == f"{path}:2: invalid JSON (column 7: Unterminated string starting at)"
