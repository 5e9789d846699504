"""Sentences -> `datasets.DatasetDict`: label list, splits, duplicate removal.

Columns of every split:

    tokens          list of strings
    ner_tags        list of ClassLabel (names = the label list; absent for unlabelled splits)
    doc_id          string
    sentence_index  int32, position of the sentence in its document
    offsets         list of [start, end] character offsets, or null (formats without a text)
    source          string, `file:line` where the sentence was read

`join_documents` turns a split into one row per document (consecutive rows sharing a `doc_id`),
with a `sentence_lengths` column (words per sentence) so that predictions can be cut back into
sentences (`split_rows`). `add_sentence_context` keeps one row per sentence and adds the words of
its document's neighbouring sentences around it as context (`context_before` / `context_after`).

The label list is fixed once (`label_list_from`: "O" first, then each type's prefixes in scheme
order, types sorted) and stored in the ClassLabel, so `save_to_disk`/`load_from_disk` and
parquet keep it; `mamba-ner convert` also writes it to `labels.json`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np
import pyarrow as pa
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, List, Value

from .bio import canonical_scheme, spans_to_tags, split_tag, tags_to_spans
from .records import Sentence
from .report import ConversionReport

_PREFIXES = {"IOB2": "BI", "IOB1": "BI", "IOBES": "BIES", "BMES": "BMES"}


def label_list_from(data, scheme: str = "IOB2") -> list[str]:
    """The label list for everything in `data`: `["O", "B-A", "I-A", "B-B", ...]`.

    Args:
        data: sentences, tag lists, a dict of split name -> sentences, or entity type names
            (strings without a prefix, e.g. `["BODY", "SYMP"]`).
        scheme (`str`): decides the prefixes per type (`B I` for IOB1/IOB2, `B I E S` for
            IOBES, `B M E S` for BMES).
    """
    types, tags = set(), set()
    for item in _flatten(data):
        if isinstance(item, str):
            types.add(item)
        elif item is not None:
            tags.update(item)
    types.update(split_tag(tag)[1] for tag in tags if tag != "O")
    return labels_for_types(sorted(types), scheme)


def labels_for_types(types: Iterable[str], scheme: str = "IOB2") -> list[str]:
    """`["O"]` followed by every prefix of `scheme` for each type, in the order given."""
    prefixes = _PREFIXES[canonical_scheme(scheme)]
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in prefixes]


def _flatten(data):
    if isinstance(data, Mapping):
        for value in data.values():
            yield from _flatten(value)
        return
    for item in data:
        yield item.tags if isinstance(item, Sentence) else item


def dataset_features(label_list: Sequence[str] | None) -> Features:
    """The `Features` of a split; without a label list there is no `ner_tags` column."""
    columns = {"tokens": List(Value("string"))}
    if label_list is not None:
        columns["ner_tags"] = List(ClassLabel(names=list(label_list)))
    columns.update(
        doc_id=Value("string"),
        sentence_index=Value("int32"),
        offsets=List(List(Value("int32"), length=2)),
        source=Value("string"),
    )
    return Features(columns)


def build_dataset(sentences: Sequence[Sentence], label_list: Sequence[str] | None) -> Dataset:
    """One split. `label_list=None` is only allowed for unlabelled sentences (`tags is None`)."""
    labelled = {sentence.tags is not None for sentence in sentences}
    if len(labelled) > 1:
        raise ValueError("a split mixes labelled and unlabelled sentences")
    has_tags = labelled == {True}
    if has_tags and label_list is None:
        raise ValueError("labelled sentences need a label list")
    columns = {"tokens": _list_array([s.tokens for s in sentences], pa.string())}
    if has_tags:
        label_to_id = {label: index for index, label in enumerate(label_list)}
        ner_tags = []
        for sentence in sentences:
            try:
                ner_tags.append([label_to_id[tag] for tag in sentence.tags])
            except KeyError as error:
                raise ValueError(
                    f"{sentence.source or sentence.doc_id}: tag {error.args[0]!r} is not in the label list {list(label_list)}"
                ) from None
        columns["ner_tags"] = _list_array(ner_tags, pa.int64())
    columns.update(
        doc_id=pa.array([s.doc_id for s in sentences], pa.string()),
        sentence_index=pa.array([s.index for s in sentences], pa.int32()),
        offsets=_offsets_array([s.offsets for s in sentences]),
        source=pa.array([s.source for s in sentences], pa.string()),
    )
    features = dataset_features(label_list if has_tags else None)
    table = pa.Table.from_arrays(list(columns.values()), schema=features.arrow_schema)
    return Dataset(table, info=DatasetInfo(features=features))


# `Dataset.from_dict` encodes nested lists element by element in Python (~20 s for the 2.7M
# tokens of Ruijin); building the Arrow arrays directly takes about a second.
def _list_array(rows: Sequence[Sequence], value_type: pa.DataType) -> pa.ListArray:
    boundaries = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=boundaries[1:])
    values = pa.array(list(chain.from_iterable(rows)), value_type)
    return pa.ListArray.from_arrays(pa.array(boundaries.astype(np.int32)), values)


def _offsets_array(rows: Sequence[Sequence[tuple[int, int]] | None]) -> pa.ListArray:
    present = [row if row is not None else () for row in rows]
    boundaries = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in present], out=boundaries[1:])
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(present)), dtype=np.int32, count=int(boundaries[-1]) * 2)
    pairs = pa.FixedSizeListArray.from_arrays(pa.array(flat), 2)
    mask = pa.array([row is None for row in rows], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(boundaries.astype(np.int32)), pairs, mask=mask)


def build_dataset_dict(
    splits: Mapping[str, Sequence[Sentence]], label_list: Sequence[str] | None = None, scheme: str = "IOB2"
) -> DatasetDict:
    """A `DatasetDict` with one split per entry of `splits` (see the module docstring for columns).

    Args:
        splits: split name -> sentences.
        label_list: the labels (ClassLabel names); default `label_list_from(splits, scheme)`.
            A tag outside the list raises `ValueError` naming the sentence.
    """
    if label_list is None:
        label_list = label_list_from(splits, scheme)
    return DatasetDict({name: build_dataset(sentences, label_list) for name, sentences in splits.items()})


def recode_tags(dataset: DatasetDict, scheme: str) -> tuple[DatasetDict, dict[str, dict[str, int]]]:
    """Every split's `ner_tags` re-encoded in `scheme`, with the label list rebuilt for the same entity types.

    `IOB2 -> IOBES` gives each entity's last token `E-` and single-token entities `S-`, so a CRF learns
    where entities end as it learns where they start; `IOBES -> IOB2` undoes it. Entities are read with the
    lenient rule of `data.bio.tags_to_spans` (conlleval's: an `I-X` after `O` or another type starts an entity),
    so the entities, and any entity-level score, are the same before and after.

    Returns:
        the new `DatasetDict` and, per split, `{"rows", "entities", "repaired"}`: rows whose tags were not
        well-formed in their own scheme (such as `O I-X`) are kept, their entities read as conlleval reads
        them; `repaired` counts them. Splits without `ner_tags` are returned as they are.
    """
    target = canonical_scheme(scheme)
    splits_with_tags = [name for name, split in dataset.items() if "ner_tags" in split.features]
    if not splits_with_tags:
        return dataset, {}
    names = dataset[splits_with_tags[0]].features["ner_tags"].feature.names
    for name in splits_with_tags[1:]:
        if dataset[name].features["ner_tags"].feature.names != names:
            raise ValueError(f"the {name} split has other labels than the {splits_with_tags[0]} split")
    types = list(dict.fromkeys(split_tag(label)[1] for label in names if label != "O"))
    labels = labels_for_types(types, target)
    label_to_id = {label: i for i, label in enumerate(labels)}
    recoded, counts = {}, {}
    for name, split in dataset.items():
        if name not in splits_with_tags:
            recoded[name] = split
            continue
        rows, repaired, entities = [], 0, 0
        for ids in split["ner_tags"]:
            tags = [names[i] for i in ids]
            spans = tags_to_spans(tags)
            entities += len(spans)
            new_tags = spans_to_tags(len(tags), spans, target)
            repaired += _recode_repairs(tags, spans)
            rows.append([label_to_id[tag] for tag in new_tags])
        recoded[name] = split.remove_columns("ner_tags").add_column("ner_tags", rows, feature=List(ClassLabel(names=labels)))
        recoded[name] = recoded[name].select_columns(list(split.column_names))
        counts[name] = {"rows": len(rows), "entities": entities, "repaired": repaired}
    return DatasetDict(recoded), counts


def _recode_repairs(tags: Sequence[str], spans) -> int:
    """1 when `tags` are not the canonical encoding of their own spans in their own scheme, else 0."""
    prefixes = {split_tag(tag)[0] for tag in tags if tag != "O"}
    own = "BMES" if "M" in prefixes else "IOBES" if prefixes & {"E", "S"} else "IOB2"
    return int(spans_to_tags(len(tags), spans, own) != list(tags))


def join_documents(dataset: Dataset, separator: str | None = None) -> Dataset:
    """One row per document: consecutive rows with the same `doc_id` joined, in order.

    Columns: `tokens` and `ner_tags` (when present) concatenated; `doc_id`; `sentence_index` 0;
    `offsets` concatenated (null when any sentence has none, or with a separator); `source` of the
    first sentence; `sentence_lengths`, the words of each joined sentence, so `split_rows` restores
    the sentences. A `doc_id` that comes back after another document starts a new row (nothing is
    reordered). `separator`: a word put between consecutive sentences, tagged `O` (e.g. `[SEP]`,
    which the tokenizer keeps as one token), so a model sees where sentences end; cut it out again
    with `split_rows(..., gap=1)`.
    """
    columns = dataset.column_names
    missing = {"tokens", "doc_id"} - set(columns)
    if missing:
        raise ValueError(f"joining documents needs the columns tokens and doc_id; the dataset lacks {sorted(missing)}")
    has_tags, has_offsets = "ner_tags" in columns, "offsets" in columns
    outside = None
    if separator is not None and has_tags:
        names = dataset.features["ner_tags"].feature.names
        if "O" not in names:
            raise ValueError(f"a sentence separator is tagged O, which the label list {names} lacks")
        outside = names.index("O")
    rows = []
    for group in document_groups(dataset["doc_id"]):
        examples = dataset[group[0]:group[-1] + 1]
        offsets = examples["offsets"] if has_offsets and separator is None else None
        rows.append({
            "tokens": join_with(examples["tokens"], separator),
            "ner_tags": join_with(examples["ner_tags"], outside) if has_tags else [],
            "doc_id": examples["doc_id"][0], "sentence_index": 0,
            "offsets": None if offsets is None or None in offsets else join_with(offsets),
            "source": examples["source"][0] if "source" in columns else None,
            "sentence_lengths": [len(tokens) for tokens in examples["tokens"]],
        })
    features = Features({name: feature for name, feature in dataset.features.items()
                         if name in ("tokens", "ner_tags", "doc_id", "sentence_index", "offsets", "source")})
    features["sentence_lengths"] = List(Value("int32"))
    data = {name: [row[name] for row in rows] for name in features}
    return Dataset.from_dict(data, features=features)


def add_sentence_context(splits: Mapping[str, Dataset], words: int) -> DatasetDict:
    """Each sentence with up to `words` words of its document's neighbouring sentences on each side.

    The neighbours are the sentences before and after it in its document (same `doc_id`, ordered
    by `sentence_index`; see `context_words`). A split reads the sentences of its own and of the
    splits before it in `splits`' order (train, validation, test): so training rows never read
    validation or test text, and a validation sentence sees its document's training sentences
    around it, as a user's sentence sees the rest of its document. Context never crosses
    documents (`doc_id`: a ROCLING or HealthNER file, a CoNLL -DOCSTART- document, a span-JSON record).

    Returns rows with the context words added to `tokens`, tagged `O` in `ner_tags` (they are not
    trained on or scored: `tokenization.mask_context_labels`), `offsets` null, and two columns:
    `context_before` and `context_after`, the number of context words at each end.
    """
    readable: dict[str, dict[int, Sequence[str]]] = {}  # doc_id -> sentence_index -> tokens, of the splits read so far
    result = {}
    for name, dataset in splits.items():
        keys = list(zip(dataset["doc_id"], dataset["sentence_index"]))
        for (doc_id, index), tokens in zip(keys, dataset["tokens"]):
            readable.setdefault(doc_id, {})[index] = tokens
        before, after = context_words(keys, readable, words)
        result[name] = _with_context(dataset, before, after)
    return DatasetDict(result)


def context_words(
    keys: Sequence[tuple[str, int]], readable: Mapping[str, Mapping[int, Sequence[str]]], words: int
) -> tuple[list[list[str]], list[list[str]]]:
    """The words before and after each sentence `(doc_id, sentence_index)` of `keys` in its document.

    `readable[doc_id][sentence_index]` holds the tokens of the sentences that may be read (each
    sentence of `keys` among them). Up to `words` words on each side: the end of the sentences
    before it and the start of those after it, in `sentence_index` order.
    """
    if words < 1:
        raise ValueError(f"sentence context needs words >= 1, got {words}")
    order = {doc_id: sorted(sentences) for doc_id, sentences in readable.items()}
    position = {doc_id: {index: i for i, index in enumerate(indices)} for doc_id, indices in order.items()}
    before, after = [], []
    for doc_id, index in keys:
        indices, here, sentences = order[doc_id], position[doc_id][index], readable[doc_id]
        left: list[str] = []
        for other in reversed(indices[:here]):
            if len(left) >= words:
                break
            left[:0] = sentences[other]
        right: list[str] = []
        for other in indices[here + 1:]:
            if len(right) >= words:
                break
            right.extend(sentences[other])
        before.append(left[max(0, len(left) - words):])
        after.append(right[:words])
    return before, after


def _with_context(dataset: Dataset, before: list[list[str]], after: list[list[str]]) -> Dataset:
    """`dataset` with the context words added around each row's tokens (see `add_sentence_context`)."""
    tokens = [left + row + right for left, row, right in zip(before, dataset["tokens"], after)]
    columns = {"tokens": tokens}
    if "ner_tags" in dataset.column_names:
        outside = dataset.features["ner_tags"].feature.names.index("O")
        columns["ner_tags"] = [[outside] * len(left) + row + [outside] * len(right)
                               for left, row, right in zip(before, dataset["ner_tags"], after)]
    if "offsets" in dataset.column_names:  # the offsets of the sentence alone no longer match its words
        columns["offsets"] = [None] * len(tokens)
    data = dataset.remove_columns(list(columns))
    for name, values in columns.items():
        data = data.add_column(name, values, feature=dataset.features[name])
    data = data.add_column("context_before", [len(left) for left in before], feature=Value("int32"))
    return data.add_column("context_after", [len(right) for right in after], feature=Value("int32"))


def document_groups(doc_ids: Sequence[str]) -> list[list[int]]:
    """Indices of the runs of consecutive equal `doc_ids` (a document that comes back starts a new run)."""
    groups: list[list[int]] = []
    for index, doc_id in enumerate(doc_ids):
        if groups and doc_ids[groups[-1][0]] == doc_id:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def join_with(parts: Sequence[Sequence], separator=None) -> list:
    """The items of `parts` in order, with `separator` between consecutive parts (None: nothing)."""
    joined: list = []
    for index, part in enumerate(parts):
        if index and separator is not None:
            joined.append(separator)
        joined.extend(part)
    return joined


def split_rows(rows: Sequence[Sequence], sentence_lengths: Sequence[Sequence[int]], gap: int = 0) -> list[list]:
    """Cut per-row sequences (e.g. a document's tags) back into sentences of the given lengths.

    `gap`: items between consecutive sentences that are dropped (1 for `join_documents`' separator).
    Raises `ValueError` when a row's length is not the sum of its sentence lengths (and gaps).
    """
    if len(rows) != len(sentence_lengths):
        raise ValueError(f"{len(rows)} rows but sentence lengths for {len(sentence_lengths)}")
    out = []
    for index, (row, lengths) in enumerate(zip(rows, sentence_lengths)):
        expected = sum(lengths) + gap * max(len(lengths) - 1, 0)
        if len(row) != expected:
            raise ValueError(f"row {index} has {len(row)} items but its sentences have {expected} words "
                             "(a word without any token cannot be cut back into its sentence)")
        start = 0
        for length in lengths:
            out.append(list(row[start:start + length]))
            start += length + gap
    return out


def split_sentences(
    sentences: Sequence[Sentence],
    ratios: Mapping[str, float] | None = None,
    seed: int = 42,
    by_document: bool = False,
) -> dict[str, list[Sentence]]:
    """Split sentences (or whole documents) at random by ratio, reproducibly.

    Units (sentences, or documents by `doc_id` with `by_document=True`) are permuted with
    `numpy.random.default_rng(seed).permutation`; every split but the first takes the next
    `ceil(ratio * n_units)` units of the permutation, the first split takes the rest. For two
    splits this picks exactly the units `Dataset.train_test_split(test_size=ratio, seed=seed)`
    would. Within a split the original order is kept.

    Args:
        ratios: split name -> fraction, summing to 1; default `{"train": .8, "validation": .1, "test": .1}`.
    """
    ratios = dict(ratios or {"train": 0.8, "validation": 0.1, "test": 0.1})
    if not ratios or abs(sum(ratios.values()) - 1) > 1e-6 or min(ratios.values()) < 0:
        raise ValueError(f"ratios must be non-negative and sum to 1, got {ratios}")
    if by_document:
        units: dict[str, list[int]] = {}
        for index, sentence in enumerate(sentences):
            units.setdefault(sentence.doc_id, []).append(index)
        groups = list(units.values())
    else:
        groups = [[index] for index in range(len(sentences))]
    permutation = np.random.default_rng(seed).permutation(len(groups))
    names = list(ratios)
    chosen, position = {}, 0
    for name in names[1:]:
        size = math.ceil(ratios[name] * len(groups))
        chosen[name] = permutation[position : position + size]
        position += size
    if position > len(groups):
        raise ValueError(f"{len(groups)} units are too few for ratios {ratios}")
    chosen[names[0]] = permutation[position:]
    return {name: [sentences[i] for unit in sorted(chosen[name]) for i in groups[unit]] for name in names}


def remove_duplicates(
    train: Sequence[Sentence],
    others: Mapping[str, Sequence[Sentence]] | Sequence[Sequence[Sentence]],
    report: ConversionReport | None = None,
) -> list[Sentence]:
    """`train` without the sentences whose token sequence also occurs in another split.

    Args:
        others: split name -> sentences (or a list of sentence lists).
        report: if given, each removed sentence is itemised (`removed`) and its entities move
            from kept to dropped (reason: "sentence removed: also in <split>"), so the report
            still adds up against the original input.
    """
    named = others.items() if isinstance(others, Mapping) else ((f"split {i}", s) for i, s in enumerate(others))
    seen: dict[tuple[str, ...], str] = {}
    for name, sentences in named:
        for sentence in sentences:
            seen.setdefault(tuple(sentence.tokens), name)
    kept = []
    for sentence in train:
        where = seen.get(tuple(sentence.tokens))
        if where is None:
            kept.append(sentence)
            continue
        if report is not None:
            location = sentence.source or f"{sentence.doc_id}:{sentence.index}"
            report.note_item("removed", f"train sentence also in {where}", location, sentence.text[:40])
            for _, _, entity_type in tags_to_spans(sentence.tags or []):
                report.entity_removed(entity_type, f"sentence removed: also in {where}", location)
    return kept
