"""What every `mamba-ner` command shares at its boundary: argument spelling, JSON configs, errors.

* `--data_format` and `--data-format` (any option, `_` or `-`) are the same option everywhere
  (`normalize_spelling`).
* `parse_dataclasses(parser, argv)` reads `[CONFIG.json] [--option value ...]`: the JSON file
  gives values, the command line overrides them. An unknown key in the JSON file (or an unknown
  option) is an error naming the file and the closest known names (`learning_rte` ->
  `learning_rate`).
* `run_command(main, argv, prog)` turns the user's mistakes (missing files, malformed data, bad
  options, a missing model folder) into one line `prog: error: ...` and exit status 1; `--debug`
  shows the traceback instead. Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


class UsageError(ValueError):
    """A mistake in what the user asked for; printed as one line at the command boundary."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` unless the help text already says what the default is."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if "default" in help_text.lower() or action.default is argparse.SUPPRESS:
            return help_text
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------- spelling
def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def normalize_spelling(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Rewrite `--a-b` as `--a_b` (or back) where only the other spelling is an option of `parser`."""
    known = option_strings(parser)
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            if name not in known:
                for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
                    if other in known:
                        name = other
                        break
            arg = name + eq + value
        out.append(arg)
    return out


def closest(word: str, choices: Sequence[str]) -> str:
    """`" (did you mean --x?)"` or `""`."""
    close = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6)
    return " (did you mean " + " or ".join(close) + "?)" if close else ""


# ---------------------------------------------------------------------------------- JSON configs
def _dests(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.option_strings and action.dest != "help"}


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> dict:
    """The JSON object of a config file, every key checked against the parser's options."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise UsageError(f"{path}: expected a JSON object of options, found invalid JSON ({error})") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: expected a JSON object of options, found {type(values).__name__}")
    known = _dests(parser)
    unknown = [key for key in values if key not in known]
    if unknown:
        hints = "; ".join(f"{key!r}{closest(key, list(known)).replace(' --', ' ')}" for key in unknown)
        raise UsageError(f"{path}: unknown option(s) {hints}")
    return values


def parse_dataclasses(parser, argv: Sequence[str]):
    """Parse `[CONFIG.json] [--option value ...]` into the dataclasses of an `HfArgumentParser`.

    The JSON values become the parser's defaults, so any option given on the command line wins.
    """
    argv = list(argv)
    if argv and argv[0].endswith(".json") and not argv[0].startswith("-"):
        values = load_config(argv.pop(0), parser)
        actions = _dests(parser)
        for key, value in values.items():
            actions[key].required = False
        parser.set_defaults(**values)
    argv = normalize_spelling(argv, parser)
    *outputs, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        known = sorted(option_strings(parser))
        hints = "; ".join(f"{arg!r}{closest(arg.split('=')[0], known)}" for arg in remaining)
        raise UsageError(f"unknown argument(s) {hints} (see --help)")
    return tuple(outputs)


def describe_negations(parser: argparse.ArgumentParser) -> None:
    """Give each `--no_X` switch of an `HfArgumentParser` a help of its own (it copies X's)."""
    for action in parser._actions:
        if isinstance(action, argparse._StoreFalseAction) and any(o.startswith("--no_") for o in action.option_strings):
            action.help = f"Turn --{action.dest} off (default: on; --{action.dest}: {action.help})"


# ---------------------------------------------------------------------------------- errors
def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the input or the options are wrong", not "the code is wrong"."""
    from .data.records import DataFormatError

    types: list[type[BaseException]] = [UsageError, DataFormatError, OSError, json.JSONDecodeError]
    try:
        from huggingface_hub.errors import HFValidationError

        types.append(HFValidationError)
    except ImportError:  # pragma: no cover - older huggingface_hub
        pass
    return tuple(types)


def one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {text}"
    first = text.splitlines()[0]
    return first if len(first) <= 400 else first[:397] + "..."


def run_command(main: Callable[[list[str]], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run `main(argv)`; a user error becomes one line on stderr and exit status 1.

    `--debug` anywhere in `argv` is removed and lets every exception through with its traceback.
    `ValueError`s raised by the package for bad option values count as user errors too.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    if debug:
        return main(argv)
    try:
        return main(argv)
    except user_error_types() + (ValueError,) as error:
        print(f"{prog}: error: {one_line(error)}  (--debug shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # training reports its last checkpoint itself
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def check_model_folder(path: str) -> None:
    """A model argument must be an existing folder with `config.json` (or a Hub id `owner/name`)."""
    folder = Path(path)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UsageError(f"{path}: not a model folder (expected config.json, weights and tokenizer files in it)")
        return
    looks_like_hub_id = path.count("/") == 1 and not path.startswith((".", "/", "~")) and not folder.parent.exists()
    if not looks_like_hub_id:
        raise UsageError(f"{path}: no such model folder (expected a folder written by training, e.g. OUTPUT_DIR/model)")
