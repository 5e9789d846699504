"""Score a saved checkpoint on annotated files, a saved DatasetDict split or a benchmark protocol.

Writes `<split>_scores.json`, prints the per-type table and saves the per-type F1 bars and the
confusion matrix, like the end of training (`mamba_ner.training`).
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

from .metrics import decode_predictions, format_report, save_metrics_json, score_all
from .runtime import keep_freed_memory

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mamba-ner evaluate", description=__doc__)
    p.add_argument("--model", required=True, help="checkpoint folder (config.json, weights, tokenizer)")
    p.add_argument("--data_format", choices=["rocling", "brat", "conll"], help="format of --files")
    p.add_argument("--files", nargs="*", default=[], help="annotated files or brat folders")
    p.add_argument("--dataset_path", help="a DatasetDict saved with save_to_disk")
    p.add_argument("--protocol", help="a benchmark protocol (healthner, rocling22, ruijin, conll03)")
    p.add_argument("--data_dir", default="../shared/data", help="where the protocols' data lives")
    p.add_argument("--split", default="test", help="split of --dataset_path / --protocol to score")
    p.add_argument("--output_dir", help="where to write the report (default: <model>/eval)")
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
    if not args.files or not args.data_format:
        raise SystemExit("give --files with --data_format, --dataset_path or --protocol")
    from .data import read_files
    from .data.features import build_dataset_dict

    sentences, report = read_files(args.data_format, args.files)
    logger.info("%s", report.summary())
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
            raise SystemExit(f"the data has tags the model does not know: {unknown}")
        remap = {i: model.config.label2id[name] for i, name in enumerate(dataset_labels)}
        dataset = dataset.map(lambda ex: {"ner_tags": [remap[t] for t in ex["ner_tags"]]})
    y_true, y_pred = predict_tags(model, tokenizer, dataset, args.batch_size, args.max_length, device)
    scores = score_all(y_true, y_pred)
    out_dir = Path(args.output_dir or Path(args.model) / "eval")
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
