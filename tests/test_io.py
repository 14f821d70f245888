"""File helpers: outputs get the modes the umask gives, and a stage that cannot write its outputs
says so in one line before it generates anything."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from selfspec.errors import NotWritableError
from selfspec.io import ensure_writable, write_json, write_jsonl
from tests.conftest import REPO


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        write_jsonl(tmp_path / "r.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    for name in ("m.json", "r.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, f"{name}: not mkstemp's 0600"


def test_a_file_in_place_of_an_output_folder_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/.partial").write_text("")
    with pytest.raises(NotWritableError, match=r"data/\.partial: is a file, but gen_responses-1\.jsonl must"):
        ensure_writable(
            tmp_path / "data/gen_responses/responses.jsonl", tmp_path / "data/.partial/gen_responses-1.jsonl"
        )
    assert (tmp_path / "data/gen_responses").is_dir(), "folders that can be made are made"
    assert not list((tmp_path / "data/gen_responses").iterdir()), "the probe file is gone"


def test_a_folder_where_a_file_goes_is_named(tmp_path):
    (tmp_path / "metrics/train.json").mkdir(parents=True)
    with pytest.raises(NotWritableError, match=r"metrics/train\.json: is a folder"):
        ensure_writable(tmp_path / "metrics/train.json")


def unprivileged(fn) -> str:
    """Run ``fn`` in a forked child as an ordinary user (root ignores permissions: it becomes
    ``nobody``); the error it raised, as ``Type: message``."""
    read, write = os.pipe()
    if (pid := os.fork()) == 0:  # the child: no exec, so no interpreter path has to be readable
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            fn()
            message = "no error"
        except BaseException as e:
            message = f"{type(e).__name__}: {e}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


def test_a_read_only_folder_is_named_with_the_reason():
    top = Path(tempfile.mkdtemp(prefix="selfspec-ro-"))
    try:
        top.chmod(0o755)
        (top / "data").mkdir()
        (top / "data").chmod(0o555)
        error = unprivileged(lambda: ensure_writable(top / "data/.partial/gen_responses-1.jsonl"))
    finally:
        (top / "data").chmod(0o755)
        shutil.rmtree(top)
    assert error == (
        f"NotWritableError: {top}/data/.partial: cannot write here (Permission denied); "
        "needed for gen_responses-1.jsonl"
    )


def test_generation_stage_checks_its_outputs_before_generating(tmp_path, monkeypatch, capsys):
    """gen_instructions with data/.partial blocked: one line naming it, and not a single prompt spent."""
    import selfspec.generation
    from selfspec.cli import main

    class MustNotGenerate:
        name = "none"

        def generate(self, prompts, sampling, seed):
            raise AssertionError("generated before the output paths were checked")

        def describe(self):
            return {"backend": self.name}

    monkeypatch.chdir(tmp_path)
    (tmp_path / "seeds").mkdir()
    shutil.copy(
        Path(__file__).parent / "fixtures/generation/seeds.jsonl", tmp_path / "seeds/biomedical.jsonl"
    )
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/.partial").write_text("")
    monkeypatch.setattr(selfspec.generation, "open_generator", lambda params: MustNotGenerate())
    assert main(["gen_instructions"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfspec gen_instructions: error: data/.partial: is a file, but gen_instructions-")
    assert len(err.splitlines()) == 1 and not (tmp_path / "data/gen_instructions/instructions.jsonl").exists()
