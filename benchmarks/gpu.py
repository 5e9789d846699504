"""GPU check (issue 11): correctness against the CPU reference, the CRF alone, then model speed against BERT.

    python benchmarks/gpu.py                         # all sections, sized for < 10 minutes on one H100/H200
    python benchmarks/gpu.py --sections check crf    # correctness and the CRF alone only (~1 minute)
    python benchmarks/gpu.py --lengths 128 2048 --sizes small --json out.json

On a lent machine of this workplace, `bash benchmarks/gpu_check.sh` builds mamba-ssm / causal-conv1d,
runs the GPU tests and this script in one command (see there).

Sections:
  check  the Triton CRF kernels (16 rows x l = 2048, mixed lengths, k = 21 BIO; fp32 and bf16 emissions)
         against the float64 Python recursion on the CPU: log Z, every gradient, marginals; Viterbi paths
         against the float32 recursion (same rounding, so equal); the CRF module on CUDA tensors (auto
         path) against the CPU module; a small bidirectional Mamba-CRF in fp32 on the GPU against float64
         on the CPU (logits, loss, every parameter's gradient, predictions); bf16 autocast runs and agrees.
  crf    the CRF alone (LinearChainCRF, k = 21 BIO): loss forward+backward and Viterbi, Triton against the
         Python recursion at l = 2048 x 16 rows (the issue's case), Triton at every length with the batch
         of the throughput runs (its share of a training step is printed at the end).
  profile  (not in the default) torch.profiler over a training step of the small bi model at l = 2048 x 16
         rows, fp32 and bf16 autocast: the kernels that take the time, and how much of the step the GPU is busy.
  speed  training (zero_grad, loss, backward; no optimizer step) and inference (no_grad forward + Viterbi
         / argmax) tokens/s and peak memory of bi / uni / BERT, sizes small (the CPU protocol's: hidden
         256, 4 layers) and base (hidden 768, 12 layers), fp32 and bf16 autocast, with ratios; and
         time(8192) / time(512) of bi at a constant batch.

Models and batches come from `speed.py` (the CPU protocol): vocabulary 8000, 21 BIO labels, random ids
and labels, full attention masks. Tokens per batch: --tokens-per-batch (small) and
--base-tokens-per-batch (base). Each run builds its model on the GPU, runs --warmup steps, then times
--steps steps (torch.cuda.synchronize around each) and reports the median; peak memory is
torch.cuda.max_memory_allocated above what the model and inputs hold. Runs go in order of priority
(small, the scaling pair, then base) and stop once --budget-minutes are spent; the tables say which did
not run. Matmul precision is PyTorch's default (no TF32), for every model alike.
"""
import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speed  # noqa: E402  (the CPU protocol: models, batches, labels, formatting)

K = len(speed.LABELS)  # 21
SIZES = {"small": (speed.HIDDEN, speed.LAYERS), "base": (768, 12)}
MODELS = ("bi", "uni", "bert")
PRECISIONS = ("fp32", "bf16")
GOAL_CRF_LOSS_MS, GOAL_CRF_VITERBI_MS, GOAL_CRF_SHARE = 2.0, 1.0, 0.10  # the first two at l = 2048 x 16 rows
GOAL_RATIOS = {512: 1.0, 2048: 2.0, 8192: 5.0}  # bi / BERT, training and inference alike
GOAL_SCALING = 18.0  # time(8192) / time(512) at a constant batch
CRF_LENGTH, CRF_ROWS = 2048, 16  # the CRF case: the correctness check and the Triton-vs-Python timing


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def cuda_time(fn, steps, warmup=1):
    """Median seconds of `fn()` over `steps` calls after `warmup` calls, synchronising around each."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def max_diff(a, b):
    return (a.detach().double().cpu() - b.detach().double().cpu()).abs().max().item() if a.numel() else 0.0


class environ:
    """`with environ(MAMBA_NER_CRF="triton"): ...` sets environment variables for the block."""

    def __init__(self, **values):
        self.values, self.old = values, {}

    def __enter__(self):
        for name, value in self.values.items():
            self.old[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc):
        for name, value in self.old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# The CPU references run the Python recursions and the PyTorch scan: no C++ kernel to compile on the GPU machine.
CPU_REFERENCE = dict(MAMBA_NER_CRF="torch", MAMBA_NER_SCAN="torch")


def crf_problem(b, l, seed=0, mixed_lengths=True):
    """A BIO CRF over speed.LABELS with random scores; emissions (b, l, k); tags (b, l), -100 past each row's end."""
    import torch

    from mamba_ner.crf import LinearChainCRF

    gen = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(K, speed.LABELS, "BIO")
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)
    emissions = torch.randn(b, l, K, generator=gen) * 2
    lengths = torch.randint(l // 2, l + 1, (b,), generator=gen) if mixed_lengths else torch.full((b,), l)
    lengths[0] = l
    _, _, tags = speed.make_batch(b, l, seed)
    tags[torch.arange(l)[None, :] >= lengths[:, None]] = -100
    return crf, emissions, tags


def crf_module_outputs(crf, emissions, tags):
    """[NLL (sum), d emissions, d start, d end, d trans, marginals, Viterbi] of the CRF module, on the tensors' device."""
    crf = copy.deepcopy(crf).to(emissions.device)
    leaf = emissions.detach().clone().requires_grad_(True)
    nll = crf(leaf, tags, reduction="sum")
    nll.backward()
    mask = tags != -100
    return [nll.detach(), leaf.grad] + [p.grad for p in crf.parameters()] + [crf.marginals(emissions, mask),
                                                                                crf.decode(emissions, mask)]


# ------------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------------
def print_environment():
    import torch
    import transformers

    from mamba_ner import crf_triton, scan

    print("# GPU check\n")
    print(f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    props = torch.cuda.get_device_properties(0)
    print(f"- device: {props.name} (capability {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB); "
          f"{os.cpu_count()} CPUs")
    triton_version = __import__("triton").__version__ if crf_triton.AVAILABLE else "not importable"
    print(f"- versions: python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"transformers {transformers.__version__}, triton {triton_version}")
    scan_state = ("installed" if scan._mamba_ssm_scan is not None else
                  "NOT importable: the models run the pure-PyTorch scan, their timings are not representative")
    conv_state = "installed" if scan._cuda_causal_conv1d is not None else "not importable (PyTorch conv)"
    print(f"- mamba_ssm selective scan: {scan_state}; causal_conv1d: {conv_state}")
    print(f"- MAMBA_NER_CRF={os.environ.get('MAMBA_NER_CRF', 'auto')}, MAMBA_NER_SCAN="
          f"{os.environ.get('MAMBA_NER_SCAN', 'auto')}; float32 matmul precision {torch.get_float32_matmul_precision()}")
    print(f"- code: {speed.git_describe(speed.CODE_FILES + ('src/mamba_ner/crf_triton.py',))}", flush=True)


def check_crf(results):
    import torch

    from mamba_ner import crf as crf_module
    from mamba_ner import crf_triton

    print(f"\n## Correctness: CRF kernels ({CRF_ROWS} rows x l = {CRF_LENGTH}, mixed lengths, k = 21 BIO), max abs "
          "differences\n")
    print("| emissions | log Z | d emissions | d start | d end | d trans | marginals | Viterbi rows equal |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    crf, emissions, tags = crf_problem(CRF_ROWS, CRF_LENGTH, seed=1)
    mask = tags != -100
    lengths = mask.sum(1)
    packed = crf_module.pack_by_mask(mask, emissions)[2]  # the valid positions are a prefix already
    scores64 = [s.detach() for s in crf.constrained_scores(torch.float64)]
    scores32 = [s.detach() for s in crf.constrained_scores(torch.float32)]
    g = torch.randn(CRF_ROWS, generator=torch.Generator().manual_seed(2))
    for dtype in (torch.float32, torch.bfloat16):
        source = packed.to(dtype)
        e64 = source.double()
        log_z, alphas = crf_module._log_partition_forward_torch(e64, mask, *scores64)
        want = [log_z, *crf_module._log_partition_backward_torch(e64, mask, scores64[1], scores64[2], alphas, log_z,
                                                                  g.double())]
        want_marginals = crf_module._log_partition_backward_torch(e64, mask, scores64[1], scores64[2], alphas, log_z,
                                                                  torch.ones(CRF_ROWS, dtype=torch.float64))[0]
        want_path = crf_module._viterbi_torch(source.float(), mask, *scores32)
        cuda = [x.cuda() for x in (source, lengths, *scores32)]
        log_z, alphas = crf_triton.log_partition_fwd(*cuda)
        got = [log_z, *crf_triton.log_partition_bwd(cuda[0], cuda[1], cuda[3], cuda[4], alphas, g.cuda())]
        marginals = crf_triton.marginals(*cuda)
        path = crf_triton.viterbi(*cuda).cpu()
        row = {name: max_diff(a, b) for name, a, b in zip(("log_z", "d_emissions", "d_start", "d_end", "d_trans"),
                                                           got, want)}
        row["marginals"] = max_diff(marginals, want_marginals)
        row["viterbi_rows_equal"] = int((path == want_path).all(1).sum())
        name = str(dtype).replace("torch.", "")
        results.setdefault("check_crf_kernels", {})[name] = row
        print(f"| {name} | " + " | ".join(f"{row[c]:.1e}" for c in ("log_z", "d_emissions", "d_start", "d_end", "d_trans",
                                                                     "marginals")) + f" | {row['viterbi_rows_equal']} / {CRF_ROWS} |")
    print("\n(log Z in the thousands; d start / d end / d trans are sums over all rows' positions, weighted by a "
          "random d log Z per row)")

    # the module on CUDA tensors (auto: Triton) against the module on CPU tensors (the Python recursions)
    with environ(MAMBA_NER_CRF="auto"):
        got = crf_module_outputs(crf, emissions.cuda(), tags.cuda())
    with environ(**CPU_REFERENCE):
        want = crf_module_outputs(crf, emissions, tags)
    names = ("nll_sum", "d_emissions", "d_start", "d_end", "d_trans", "marginals")
    row = {name: max_diff(a, b) for name, a, b in zip(names, got, want)}
    row["viterbi_equal"] = bool(torch.equal(got[-1].cpu(), want[-1]))
    results["check_crf_module"] = row
    print("\nLinearChainCRF on CUDA tensors (MAMBA_NER_CRF=auto) vs on CPU tensors (float32 Python recursion): "
          + ", ".join(f"{k} {v:.1e}" for k, v in row.items() if k != "viterbi_equal")
          + f", Viterbi equal: {row['viterbi_equal']}")


def check_model(results):
    import torch

    from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification

    print("\n## Correctness: bidirectional Mamba-CRF (hidden 64, 2 layers), GPU fp32 vs CPU float64\n")
    config = MambaCrfConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, state_size=16, expand=2,
                            bidirectional=True, tagging_scheme="BIO", id2label=dict(enumerate(speed.LABELS)),
                            label2id={l: i for i, l in enumerate(speed.LABELS)})
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(config).eval()
    ids = torch.randint(1, 100, (4, 256))
    lengths = torch.tensor([256, 200, 64, 1])
    mask = (torch.arange(256)[None, :] < lengths[:, None]).long()
    _, _, labels = speed.make_batch(4, 256, seed=3)
    labels[mask == 0] = -100

    def run(m, device, autocast=False):
        m.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = m(ids.to(device), attention_mask=mask.to(device), labels=labels.to(device), return_predictions=True)
        out.loss.backward()
        grads = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
        return out, grads

    with environ(**CPU_REFERENCE):
        ref, ref_grads = run(copy.deepcopy(model).double(), "cpu")
    gpu_model = copy.deepcopy(model).cuda()
    out, grads = run(gpu_model, "cuda")
    valid = mask.bool()
    grad_rel = max(max_diff(grads[n], g) / max(g.abs().max().item(), 1e-12) for n, g in ref_grads.items())
    row = {"logits": max_diff(out.logits.cpu()[valid], ref.logits[valid]), "loss": max_diff(out.loss, ref.loss),
           "grad_max_rel": grad_rel, "missing_grads": sorted(set(ref_grads) - set(grads)),
           "predictions_equal": float((out.predictions.cpu() == ref.predictions)[valid].float().mean())}
    out16, grads16 = run(gpu_model, "cuda", autocast=True)
    row["bf16_loss"] = out16.loss.item()
    row["bf16_loss_fp32_loss"] = out.loss.item()
    row["bf16_grads_finite"] = all(bool(torch.isfinite(g).all()) for g in grads16.values())
    row["bf16_predictions_equal_fp32"] = float((out16.predictions == out.predictions)[valid.cuda()].float().mean())
    results["check_model"] = row
    print(f"- fp32 GPU vs float64 CPU: logits {row['logits']:.1e}, loss {row['loss']:.1e}, gradients "
          f"{row['grad_max_rel']:.1e} (max over parameters of max |diff| / max |grad|), predictions equal on "
          f"{row['predictions_equal']:.1%} of the tokens" + (f"; NO gradient on {row['missing_grads']}" if row["missing_grads"] else ""))
    print(f"- bf16 autocast: loss {row['bf16_loss']:.4f} (fp32 {row['bf16_loss_fp32_loss']:.4f}), gradients finite: "
          f"{row['bf16_grads_finite']}, predictions equal to fp32 on {row['bf16_predictions_equal_fp32']:.1%} of the tokens")


def time_crf(results, args):
    import torch

    print("\n## The CRF alone (k = 21 BIO, every row full length), ms per call\n")
    print("| l x rows | path | loss fwd+bwd | Viterbi |\n|---|---|---:|---:|")
    cases = [(CRF_LENGTH, CRF_ROWS, ("triton", "torch"))] + [(l, max(1, args.tokens_per_batch // l), ("triton",)) for l in args.lengths]
    for l, b, paths in cases:
        crf, emissions, tags = crf_problem(b, l, mixed_lengths=False)
        crf, emissions, tags = crf.cuda(), emissions.cuda().requires_grad_(True), tags.cuda()
        mask = tags != -100
        for path in paths:
            with environ(MAMBA_NER_CRF=path):
                def loss_step():
                    emissions.grad = None
                    crf(emissions, tags).backward()

                steps = args.steps if path == "triton" else 2
                loss_s = cuda_time(loss_step, steps)
                viterbi_s = cuda_time(lambda: crf.decode(emissions.detach(), mask), steps)
            results.setdefault("crf_alone", {})[f"{l}x{b}|{path}"] = {"loss_ms": loss_s * 1e3, "viterbi_ms": viterbi_s * 1e3}
            print(f"| {l} x {b} | {path} | {loss_s * 1e3:,.2f} | {viterbi_s * 1e3:,.2f} |", flush=True)
        del crf, emissions, tags
        torch.cuda.empty_cache()


PROFILE_LENGTH, PROFILE_ROWS = 2048, 16  # the case


def profile_step(model_name="bi", precision="fp32", length=PROFILE_LENGTH, rows=PROFILE_ROWS, top=20, device="cuda"):
    """Where one training step of the small model spends its time: torch.profiler over 2 steps (after 2 warm-up
    steps), the `top` kernels (CPU ops on a CPU device) by own time, as {"wall_ms", "busy_ms", "kernels": [...]} per
    step; busy_ms is the summed kernel time, so wall - busy is time the device waits for the host."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    cuda = device == "cuda"
    with torch.device(device):
        model, _ = speed.build_model(model_name, length)
    ids, mask, labels = (x.to(device) for x in speed.make_batch(rows, length))
    model.train()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(ids, mask, labels=labels).loss
        loss.backward()

    for _ in range(2):
        step()
    sync()
    steps = 2
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        wall = (time.perf_counter() - start) / steps
    own = (lambda e: getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)) if cuda else \
        (lambda e: e.self_cpu_time_total)
    # on CUDA only the kernels themselves (a CPU op or autograd Function also reports the time of kernels it
    # launched without a child op, e.g. mamba_ssm's, which would count them twice)
    kernel = lambda e: not cuda or e.device_type != DeviceType.CPU  # noqa: E731
    events = [e for e in prof.key_averages() if own(e) > 0 and kernel(e)]
    events.sort(key=own, reverse=True)
    busy = sum(own(e) for e in events) / steps / 1e3
    kernels = [{"name": e.key, "calls": e.count // steps, "ms": own(e) / steps / 1e3} for e in events[:top]]
    return {"wall_ms": wall * 1e3, "busy_ms": busy, "kernels": kernels}


def run_profile(results, args):
    print(f"\n## Profile: one training step of the small bi model, l = {PROFILE_LENGTH} x {PROFILE_ROWS} rows\n")
    for precision in args.precisions:
        row = profile_step("bi", precision)
        results.setdefault("profile", {})[precision] = row
        print(f"\n{precision}: {row['wall_ms']:.1f} ms per step, kernels busy {row['busy_ms']:.1f} ms "
              f"({row['busy_ms'] / row['wall_ms']:.0%})\n")
        print("| kernel | calls | ms per step | share of busy |")
        print("|---|---:|---:|---:|")
        for k in row["kernels"]:
            print(f"| `{k['name'][:90]}` | {k['calls']} | {k['ms']:.2f} | {k['ms'] / row['busy_ms']:.1%} |")


def speed_plan(args):
    """(size, precision, mode, length, batch, model) in order of priority."""
    plan = []
    for size in args.sizes:
        tokens = args.tokens_per_batch if size == "small" else args.base_tokens_per_batch
        for precision in args.precisions:
            for length in args.lengths:
                for mode in ("train", "infer"):
                    plan += [(size, precision, mode, length, max(1, tokens // length), m) for m in args.models]
        if size == "small" and "bi" in args.models:  # the scaling pair, at a constant batch
            for precision in args.precisions:
                for mode in ("train", "infer"):
                    plan += [(size, precision, mode, length, args.scaling_batch, "bi") for length in (512, 8192)]
    return list(dict.fromkeys(plan))


def run_one(size, precision, mode, length, batch, model_name, args):
    """Build one model on the GPU and time its steps: {"seconds", "peak_mib", "times"} or {"skipped": why}."""
    import torch

    hidden, layers = SIZES[size]
    torch.manual_seed(0)
    model = step = None
    try:
        with torch.device("cuda"):
            model, decode = speed.build_model(model_name, length, hidden, layers)
        ids, mask, labels = (x.cuda() for x in speed.make_batch(batch, length))
        train = mode == "train"
        model.train(train)
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")  # noqa: E731

        def step():
            if train:
                model.zero_grad(set_to_none=True)
                with autocast():
                    loss = model(ids, mask, labels=labels).loss
                loss.backward()
            else:
                with torch.no_grad(), autocast():
                    decode(model(ids, mask))

        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        first = cuda_time(step, 1, warmup=0)
        if first > args.max_step_seconds:
            return {"skipped": f"first step took {first:.1f} s (> {args.max_step_seconds} s)"}
        seconds = cuda_time(step, args.steps, warmup=max(0, args.warmup - 1))
        return {"seconds": seconds, "peak_mib": (torch.cuda.max_memory_allocated() - baseline) / 2**20,
                "first_step_s": first}
    except torch.cuda.OutOfMemoryError:
        return {"skipped": "out of GPU memory"}
    finally:
        del model, step
        torch.cuda.empty_cache()


def run_speed(results, args, deadline):
    runs = results.setdefault("speed", {})
    for key in speed_plan(args):
        name = "|".join(map(str, key))
        if time.monotonic() > deadline:
            runs[name] = {"skipped": f"time budget of {args.budget_minutes} min spent"}
            continue
        runs[name] = run_one(*key, args)
        r = runs[name]
        status = (f"{r['seconds']:.4f} s/step, {key[3] * key[4] / r['seconds']:,.0f} tokens/s, peak +{r['peak_mib']:,.0f} MiB"
                  if "seconds" in r else r["skipped"])
        print(f"  {name}: {status}", file=sys.stderr, flush=True)


def tokens_per_second(results, key):
    r = results.get("speed", {}).get("|".join(map(str, key)), {})
    return key[3] * key[4] / r["seconds"] if "seconds" in r else None


def print_speed_tables(results, args):
    fmt = speed.fmt
    for size in args.sizes:
        tokens = args.tokens_per_batch if size == "small" else args.base_tokens_per_batch
        batches = {l: max(1, tokens // l) for l in args.lengths}
        head = "| model | " + " | ".join(f"L={l} (b={batches[l]})" for l in args.lengths) + " |"
        rule = "|---|" + "---:|" * len(args.lengths)
        hidden, layers = SIZES[size]
        for precision in args.precisions:
            print(f"\n## Speed: {size} (hidden {hidden}, {layers} layers), {precision}, {tokens} tokens per batch\n")
            for mode, title in (("train", "training tokens/s"), ("infer", "inference tokens/s")):
                print(f"{title}\n\n{head}\n{rule}")
                for m in args.models:
                    cells = []
                    for l in args.lengths:
                        key = (size, precision, mode, l, batches[l], m)
                        r = results.get("speed", {}).get("|".join(map(str, key)))
                        cells.append(fmt(tokens_per_second(results, key)) if r and "seconds" in r else
                                     (r["skipped"] if r else "-"))
                    print(f"| {m} | " + " | ".join(cells) + " |")
                print()
            print(f"peak memory, MiB above the model and inputs (train / infer)\n\n{head}\n{rule}")
            for m in args.models:
                cells = []
                for l in args.lengths:
                    pair = [results.get("speed", {}).get("|".join(map(str, (size, precision, mode, l, batches[l], m))), {})
                            .get("peak_mib") for mode in ("train", "infer")]
                    cells.append(" / ".join(fmt(v) for v in pair))
                print(f"| {m} | " + " | ".join(cells) + " |")
            print(f"\nratios of tokens/s\n\n| ratio | mode | " + " | ".join(f"L={l}" for l in args.lengths)
                  + " |\n|---|---|" + "---:|" * len(args.lengths))
            for num, den in (("bi", "bert"), ("uni", "bi")):
                if num in args.models and den in args.models:
                    for mode in ("train", "infer"):
                        row = []
                        for l in args.lengths:
                            a = tokens_per_second(results, (size, precision, mode, l, batches[l], num))
                            b = tokens_per_second(results, (size, precision, mode, l, batches[l], den))
                            row.append(f"{a / b:.2f}x" if a and b else "-")
                        print(f"| {num} / {den} | {mode} | " + " | ".join(row) + " |")


def print_goals(results, args):
    print("\n## Goals (issue 11)\n")
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    crf = results.get("crf_alone", {}).get(f"{CRF_LENGTH}x{CRF_ROWS}|triton")
    if crf:
        print(f"- CRF loss fwd+bwd at l = {CRF_LENGTH} x {CRF_ROWS} <= {GOAL_CRF_LOSS_MS} ms: {crf['loss_ms']:.2f} ms -> "
              f"{verdict(crf['loss_ms'] <= GOAL_CRF_LOSS_MS)}")
        print(f"- CRF Viterbi at l = {CRF_LENGTH} x {CRF_ROWS} <= {GOAL_CRF_VITERBI_MS} ms: {crf['viterbi_ms']:.2f} ms -> "
              f"{verdict(crf['viterbi_ms'] <= GOAL_CRF_VITERBI_MS)}")
    if "small" not in args.sizes:
        return
    batches = {l: max(1, args.tokens_per_batch // l) for l in args.lengths}
    for precision in args.precisions:
        for l in args.lengths:  # the CRF's share of a bi training step (CRF timed in fp32 emissions)
            step = results.get("speed", {}).get("|".join(map(str, ("small", precision, "train", l, batches[l], "bi"))), {})
            crf_l = results.get("crf_alone", {}).get(f"{l}x{batches[l]}|triton")
            if crf_l and "seconds" in step:
                share = crf_l["loss_ms"] / 1e3 / step["seconds"]
                print(f"- CRF share of a small bi training step, {precision}, L={l}: {share:.1%} (<= "
                      f"{GOAL_CRF_SHARE:.0%}) -> {verdict(share <= GOAL_CRF_SHARE)}")
        for l, goal in GOAL_RATIOS.items():
            for mode in ("train", "infer"):
                a = tokens_per_second(results, ("small", precision, mode, l, batches.get(l, 0), "bi"))
                b = tokens_per_second(results, ("small", precision, mode, l, batches.get(l, 0), "bert"))
                if a and b:
                    print(f"- small {precision} {mode}, bi / BERT at L={l} >= {goal}x: {a / b:.2f}x -> {verdict(a / b >= goal)}")
        for mode in ("train", "infer"):
            short = results.get("speed", {}).get(f"small|{precision}|{mode}|512|{args.scaling_batch}|bi", {})
            long_ = results.get("speed", {}).get(f"small|{precision}|{mode}|8192|{args.scaling_batch}|bi", {})
            if "seconds" in short and "seconds" in long_:
                ratio = long_["seconds"] / short["seconds"]
                print(f"- small {precision} {mode}, bi time(8192) / time(512) at batch {args.scaling_batch} <= "
                      f"{GOAL_SCALING:.0f}: {ratio:.1f} -> {verdict(ratio <= GOAL_SCALING)}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=("check", "crf", "speed", "profile"),
                        default=["check", "crf", "speed"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--tokens-per-batch", type=int, default=32768, help="small size (the issue's table: 32,768)")
    parser.add_argument("--base-tokens-per-batch", type=int, default=16384, help="base size")
    parser.add_argument("--scaling-batch", type=int, default=4, help="constant batch of the time(8192) / time(512) pair")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run (the first compiles kernels)")
    parser.add_argument("--max-step-seconds", type=float, default=20.0, help="skip a run whose first step is slower")
    parser.add_argument("--budget-minutes", type=float, default=7.0, help="start no speed run after this")
    parser.add_argument("--json", help="also write every number to this file")
    return parser.parse_args(argv)


def main():
    import torch

    args = parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this is the GPU check (benchmarks/speed.py is the CPU protocol)")
    args.lengths = sorted(set(args.lengths))
    deadline = time.monotonic() + 60 * args.budget_minutes
    results = {"args": vars(args)}
    print_environment()
    try:
        if "check" in args.sections:
            check_crf(results)
            check_model(results)
        if "crf" in args.sections:
            time_crf(results, args)
        if "speed" in args.sections:
            run_speed(results, args, deadline)
            print_speed_tables(results, args)
        if "profile" in args.sections:
            run_profile(results, args)
        print_goals(results, args)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
