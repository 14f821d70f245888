"""``selfspec export --merged --dest DIR``: base + adapter merged into full safetensors weights,
for runtimes without LoRA support. Without ``--merged`` the verified adapter folder is copied."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", required=True, type=Path, help="output folder")
    p.add_argument("--merged", action="store_true", help="merge the adapter into the base weights")
    p.add_argument(
        "--adapter",
        type=Path,
        default=Path("models/train/adapter"),
        help="PEFT adapter folder (default: models/train/adapter; or one made by `selfspec pull`)",
    )
    p.add_argument(
        "--base",
        type=Path,
        default=Path("models/prepare_model"),
        help="base model folder (default: models/prepare_model)",
    )
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])


def main(args: argparse.Namespace, params) -> int:
    from selfspec.deploy import export_merged, verify_adapter
    from selfspec.errors import SelfspecError

    for folder, what in ((args.adapter, "adapter"), (args.base, "base model")):
        if not folder.is_dir():
            raise SelfspecError(
                f"{what} folder {folder} not found (run `dvc repro` or `selfspec pull` first)"
            )
    verify_adapter(args.adapter)
    if args.merged:
        export_merged(args.base, args.adapter, args.dest, args.dtype)
    else:
        shutil.copytree(args.adapter, args.dest, dirs_exist_ok=True)
    print(f"exported {'merged model' if args.merged else 'adapter'} -> {args.dest}")
    return 0
