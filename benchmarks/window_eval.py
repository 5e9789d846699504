"""Score a trained checkpoint on a protocol split tagged in one pass and in overlapping windows.

    python benchmarks/window_eval.py ruijin outputs/ruijin [--split validation] [--windows 300 600]
        [--brat-split document] [--data-dir ../shared/data] [--threads 2]

Tags every row of the split (whole documents for `--brat-split document`, or for a checkpoint trained with
`--document_context`, whose documents are joined as in training and scored per sentence) with `predict.tag_words`,
first in one pass, then with `max_length` = each window size (stride a quarter of it: each word keeps
the prediction of the window where it lies farthest from an edge, as `mamba-ner predict --max_length`
does), and prints entity P / R / F1 (seqeval default mode, as the protocol runs report) for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from seqeval.metrics import f1_score, precision_score, recall_score  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from mamba_ner import MambaCrfForTokenClassification  # noqa: E402
from mamba_ner.data.features import join_documents, split_rows  # noqa: E402
from mamba_ner.data.protocols import load_protocol  # noqa: E402
from mamba_ner.predict import tag_words  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("checkpoint")
    parser.add_argument("--split", default="test")
    parser.add_argument("--windows", type=int, nargs="+", default=[300, 600])
    parser.add_argument("--brat-split", default="document")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = MambaCrfForTokenClassification.from_pretrained(args.checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    dataset, _ = load_protocol(args.protocol, args.data_dir, brat_split=args.brat_split)
    split = dataset[args.split]
    names = split.features["ner_tags"].feature.names
    gold = [[names[t] for t in row] for row in split["ner_tags"]]
    separator = getattr(model.config, "document_separator", None)
    if getattr(model.config, "document_context", False):  # read documents as the model was trained to, score sentences
        split = join_documents(split, separator)
    words = split["tokens"]
    print(f"{args.protocol} {args.split}: {len(words)} rows, longest {max(map(len, words)):,} tokens, {args.checkpoint}")
    print("| tagged | P | R | F1 | seconds |")
    print("|---|---:|---:|---:|---:|")
    for window in [None, *args.windows]:
        start = time.perf_counter()
        tagged = tag_words(model, tokenizer, words, batch_size=4, max_length=window,
                           stride=None if window is None else window // 4)
        predicted = [[tag for tag, _ in row] for row in tagged]
        if "sentence_lengths" in split.column_names:
            predicted = split_rows(predicted, split["sentence_lengths"], gap=0 if separator is None else 1)
        label = "one pass" if window is None else f"windows of {window} (stride {window // 4})"
        print(f"| {label} | {100 * precision_score(gold, predicted):.2f} | {100 * recall_score(gold, predicted):.2f} | "
              f"{100 * f1_score(gold, predicted):.2f} | {time.perf_counter() - start:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
