"""Resuming a training run safely.

A run resumes from `--resume_from_checkpoint DIR`, or by default from the last `checkpoint-N` in
`--output_dir` (`--overwrite_output_dir` starts afresh instead). Resuming must continue *the same*
model, so:

* the tokenizer is loaded from the checkpoint, never rebuilt from the text (token ids are part of
  the weights);
* the label list of the data must equal the checkpoint's `id2label`, else the run is refused with
  the differences named;
* the sizes of the model the options describe must equal the checkpoint's;
* the log says `resuming from checkpoint-N (--overwrite_output_dir starts afresh)`;
* Ctrl-C ends with one line naming the last checkpoint and the command that resumes from it.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from .commandline import UsageError

logger = logging.getLogger(__name__)

SHAPE_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "state_size", "expand", "bidirectional",
              "bigram_vocab_size", "use_crf", "ensemble_size")


def find_checkpoint(resume_from_checkpoint: str | None, output_dir: str | Path, overwrite: bool) -> Path | None:
    """The checkpoint to resume from, or `None` for a fresh run; logs which and why.

    Args:
        resume_from_checkpoint: `--resume_from_checkpoint` (a folder, or `"true"` for the last
            checkpoint of `output_dir`).
        output_dir: the run's folder.
        overwrite (`bool`): `--overwrite_output_dir` (ignore checkpoints found in `output_dir`).
    """
    output_dir = Path(output_dir)
    if resume_from_checkpoint and str(resume_from_checkpoint).lower() not in ("true", "1", "yes"):
        checkpoint = Path(resume_from_checkpoint)
        if not (checkpoint / "config.json").is_file():
            raise UsageError(f"{checkpoint}: not a checkpoint folder (expected config.json and trainer_state.json in it)")
        logger.info("resuming from %s (--resume_from_checkpoint)", checkpoint)
        return checkpoint
    if overwrite and not resume_from_checkpoint:
        return None
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if last is None:
        if resume_from_checkpoint:
            raise UsageError(f"{output_dir}: no checkpoint-N folder to resume from")
        return None
    logger.info("resuming from %s (--overwrite_output_dir starts afresh)", Path(last).name)
    return Path(last)


def checkpoint_labels(checkpoint: Path) -> list[str]:
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    return [id2label[key] for key in sorted(id2label, key=int)]


def check_labels(checkpoint: Path, label_list: list[str]) -> None:
    """Refuse to resume when the data's labels are not the checkpoint's."""
    saved = checkpoint_labels(checkpoint)
    if saved == list(label_list):
        return
    missing = sorted(set(label_list) - set(saved))
    extra = sorted(set(saved) - set(label_list))
    detail = []
    if missing:
        detail.append(f"the data has {missing} that the checkpoint lacks")
    if extra:
        detail.append(f"the checkpoint has {extra} that the data lacks")
    if not detail:
        detail.append("same labels in another order")
    raise UsageError(
        f"cannot resume from {checkpoint}: its labels differ from the data's ({'; '.join(detail)}); "
        "train into another --output_dir, or pass --overwrite_output_dir to start afresh"
    )


def check_model_sizes(checkpoint: Path, config) -> None:
    """Refuse to resume when the options describe a model of other sizes than the checkpoint's."""
    saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    wanted = config.to_dict()
    differ = [f"{key} {saved[key]} in the checkpoint, {wanted[key]} asked"
              for key in SHAPE_KEYS if key in saved and key in wanted and saved[key] != wanted[key]]
    if differ:
        raise UsageError(
            f"cannot resume from {checkpoint}: {'; '.join(differ)}; resume with the options of that run, "
            "or pass --overwrite_output_dir to start afresh"
        )


def load_tokenizer(checkpoint: Path):
    """The tokenizer saved with the checkpoint (the Trainer saves it in every checkpoint-N)."""
    from transformers import AutoTokenizer

    for folder in (checkpoint, checkpoint.parent):
        if (folder / "tokenizer_config.json").is_file():
            logger.info("tokenizer loaded from %s (not rebuilt from the text)", folder)
            return AutoTokenizer.from_pretrained(str(folder))
    raise UsageError(f"{checkpoint}: no tokenizer files; cannot resume with the same token ids")


def interrupted_message(output_dir: str | Path, step: int, argv: list[str] | None) -> str:
    """One line for Ctrl-C: where the last checkpoint is and which command resumes from it."""
    last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    if last is None:
        return f"interrupted at step {step}; no checkpoint was saved yet (--save_steps sets how often)"
    args = list(sys.argv[1:] if argv is None else argv)
    for flag in ("--resume_from_checkpoint", "--resume-from-checkpoint"):
        while flag in args:
            index = args.index(flag)
            del args[index : index + 2]
    args += ["--resume_from_checkpoint", str(last)]
    return f"interrupted at step {step}; last checkpoint: {last}; resume with: {command_prefix()} {shlex.join(args)}"


def command_prefix() -> str:
    """How this program was started: `mamba-ner train` or `python examples/run_ner.py`."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "run_ner.py"
    return program if program.startswith("mamba-ner") else f"python {shlex.quote(program)}"
