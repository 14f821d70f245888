"""Hugging Face hub sources: a pinned revision, from the hub or a pre-filled cache (HF_HOME)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError
from selfspec.model_sources._common import ALTERNATIVES, SourceSpec, log

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def describe(spec: SourceSpec, folder: Path) -> dict[str, Any]:
    return {"kind": "hf", "hub_id": spec.name, "revision": spec.revision, "commit": folder.name}


def hub_snapshot(spec: SourceSpec) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if not _COMMIT.match(spec.revision or ""):
        log.warning("revision %r is not a commit hash: the hub may move it", spec.revision)
    try:
        return Path(snapshot_download(spec.name, revision=spec.revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise SourceUnavailableError(
            f"hf:{spec.name}@{spec.revision}: the Hugging Face hub is unreachable or refused it and no "
            f"cached snapshot exists ({type(e).__name__}: {str(e).splitlines()[0]}). Alternatives: "
            f"{ALTERNATIVES}"
        ) from None
