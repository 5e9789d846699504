"""`mamba-ner` command line: `convert`, `train`, `pretrain`, `evaluate`, `predict`.

Each subcommand lives in the module that implements it; this file only dispatches, so that
`mamba-ner convert` does not import torch-heavy training code it does not need.
"""
from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "convert": ("mamba_ner.data.convert", "main", "convert annotated files (format detected) into a DatasetDict"),
    "train": ("mamba_ner.training", "main", "train and evaluate a model (same arguments as examples/run_ner.py)"),
    "pretrain": ("mamba_ner.pretraining", "main", "pretrain the backbone on unlabelled text (masked tokens; examples/run_pretraining.py)"),
    "evaluate": ("mamba_ner.evaluation", "main", "score a checkpoint on a file or dataset"),
    "predict": ("mamba_ner.predict", "main", "tag raw text, brat folders, CoNLL or char-per-line files"),
}


def _usage() -> str:
    lines = ["usage: mamba-ner {" + ",".join(SUBCOMMANDS) + "} [options]", ""]
    lines += [f"  {name:<9} {help_}" for name, (_, _, help_) in SUBCOMMANDS.items()]
    lines += ["", "Each command's options: mamba-ner COMMAND --help. Errors are one line; --debug shows the traceback."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if not argv:  # no command is a usage error, not a success
        print(f"mamba-ner: give a command\n\n{_usage()}", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mamba-ner: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = SUBCOMMANDS[name]
    func = getattr(importlib.import_module(module_name), func_name)
    program = sys.argv[0]
    sys.argv[0] = f"mamba-ner {name}"  # usage lines and resume hints name the subcommand, not cli.py
    try:
        return int(func(rest) or 0)
    finally:
        sys.argv[0] = program


if __name__ == "__main__":
    sys.exit(main())
