#!/usr/bin/env python
"""Run a grid of training recipes, several side by side, within a deadline, and tabulate their scores.

Each job is a chain of runs (`examples/run_pretraining.py` and/or `examples/run_ner.py`): a config from
`examples/configs/` (or any JSON config) with overrides. `--parallel` chains run at once, each its own process
with `--threads` CPU threads: 1 on this 2-core machine (a queue of probes, one after the other), 8 on a lent
GPU machine (`benchmarks/gpu_sweep.sh`), where the small taggers of the protocols train far faster than on the
CPU they are reported on. At the deadline the runs still going are stopped; the validation F1 of each finished
epoch is read from the log, so a stopped run still says how far it got. Scores from a GPU come from other
kernels and other rounding: compare recipes with each other and with a run of the config as it stands in the
same sweep, and confirm a choice on the CPU before adopting it.

    python benchmarks/sweep.py GRID.json --out DIR [--parallel 1] [--threads 2] [--deadline 7200] [--data-dir DATA]

GRID.json: a list of chains, each a list of steps
    {"name": "r22_lr3", "config": "examples/configs/rocling22.json", "set": {"learning_rate": 0.003}}
with "script": "run_pretraining.py" for a pretraining step; "$OUT" in a string value of "set" is replaced by
the sweep's output folder (so a fine-tuning step can name the folder its chain's pretraining wrote).
Writes DIR/sweep.md (a table) and DIR/sweep.json (every number); each run's config, log and output folder are
under DIR/runs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_F1 = re.compile(r"'eval_f1': '?([0-9.]+)")


def _expand(value, out: str):
    return value.replace("$OUT", out) if isinstance(value, str) else value


def step_config(step: dict, out: Path, data_dir: str | None) -> Path:
    """Write the step's config (its base config, the overrides, its own output folder) and return its path."""
    config = json.loads((ROOT / step["config"]).read_text(encoding="utf-8"))
    config.update({k: _expand(v, str(out)) for k, v in step.get("set", {}).items()})
    config["output_dir"] = str(out / "runs" / step["name"])
    if data_dir and "data_dir" in config:
        config["data_dir"] = data_dir
    path = out / "runs" / f"{step['name']}.json"
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def read_result(step: dict, out: Path) -> dict:
    """What a step's log and summary say: validation F1 by epoch, the final scores, its time."""
    log_path = out / "runs" / f"{step['name']}.log"
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    result = {"name": step["name"], "set": step.get("set", {}), "config": step["config"],
              "curve": [round(100 * float(x), 2) for x in EVAL_F1.findall(log)]}
    summary = out / "runs" / step["name"] / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text(encoding="utf-8"))
        for split in ("validation", "test"):
            if isinstance(s.get(split), dict) and "f1" in s[split]:
                result[f"{split}_f1"] = round(100 * s[split]["f1"], 2)
        train = s.get("train", {})
        result["train_seconds"] = train.get("train_runtime")
        result["real_tokens_per_second"] = train.get("train_real_tokens_per_second")
    accuracy = re.findall(r"'eval_masked_accuracy': '?([0-9.]+)", log)  # masked-token accuracy of a pretraining step
    if accuracy:
        result["masked_accuracy"] = round(100 * float(accuracy[-1]), 2)
    return result


def run_chains(chains: list, out: Path, data_dir: str | None, parallel: int, threads: int, deadline: float,
               python: str) -> dict:
    """Run the chains, `parallel` at a time, until done or the deadline; return {step name: status}."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    pending = [list(chain) for chain in chains]
    running: list[tuple[subprocess.Popen, dict, list, float]] = []
    status: dict[str, str] = {}
    start = time.time()

    def launch(chain):
        step = chain.pop(0)
        cfg = step_config(step, out, data_dir)
        log = open(out / "runs" / f"{step['name']}.log", "w", encoding="utf-8")
        script = ROOT / "examples" / step.get("script", "run_ner.py")
        # a datasets cache of its own: runs side by side must not wait on each other's cache locks
        step_env = dict(env, HF_DATASETS_CACHE=str(out / "cache" / step["name"]))
        proc = subprocess.Popen([python, str(script), str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=step_env,
                                cwd=ROOT, start_new_session=True)
        print(f"[sweep {time.time() - start:5.0f} s] start {step['name']}", flush=True)
        running.append((proc, step, chain, time.time()))

    while pending or running:
        while pending and len(running) < parallel:
            launch(pending.pop(0))
        time.sleep(2)
        for item in list(running):
            proc, step, chain, began = item
            if proc.poll() is None:
                continue
            running.remove(item)
            ok = proc.returncode == 0
            status[step["name"]] = f"exit {proc.returncode} after {time.time() - began:.0f} s"
            print(f"[sweep {time.time() - start:5.0f} s] {step['name']}: {status[step['name']]}", flush=True)
            if not ok:
                status.update({rest["name"]: f"not run: {step['name']} failed" for rest in chain})
            elif chain:
                pending.insert(0, chain)  # the chain's next step goes first, in the slot just freed
        if time.time() - start > deadline and running:
            for proc, step, chain, began in running:
                os.killpg(proc.pid, signal.SIGTERM)
                status[step["name"]] = f"stopped at the deadline after {time.time() - began:.0f} s"
                for rest in chain:
                    status[rest["name"]] = "not run: deadline"
            for proc, *_ in running:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            for chain in pending:
                for rest in chain:
                    status[rest["name"]] = "not run: deadline"
            break
    return status


def table(results: list[dict]) -> str:
    lines = ["| run | changes | validation F1 by epoch | validation | test | train s | real tokens/s | status |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        changes = ", ".join(f"{k}={v}" for k, v in r["set"].items()) or "(config)"
        curve = ", ".join(f"{x:.1f}" for x in r["curve"]) or ("masked acc %.1f" % r["masked_accuracy"]
                                                              if "masked_accuracy" in r else "")
        lines.append(f"| {r['name']} | {changes} | {curve} | {r.get('validation_f1', '')} | {r.get('test_f1', '')} "
                     f"| {r.get('train_seconds') or ''} | {r.get('real_tokens_per_second') or ''} | {r['status']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", help="JSON list of chains (lists of steps)")
    parser.add_argument("--out", default="outputs/sweep")
    parser.add_argument("--data-dir", default=None, help="replaces the configs' data_dir")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each run")
    parser.add_argument("--deadline", type=float, default=480, help="seconds; runs still going are stopped")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    chains = json.loads(Path(args.grid).read_text(encoding="utf-8"))
    names = [step["name"] for chain in chains for step in chain]
    if len(set(names)) != len(names):
        raise SystemExit(f"{args.grid}: step names must be distinct")
    status = run_chains(chains, out, args.data_dir, args.parallel, args.threads, args.deadline, args.python)
    results = []
    for chain in chains:
        for step in chain:
            result = read_result(step, out)
            result["status"] = status.get(step["name"], "not run")
            results.append(result)
    (out / "sweep.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = table(results)
    (out / "sweep.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
