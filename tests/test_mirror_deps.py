"""Files read from the data mirror or a URL are dependencies DVC sees (issue 17), through real ``dvc``.

A small DVC project in tmp: this repo's dvc.yaml, params.yaml, src/, corpora/ and evals/sources.yaml,
reproduced for ``build_corpus index prepare_evals`` only (no model stages). Offline, the fixture
mirror holds the files; one changed byte in a mirror file must make ``dvc status`` report exactly
the stages that read it, and ``dvc repro`` re-run them and what depends on their outputs, nothing
else. Online (no mirror file), the same pipeline reads the URLs of a local HTTP server and is up
to date after one run.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml

from selfspec.io import sha256_file
from tests.conftest import REPO
from tests.fixtures.mirror import build_mirror

pytestmark = pytest.mark.integration

TARGETS = ("build_corpus", "index", "prepare_evals")
RAN = re.compile(r"Running stage '(\w+)'")
OBO = REPO / "tests/fixtures/corpus/mini_hp.obo"


def make_project(root: Path, mirror: Path, url_base: str, env_extra: dict[str, str]) -> Project:
    """This repo's pipeline files, the HPO source on a tiny obo file, eval sources not pinned
    (the fixture files are no public copies) with their URLs under ``url_base``."""
    root.mkdir(parents=True)
    for rel in ("dvc.yaml", "params.yaml", "evals/sources.yaml", "evals/domains/biomedical.yaml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "corpora", root / "corpora")
    shutil.copy(OBO, root / "corpora")
    corpus = root / "corpora/biomedical.yaml"
    text = corpus.read_text().replace("    kind: hpo\n", "    kind: hpo\n    path: mini_hp.obo\n")
    corpus.write_text(
        text.replace("https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data", url_base)
    )
    sources = yaml.safe_load((root / "evals/sources.yaml").read_text())
    for spec in sources["datasets"].values():
        for f in spec.get("files", {}).values():
            f["sha256"], f["url"] = None, f"{url_base}/{Path(f['mirror_path']).name}"
    (root / "evals/sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["base"]["data_mirror"] = str(mirror)
    params["prepare_evals"]["datasets"] = ["pubmedqa", "medmcqa"]  # medmcqa: in no mirror, no URL answers
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "SELFSPEC_DATA_MIRROR"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", DVC_NO_ANALYTICS="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **env_extra)  # fmt: skip
    project = Project(root, env)
    project.dvc("init", "--no-scm", "-q")
    return project


class Project:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env

    def dvc(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.root, env=self.env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, (
            f"dvc {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
        return out.stdout + out.stderr

    def repro(self) -> set[str]:
        """The stages ``dvc repro`` ran (a run-cache restore would count too: it did not happen)."""
        out = self.dvc("repro", *TARGETS)
        assert "is cached - skipping run" not in out
        return set(RAN.findall(out))

    def status(self) -> dict[str, list]:
        return json.loads(self.dvc("status", "--json", *TARGETS))

    def inputs(self, stage: str) -> dict[str, dict]:
        return json.loads((self.root / f"data/external/{stage}/inputs.json").read_text())


def change_one_byte(path: Path, anchor: str, old: str, new: str) -> None:
    """Replace the first ``old`` after ``anchor`` by ``new`` (one character): same size, new bytes."""
    text = path.read_text()
    at = text.index(old, text.index(anchor))
    path.write_text(text[:at] + new + text[at + 1 :])


@pytest.fixture(scope="module")
def offline(tmp_path_factory) -> tuple[Project, Path]:
    tmp = tmp_path_factory.mktemp("mirror-deps")
    mirror = build_mirror(tmp / "mirror")
    project = make_project(tmp / "repo", mirror, "http://127.0.0.1:9", {})  # a closed port: offline
    project.first = project.repro()
    return project, mirror


def test_every_file_read_is_linked_with_its_sha256(offline):
    project, mirror = offline
    assert project.first == set(TARGETS)
    corpus = project.inputs("build_corpus")
    expected = {"pubmedqa": "pubmedqa/ori_pqal.json", "pubmed_abstracts": "corpus/pubmed_abstracts.jsonl",
                "exclude_pmids.0": "pubmedqa/test_ground_truth.json"}  # fmt: skip
    for key, rel in expected.items():
        assert corpus[key]["origin"] == "mirror" and corpus[key]["mirror_path"] == rel
        assert corpus[key]["sha256"] == sha256_file(mirror / rel)
        link = project.root / "data/external/build_corpus" / corpus[key]["link"]
        assert link.is_symlink() and link.resolve() == (mirror / rel).resolve()
    assert corpus["hpo"]["origin"] == "local" and corpus["hpo"]["sha256"] == sha256_file(OBO)
    metrics = json.loads((project.root / "metrics/build_corpus.json").read_text())
    assert metrics["inputs"] == corpus
    evals = project.inputs("prepare_evals")
    assert set(evals) == {"pubmedqa.pqal", "pubmedqa.test_ids", "medmcqa"}
    assert evals["pubmedqa.pqal"]["sha256"] == sha256_file(mirror / "pubmedqa/ori_pqal.json")
    assert "127.0.0.1:9" in evals["medmcqa"]["unavailable"] and "link" not in evals["medmcqa"]
    assert json.loads((project.root / "metrics/prepare_evals.json").read_text())["inputs"] == evals
    assert project.status() == {}


def test_one_changed_byte_reruns_exactly_the_stages_that_read_it(offline):
    project, mirror = offline
    abstracts = mirror / "corpus/pubmed_abstracts.jsonl"  # read by build_corpus only
    change_one_byte(abstracts, '"id": "syn30"', "enrolled", "E")
    assert project.status() == {
        "build_corpus": [{"changed outs": {"data/external/build_corpus": "modified"}}]
    }
    assert project.repro() == {"build_corpus", "index"}  # new passages: the index below is rebuilt
    assert project.inputs("build_corpus")["pubmed_abstracts"]["sha256"] == sha256_file(abstracts)

    pqal = mirror / "pubmedqa/ori_pqal.json"  # read by both build_corpus and prepare_evals
    change_one_byte(pqal, '"900001"', "enrolled", "E")
    assert set(project.status()) == {"build_corpus", "prepare_evals"}
    assert project.repro() == {"build_corpus", "index", "prepare_evals"}
    assert project.status() == {}
    assert project.inputs("prepare_evals")["pubmedqa.pqal"]["sha256"] == sha256_file(pqal)


def test_a_byte_change_that_leaves_the_passages_alone_stops_at_build_corpus(offline):
    """A test-split abstract's text is excluded from the corpus: build_corpus re-reads, the index
    below it does not re-run because the passages it depends on are unchanged."""
    project, mirror = offline
    truth = json.loads((mirror / "pubmedqa/test_ground_truth.json").read_text())
    test_doc = next(i for i in range(24) if str(900000 + i) in truth)
    change_one_byte(mirror / "corpus/pubmed_abstracts.jsonl", f'"id": "syn{test_doc}"', "enrolled", "E")
    assert set(project.status()) == {"build_corpus"}
    assert project.repro() == {"build_corpus"}


@pytest.fixture
def upstream(tmp_path):
    """The public files served over HTTP from a local server (the "online" user's URLs)."""
    served = tmp_path / "served"
    mirror = build_mirror(tmp_path / "files")
    served.mkdir()
    for f in ("pubmedqa/ori_pqal.json", "pubmedqa/test_ground_truth.json"):
        shutil.copy(mirror / f, served)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_online_without_a_mirror_file_reads_the_urls_and_is_up_to_date(tmp_path, upstream):
    """No mirror copy at all: an external dep on the mirror path would fail `dvc repro` here."""
    url, served = upstream
    cache = tmp_path / "download-cache"
    project = make_project(
        tmp_path / "repo", tmp_path / "empty-mirror", url, {"SELFSPEC_DOWNLOAD_CACHE": str(cache)}
    )
    assert project.repro() == set(TARGETS)
    corpus = project.inputs("build_corpus")
    assert corpus["pubmedqa"]["origin"] == "url" and corpus["pubmedqa"]["url"] == f"{url}/ori_pqal.json"
    assert corpus["pubmedqa"]["sha256"] == sha256_file(served / "ori_pqal.json")
    link = project.root / "data/external/build_corpus" / corpus["pubmedqa"]["link"]
    assert cache in link.resolve().parents  # the downloaded copy that was read
    assert "mirror copy" in corpus["pubmed_abstracts"]["unavailable"]  # mirror-only: skipped, listed
    assert project.status() == {} and project.repro() == set()
