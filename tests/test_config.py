"""params.yaml validation: wrong keys, types and values fail before any compute, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfspec.config import Params, default_params, flatten, load_params, stage_sections, to_dict
from selfspec.errors import ConfigError
from tests.conftest import REPO


def write(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_shipped_params_load_and_cover_every_section():
    params = load_params(REPO / "params.yaml")
    assert params.base.domain == "biomedical"
    shipped = __import__("yaml").safe_load((REPO / "params.yaml").read_text())
    assert set(shipped) == set(to_dict(params)), "params.yaml must list every section"


def test_shipped_params_list_every_key():
    """dvc exp run -S only edits keys that exist in params.yaml: every knob must be there."""
    shipped = flatten(__import__("yaml").safe_load((REPO / "params.yaml").read_text()))
    schema = flatten(to_dict(Params()))
    assert sorted(set(schema) - set(shipped)) == []


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("base:\n  seed: -1\n", "base.seed", ">= 0"),
        ("base:\n  sed: 1\n", "base.sed", "not in"),
        ("base:\n  seed: abc\n", "base.seed", "could not be converted"),
        ("train:\n  lora_r: 0\n", "train.lora_r", "> 0"),
        ("index:\n  backend: solr\n", "index.backend", "must be one of"),
        ("nonsense:\n  a: 1\n", "nonsense", "not in"),
        ("gen_instructions:\n  top_p: 1.5\n", "gen_instructions.top_p", "<= 1"),
    ],
)
def test_bad_params_name_file_and_key(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert str(path) in str(e.value)
    assert f"{key}:" in str(e.value)
    assert problem in str(e.value)


def test_overrides_are_validated_too(tmp_path):
    path = write(tmp_path, "")
    assert load_params(path, ["train.lora_r=4"]).train.lora_r == 4
    with pytest.raises(ConfigError, match="train.lora_r"):
        load_params(path, ["train.lora_r=-4"])


def test_yaml_syntax_error_names_file(tmp_path):
    path = write(tmp_path, "base: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse YAML"):
        load_params(path)


def test_data_mirror_env_overrides_param(tmp_path, monkeypatch):
    path = write(tmp_path, "base:\n  data_mirror: /nowhere\n")
    monkeypatch.setenv("SELFSPEC_DATA_MIRROR", str(tmp_path))
    assert load_params(path).data_mirror == tmp_path


def test_mirror_copy_is_preferred_and_missing_file_names_url_and_mirror(tmp_path):
    from selfspec.errors import SourceUnavailableError
    from selfspec.sources import RemoteFile, resolve

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_text("{}")
    assert resolve(RemoteFile("http://127.0.0.1:9/a.json", "sub/a.json"), tmp_path) == tmp_path / "sub/a.json"
    missing = RemoteFile("http://127.0.0.1:9/b.json", "sub/b.json")
    with pytest.raises(SourceUnavailableError) as e:
        resolve(missing, tmp_path, cache_dir=tmp_path / "cache")
    assert "http://127.0.0.1:9/b.json" in str(e.value) and str(tmp_path / "sub/b.json") in str(e.value)


def test_mirror_copy_with_wrong_checksum_is_refused(tmp_path):
    from selfspec.errors import SourceUnavailableError
    from selfspec.sources import RemoteFile, resolve

    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(SourceUnavailableError, match="sha256"):
        resolve(RemoteFile(None, "a.json", sha256="0" * 64), tmp_path)


def test_missing_params_file_is_an_error_naming_it(tmp_path):
    """A mistyped --params used to run silently on the schema defaults (rc 0)."""
    with pytest.raises(ConfigError) as e:
        load_params(tmp_path / "parmas.yaml")
    assert f"{tmp_path / 'parmas.yaml'}: params file not found" in str(e.value)


def test_default_params_are_the_schema_defaults_plus_overrides():
    params = default_params(["train.lora_r=4"])
    assert params.train.lora_r == 4 and params.base == Params().base and params.source == "(schema defaults)"


def test_override_errors_name_the_override_not_the_file(tmp_path):
    path = write(tmp_path, "train:\n  lora_r: 8\n")
    with pytest.raises(ConfigError) as e:
        load_params(path, ["base.seed=1", "train.lora_r=-4"])
    assert str(e.value).startswith("-S train.lora_r=-4: train.lora_r: must be > 0")
    with pytest.raises(ConfigError) as e:  # a section's own check() names the override as well
        load_params(path, ["prepare_evals.datasets=[]"])
    assert str(e.value).startswith("-S prepare_evals.datasets=[]: prepare_evals.datasets: empty")
    with pytest.raises(ConfigError) as e:  # a type error from an override
        load_params(path, ["base.seed=abc"])
    assert str(e.value).startswith("-S base.seed=abc: base.seed:")
    bad_file = write(tmp_path, "train:\n  lora_r: -4\n")
    with pytest.raises(ConfigError) as e:  # a key only the file sets is still the file's
        load_params(bad_file, ["base.seed=1"])
    assert str(e.value).startswith(f"{bad_file}: train.lora_r: must be > 0")


def test_under_dvc_exp_run_a_file_error_says_it_may_come_from_dash_s(tmp_path, monkeypatch):
    """`dvc exp run -S` writes its values into params.yaml before the stage starts: the file is all
    the stage sees, so the message can only point at it and say that -S may have written it."""
    path = write(tmp_path, "train:\n  lora_r: -4\n")
    monkeypatch.setenv("DVC_EXP_NAME", "sweep-1")
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert str(e.value).startswith(
        f"{path} (possibly set by `dvc exp run -S`, experiment sweep-1): train.lora_r: must be > 0"
    )


def test_stage_sections_are_the_dvc_yaml_params_of_the_stage(tmp_path):
    sections = stage_sections("evaluate_base", REPO / "dvc.yaml")
    assert "evaluate.limit" in sections and "evaluate.margin" not in sections and "base.seed" in sections
    assert stage_sections("build_corpus", tmp_path / "no-dvc.yaml") == ["build_corpus"]


@pytest.mark.parametrize(
    ("text", "missing"), [("base:\n  seed: 1\n", "build_corpus"), ("build_corpus: {}\n", "base")]
)
def test_a_stage_run_directly_without_its_section_fails(tmp_path, monkeypatch, capsys, text, missing):
    """DVC refuses missing params under `dvc repro`; `selfspec <stage>` used to run on defaults."""
    import shutil

    from selfspec.cli import main

    shutil.copy(REPO / "dvc.yaml", tmp_path)  # the stage's sections come from dvc.yaml
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, text)
    assert main(["build_corpus", "--params", str(path)]) == 1
    assert f"{path}: {missing}: missing; this stage reads it" in capsys.readouterr().err


def test_a_relative_mirror_is_the_real_repos_inside_a_dvc_exp_copy(tmp_path, monkeypatch):
    """`dvc exp run --temp` runs in <repo>/.dvc/tmp/exps/standalone/tmpXXXX/ (seen with dvc 3.67),
    where ../shared/data is not the mirror: relative to the copy it would point into .dvc/tmp/."""
    monkeypatch.delenv("SELFSPEC_DATA_MIRROR", raising=False)
    copy = tmp_path / "repo/.dvc/tmp/exps/standalone/tmpab12"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    assert default_params().data_mirror == tmp_path / "repo/../shared/data"
    assert default_params(["base.data_mirror=/abs/mirror"]).data_mirror == Path("/abs/mirror")
    monkeypatch.chdir(tmp_path)
    assert default_params().data_mirror == Path("../shared/data")
