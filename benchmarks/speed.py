"""Speed benchmark (issue 4): tokens/s and peak memory, this package against BERT and transformers' Mamba.

    python benchmarks/speed.py --quick                       # smoke test, a few minutes: lengths 128, 512
    python benchmarks/speed.py                               # the full table of ../shared/BENCHMARKS.md
    python benchmarks/speed.py --lengths 128 2048 --models bi bert --steps 3

Models (hidden 256, 4 layers, vocabulary 8000, 21 BIO labels = "O" + B-/I- x 10 types):
    bi        MambaCrfForTokenClassification, bidirectional (state 16, expand 2), CRF loss / Viterbi
    uni       the same, unidirectional
    bert      BertForTokenClassification (4 heads, intermediate 1024), cross-entropy / argmax
    hf-mamba  transformers' MambaModel (same size) + a linear head on its CPU path (use_cache=False),
              cross-entropy / argmax

Modes: `train` = model.train(); zero_grad; loss = model(ids, mask, labels).loss; loss.backward()
(no optimizer step for any model); `infer` = model.eval(); no_grad forward + decode (Viterbi for this
package, argmax for the others). Throughput runs keep tokens per batch constant (batch = tokens //
length, at least 1); the scaling ratio time(8192) / time(512) uses a constant batch size.

Processes: every job runs in a fresh process forked from a server that has imported torch and transformers
once (multiprocessing "forkserver"), so no run inherits another's allocations, threads or caches.
Memory, and the one-minute rule: each (model, mode, length, batch) first runs alone in its own process:
build the model and inputs, take the resident set size (RSS) as baseline, reset the peak RSS (Linux
`clear_refs`), run --memory-steps steps, report the peak RSS minus the baseline. The parent kills it when
a step of a model in --limit-models (default: hf-mamba) takes longer than --max-step-seconds (the run
is then reported as skipped), and does not start such runs whose step it estimates, from the shorter
lengths, to take longer.
Timing: then one process per (length, mode) builds every model that passed, runs the warm-up steps (not
timed) and times the models' steps round-robin (A B C A B C ...), so a change in the machine's load hits
all the models of a ratio alike; the median step time is reported. The process at the longest length
also times the constant-batch runs of the scaling ratio, so both ends of it are timed side by side.

Absolute numbers on a shared machine are noise: read the ratios, and check the load printed at the
start and end.
"""
import argparse
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time

MODELS = ("bi", "uni", "bert", "hf-mamba")
MODES = ("train", "infer")
MODEL_NAMES = {
    "bi": "mamba-ner bidirectional (CRF)",
    "uni": "mamba-ner unidirectional (CRF)",
    "bert": "BERT (cross-entropy / argmax)",
    "hf-mamba": "transformers Mamba, CPU path (cross-entropy / argmax)",
}
HIDDEN, LAYERS, VOCAB, NUM_TYPES = 256, 4, 8000, 10
LABELS = ["O"] + [f"{p}-T{t}" for t in range(NUM_TYPES) for p in ("B", "I")]  # 21 labels, B-Tt = 1 + 2t
GOAL_TRAIN_128, GOAL_TRAIN_2048, GOAL_INFER_128 = 1.0, 4.0, 1.5
CODE_FILES = ("src/mamba_ner/scan.py", "src/mamba_ner/scan_cpu_kernel.py", "src/mamba_ner/modeling_mamba_crf.py",
              "src/mamba_ner/crf.py", "src/mamba_ner/crf_cpu_kernel.py")  # the code this benchmark times
GOAL_SCALING, GOAL_UNI_OVER_BI, MEMORY_TOLERANCE = 18.0, 1.8, 1.25


# ------------------------------------------------------------------------------------------------
# Worker: one (model, mode, length, batch) in this process
# ------------------------------------------------------------------------------------------------
def build_model(name, max_length, hidden=HIDDEN, layers=LAYERS):
    """One model of MODELS at the protocol's size (or `hidden` x `layers`; BERT gets hidden // 64 heads) and its decode."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    if name in ("bi", "uni"):
        from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification

        config = MambaCrfConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, state_size=16,
                                expand=2, bidirectional=name == "bi", tagging_scheme="BIO",
                                id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
        model = MambaCrfForTokenClassification(config)
        return model, lambda out: out.predictions
    if name == "bert":
        from transformers import BertConfig, BertForTokenClassification

        config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                            intermediate_size=4 * hidden, max_position_embeddings=max(512, max_length),
                            num_labels=len(LABELS))
        return BertForTokenClassification(config), lambda out: out.logits.argmax(-1)
    if name == "hf-mamba":
        from transformers import MambaConfig, MambaModel
        from transformers.modeling_outputs import TokenClassifierOutput

        class HfMambaTagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = MambaModel(MambaConfig(vocab_size=VOCAB, hidden_size=hidden, state_size=16,
                                                       num_hidden_layers=layers, expand=2, use_cache=False))
                self.classifier = nn.Linear(hidden, len(LABELS))

            def forward(self, input_ids, attention_mask=None, labels=None):
                hidden = self.backbone(input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
                logits = self.classifier(hidden)  # (b, l, k)
                loss = None if labels is None else F.cross_entropy(logits.flatten(0, 1), labels.flatten())
                return TokenClassifierOutput(loss=loss, logits=logits)

        return HfMambaTagger(), lambda out: out.logits.argmax(-1)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def make_batch(batch, length, seed=0):
    """Random token ids, a full attention mask and valid BIO labels (entities of 1-5 tokens, ~40% of tokens)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, VOCAB, (batch, length), generator=g)
    starts = torch.rand(batch, length, generator=g) < 0.15
    types = torch.randint(0, NUM_TYPES, (batch, length), generator=g)
    keep = torch.rand(batch, length, generator=g) < 0.6
    labels = torch.zeros(batch, length, dtype=torch.long)
    current = torch.full((batch,), -1)  # entity type being continued, -1 = outside
    for i in range(length):
        current = torch.where(starts[:, i], types[:, i], torch.where(keep[:, i], current, -1))
        labels[:, i] = torch.where(current < 0, 0, torch.where(starts[:, i], 1 + 2 * current, 2 + 2 * current))
    return input_ids, torch.ones(batch, length, dtype=torch.long), labels


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _record_scan_paths(seen):
    """Wrap the scan implementations so the paths that actually run are recorded (one Python call each)."""
    from mamba_ner import scan

    for attr, label in (("selective_scan_ref", "ref"), ("selective_scan_torch", "torch"),
                        ("selective_scan_cpp", "cpp"), ("_mamba_ssm_scan", "cuda")):
        fn = getattr(scan, attr, None)
        if fn is None:
            continue

        def wrapped(*args, _fn=fn, _label=label, **kwargs):
            seen.add(_label)
            return _fn(*args, **kwargs)

        setattr(scan, attr, wrapped)


def run_worker(spec, notify):
    """Run a worker spec: "time" (several entries, steps interleaved) or "memory" (one entry).

    `notify(message)` tells the parent that the model is built and the timed part starts.
    """
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # hf-mamba's "falling back to the reference PyTorch implementation", per run
    torch.set_num_threads(spec["threads"])
    if spec.get("allocator") == "keep":  # every model of the run alike
        from mamba_ner.runtime import keep_freed_memory

        if not keep_freed_memory():
            raise RuntimeError("--allocator keep: glibc's mallopt is not available or refused the values")
    return time_entries(spec) if spec["kind"] == "time" else measure_memory(spec, notify)


def make_step(model_name, mode, length, batch, inputs_cache=None):
    """Build one model and its inputs; return a no-argument function running one training or inference step."""
    import torch

    torch.manual_seed(0)
    model, decode = build_model(model_name, length)
    if model_name in ("bi", "uni"):
        from mamba_ner.scan import cpu_kernel_available

        cpu_kernel_available()  # load (or compile) the C++ scan now, not inside the first step
    key = (length, batch)
    inputs = inputs_cache.get(key) if inputs_cache is not None else None
    if inputs is None:
        inputs = make_batch(batch, length)
        if inputs_cache is not None:
            inputs_cache[key] = inputs
    input_ids, attention_mask, labels = inputs
    train = mode == "train"
    model.train(train)

    def step():
        if train:
            model.zero_grad(set_to_none=True)
            model(input_ids, attention_mask, labels=labels).loss.backward()
        else:
            with torch.no_grad():
                decode(model(input_ids, attention_mask))

    return model, step


def _timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def time_entries(spec):
    """Warm up every entry, then time their steps round-robin (A B C A B C ...) so load changes hit all alike.

    An entry stops after `steps` timed steps or once `budget_seconds` of timed steps are spent (at least one).
    """
    scan_paths = set()
    _record_scan_paths(scan_paths)
    inputs_cache, steps, out = {}, {}, {}
    for model_name, length, batch in spec["entries"]:
        name = f"{model_name}|{length}|{batch}"
        model, steps[name] = make_step(model_name, spec["mode"], length, batch, inputs_cache)
        scan_paths.clear()
        warmup = [_timed(steps[name]) for _ in range(spec["warmup"])]
        out[name] = {"times": [], "warmup_s": warmup, "params": sum(p.numel() for p in model.parameters()),
                     "attn": getattr(getattr(model, "config", None), "_attn_implementation", None),
                     "scan_paths": sorted(scan_paths)}
    active = list(steps)
    while active:
        for name in list(active):
            times = out[name]["times"]
            times.append(_timed(steps[name]))
            if len(times) >= spec["steps"] or sum(times) >= spec["budget_seconds"]:
                active.remove(name)
    return out


def measure_memory(spec, notify):
    """Peak RSS above the RSS after building the model and inputs, over `memory_steps` steps of one entry.

    Also the parent's probe of the step time: it kills this process when the steps exceed the step limit.
    """
    import gc

    model, step = make_step(spec["model"], spec["mode"], spec["length"], spec["batch"])
    gc.collect()
    baseline = _rss_kib("VmRSS")
    exact = _reset_peak_rss()
    notify("ready")
    first = [_timed(step) for _ in range(spec["memory_steps"])]
    peak = _rss_kib("VmHWM") if exact else _maxrss_kib()
    return {"peak_mib": (peak - baseline) / 1024, "baseline_mib": baseline / 1024, "exact": exact,
            "first_steps_s": first}


def _maxrss_kib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------------------------------------
# Parent: plan the jobs, run them in subprocesses, print the tables
# ------------------------------------------------------------------------------------------------
_PRELOAD = ["__main__", "torch", "transformers", "mamba_ner", "transformers.models.bert.modeling_bert",
            "transformers.models.mamba.modeling_mamba"]


def _mp_context():
    """A forkserver that imports torch and transformers once: every job still gets a fresh process, cheaply."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _child(conn, spec):
    try:
        conn.send({"result": run_worker(spec, lambda message: conn.send({"notice": message}))})
    except BaseException as err:  # reported to the parent, which prints it and goes on
        conn.send({"error": f"{type(err).__name__}: {err}"})
    finally:
        conn.close()


def run_subprocess(spec, timeout, step_limit=None):
    """Run `run_worker(spec)` in a fresh process; returns (result, None) or (None, why there is none).

    With `step_limit`, the process is killed when its result has not come `step_limit` seconds after its
    "ready" notice (the model is built; the steps start).
    """
    ctx = _mp_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, spec))
    proc.start()
    sender.close()
    deadline, out, ready = time.monotonic() + timeout, None, False
    try:
        while out is None:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.join()
                if ready:
                    return None, f"one step took more than {step_limit} s (process killed)"
                return None, f"worker exceeded {timeout:.0f} s, killed"
            message = receiver.recv()
            if "notice" in message:
                ready = True
                if step_limit:
                    deadline = time.monotonic() + step_limit * spec.get("memory_steps", 1)
            else:
                out = message
    except EOFError:
        pass
    proc.join()
    if out is None:
        return None, f"worker died (exit code {proc.exitcode}; out of memory?)"
    if "error" in out:
        return None, f"worker failed: {out['error']}"
    return out["result"], None


def estimate_step_seconds(results, model, mode, length, batch):
    """Step time predicted from the runs of the same model and mode at shorter lengths.

    Per-token time is extrapolated as tau(L) = tau(L_prev) * (L / L_prev)^p, with p fitted on the last two
    measured lengths (clipped to [0, 2]), or p = 1 (per-token cost growing with length) from one point.
    A run stopped for slowness counts as a point with its time limit as a lower bound.
    """
    points = []  # (length, seconds per token, measured?)
    for (m, md, l, b), r in results.items():
        if m == model and md == mode and l < length:
            if "times" in r:
                points.append((l, statistics.median(r["times"]) / (l * b), True))
            elif "lower_bound_s" in r:
                points.append((l, r["lower_bound_s"] / (l * b), False))
    if not points:
        return None
    points.sort()
    l1, tau1, _ = points[-1]
    p = 1.0
    if len(points) >= 2 and points[-1][2] and points[-2][2]:
        l0, tau0, _ = points[-2]
        p = min(2.0, max(0.0, math.log(tau1 / tau0) / math.log(l1 / l0)))
    return tau1 * (length / l1) ** p * length * batch


def scaling_lengths(lengths):
    return (512, 8192) if {512, 8192} <= set(lengths) else (min(lengths), max(lengths))


def plan(args):
    """Ordered (mode, entries) time jobs; entries are (model, length, batch), timed side by side.

    One job per length and mode with the constant-tokens batch; the job at the longest length also holds the
    constant-batch runs of the scaling ratio, so both ends of that ratio are timed in the same process.
    """
    short, long_ = scaling_lengths(args.lengths)
    jobs = []
    for length in args.lengths:
        for mode in MODES:
            entries = [(m, length, max(1, args.tokens_per_batch // length)) for m in args.models]
            if length == long_:
                for scaled in (long_, short):
                    entries += [(m, scaled, args.scaling_batch) for m in args.models
                                if (m, scaled, args.scaling_batch) not in entries]
            jobs.append((mode, entries))
    return jobs


def run_all(args, jobs):
    """Per time job: probe every entry in its own process (peak memory, and a step-time limit), then time the
    entries that passed side by side in one process."""
    results = {}  # (model, mode, length, batch) -> {"times": [...], "peak_mib": ...} or {"skipped": why}
    for mode, entries in jobs:
        todo = []
        for model, length, batch in entries:
            key = (model, mode, length, batch)
            limited = model in args.limit_models
            estimate = estimate_step_seconds(results, model, mode, length, batch) if limited else None
            if estimate is not None and estimate > args.max_step_seconds:
                results[key] = {"skipped": f"one step estimated at {estimate:,.0f} s from shorter lengths (> "
                                           f"{args.max_step_seconds} s), not run"}
            else:
                spec = dict(kind="memory", model=model, mode=mode, length=length, batch=batch, threads=args.threads, allocator=args.allocator,
                            memory_steps=args.memory_steps)
                memory, why = run_subprocess(spec, timeout=1800,
                                             step_limit=args.max_step_seconds if limited else None)
                if memory is None:
                    results[key] = {"skipped": why}
                    if why.startswith("one step took more than"):
                        results[key]["lower_bound_s"] = args.max_step_seconds
                else:
                    results[key] = memory
                    todo.append((model, length, batch))
            if "skipped" in results[key]:
                print(f"  {key}: {results[key]['skipped']}", file=sys.stderr, flush=True)
        if not todo:
            continue
        spec = dict(kind="time", mode=mode, entries=todo, steps=args.steps, warmup=args.warmup, threads=args.threads, allocator=args.allocator,
                    budget_seconds=args.budget_seconds)
        timeout = 600 + sum(args.max_step_seconds * (args.warmup + 1) + 2 * args.budget_seconds for _ in todo)
        out, why = run_subprocess(spec, timeout)
        for model, length, batch in todo:
            key = (model, mode, length, batch)
            if out is None:
                results[key] = {"skipped": why}
            else:
                results[key].update(out[f"{model}|{length}|{batch}"])
            r = results[key]
            status = (f"{statistics.median(r['times']):.3f} s/step (n={len(r['times'])}), "
                      f"peak +{r['peak_mib']:.0f} MiB, scan {r['scan_paths'] or '-'}"
                      if "times" in r else r["skipped"])
            print(f"  {key}: {status}", file=sys.stderr, flush=True)
    return results


def tokens_per_second(results, key, statistic=statistics.median):
    r = results.get(key, {})
    return key[2] * key[3] / statistic(r["times"]) if "times" in r else None


def fmt(x, spec=",.0f", missing="-"):
    return missing if x is None else format(x, spec)


def print_tables(args, results):
    lengths, models = args.lengths, args.models
    batches = {l: max(1, args.tokens_per_batch // l) for l in lengths}
    head = "| model | " + " | ".join(f"L={l} (b={batches[l]})" for l in lengths) + " |"
    rule = "|---|" + "---:|" * len(lengths)
    notes = {}

    def cell(key, value):
        r = results.get(key)
        if r is None or "times" not in r:
            if r is not None:
                notes.setdefault(r["skipped"], []).append(f"{key[0]} {key[1]} L={key[2]} b={key[3]}")
            return "skipped"
        return value

    for mode, title in (("train", "Training throughput, tokens/s (forward + backward + loss)"),
                        ("infer", "Inference throughput, tokens/s (no_grad forward + Viterbi / argmax)")):
        print(f"\n### {title}\n\n{head}\n{rule}")
        for m in models:
            cells = [cell((m, mode, l, batches[l]), fmt(tokens_per_second(results, (m, mode, l, batches[l]))))
                     for l in lengths]
            print(f"| {m} | " + " | ".join(cells) + " |")

    print(f"\n### Peak memory, MiB above the RSS after building the model and inputs (train / infer)\n\n{head}\n{rule}")
    for m in models:
        cells = []
        for l in lengths:
            pair = [results.get((m, mode, l, batches[l]), {}).get("peak_mib") for mode in MODES]
            cells.append(" / ".join(fmt(v) for v in pair))
        print(f"| {m} | " + " | ".join(cells) + " |")

    print(f"\n### Ratios of tokens/s (timed side by side): of the median steps (in brackets: of the fastest "
          f"steps, less sensitive to other processes)\n\n| ratio | mode | " + " | ".join(f"L={l}" for l in lengths)
          + " |\n|---|---|" + "---:|" * len(lengths))
    ratios = {}
    for num, den in (("bi", "bert"), ("uni", "bi"), ("bi", "hf-mamba")):
        if num not in models or den not in models:
            continue
        for mode in MODES:
            row = []
            for l in lengths:
                a = tokens_per_second(results, (num, mode, l, batches[l]))
                b = tokens_per_second(results, (den, mode, l, batches[l]))
                ratios[(num, den, mode, l)] = a / b if a and b else None
                best_a = tokens_per_second(results, (num, mode, l, batches[l]), min)
                best_b = tokens_per_second(results, (den, mode, l, batches[l]), min)
                row.append(fmt(ratios[(num, den, mode, l)], ".2f") + (f"x ({best_a / best_b:.2f}x)" if a and b else ""))
            print(f"| {num} / {den} | {mode} | " + " | ".join(row) + " |")

    short, long_ = scaling_lengths(lengths)
    b = args.scaling_batch
    print(f"\n### Scaling at constant batch size {b}: time(L={long_}) / time(L={short}) "
          f"(linear = {long_ / short:.0f}); peak memory ratio\n\n"
          "| model | mode | s/step short | s/step long | time ratio | MiB short | MiB long | memory ratio |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|")
    scaling = {}
    for m in models:
        for mode in MODES:
            rs, rl = results.get((m, mode, short, b), {}), results.get((m, mode, long_, b), {})
            ts = statistics.median(rs["times"]) if "times" in rs else None
            tl = statistics.median(rl["times"]) if "times" in rl else None
            ms, ml = rs.get("peak_mib"), rl.get("peak_mib")
            scaling[(m, mode)] = (tl / ts if ts and tl else None, ml / ms if ms and ml and ms > 0 else None)
            print(f"| {m} | {mode} | {fmt(ts, '.3f')} | {fmt(tl, '.3f')} | {fmt(scaling[(m, mode)][0], '.1f')} | "
                  f"{fmt(ms)} | {fmt(ml)} | {fmt(scaling[(m, mode)][1], '.1f')} |")
            for key, r in (((m, mode, short, b), rs), ((m, mode, long_, b), rl)):
                if "skipped" in r:
                    notes.setdefault(r["skipped"], []).append(f"{m} {mode} L={key[2]} b={key[3]}")

    if notes:
        print("\nNot measured:")
        for why, keys in notes.items():
            print(f"- {', '.join(sorted(set(keys)))}: {why}")
    print_goals(args, ratios, scaling, short, long_)


def print_goals(args, ratios, scaling, short, long_):
    print("\n### Goals\n")

    def line(text, value, ok_fn, spec=".2f", suffix="x"):
        verdict = "not measured" if value is None else ("met" if ok_fn(value) else "NOT met")
        print(f"- {text}: {fmt(value, spec)}{suffix if value is not None else ''} -> {verdict}")

    line(f"training, bi / BERT at L=128 >= {GOAL_TRAIN_128}x", ratios.get(("bi", "bert", "train", 128)),
         lambda v: v >= GOAL_TRAIN_128)
    line(f"training, bi / BERT at L=2048 >= {GOAL_TRAIN_2048}x", ratios.get(("bi", "bert", "train", 2048)),
         lambda v: v >= GOAL_TRAIN_2048)
    line(f"inference, bi / BERT at L=128 >= {GOAL_INFER_128}x", ratios.get(("bi", "bert", "infer", 128)),
         lambda v: v >= GOAL_INFER_128)
    limit = GOAL_SCALING * (long_ / short) / 16
    memory_limit = MEMORY_TOLERANCE * long_ / short
    for m in ("bi", "uni"):
        for mode in MODES:
            if (m, mode) in scaling:
                line(f"scaling, {m} {mode}: time({long_}) / time({short}) at batch {args.scaling_batch} <= {limit:.0f}",
                     scaling[(m, mode)][0], lambda v: v <= limit, ".1f", "")
                line(f"memory linear, {m} {mode}: peak({long_}) / peak({short}) at batch {args.scaling_batch} "
                     f"<= {memory_limit:.0f} ({long_ // short} x {MEMORY_TOLERANCE})",
                     scaling[(m, mode)][1], lambda v: v <= memory_limit, ".1f", "")
    for mode in MODES:
        values = [(ratios[k], k[3]) for k in ratios if k[:3] == ("uni", "bi", mode) and ratios[k] is not None]
        worst = min(values) if values else None
        line(f"{mode}, uni / bi >= {GOAL_UNI_OVER_BI}x at every length (worst shown"
             + (f", at L={worst[1]})" if worst else ")"), worst[0] if worst else None, lambda v: v >= GOAL_UNI_OVER_BI)


def git_describe(paths):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        log = subprocess.run(["git", "log", "-1", "--format=%h %cI %s", "--", *paths], cwd=root,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return log + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown (git not available)"


def print_header(args):
    import torch
    import transformers

    from mamba_ner.runtime import cpu_name
    from mamba_ner.scan import SCAN_ENV_VAR, cpu_kernel_available

    cpu = cpu_name()
    print(f"# Speed benchmark\n\n- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    print(f"- machine: {cpu}, {os.cpu_count()} logical CPUs; torch threads per run: {args.threads}"
          + (" (torch.set_num_threads(os.cpu_count()), as the protocol asks)" if args.threads == os.cpu_count()
             else " (not the core count: the protocol asks for the core count)"))
    print(f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    requested = os.environ.get(SCAN_ENV_VAR, "auto")
    from mamba_ner.scan_cpu_kernel import load_cpu_kernel

    simd = f" ({load_cpu_kernel().simd()} vector code)" if cpu_kernel_available() else ""
    print(f"- scan: {SCAN_ENV_VAR}={requested}; C++ kernel compiled: {cpu_kernel_available()}{simd}; "
          f"path(s) that ran are listed per run on stderr and below; scan, model and CRF code at "
          f"{args.scan_at_start}")
    print(f"- tokens per batch {args.tokens_per_batch} (batch = tokens // length, >= 1); scaling batch "
          f"{args.scaling_batch}; warm-up {args.warmup}; median of up to {args.steps} timed steps "
          f"(fewer once {args.budget_seconds} s are spent), models interleaved step by step; "
          f"max step {args.max_step_seconds} s for {', '.join(args.limit_models) or 'no model'}; peak memory from {args.memory_steps} step(s) in a fresh process")
    print(f"- allocator: {args.allocator}" + (" (glibc keeps freed blocks in every worker, all models alike)"
                                               if args.allocator == "keep" else " (glibc as it is)"))
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--tokens-per-batch", type=int, default=8192)
    parser.add_argument("--scaling-batch", type=int, default=1, help="constant batch size of the scaling ratio")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per run")
    parser.add_argument("--budget-seconds", type=float, default=20.0,
                        help="stop timing a run after this many seconds of timed steps (at least one step)")
    parser.add_argument("--max-step-seconds", type=int, default=60,
                        help="skip a run whose step exceeds (or is estimated to exceed) this")
    parser.add_argument("--limit-models", nargs="*", choices=MODELS, default=["hf-mamba"],
                        help="models to which --max-step-seconds applies (the others always run)")
    parser.add_argument("--memory-steps", type=int, default=1, help="steps of each peak-memory subprocess")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads per run (default: the core count, as the protocol asks)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--allocator", choices=("default", "keep"), default="default",
                        help="keep: every worker keeps freed blocks (mamba_ner.runtime.keep_freed_memory), "
                             "for all models alike; default: glibc as it is")
    parser.add_argument("--quick", action="store_true",
                        help="lengths 128 512, 2048 tokens per batch, 2 steps: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.tokens_per_batch, args.steps, args.budget_seconds = [128, 512], 2048, 2, 5.0
    args.lengths = sorted(set(args.lengths))
    return args


def main():
    args = parse_args()
    args.scan_at_start = git_describe(CODE_FILES)
    print_header(args)
    results = run_all(args, plan(args))
    print()
    for m in args.models:
        params = next((r["params"] for k, r in sorted(results.items()) if k[0] == m and "params" in r), None)
        print(f"- {m}: {MODEL_NAMES[m]}, {fmt(params and params / 1e6, '.2f')} M parameters"
              + (" (at L=128; its position table grows with the length)" if m == "bert" else ""))
    ours = {k: r["scan_paths"] for k, r in results.items() if k[0] in ("bi", "uni") and "scan_paths" in r}
    paths = sorted({p for v in ours.values() for p in v})
    attn = sorted({r["attn"] for k, r in results.items() if k[0] == "bert" and r.get("attn")})
    print(f"- scan path(s) that ran in this package's models: {', '.join(paths) or 'none recorded'}"
          + ("" if len(paths) <= 1 else " (per run: " + "; ".join(f"{k}: {'+'.join(v)}" for k, v in ours.items()) + ")")
          + f"; BERT attention: {', '.join(attn) or '-'}")
    scan_now = git_describe(CODE_FILES)
    if scan_now != args.scan_at_start:
        print(f"- note: the scan / model / CRF files changed during the run (now {scan_now}); every run used the "
              f"code imported at the start, by the forkserver")
    print_tables(args, results)
    print(f"\n- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
