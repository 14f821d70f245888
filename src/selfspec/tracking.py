"""MLflow helpers shared by train, evaluate and the deployment commands.

The tracking URI comes from ``MLFLOW_TRACKING_URI``; without it, a sqlite store inside the repo
(``mlflow/mlflow.db``, artifacts under ``mlflow/artifacts``, both git-ignored). Experiments are
always created with an explicit artifact location: MLflow's default writes ``./mlruns`` into
whatever the current directory is.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from selfspec.errors import SelfspecError

STORE_DIR = "mlflow"
# The train stage's pointer into MLflow: its own DVC output, outside models/train so that
# the adapter folder reproduces byte for byte (a new training is a new MLflow run id).
REGISTRY_FILE = "registry/train.json"
# The MLflow UI opens an experiment by its kind; without the tag it guesses, and MLflow 3 shows a
# GenAI (traces) view for a training experiment. The values are the UI's (mlflow/server/js).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
CANDIDATE_ALIAS = "candidate"
CHAMPION_ALIAS = "champion"
# Never log a param whose name looks like a credential, whatever section it comes from.
_SECRET = re.compile(r"(key|token|secret|password|passwd|credential)", re.IGNORECASE)


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The project root: the nearest folder with dvc.yaml or .git, else the current directory.

    ``dvc exp run --queue/--temp`` runs stages in a copy under ``<repo>/.dvc/tmp/exps/``: the
    store belongs to the real repo, so that prefix is stripped.
    """
    here = Path(start or os.getcwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() or (folder / ".git").exists():
            return folder
    return here


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else ``sqlite:///<repo>/mlflow/mlflow.db`` (absolute)."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    return f"sqlite:///{repo_root() / STORE_DIR / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a sqlite/file store; None lets a server decide."""
    parsed = urlsplit(uri)
    if parsed.scheme == "sqlite":
        # sqlite:///rel.db is relative to the cwd, sqlite:////abs.db absolute (SQLAlchemy's rule)
        db = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else ":memory:"
        if db in ("", ":memory:"):
            return None
        return (Path(db).resolve().parent / "artifacts").as_uri()
    if parsed.scheme in ("", "file"):
        return (Path(parsed.path).resolve() / "artifacts").as_uri()
    return None


def redact_uri(uri: str) -> str:
    """The URI without user:password, for files and tags."""
    parsed = urlsplit(uri)
    if parsed.username or parsed.password:
        host = parsed.hostname or ""
        netloc = f"{host}:{parsed.port}" if parsed.port else host
        return urlunsplit(parsed._replace(netloc=netloc))
    return uri


def experiment_name(params) -> str:
    return params.tracking.experiment or f"selfspec-{params.base.domain}"


def registered_model_name(params) -> str:
    return params.tracking.registered_model or f"{params.base.domain}-expert"


def setup(params) -> str:
    """Point MLflow at the store and return the experiment id (created with an explicit artifact root)."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    name = experiment_name(params)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        exp_id = client.create_experiment(name, artifact_location=artifact_location(uri))
    elif exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
        exp_id = exp.experiment_id
    else:
        exp_id = exp.experiment_id
    if exp is None or exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # older stores get it too
        client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def loggable_params(params, sections: tuple[str, ...] = ("base", "train", "tracking")) -> dict[str, str]:
    """The given params sections, flattened to ``section.key`` strings, without credential-like keys."""
    from selfspec.config import flatten, to_dict

    nested = {k: v for k, v in to_dict(params).items() if k in sections}
    return {k: str(v) for k, v in flatten(nested).items() if not _SECRET.search(k)}


def git_info(root: Path | None = None) -> dict[str, str]:
    """``git.commit`` and ``git.dirty`` (tracked files modified) of the repo, or ``unknown``."""
    root = root or repo_root()
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"git.commit": "unknown", "git.dirty": "unknown"}
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def dvc_dep_hashes(stage: str, root: Path | None = None) -> dict[str, str]:
    """md5 (from dvc.lock) of each dep of ``stage`` that an upstream stage produces: the data.

    Only upstream outs are used: during ``dvc repro`` their entries are already current, while
    this stage's own entry still describes its previous run. Code deps are covered by git tags.
    """
    import yaml

    root = root or repo_root()
    lock_path, dvc_path = root / "dvc.lock", root / "dvc.yaml"
    if not lock_path.is_file() or not dvc_path.is_file():
        return {}
    lock = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    deps = ((yaml.safe_load(dvc_path.read_text()) or {}).get("stages", {}).get(stage) or {}).get("deps", [])
    outs = {o["path"]: o.get("md5") for name, s in lock.items() if name != stage for o in s.get("outs", [])}
    return {dep: outs[dep] for dep in deps if isinstance(dep, str) and outs.get(dep)}


def run_tags(params, stage: str = "train") -> dict[str, str]:
    """Tags for a run: stage, domain, git commit/dirty, DVC experiment name/baseline, dep hashes."""
    root = repo_root()
    tags = {"selfspec.stage": stage, "selfspec.domain": params.base.domain, **git_info(root)}
    for env, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if value := os.environ.get(env):
            tags[tag] = value
    tags.update({f"dvc.md5.{dep}": md5 for dep, md5 in dvc_dep_hashes(stage, root).items()})
    return tags


def read_registry(path: str | os.PathLike = REGISTRY_FILE) -> dict[str, Any]:
    """``registry/train.json``: where the trained adapter lives in MLflow."""
    from selfspec.io import read_json

    path = Path(path)
    if not path.is_file():
        raise SelfspecError(f"{path}: not found; run the train stage first (dvc repro train)")
    registry = read_json(path)
    missing = sorted({"tracking_uri", "experiment_id", "run_id", "model_name", "version"} - set(registry))
    if missing:
        raise SelfspecError(f"{path}: missing keys {missing}")
    return registry
