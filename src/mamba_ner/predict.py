"""Tag raw text, brat folders and CoNLL / char-per-line files with a trained checkpoint.

    mamba-ner predict --model DIR INPUT... --output DIR [--format auto|text|brat|conll|rocling|spanjson]
                      [--batch_size 8] [--max_length N [--stride S]] [--device auto|cpu|cuda] [--html]
                      [--document_context true|false [--document_separator [SEP]]]  (default: as the model was trained)

From Python: `tag_texts(model, tokenizer, texts)` returns `(start, end, type, score)` character
spans per text; `tag_words(model, tokenizer, word_lists)` returns `(tag, score)` per word.

How text becomes a chain. Raw text is cut into words with the data layer's `tokenize_text` (every
non-space character for Chinese, words and punctuation otherwise: the tokenisation brat data is
trained on), the words go through the tokenizer with `is_split_into_words=True`, and the CRF
decodes one position per word (the emissions of its first sub-token, as training labels it), so
Chinese is tagged per character and English per word. Tags are the constrained Viterbi path;
scores are CRF marginal probabilities (`pipeline_mamba_crf.crf_word_tags`); an entity's score is
the mean over its words.

Long documents. By default each text is one sequence, tagged in one forward pass whatever its
length (the model has no position limit and its memory grows linearly). Sequences are batched in
order of length, at most `batch_size` of them and `max_batch_tokens` padded tokens per batch (a
longer single sequence still goes alone). `max_length` tags windows of that many tokens that
overlap by `stride`; each word keeps the prediction of the window where it lies farthest from an
edge, so windows only differ from one pass near their seams.

Outputs. Text and brat inputs give brat standoff (`<name>.txt` copied byte-exactly, `<name>.ann`
with a `T` line per entity and an `AnnotatorNotes` line with its score; `annotation.conf` and
`visual.conf` in the output folder), which opens in the brat annotation tool. CoNLL and
char-per-line inputs are written back line for line with the predicted tag appended as a last
column (every input column, `-DOCSTART-` and blank line kept as it was); JSON inputs give columns
`token [gold] predicted`. Formats are detected from the content (`mamba_ner.data.detect`).
`--html` adds a displaCy-style page per document (`html_view`).
"""
from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .data import read_files
from .data.detect import FORMAT_ALIASES, canonical_format, expand_folders
from .data.detect import detect_format as detect_data_format
from .data.rocling import _is_json_lines
from .data.bio import tags_to_spans
from .data.brat import write_brat
from .data.text import TOKENIZE_MODES, tokenize_text
from .html_view import colors_for_types, write_html
from .pipeline_mamba_crf import crf_word_tags, silence_length_warning
from .runtime import keep_freed_memory

logger = logging.getLogger(__name__)

FORMATS = ("auto", "text", "brat", "conll", "rocling", "spanjson", *FORMAT_ALIASES)
Span = tuple[int, int, str, float]
_TAG = re.compile(r"^([BIMES])[-_](.+)$")


# ----------------------------------------------------------------------------- tagging
def resolve_device(device: str | torch.device | None) -> torch.device:
    """`"auto"`/None: CUDA when available, else CPU; anything else as `torch.device` reads it."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _entity_labels(model) -> list[str]:
    """The model's labels in id order, as `B-X` / `O` (a `B_X` separator is rewritten)."""
    labels = []
    for i in range(model.config.num_labels):
        label = model.config.id2label[i]
        match = _TAG.match(label)
        if label != "O" and match is None:
            raise ValueError(f"label {i} {label!r} of the model is not O or B-/I-/M-/E-/S-TYPE; cannot turn tags into entities")
        labels.append(label if match is None else f"{match.group(1)}-{match.group(2)}")
    return labels


def _encode(tokenizer, word_lists: list[list[str]], max_length: int | None, stride: int | None) -> list[dict]:
    """Sequences to run: `{"text": i, "ids", "special", "word_ids"}` (one per text, or per window)."""
    options = {"truncation": False}
    silence_length_warning(tokenizer)
    if max_length is not None:
        stride = max_length // 4 if stride is None else stride
        n_special = tokenizer.num_special_tokens_to_add()
        if not 0 <= stride < max_length - n_special:
            raise ValueError(f"need 0 <= stride < max_length - {n_special} special tokens, got stride={stride}, max_length={max_length}")
        options = {"truncation": True, "max_length": max_length, "stride": stride, "return_overflowing_tokens": True}
    elif stride is not None:
        raise ValueError("stride needs max_length")
    units = []
    nonempty = [i for i, words in enumerate(word_lists) if words]
    if not nonempty:
        return units
    encoding = tokenizer([word_lists[i] for i in nonempty], is_split_into_words=True, return_special_tokens_mask=True, **options)
    sample = encoding.get("overflow_to_sample_mapping", list(range(len(nonempty))))
    for row, input_ids in enumerate(encoding["input_ids"]):
        word_ids = encoding.word_ids(row)
        units.append({
            "text": nonempty[sample[row]], "ids": input_ids, "special": encoding["special_tokens_mask"][row],
            "word_ids": [-1 if w is None else w for w in word_ids],
        })
    return units


def _batches(units: list[dict], batch_size: int, max_batch_tokens: int) -> list[list[dict]]:
    """Units in decreasing length, grouped so that a batch's padded size stays under the budget."""
    batches, current = [], []
    for unit in sorted(units, key=lambda u: -len(u["ids"])):
        width = len(current[0]["ids"]) if current else len(unit["ids"])
        if current and (len(current) >= batch_size or width * (len(current) + 1) > max_batch_tokens):
            batches.append(current)
            current = []
        current.append(unit)
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def _run_batch(model, batch: list[dict], pad_id: int, device: torch.device):
    """Forward one padded batch; returns per-token `(tags, scores)`, each (b, l) on the CPU."""
    length = max(len(unit["ids"]) for unit in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    word_ids = torch.full((len(batch), length), -1, dtype=torch.long)
    special = torch.ones((len(batch), length), dtype=torch.bool)
    for row, unit in enumerate(batch):
        n = len(unit["ids"])
        ids[row, :n] = torch.tensor(unit["ids"])
        attention[row, :n] = 1
        word_ids[row, :n] = torch.tensor(unit["word_ids"])
        special[row, :n] = torch.tensor(unit["special"], dtype=torch.bool)
    ids, attention, word_ids, special = (t.to(device) for t in (ids, attention, word_ids, special))
    emissions = model(input_ids=ids, attention_mask=attention, return_predictions=False).logits  # (b, l, k)
    token_mask = attention.bool() & ~special & (word_ids >= 0)  # (b, l)
    tags, scores = crf_word_tags(model.crf, emissions, token_mask, word_ids, pooling="first")
    return tags.cpu(), scores.cpu()


def tag_words(
    model, tokenizer, word_lists: Sequence[Sequence[str]], batch_size: int = 8, max_length: int | None = None,
    device: str | torch.device | None = None, stride: int | None = None, max_batch_tokens: int = 16384, progress: bool = False,
    context: Sequence[tuple[int, int]] | None = None,
) -> list[list[tuple[str, float]]]:
    """Tag pre-split words (characters for Chinese): `(tag, score)` per word of every list.

    Args:
        model: a `MambaCrfForTokenClassification` (anything with `.crf` and `logits` emissions).
        tokenizer: its fast tokenizer.
        word_lists: the words of each text; each list is one sequence (or windows, see `max_length`).
        batch_size (`int`): most sequences per forward pass.
        max_length (`int`, *optional*): tag windows of this many tokens; default one pass per text.
        device: where to run; default the model's device (a given device moves the model there).
        stride (`int`, *optional*): tokens shared by consecutive windows (default `max_length // 4`).
        max_batch_tokens (`int`): most padded tokens per batch (a longer single text runs alone).
        progress (`bool`): show a tqdm bar over tokens.
        context: per text, `(before, after)`: how many of its first and last words are context,
            read by the model but not tagged (sentences given their neighbours, as a model trained
            with `--sentence_context` was); the CRF chain holds the other words only.

    Returns:
        per text, per word (context words left out), `(tag, score)`: the Viterbi tag (`B-X`,
        `I-X`, `O`, ...) and its CRF marginal probability. A word the tokenizer gives no token gets
        `("O", 0.0)`.
    """
    labels = _entity_labels(model)
    if device is not None:
        model.to(resolve_device(device))
    device = next(model.parameters()).device
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    word_lists = [list(words) for words in word_lists]
    units = _encode(tokenizer, word_lists, max_length, stride)
    tagged_words = [range(len(words)) for words in word_lists]
    if context is not None:
        if len(context) != len(word_lists):
            raise ValueError(f"context gives {len(context)} (before, after) pairs for {len(word_lists)} texts")
        tagged_words = [range(before, len(words) - after) for words, (before, after) in zip(word_lists, context)]
        for unit in units:  # context words off the CRF chain, as their -100 labels kept them in training
            kept = tagged_words[unit["text"]]
            unit["word_ids"] = [w if w in kept else -1 for w in unit["word_ids"]]
    best = [dict() for _ in word_lists]  # text -> word -> (distance to the window edge, tag id, score)
    with tqdm(total=sum(len(u["ids"]) for u in units), unit="tok", desc="tagging", disable=not progress) as bar:
        for batch in _batches(units, batch_size, max_batch_tokens):
            tags, scores = _run_batch(model, batch, pad_id, device)
            for row, unit in enumerate(batch):
                _keep_central(best[unit["text"]], unit["word_ids"], tags[row].tolist(), scores[row].tolist())
            bar.update(sum(len(unit["ids"]) for unit in batch))
    results = []
    for text_index, words in enumerate(tagged_words):
        chosen = best[text_index]
        results.append([(labels[chosen[w][1]], chosen[w][2]) if w in chosen else ("O", 0.0) for w in words])
    return results


def _keep_central(best: dict, word_ids: list[int], tags: list[int], scores: list[float]) -> None:
    """Record each word's (tag, score) at its first token, if this window sees it more centrally."""
    positions = [p for p, w in enumerate(word_ids) if w >= 0 and tags[p] >= 0]
    if not positions:
        return
    first, last = positions[0], positions[-1]
    previous = None
    for p in positions:
        word = word_ids[p]
        if word != previous:
            distance = min(p - first, last - p)
            if word not in best or distance > best[word][0]:
                best[word] = (distance, tags[p], scores[p])
        previous = word


def tag_texts(
    model, tokenizer, texts: Sequence[str], batch_size: int = 8, max_length: int | None = None,
    device: str | torch.device | None = None, stride: int | None = None, tokenize: str = "auto", progress: bool = False,
    max_batch_tokens: int = 16384,
) -> list[list[Span]]:
    """Entities of raw texts as character spans.

    Args:
        texts: the documents; each is tagged whole in one pass unless `max_length` is given.
        tokenize (`str`): how text is cut into words (`text.tokenize_text`): `"auto"` (characters
            when the text has CJK, else words), `"char"` or `"word"`.
        Other arguments as for `tag_words`.

    Returns:
        per text, `(start, end, type, score)` spans with `text[start:end]` the entity (end
        exclusive) and `score` the mean CRF marginal of its words' tags, sorted by start.
    """
    if tokenize not in TOKENIZE_MODES:
        raise ValueError(f"tokenize must be one of {TOKENIZE_MODES}, got {tokenize!r}")
    words_and_offsets = [tokenize_text(text, tokenize) for text in texts]
    tagged = tag_words(model, tokenizer, [words for words, _ in words_and_offsets], batch_size=batch_size,
                       max_length=max_length, device=device, stride=stride, progress=progress, max_batch_tokens=max_batch_tokens)
    return [_spans(offsets, word_tags) for (_, offsets), word_tags in zip(words_and_offsets, tagged)]


def _spans(offsets: list[tuple[int, int]], word_tags: list[tuple[str, float]]) -> list[Span]:
    spans = []
    for first, last, entity_type in tags_to_spans([tag for tag, _ in word_tags]):
        score = sum(score for _, score in word_tags[first:last]) / (last - first)
        spans.append((offsets[first][0], offsets[last - 1][1], entity_type, score))
    return spans


# ----------------------------------------------------------------------------- files
@dataclass
class PredictOptions:
    """What every `predict_*` function passes to `tag_words` / `tag_texts`."""

    batch_size: int = 8
    max_length: int | None = None
    stride: int | None = None
    device: str | None = None
    tokenize: str = "auto"
    html: bool = False
    progress: bool = False
    document_context: bool = False  # column files: tag each document's sentences as one sequence
    document_separator: str | None = None  # ... with this word between them (as the model was trained)
    sentence_context: int = 0  # column files: each sentence read with this many words of its neighbours on each side

    def tagging(self) -> dict:
        return {"batch_size": self.batch_size, "max_length": self.max_length, "stride": self.stride,
                "device": self.device, "progress": self.progress}


def _read_exact(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:  # offsets count CRLF as two characters, as brat does
        return handle.read()


def _entity_types(model) -> list[str]:
    return sorted({label[2:] for label in _entity_labels(model) if label != "O"})


def _write_brat_documents(model, tokenizer, documents: list[tuple[str, str, Path]], output_dir: Path, options: PredictOptions) -> list[Path]:
    """Tag `(doc_id, text, out_folder)` documents and write brat files (+ HTML). Returns the .ann paths."""
    spans = tag_texts(model, tokenizer, [text for _, text, _ in documents], tokenize=options.tokenize, **options.tagging())
    types = _entity_types(model)
    colors = colors_for_types(types)
    written = []
    for (doc_id, text, folder), doc_spans in zip(documents, spans):
        ann = write_brat(doc_id, text, [s[:3] for s in doc_spans], folder)
        _add_score_notes(ann, doc_spans)
        if options.html:
            write_html(folder / f"{doc_id}.html", text, doc_spans, title=doc_id, colors=colors)
        written.append(ann)
    _write_brat_config(output_dir, types, colors)
    logger.info("wrote %d brat document(s) with %d entities to %s", len(written), sum(map(len, spans)), output_dir)
    return written


def _add_score_notes(ann_path: Path, spans: list[Span]) -> None:
    """Append an `AnnotatorNotes` line with the score of each `T` line (shown by brat on hover)."""
    score_of = {(s, e, t): score for s, e, t, score in spans}
    notes = []
    with open(ann_path, encoding="utf-8", newline="") as handle:
        t_lines = [line for line in handle.read().split("\n") if line.startswith("T") and line.count("\t") >= 2]
    for line in t_lines:
        ann_id, type_and_offsets, _ = line.split("\t", 2)
        entity_type, offsets = type_and_offsets.split(" ", 1)
        bounds = [int(b) for piece in offsets.split(";") for b in piece.split()]
        score = score_of.get((bounds[0], bounds[-1], entity_type))
        if score is not None:
            notes.append(f"#{len(notes) + 1}\tAnnotatorNotes {ann_id}\tscore {score:.4f}")
    with open(ann_path, "a", encoding="utf-8") as handle:
        handle.write("".join(note + "\n" for note in notes))


def _write_brat_config(output_dir: Path, types: list[str], colors: dict[str, str]) -> None:
    """`annotation.conf` (the entity types) and `visual.conf` (the HTML view's colours), if absent."""
    output_dir.mkdir(parents=True, exist_ok=True)
    annotation = output_dir / "annotation.conf"
    if not annotation.exists():
        annotation.write_text("[entities]\n" + "".join(f"{t}\n" for t in types) + "\n[relations]\n\n[events]\n\n[attributes]\n", encoding="utf-8")
    visual = output_dir / "visual.conf"
    if not visual.exists():
        drawing = "".join(f"{t}\tbgColor:{colors[t]}\n" for t in types)
        visual.write_text("[labels]\n\n[drawing]\n" + drawing, encoding="utf-8")


def _refuse_overwrite(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        raise ValueError(f"{target}: writing predictions there would overwrite the input {source}; choose another output folder")


def predict_text_file(model, tokenizer, path: str | Path, output_dir: str | Path, options: PredictOptions | None = None) -> Path:
    """Tag a raw text file in one pass; writes `<output_dir>/<stem>.txt` + `.ann` (brat). Returns the .ann path."""
    path, output_dir = Path(path), Path(output_dir)
    _refuse_overwrite(path.parent, output_dir)
    return _write_brat_documents(model, tokenizer, [(path.stem, _read_exact(path), output_dir)], output_dir, options or PredictOptions())[0]


def predict_brat_folder(model, tokenizer, folder: str | Path, output_dir: str | Path, options: PredictOptions | None = None) -> list[Path]:
    """Tag every `.txt` under `folder` (sub-folders mirrored); existing `.ann` files are ignored.

    Writes `<output_dir>/<relative path>.txt` (copied byte-exactly) and `.ann` next to it.
    Returns the `.ann` paths.
    """
    folder, output_dir = Path(folder), Path(output_dir)
    _refuse_overwrite(folder, output_dir)
    texts = sorted(folder.rglob("*.txt"))
    if not texts:
        raise FileNotFoundError(f"{folder}: no .txt files to tag")
    documents = [(p.stem, _read_exact(p), output_dir / p.parent.relative_to(folder)) for p in texts]
    return _write_brat_documents(model, tokenizer, documents, output_dir, options or PredictOptions())


def predict_conll_file(model, tokenizer, path: str | Path, output_dir: str | Path, fmt: str = "conll", options: PredictOptions | None = None) -> Path:
    """Tag the sentences of a CoNLL (`fmt="conll"`), char-per-line (`"rocling"`) or JSON file.

    Column files (CoNLL, char per line) are written back line for line: every input line and
    column is kept as it was (POS/chunk columns, the gold tags in their own scheme, `-DOCSTART-`
    and blank lines, line ends) and the predicted tag is appended as one more column (separated
    by a tab where the line uses tabs, else a space). JSON inputs (HealthNER, span JSON) give
    `<stem>.txt` with lines `token [gold] predicted` and a blank line after each sentence.
    Returns the path written.
    """
    path, output_dir, options = Path(path), Path(output_dir), options or PredictOptions()
    read_options = {}
    if fmt == "conll" and _first_token_line_columns(path) == 1:
        read_options["tag_column"] = None
    sentences, report = read_files(fmt, [path], **read_options)
    logger.info("%s: %s", path, report.summary())
    if options.document_context:  # consecutive sentences of a document as one sequence, cut back after
        from .data.features import document_groups, join_with, split_rows

        groups = [[sentences[i] for i in group] for group in document_groups([s.doc_id for s in sentences])]
        separator = options.document_separator
        joined = tag_words(model, tokenizer, [join_with([s.tokens for s in group], separator) for group in groups],
                           **options.tagging())
        tagged = split_rows(joined, [[len(s.tokens) for s in group] for group in groups], int(separator is not None))
        logger.info("%s: %d sentences tagged as %d documents", path, len(sentences), len(groups))
    elif options.sentence_context:  # each sentence with its neighbours' words around it, as in training
        from .data.features import context_words

        keys = [(s.doc_id, s.index) for s in sentences]
        readable: dict = {}
        for (doc_id, index), sentence in zip(keys, sentences):
            readable.setdefault(doc_id, {})[index] = sentence.tokens
        before, after = context_words(keys, readable, options.sentence_context)
        tagged = tag_words(model, tokenizer, [b + s.tokens + a for b, s, a in zip(before, sentences, after)],
                           context=[(len(b), len(a)) for b, a in zip(before, after)], **options.tagging())
        logger.info("%s: %d sentences tagged with up to %d words of their neighbours on each side",
                    path, len(sentences), options.sentence_context)
    else:
        tagged = tag_words(model, tokenizer, [s.tokens for s in sentences], **options.tagging())
    output_dir.mkdir(parents=True, exist_ok=True)
    json_input = fmt == "spanjson" or (fmt == "rocling" and _is_json_lines(path))
    out = output_dir / (path.stem + ".txt" if json_input else path.name)
    _refuse_overwrite(path, out)
    if json_input:
        text = _token_lines(sentences, tagged)
    else:
        text = _append_column(_read_exact(path), [tag for word_tags in tagged for tag, _ in word_tags], path)
    out.write_text(text, encoding="utf-8", newline="")
    if options.html:
        _write_sentences_html(model, sentences, tagged, out.with_suffix(out.suffix + ".html"))
    logger.info("wrote %d sentences to %s", len(sentences), out)
    return out


def _first_token_line_columns(path: Path) -> int:
    for line in _read_exact(path).splitlines():
        if line.strip() and not line.startswith("-DOCSTART-"):
            return len(line.split())
    return 0


def _token_lines(sentences, tagged) -> str:
    has_gold = any(s.tags is not None for s in sentences)
    lines = []
    for sentence, word_tags in zip(sentences, tagged):
        for position, (token, (tag, _)) in enumerate(zip(sentence.tokens, word_tags)):
            gold = [sentence.tags[position] if sentence.tags is not None else "O"] if has_gold else []
            lines.append(" ".join([token, *gold, tag]))
        lines.append("")
    return "".join(line + "\n" for line in lines)


def _append_column(text: str, tags: list[str], path: Path) -> str:
    """`text` with `tags` appended, in order, to its token lines (not blank, not `-DOCSTART-`)."""
    out, position = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if not body.strip() or body.lstrip("\ufeff").startswith("-DOCSTART-"):
            out.append(line)
            continue
        if position >= len(tags):
            raise ValueError(f"{path}: more token lines than the reader found tokens ({len(tags)}); cannot align the predictions")
        separator = "\t" if "\t" in body else " "
        out.append(body.rstrip(" \t") + separator + tags[position] + (end or ""))
        position += 1
    if position != len(tags):
        raise ValueError(f"{path}: {position} token lines but {len(tags)} tokens read; cannot align the predictions")
    return "".join(out)


def _write_sentences_html(model, sentences, tagged, out: Path) -> Path:
    """One page for a file of sentences: one line per sentence (tokens joined by a space unless all are characters)."""
    pieces, spans, position = [], [], 0
    for sentence, word_tags in zip(sentences, tagged):
        joiner = "" if all(len(token) == 1 for token in sentence.tokens) else " "
        offsets, cursor = [], position
        for token in sentence.tokens:
            offsets.append((cursor, cursor + len(token)))
            cursor += len(token) + len(joiner)
        spans += _spans(offsets, word_tags)
        pieces.append(joiner.join(sentence.tokens))
        position += len(pieces[-1]) + 1
    return write_html(out, "\n".join(pieces), spans, title=out.stem, colors=colors_for_types(_entity_types(model)))


def detect_format(path: str | Path) -> str:
    """The format of an input, from its content (`mamba_ner.data.detect`, shared with training):
    `brat` (a folder, or a `.txt` with an `.ann`), `rocling` (char per line, HealthNER JSON),
    `spanjson`, `conll`, or `text` (raw text)."""
    return detect_data_format(path)[0]


def predict_path(model, tokenizer, path: str | Path, output_dir: str | Path, fmt: str = "auto", options: PredictOptions | None = None) -> list[Path]:
    """Dispatch one input to the right `predict_*` function; returns the files written (.ann / column files).

    `fmt="auto"` detects the format from the content (`mamba_ner.data.detect`) and logs why; a
    folder that is not brat is tagged file by file into `output_dir/<folder name>`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such input file or folder")
    if fmt == "auto":
        fmt, reason = detect_data_format(path)
        logger.info("%s: format %s (%s)", path, fmt, reason)
    elif fmt != "text":
        fmt = canonical_format(fmt)[0]
    if fmt == "brat":
        if path.is_dir():
            return predict_brat_folder(model, tokenizer, path, Path(output_dir) / path.name, options)
        return [predict_text_file(model, tokenizer, path.with_suffix(".txt"), output_dir, options)]
    if path.is_dir():
        return [out for file in expand_folders([path]) for out in predict_path(model, tokenizer, file, Path(output_dir) / path.name, fmt, options)]
    if fmt == "text":
        return [predict_text_file(model, tokenizer, path, output_dir, options)]
    if fmt in ("conll", "rocling", "spanjson"):
        return [predict_conll_file(model, tokenizer, path, output_dir, fmt, options)]
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


# ----------------------------------------------------------------------------- command line
@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "Checkpoint folder (model + tokenizer), e.g. OUTPUT_DIR/model of a training run"})
    output: str = field(default="predictions", metadata={"help": "Output folder; a folder INPUT goes to OUTPUT/<its name>"})
    format: str = field(default="auto", metadata={"help": "Input format (default auto: detected from each input's content)", "choices": list(FORMATS), "aliases": ["--data_format", "--data-format"]})
    batch_size: int = field(default=8, metadata={"help": "Most sequences per forward pass"})
    max_length: int | None = field(default=None, metadata={"help": "Tag windows of this many tokens; 0: whole texts in one pass (default: the window the model was scored with, --eval_window in training, else one pass)"})
    stride: int | None = field(default=None, metadata={"help": "Tokens shared by consecutive windows (default: max_length // 4)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, ..."})
    tokenize: str = field(default="auto", metadata={"help": "Raw text into words: auto, char or word", "choices": list(TOKENIZE_MODES)})
    document_context: bool | None = field(default=None, metadata={"help": "CoNLL / char-per-line input: tag each document's sentences (-DOCSTART- documents) as one sequence, as a model trained with --document_context reads them (default: as the model was trained; its config records it)"})
    document_separator: str | None = field(default=None, metadata={"help": "With --document_context: the word put between sentences, as in training (default: the one the model's config records)"})
    sentence_context: int | None = field(default=None, metadata={"help": "CoNLL / char-per-line input: read each sentence with up to this many words of the sentences around it in its document, as a model trained with --sentence_context reads them; 0: off (default: as the model was trained; its config records it)"})


def build_parser():
    from transformers import HfArgumentParser

    from .commandline import DefaultsHelpFormatter

    parser = HfArgumentParser(PredictArguments, prog="mamba-ner predict", formatter_class=DefaultsHelpFormatter,
                              description="Tag files with a trained checkpoint. Errors are one line; --debug shows the traceback.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="text files, brat folders, CoNLL, char-per-line or JSON files, or folders of them")
    parser.add_argument("--html", action="store_true", help="Also write a displaCy-style HTML page per document (a flag: takes no value)")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[PredictArguments, list[str], bool]:
    """`(arguments, inputs, html)`."""
    from .commandline import parse_dataclasses

    args, rest = parse_dataclasses(build_parser(), list(sys.argv[1:] if argv is None else argv))
    return args, rest.inputs, rest.html


def main(argv: list[str] | None = None) -> int:
    """`mamba-ner predict`: user mistakes end in one line (`--debug`: traceback)."""
    from .commandline import run_command

    return run_command(_main, argv, "mamba-ner predict")


def _main(argv: list[str]) -> int:
    # 1. Arguments and logging
    args, inputs, html = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    keep_freed_memory()  # fewer page faults per step (see mamba_ner.runtime)
    missing = [path for path in inputs if not Path(path).exists()]
    if missing:
        raise FileNotFoundError(f"input not found: {', '.join(missing)}")

    # 2. Model and tokenizer on the device
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from .commandline import check_model_folder

    check_model_folder(args.model)
    device = resolve_device(args.device)
    model = AutoModelForTokenClassification.from_pretrained(args.model).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    logger.info("model %s on %s, labels %s", args.model, device, list(model.config.id2label.values()))

    # 3. Every input, each to its own writer; document context as the model was trained unless told
    trained_with = bool(getattr(model.config, "document_context", False))
    document_context = trained_with if args.document_context is None else args.document_context
    separator = args.document_separator
    if separator is None and document_context and trained_with:
        separator = getattr(model.config, "document_separator", None)
    if document_context and args.document_context is None:
        logger.info("document context on, as the model was trained (separator %r)", separator)
    sentence_context = getattr(model.config, "sentence_context", 0) if args.sentence_context is None else args.sentence_context
    if sentence_context and document_context:
        raise ValueError("--sentence_context and --document_context are two ways of reading neighbouring sentences; give one")
    if sentence_context and args.sentence_context is None:
        logger.info("each sentence read with up to %d words of its neighbours on each side, as the model was trained",
                    sentence_context)
    max_length = args.max_length
    if max_length is None and getattr(model.config, "tagging_window", None):
        max_length = model.config.tagging_window
        logger.info("tagging in windows of %d tokens, as the model's scores were measured (--max_length 0: one pass)",
                    max_length)
    options = PredictOptions(batch_size=args.batch_size, max_length=max_length or None, stride=args.stride,
                             device=None, tokenize=args.tokenize, html=html, progress=True,
                             document_context=document_context, document_separator=separator,
                             sentence_context=sentence_context)
    for path in inputs:
        for written in predict_path(model, tokenizer, path, args.output, args.format, options):
            print(written)
    return 0


__all__ = [
    "PredictArguments", "PredictOptions", "detect_format", "main", "predict_brat_folder", "predict_conll_file",
    "predict_path", "predict_text_file", "resolve_device", "tag_texts", "tag_words",
]
