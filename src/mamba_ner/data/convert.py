"""`mamba-ner convert`: annotated files -> a saved `DatasetDict`, with the conversion report.

    mamba-ner convert train.txt --test test.txt --split-ratios train=0.9,validation=0.1 --output data/   # format detected
    mamba-ner convert --format rocling train.txt --test test.txt --split-ratios train=0.9,validation=0.1 --output data/
    mamba-ner convert --format brat corpus/ --split-ratios train=0.8,validation=0.1,test=0.1 --by-document --output data/
    mamba-ner convert --format conll eng.train --validation eng.testa --test eng.testb --dedup --output data/
    mamba-ner convert --protocol ruijin --data-dir ../shared/data --output data/ruijin

Writes into `--output`: the DatasetDict (`save_to_disk`), `labels.json`, `report.json`, with
`--parquet` one `<split>.parquet` per split, with `--tokenizer KIND` a tokenizer trained on the
train split in `tokenizer/`. Prints the report summary. Exit status 1 on malformed or empty input
(the message names file, line and what was expected; `--on-error skip` drops and reports instead).
Without `--format` the format is detected from the files' content (`detect.py`); `bmes`/`bioes`
are CoNLL with that input scheme; folders stand for their files. Options take `-` or `_`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import DataFormatError, format_choices, read_files
from .bio import O_PREFIX_POLICIES, OVERLAP_POLICIES, SCHEMES
from .report import ConversionReport
from .text import SPLIT_MODES, TOKENIZE_MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mamba-ner convert",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="files (brat: folders, .txt/.ann files) for the train pool"
    )
    parser.add_argument("--format", "--data-format", "--data_format", dest="format", choices=format_choices(), default=None,
                        help="force a reader (default: detected from each file's content)")
    parser.add_argument(
        "--output", required=True, help="folder to write the DatasetDict, labels.json and report.json to"
    )
    parser.add_argument(
        "--protocol",
        choices=("healthner", "rocling22", "ruijin", "conll03"),
        help="build a benchmark protocol of BENCHMARKS.md instead",
    )
    parser.add_argument(
        "--data-dir", default="../shared/data", help="data folder for --protocol (default ../shared/data)"
    )
    splits = parser.add_argument_group("splits")
    splits.add_argument("--validation", nargs="+", default=[], metavar="PATH", help="files for the validation split")
    splits.add_argument("--test", nargs="+", default=[], metavar="PATH", help="files for the test split")
    splits.add_argument(
        "--split-ratios",
        type=parse_ratios,
        help="split the INPUT pool at random, e.g. train=0.8,validation=0.1,test=0.1 (first name gets the rest)",
    )
    splits.add_argument("--by-document", action="store_true", help="split whole documents instead of sentences")
    splits.add_argument("--seed", type=int, default=42, help="seed of the random split (default 42)")
    splits.add_argument(
        "--dedup", action="store_true", help="remove train sentences that also occur in validation or test"
    )
    tags = parser.add_argument_group("tags")
    tags.add_argument("--scheme", default="IOB2", choices=SCHEMES, help="output tag scheme (default IOB2)")
    tags.add_argument(
        "--input-scheme",
        default=None,
        help="input scheme: auto, IOB1, IOB2, IOBES, BMES (default: auto for conll, IOB2 for rocling)",
    )
    tags.add_argument(
        "--o-prefix", default="auto", choices=O_PREFIX_POLICIES, help="how to read O-X tags (default auto)"
    )
    tags.add_argument(
        "--on-error",
        default="raise",
        choices=("raise", "skip"),
        help="stop at malformed input, or skip it and report (default raise)",
    )
    conll = parser.add_argument_group("conll")
    conll.add_argument("--token-column", type=int, default=0, help="token column index (default 0)")
    conll.add_argument("--tag-column", type=int, default=-1, help="tag column index (default -1, the last)")
    conll.add_argument("--no-tags", action="store_true", help="unlabelled input (no tag column)")
    conll.add_argument("--delimiter", default=None, help="column delimiter (default: spaces/tabs)")
    conll.add_argument("--strip-segmentation-digits", action="store_true",
                       help="remove the word-segmentation digit of Weibo NER tokens (科0 -> 科); conll and char-per-line files")
    spans = parser.add_argument_group("span JSON")
    spans.add_argument("--end", default="auto", choices=("auto", "exclusive", "inclusive"),
                       help="entity end offsets: auto (decided from the surface texts), exclusive or inclusive")
    brat = parser.add_argument_group("brat")
    brat.add_argument(
        "--unit",
        default="sentence",
        choices=SPLIT_MODES,
        help="cut documents into sentences, lines, or keep them whole",
    )
    brat.add_argument(
        "--tokenize", default="auto", choices=TOKENIZE_MODES, help="char (Chinese), word, or auto per document"
    )
    brat.add_argument(
        "--overlap",
        default="longest",
        choices=OVERLAP_POLICIES,
        help="which of overlapping entities to keep (default longest, then earliest)",
    )
    brat.add_argument(
        "--discontinuous",
        default="join",
        choices=("join", "drop"),
        help="join ;-fragments into one span, or drop the entity",
    )
    brat.add_argument("--max-chars", type=int, default=512, help="soft maximum sentence length in characters (0: none)")
    brat.add_argument("--entity-types", help="comma-separated types to keep (default all)")
    output = parser.add_argument_group("output")
    output.add_argument("--parquet", action="store_true", help="also write <split>.parquet files")
    output.add_argument(
        "--tokenizer",
        choices=("auto", "char", "wordpiece"),
        help="also train a tokenizer on the train split, saved in tokenizer/",
    )
    output.add_argument("--vocab-size", type=int, default=30_000, help="tokenizer vocabulary size (default 30000)")
    output.add_argument("--max-items", type=int, default=5, help="locations shown per reason in the printed summary")
    return parser


def reader_options(args: argparse.Namespace) -> dict:
    """Reader name -> the keyword arguments of that reader (`read_files(per_format=...)` picks one)."""
    common = {"scheme": args.scheme, "on_error": args.on_error}
    types = args.entity_types.split(",") if args.entity_types else None
    tagged = {"o_prefix": args.o_prefix, "strip_segmentation_digits": args.strip_segmentation_digits}
    if args.input_scheme:
        tagged["input_scheme"] = args.input_scheme
    return {
        "brat": {**common, "split": args.unit, "tokenize": args.tokenize, "overlap": args.overlap,
                 "discontinuous": args.discontinuous, "max_chars": args.max_chars or None, "entity_types": types},
        "spanjson": {**common, "tokenize": args.tokenize, "overlap": args.overlap, "entity_types": types, "end": args.end},
        "rocling": {**common, **tagged},
        "conll": {**common, **tagged, "token_column": args.token_column,
                  "tag_column": None if args.no_tags else args.tag_column, "delimiter": args.delimiter},
    }


def parse_ratios(text: str) -> dict[str, float]:
    """`"train=0.9,validation=0.1"` -> `{"train": 0.9, "validation": 0.1}`."""
    try:
        return {name.strip(): float(value) for name, value in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name=fraction,..., got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """`mamba-ner convert`: user mistakes end in one line (`--debug`: traceback)."""
    from ..commandline import run_command

    return run_command(_main, argv, "mamba-ner convert")


def _main(argv: list[str]) -> int:
    from ..commandline import normalize_spelling

    parser = build_parser()
    args = parser.parse_args(normalize_spelling(argv, parser))
    from .features import build_dataset_dict, label_list_from, remove_duplicates, split_sentences  # imports datasets

    try:
        # 1. read (or build a benchmark protocol)
        if args.protocol:
            from .protocols import load_protocol

            dataset, report = load_protocol(
                args.protocol, args.data_dir, seed=args.seed, brat_split=args.unit, max_chars=args.max_chars or None
            )
        else:
            if not args.inputs:
                build_parser().error("give at least one INPUT (or --protocol)")
            options = reader_options(args)
            pool, report = read_files(args.format, args.inputs, per_format=options)
            if not pool:
                raise DataFormatError(", ".join(args.inputs), None, "at least one sentence to convert", "none")
            # 2. splits: by ratio from the pool, plus explicit files
            splits = (
                split_sentences(pool, args.split_ratios, args.seed, args.by_document)
                if args.split_ratios
                else {"train": pool}
            )
            for name, paths in (("validation", args.validation), ("test", args.test)):
                if paths:
                    if name in splits:
                        build_parser().error(f"the {name} split is given both by --split-ratios and by --{name}")
                    splits[name], split_report = read_files(args.format, paths, per_format=options)
                    report.update(split_report)
            # 3. duplicates, then the dataset with one fixed label list
            first = next(iter(splits))
            if args.dedup:
                others = {name: sentences for name, sentences in splits.items() if name != first}
                splits[first] = remove_duplicates(splits[first], others, report)
            report.check()
            dataset = build_dataset_dict(splits, label_list_from(splits, args.scheme))
    except (DataFormatError, ValueError, FileNotFoundError) as error:  # malformed input, bad ratios, unknown tag
        print(f"mamba-ner convert: {error}", file=sys.stderr)
        return 1
    # 4. write everything (datasets 5.2 cannot load_from_disk an empty split, so those are left out)
    for name in [name for name, split in dataset.items() if len(split) == 0]:
        del dataset[name]
        report.note(f"split {name!r} is empty and was not written")
    output = Path(args.output)
    dataset.save_to_disk(str(output))
    labels = next((d.features["ner_tags"].feature.names for d in dataset.values() if "ner_tags" in d.features), [])
    (output / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1), encoding="utf-8")
    (output / "report.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    if args.parquet:
        for name, split in dataset.items():
            split.to_parquet(str(output / f"{name}.parquet"))
    if args.tokenizer:
        from ..tokenization import build_tokenizer

        train = dataset[next(iter(dataset))]
        build_tokenizer(train["tokens"], kind=args.tokenizer, vocab_size=args.vocab_size).save_pretrained(
            str(output / "tokenizer")
        )
    print(_summary(dataset, report, args.max_items))
    print(f"written to {output}")
    return 0


def _summary(dataset, report: ConversionReport, max_items: int) -> str:
    sizes = ", ".join(f"{name} {len(split)}" for name, split in dataset.items())
    return f"splits: {sizes}\n{report.summary(max_items)}"


if __name__ == "__main__":
    sys.exit(main())
