"""Curves and per-type tables of finished protocol runs, read from their output folders.

    python benchmarks/plot_accuracy.py rocling22=outputs/rocling22 conll03=outputs/conll03 \
        --out benchmarks/accuracy_curves.png

Draws, per run, the training loss and the validation entity F1 against the epoch (from the
Trainer's `trainer_state.json`), and prints a markdown table of the test entity F1 per type (from
`test_scores.json`). Nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _history(run_dir: Path) -> list[dict]:
    states = sorted(run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    path = run_dir / "trainer_state.json"
    if not path.exists() and states:
        path = states[-1]
    return json.loads(path.read_text())["log_history"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=OUTPUT_DIR")
    parser.add_argument("--out", default="benchmarks/accuracy_curves.png")
    args = parser.parse_args()
    runs = [(name, Path(folder)) for name, folder in (run.split("=", 1) for run in args.runs)]

    figure, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 6.5), squeeze=False)
    for column, (name, folder) in enumerate(runs):
        history = _history(folder)
        loss = [(e["epoch"], e["loss"]) for e in history if "loss" in e]
        f1 = [(e["epoch"], 100 * e["eval_f1"]) for e in history if "eval_f1" in e]
        axes[0][column].plot(*zip(*loss), "-", lw=1)
        axes[0][column].set_title(f"{name}: training loss")
        axes[0][column].set_yscale("log")
        axes[1][column].plot(*zip(*f1), "o-", markersize=4)
        axes[1][column].set_title(f"{name}: validation entity F1")
        for ax in (axes[0][column], axes[1][column]):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        test = folder / "test_scores.json"
        if test.exists():
            scores = json.loads(test.read_text())["entity"]
            axes[1][column].axhline(100 * scores["f1"], color="tab:red", ls="--", lw=1, label=f"test {100 * scores['f1']:.1f}")
            axes[1][column].legend(loc="lower right")
            print(f"\n{name}: test entity F1 per type (seqeval default mode)\n")
            print("| type | support | P | R | F1 |\n|---|---:|---:|---:|---:|")
            for entity_type, row in sorted(scores["per_type"].items()):
                print(f"| {entity_type} | {row['support']} | {100 * row['precision']:.1f} | {100 * row['recall']:.1f} "
                      f"| {100 * row['f1']:.1f} |")
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"\ncurves: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
