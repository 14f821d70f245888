"""MLflow helpers shared by train, evaluate and the deployment commands.

The tracking URI comes from ``MLFLOW_TRACKING_URI``; without it, a sqlite store inside the repo
(``mlflow/mlflow.db``, artifacts under ``mlflow/artifacts``, both git-ignored). Experiments are
always created with an explicit artifact location: MLflow's default writes ``./mlruns`` into
whatever the current directory is.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from selfspec.errors import BackendError, Interrupted, NotWritableError, SelfspecError

STORE_DIR = "mlflow"
# The train stage's pointer into MLflow: its own DVC output, outside models/train so that
# the adapter folder reproduces byte for byte (a new training is a new MLflow run id).
REGISTRY_FILE = "registry/train.json"
# registry/train.json names the default store by this repo-relative URI, so a moved checkout finds its own
DEFAULT_URI = f"sqlite:///{STORE_DIR}/mlflow.db"
REACH_TIMEOUT_S = 5.0  # one reachability probe before any compute, instead of MLflow's ~4 min of retries
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
    return _default_uri()


def _default_uri() -> str:
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
    from mlflow.exceptions import MlflowException

    uri = check_store()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    try:
        exp_id = _experiment_id(client, experiment_name(params), uri)
        if client.get_experiment(exp_id).tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # older stores too
            client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    except MlflowException as e:  # reachable, but not a working MLflow store (wrong path, auth, version)
        message = e.message.replace(uri, redact_uri(uri)).splitlines()[0][:300]  # not a whole HTML page
        raise BackendError(
            f"MLflow store {redact_uri(uri)} refused the experiment set-up: {message}"
        ) from None
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _experiment_id(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def check_store(uri: str | None = None, timeout: float = REACH_TIMEOUT_S) -> str:
    """Fail fast, before any compute, when the store cannot be used; returns the URI.

    A server gets one request with a short timeout (any HTTP answer means reachable); a sqlite
    store must be writable, and the default one must not be a copy whose experiments point at
    another checkout's artifacts.
    """
    uri = uri or tracking_uri()
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif scheme == "sqlite" and (db := uri.removeprefix("sqlite:///")) not in ("", ":memory:", uri):
        _check_sqlite(uri, Path(db))
    return uri


def _check_server(uri: str, timeout: float) -> None:
    import httpx

    try:
        httpx.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except httpx.TransportError as e:
        raise BackendError(
            f"MLflow tracking server {redact_uri(uri)} is unreachable ({type(e).__name__}); start it, "
            "or set MLFLOW_TRACKING_URI (unset: the local store mlflow/mlflow.db)"
        ) from None


def _check_sqlite(uri: str, db: Path) -> None:
    from selfspec.io import ensure_writable

    try:
        ensure_writable(db)
    except NotWritableError as e:
        raise BackendError(f"MLflow store {redact_uri(uri)}: {e}") from None
    # only the default store lives inside a checkout; other sqlite stores may keep artifacts anywhere
    if uri == _default_uri() and db.is_file() and (moved := _foreign_artifact_roots(db)):
        name, location = moved[0]
        raise BackendError(
            f"MLflow store {db} was copied or moved from another checkout: experiment {name!r} keeps its "
            f"artifacts at {location} (MLflow records absolute paths). Move the store back, delete "
            f"{db.parent} to start a new one, or set MLFLOW_TRACKING_URI"
        )


def _foreign_artifact_roots(db: Path) -> list[tuple[str, str]]:
    """Experiments (other than MLflow's own Default) whose local artifact root is outside the db's folder."""
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT experiment_id, name, artifact_location FROM experiments").fetchall()
    except sqlite3.Error:  # not (yet) an MLflow database: MLflow itself will say so
        return []
    home = db.resolve().parent
    local = [(name, loc) for exp_id, name, loc in rows if str(exp_id) != "0" and _local_path(loc or "")]
    return [(name, loc) for name, loc in local if not _local_path(loc).is_relative_to(home)]


def _local_path(location: str) -> Path | None:
    """The folder of a local artifact location (``file:`` URI or absolute path); None for remote ones."""
    if location.startswith("file:"):
        return Path(urlsplit(location).path)
    return Path(location) if location.startswith("/") else None


@contextmanager
def tracked_run(run_name: str, tags: dict[str, str]) -> Iterator[Any]:
    """``mlflow.start_run`` that ends the run on every exit path: FINISHED, FAILED on an error,
    KILLED on Ctrl-C, SIGTERM or SIGHUP (which otherwise kill the process and leave it RUNNING)."""
    import mlflow

    handlers = _raise_on_termination()
    try:
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            try:
                yield run
            except (KeyboardInterrupt, Interrupted):
                mlflow.end_run("KILLED")
                raise
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _raise_on_termination() -> dict[int, Any]:
    """Turn SIGTERM/SIGHUP into :class:`Interrupted` (so ``finally`` blocks run); the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals are only delivered to (and handlers only set from) the main thread

    def interrupt(signum, frame):
        signal.signal(signum, signal.SIG_DFL)  # a second signal kills at once
        raise Interrupted(signum)

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}


def recorded_uri(uri: str) -> str:
    """The URI to write into registry/train.json: the default store repo-relative, others redacted."""
    return DEFAULT_URI if uri == _default_uri() else redact_uri(uri)


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
    tags.update({f"input.sha256.{key}": sha for key, sha in input_hashes(root).items()})
    return tags


def input_hashes(root: Path) -> dict[str, str]:
    """``{"<stage>.<input>": sha256}`` of the files read from the data mirror or a URL, as recorded by
    ``selfspec.sources.record_inputs`` in ``data/external/<stage>/inputs.json`` (read here without
    importing it: a tracked stage should not depend on the fetching code)."""
    import json

    out: dict[str, str] = {}
    for path in sorted((root / "data/external").glob("*/inputs.json")):
        for key, entry in json.loads(path.read_text()).items():
            if entry.get("sha256"):
                out[f"{path.parent.name}.{key}"] = entry["sha256"]
    return out


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
    if registry["tracking_uri"] == DEFAULT_URI:
        registry["tracking_uri"] = _default_uri()  # this checkout's store, wherever it was trained
    return registry
