"""Which reader a file needs, decided from its content (never from its name alone), and folders.

Every command (`train`, `convert`, `evaluate`, `predict`) chooses formats here, so they all agree.
`detect_format(path)` returns `(format, reason)`; the rules, first match wins:

1. a folder holding `.ann` files, an `.ann` file, or a `.txt` with an `.ann` beside it: `brat`;
2. content that parses as JSON: records with `character` / `word` / `sentence` keys are HealthNER
   (`rocling`), records with a text and a list of entities are span JSON (`spanjson`);
3. a `-DOCSTART-` line: `conll`;
4. every non-blank line one character, alone or followed by one tag: `rocling` (char per line);
5. at most 10 columns with a tag-like last column (`O`, `B-X`, ...) on 80% of the lines: `conll`;
6. otherwise `text` (raw text: only `predict` accepts it).

A file named `.json` that holds `char tag` lines is therefore read as char-per-line, and a HealthNER
JSON-lines file named `.txt` as JSON. A folder of non-brat files is detected from its files (they
must agree). `--data_format` still forces a format; `bmes`, `bioes` and `iobes` are aliases of
`conll` with that input tag scheme (BMES / BIOES char-per-line files are CoNLL files with two
columns).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from .records import DataFormatError

logger = logging.getLogger(__name__)

READ_FORMATS = ("rocling", "brat", "conll", "spanjson")
FORMAT_ALIASES = {
    "bmes": ("conll", {"input_scheme": "BMES"}),
    "bioes": ("conll", {"input_scheme": "IOBES"}),
    "iobes": ("conll", {"input_scheme": "IOBES"}),
    "json": ("spanjson", {}),
    "cmeee": ("spanjson", {}),
    "healthner": ("rocling", {}),
}
SPAN_JSON_TEXT_KEYS = ("text", "sentence", "content", "originalText")
SPAN_JSON_ENTITY_KEYS = ("entities", "entity_mentions", "spans", "label", "labels", "mentions")
HEALTHNER_KEYS = ("character", "word", "word_label")
_TAG = re.compile(r"^(O|[BIMESLU][-_].+)$")
_SNIFF_BYTES = 1 << 16


def format_choices() -> list[str]:
    """Every name `--data_format` accepts: `auto`, the readers and the aliases."""
    return ["auto", *READ_FORMATS, *FORMAT_ALIASES]


def canonical_format(name: str | None) -> tuple[str | None, dict]:
    """`None`/`"auto"` -> `(None, {})`; an alias -> `(reader, options)`; a reader -> `(reader, {})`.

    Raises:
        `ValueError` naming the accepted names (and the closest one) for anything else.
    """
    if name is None or name.lower() == "auto":
        return None, {}
    key = name.lower()
    if key in READ_FORMATS:
        return key, {}
    if key in FORMAT_ALIASES:
        reader, options = FORMAT_ALIASES[key]
        return reader, dict(options)
    raise ValueError(f"unknown format {name!r}{suggest(name, format_choices())}; expected one of {format_choices()}")


def suggest(word: str, choices: Iterable[str]) -> str:
    """`" (did you mean 'x'?)"` for the closest of `choices`, or `""`."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def check_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The paths as `Path`s; a missing one raises `FileNotFoundError` naming it (a brat stem, the
    path of a `.txt` without its suffix, counts as present)."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    for path in paths:
        if not path.exists() and not path.with_name(path.name + ".txt").is_file():
            raise FileNotFoundError(f"{path}: no such file or folder")
    return paths


def expand_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Files stay, a folder becomes its files (sorted by name; hidden files and `.ann` left out).

    Raises:
        `DataFormatError` for a folder without files.
    """
    files = []
    for path in check_paths(paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix != ".ann")
            if not inside:
                raise DataFormatError(path, None, "data files in this folder", "an empty folder")
            files += inside
        else:
            files.append(path)
    return files


def detect_format(path: str | Path) -> tuple[str, str]:
    """`(format, reason)` for one file or folder; see the module docstring for the rules.

    Raises:
        `FileNotFoundError` for a missing path; `DataFormatError` for an empty file or folder, JSON
        records of an unknown shape, or a folder whose files disagree.
    """
    path = check_paths([path])[0]
    if not path.exists():
        return "brat", "a brat document stem"
    if path.is_dir():
        return _detect_folder(path)
    if path.suffix == ".ann":
        return "brat", "a brat .ann file"
    if path.suffix == ".txt" and path.with_suffix(".ann").is_file():
        return "brat", "a .txt with an .ann beside it"
    text = _head(path)
    if not text.strip():
        raise DataFormatError(path, None, "some text (found nothing to read)", "an empty file" if not text else "only blank lines")
    stripped = text.lstrip()
    if stripped[0] in "[{":
        record = _first_json_record(path, stripped)
        if record is not None:
            return _json_kind(path, record)
    lines = text.splitlines()
    if len(text) == _SNIFF_BYTES:
        lines = lines[:-1]  # the last line may be cut
    if any(line.startswith("-DOCSTART-") for line in lines):
        return "conll", "a -DOCSTART- line"
    fields = [line.split() for line in lines if line.strip()][:200]
    if fields and all(len(f) <= 2 and len(f[0]) == 1 for f in fields):
        return "rocling", "one character per line" + (" with a tag" if len(fields[0]) == 2 else "")
    tag_like = sum(1 for f in fields if len(f) >= 2 and _TAG.match(f[-1]))
    if fields and all(len(f) <= 10 for f in fields) and tag_like >= 0.8 * len(fields):
        return "conll", f"columns with a tag-like last column ({len(fields[0])} columns)"
    return "text", "no tag column, not JSON records"


def _head(path: Path) -> str:
    with open(path, "rb") as handle:
        data = handle.read(_SNIFF_BYTES)
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 4:  # a character cut by the sniffing limit
            return data[: error.start].decode("utf-8")
        line = data[: error.start].count(b"\n") + 1
        raise DataFormatError(path, line, "UTF-8 text", f"undecodable byte at column {error.start + 1}") from None


def _first_json_record(path: Path, head: str):
    """The first record of a JSON-lines file, a JSON array, or a JSON object holding a list; `None`
    if the start of the file is not JSON (e.g. a char-per-line file whose first character is `{`)."""
    first_line = head.split("\n", 1)[0].strip()
    try:
        value = json.loads(first_line)
    except ValueError:
        try:
            value = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            return None
    if isinstance(value, list):
        return value[0] if value else {}
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if not _has_any(value, SPAN_JSON_TEXT_KEYS + HEALTHNER_KEYS) and len(lists) == 1:
            return lists[0][0]  # {"data": [records]}
        return value
    return None


def _has_any(record: dict, keys) -> bool:
    return any(key in record for key in keys)


def _json_kind(path: Path, record) -> tuple[str, str]:
    if isinstance(record, dict) and _has_any(record, HEALTHNER_KEYS):
        return "rocling", "JSON records with 'character'/'word' keys (HealthNER)"
    if isinstance(record, dict) and _has_any(record, SPAN_JSON_TEXT_KEYS):
        if _has_any(record, SPAN_JSON_ENTITY_KEYS) or "sentence" not in record:
            return "spanjson", "JSON records with a text and entity spans"
        return "rocling", "JSON records with 'sentence' only (HealthNER test input)"
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise DataFormatError(
        path, 1, "JSON records with 'character' (HealthNER) or 'text' + 'entities' (span JSON)", f"keys {keys}"
    )


def _detect_folder(folder: Path) -> tuple[str, str]:
    if any(p.suffix == ".ann" for p in folder.iterdir()):
        return "brat", "a folder with .ann files"
    files = expand_folders([folder])
    kinds = {}
    for file in files:
        kinds.setdefault(detect_format(file)[0], []).append(file.name)
    if len(kinds) > 1:
        found = "; ".join(f"{kind}: {', '.join(names[:3])}" for kind, names in sorted(kinds.items()))
        raise DataFormatError(folder, None, "files of one format (or pass --data_format)", found)
    kind = next(iter(kinds))
    if kind == "text":
        return "brat", "a folder of plain .txt files (unlabelled brat)"
    return kind, f"a folder of {len(files)} {kind} file(s)"


def resolve_format(name: str | None, paths: Iterable[str | Path]) -> tuple[str, dict]:
    """The reader for `paths` and the options an alias implies; detected when `name` is `None`/`auto`.

    Logs the chosen format and why. Raises `DataFormatError` when the files disagree or are raw
    text, and `ValueError` for an unknown name.
    """
    reader, options = canonical_format(name)
    paths = check_paths(paths)
    if reader is not None:
        logger.info("format %s (given)%s", reader, f", options {options}" if options else "")
        return reader, options
    found = {}
    for path in paths:
        kind, reason = detect_format(path)
        logger.info("%s: format %s (%s)", path, kind, reason)
        found.setdefault(kind, []).append(str(path))
    if len(found) > 1:
        listed = "; ".join(f"{kind}: {', '.join(files)}" for kind, files in sorted(found.items()))
        raise DataFormatError(paths[0], None, "files of one format (or pass --data_format)", listed)
    kind = next(iter(found))
    if kind == "text":
        raise DataFormatError(
            paths[0],
            None,
            "annotated data: CoNLL columns, one character per line with tags, brat, HealthNER or span JSON "
            "(pass --data_format to force a reader)",
            "plain text without a tag column",
        )
    return kind, options
