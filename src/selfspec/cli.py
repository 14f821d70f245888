"""The ``selfspec`` command: one subcommand per pipeline stage plus user commands.

Nothing heavy is imported here: ``selfspec --help`` must answer fast. A stage is
``selfspec.stages.<name>.main(params)``; a command is ``selfspec.commands.<name>`` with
``add_arguments(parser)`` and ``main(args, params)``, imported only when it is the one asked for.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from selfspec import __version__

# Pipeline stages, in dvc.yaml order (stage name = module name = params section = output folder).
STAGES: dict[str, str] = {
    "prepare_model": "resolve the base model into a local Hugging Face folder",
    "build_corpus": "normalise, split and deduplicate the domain corpus into passages",
    "index": "build the BM25 index (embedded or Elasticsearch)",
    "prepare_evals": "fetch and convert the evaluation data sets for lm-eval",
    "gen_instructions": "the base model brainstorms new domain instructions from seeds",
    "gen_inputs": "the base model writes an input context for each instruction",
    "gen_responses": "the base model answers, grounded in retrieved passages",
    "filter_records": "drop degenerate, duplicate and contaminated records",
    "train": "QLoRA-tune an adapter on the records; track and register it in MLflow",
    "evaluate_base": "lm-eval the base model on the domain's suite",
    "evaluate": "lm-eval base + adapter, compare with the base, gate promotion",
    "mixture": "train a router over expert adapters, register the mixture (no experts: skipped)",
    "rounds": "iterative self-specialization: base + the last adapter regenerates, a new adapter is trained",
}

# User commands: name -> help. Their modules add their own arguments.
COMMANDS: dict[str, str] = {
    "search": "print the top passages for a query from the configured retriever",
    "inspect": "show a few records of a stage's output with their provenance",
    "pull": "download a registered adapter or mixture (NAME@ALIAS or NAME/VERSION) from MLflow",
    "export": "merge base + adapter into full safetensors weights",
    "report": "write the HTML/Markdown report of a specialization",
    "seeds": "validate a seed file and summarise its task types",
}


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfspec",
        description="Self-specialize a language model: self-generated, retrieval-grounded domain data, "
        "QLoRA, MLflow tracking and lm-eval benchmarks. Stages are run by `dvc repro`.",
    )
    parser.add_argument("--version", action="version", version=f"selfspec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in STAGES.items():
        p = sub.add_parser(name, help=f"[stage] {help_}", description=help_)
        add_params_arguments(p)
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_params_arguments(p)
        if name == selected:
            importlib.import_module(f"selfspec.commands.{name}").add_arguments(p)
    return parser


def add_params_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a param for this run (repeatable); `dvc exp run -S` is the tracked way",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(selected if selected in COMMANDS else None).parse_args(argv)
    if args.command is None:
        build_parser(None).print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from selfspec.config import load_params, stage_sections
    from selfspec.errors import SelfspecError

    try:
        needed = stage_sections(args.command) if args.command in STAGES else ()
        params = load_params(args.params, args.overrides, needed)
        if args.command in STAGES:
            importlib.import_module(f"selfspec.stages.{args.command}").main(params)
            return 0
        return importlib.import_module(f"selfspec.commands.{args.command}").main(args, params) or 0
    except SelfspecError as e:
        print(f"selfspec {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
