"""``selfspec pull NAME@ALIAS | NAME/VERSION --dest DIR``: a verified adapter or mixture from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="NAME@ALIAS (e.g. biomedical-expert@champion) or NAME/VERSION")
    p.add_argument(
        "--dest", required=True, type=Path, help="new or empty folder for the PEFT adapter (or the mixture)"
    )
    p.add_argument("--force", action="store_true", help="replace --dest even if it holds files")
    p.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or the local store)"
    )


def main(args: argparse.Namespace, params) -> int:
    from selfspec.deploy import MIXTURE_ARTIFACT, parse_ref, pull
    from selfspec.tracking import tracking_uri

    pulled = pull(parse_ref(args.model), args.dest, args.tracking_uri or tracking_uri(), force=args.force)
    prov = pulled.provenance
    if pulled.kind == MIXTURE_ARTIFACT:
        return _print_mixture(pulled)
    base = prov.get("base_model", {}) if isinstance(prov.get("base_model"), dict) else {}
    print(f"pulled {pulled.ref} -> {pulled.dest}")
    print(f"  version   {pulled.version} (aliases: {', '.join(pulled.aliases) or 'none'})")
    print(f"  run       {pulled.run_id}")
    print(
        f"  base      {base.get('source', prov.get('base_source', '?'))} "
        f"(sha256/revision: {base.get('sha256') or base.get('revision') or '?'})"
    )
    for key, value in sorted(pulled.eval_metrics.items()):
        print(f"  {key:<50} {value:.4f}")
    print("  every file matches the digests recorded in the registry; safetensors only")
    return 0


def _print_mixture(pulled) -> int:
    """A mixture: where each expert came from, and the router's held-out scores."""
    print(f"pulled mixture {pulled.ref} -> {pulled.dest}")
    print(f"  version   {pulled.version} (aliases: {', '.join(pulled.aliases) or 'none'})")
    print(f"  run       {pulled.run_id}")
    for e in pulled.provenance.get("experts", []):
        origin = e["source"] if e["source"] != "local" else f"local {e.get('path', '?')}"
        print(f"  expert    {e['name']:<16} {origin}  -> {e['adapter']}")
    for key, value in sorted(pulled.eval_metrics.items()):
        print(f"  {key:<50} {value:.4f}")
    print("  every file (router and experts) matches the digests recorded in the registry; safetensors only")
    return 0
