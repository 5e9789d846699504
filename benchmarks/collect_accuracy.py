"""Write one protocol run's scores into benchmarks/accuracy.json, from the run's own files.

    python benchmarks/collect_accuracy.py healthner [--config examples/configs/healthner.json]
        [--output-dir outputs/healthner] [--wall-seconds 1234] [--name healthner]

Reads `OUTPUT_DIR/summary.json` (written by `run_ner.py` at the end of a run) and the config it ran
with; never takes a number from the command line except the wall time measured by the caller
(`run_protocols.sh`). Existing entries of other protocols are kept; this protocol's is replaced.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("--config", help="the run's JSON config (default examples/configs/PROTOCOL.json)")
    parser.add_argument("--output-dir", help="the run's output_dir (default: the config's)")
    parser.add_argument("--wall-seconds", type=float, help="wall time of the whole command, measured by the caller")
    parser.add_argument("--name", help="entry name in accuracy.json (default: the protocol)")
    parser.add_argument("--accuracy-file", default=str(ROOT / "benchmarks" / "accuracy.json"))
    args = parser.parse_args()

    config_path = Path(args.config or ROOT / "examples" / "configs" / f"{args.protocol}.json")
    config = json.loads(config_path.read_text())
    output_dir = Path(args.output_dir or config["output_dir"])
    if not output_dir.is_absolute():
        output_dir = ROOT / output_dir
    summary = json.loads((output_dir / "summary.json").read_text())
    test, validation, train = summary["test"], summary["validation"], summary.get("train", {})
    machine = train.get("machine")  # recorded by the run itself (runs since session 15)
    if machine is None:  # earlier runs: this machine, said so
        from mamba_ner.training import machine_description

        machine = f"{machine_description()} (at collection; the run did not record its machine)"
    commit = train.get("code_version")  # recorded by the run itself
    if commit is None:  # runs from before summaries carried it: the checkout now, said so
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        commit = f"{head} (at collection; the run did not record its code version)"
    entry = {
        "protocol": args.protocol,
        "test_entity_f1": round(100 * test["f1"], 2),
        "test_precision": round(100 * test["precision"], 2),
        "test_recall": round(100 * test["recall"], 2),
        "test_strict_f1": round(100 * test["strict_f1"], 2),
        "test_token_micro_f1": round(100 * test["token_micro_f1"], 2),
        "test_token_macro_f1": round(100 * test["token_macro_f1"], 2),
        "validation_entity_f1": round(100 * validation["f1"], 2),
        "train_seconds": round(train.get("train_runtime", float("nan")), 1),
        "wall_seconds": args.wall_seconds,
        "train_real_tokens_per_second": train.get("train_real_tokens_per_second"),
        "train_padding_share": train.get("train_padding_share"),
        "threads": train.get("threads"),
        "epochs": train.get("epochs_run", train.get("epoch")),
        "config": str(config_path.relative_to(ROOT)) if config_path.is_relative_to(ROOT) else str(config_path),
        "commit": commit,
        "machine": machine,
    }
    if "one_pass_f1" in test:  # `--eval_window`: the scores above come from rows tagged in windows
        entry.update(eval_window=test["eval_window"], test_one_pass_entity_f1=round(100 * test["one_pass_f1"], 2),
                     validation_one_pass_entity_f1=round(100 * validation["one_pass_f1"], 2))
    accuracy_path = Path(args.accuracy_file)
    entries = json.loads(accuracy_path.read_text()) if accuracy_path.exists() else {}
    entries[args.name or args.protocol] = entry
    accuracy_path.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
