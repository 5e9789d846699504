"""Score a saved checkpoint on annotated files, a saved DatasetDict split or a benchmark protocol.

Writes `<split>_scores.json`, prints the per-type table and saves the per-type F1 bars and the
confusion matrix, like the end of training (`mamba_ner.training`). By default the report goes
*beside* the model folder (`<model>_eval/`), never into it: an exported `OUTPUT_DIR/model` stays
ready for `hub_upload.py`. The files' format is detected from their content unless `--data_format`
forces one; options take `_` or `-` (`--data_format` = `--data-format`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .commandline import UsageError
from .metrics import decode_predictions, format_report, save_metrics_json, score_all
from .runtime import keep_freed_memory

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from .commandline import DefaultsHelpFormatter
    from .data.detect import format_choices

    p = argparse.ArgumentParser(prog="mamba-ner evaluate", description=__doc__, formatter_class=DefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint folder (config.json, weights, tokenizer), e.g. OUTPUT_DIR/model")
    p.add_argument("--data_format", choices=format_choices(), default=None,
                   help="force a reader for --files (default: detected from each file's content)")
    p.add_argument("--files", nargs="*", default=[], help="annotated files or brat folders")
    p.add_argument("--dataset_path", help="a DatasetDict saved with save_to_disk")
    p.add_argument("--protocol", help="a benchmark protocol (healthner, rocling22, ruijin, conll03)")
    p.add_argument("--data_dir", default="../shared/data", help="where the protocols' data lives")
    p.add_argument("--split", default="test", help="split of --dataset_path / --protocol to score")
    p.add_argument("--output_dir", help="where to write the report (default: <model>_eval beside the model folder)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_length", type=int, default=None)
    p.add_argument("--no_plots", action="store_true")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    return p


def load_split(args):
    if args.protocol:
        from .data.protocols import load_protocol

        return load_protocol(args.protocol, args.data_dir)[0][args.split]
    if args.dataset_path:
        return load_from_disk(args.dataset_path)[args.split]
    if not args.files:
        raise UsageError("give --files (format detected, or forced with --data_format), --dataset_path or --protocol")
    from .data import read_files
    from .data.features import build_dataset_dict

    sentences, report = read_files(args.data_format, args.files)
    logger.info("%s", report.summary())
    unlabelled = next((sentence for sentence in sentences if sentence.tags is None), None)
    if unlabelled is not None or not sentences:
        where = unlabelled.source if unlabelled else ", ".join(args.files)
        raise UsageError(f"{where}: expected tagged tokens to score, found " + ("an unlabelled sentence" if unlabelled else "no sentences"))
    return build_dataset_dict({"test": sentences})["test"]


@torch.no_grad()
def predict_tags(model, tokenizer, dataset, batch_size: int = 16, max_length: int | None = None, device=None):
    """Viterbi tags for every word of a (tokens, ner_tags) dataset: (y_true, y_pred) lists of tag strings."""
    from .tokenization import tokenize_and_align_labels

    features = dataset.map(lambda b: tokenize_and_align_labels(b, tokenizer, max_length=max_length),
                           batched=True, remove_columns=dataset.column_names)
    collator = DataCollatorForTokenClassification(tokenizer)
    model.eval().to(device)
    y_true, y_pred = [], []
    for batch in tqdm(DataLoader(features, batch_size=batch_size, collate_fn=collator), desc="evaluate"):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        gold, pred = decode_predictions(out.predictions.cpu().numpy(), batch["labels"].cpu().numpy(), model.config.id2label)
        y_true += gold
        y_pred += pred
    return y_true, y_pred


def default_output_dir(model: str | Path) -> Path:
    """`<model>_eval` beside the model folder (`outputs/run/model` -> `outputs/run/model_eval`)."""
    model = Path(model)
    return model.with_name(model.resolve().name + "_eval")


def main(argv: list[str] | None = None) -> int:
    """`mamba-ner evaluate`: user mistakes end in one line (`--debug`: traceback)."""
    from .commandline import run_command

    return run_command(_main, argv, "mamba-ner evaluate")


def _main(argv: list[str]) -> int:
    from .commandline import check_model_folder, normalize_spelling

    parser = build_parser()
    args = parser.parse_args(normalize_spelling(argv, parser))
    check_model_folder(args.model)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # fewer page faults per step (see mamba_ner.runtime)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForTokenClassification.from_pretrained(args.model, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_split(args)
    dataset_labels = dataset.features["ner_tags"].feature.names
    model_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if dataset_labels != model_labels:
        # map the dataset's tag ids onto the model's; unknown tags cannot be scored honestly
        unknown = sorted(set(dataset_labels) - set(model_labels))
        if unknown:
            raise UsageError(f"the data has tags the model does not know: {unknown}")
        remap = {i: model.config.label2id[name] for i, name in enumerate(dataset_labels)}
        dataset = dataset.map(lambda ex: {"ner_tags": [remap[t] for t in ex["ner_tags"]]})
    y_true, y_pred = predict_tags(model, tokenizer, dataset, args.batch_size, args.max_length, device)
    scores = score_all(y_true, y_pred)
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_metrics_json(scores, out_dir / f"{args.split}_scores.json")
    print(format_report(scores))
    if not args.no_plots:
        from .plotting import plot_confusion_matrix, plot_per_type_f1

        plot_per_type_f1(scores, out_dir / "per_type_f1.png")
        plot_confusion_matrix(y_true, y_pred, model_labels, out_dir / "confusion_matrix.png")
    print(f"report: {out_dir.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
