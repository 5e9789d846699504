"""Floors: what the matrix products alone cost, next to BERT, and which goals of issue 4 fit together.

    python benchmarks/floor.py                      # L=128, 4096 tokens per batch, core-count threads
    python benchmarks/floor.py --length 512 --steps 20

Any Mamba of this size (hidden 256, 4 layers, expand 2, state 16, time-step rank 16) has to multiply
every token by in_proj (256 -> 1024), x_proj (512 -> 48), dt_proj (16 -> 512) and out_proj
(512 -> 256) in each layer; the bidirectional model of this package adds a second x_proj and dt_proj.
This script times, side by side and round-robin in one process (as `speed.py` does):

    bert, uni, bi      the steps of `speed.py` (same models, inputs and step definitions)
    gemm-uni, gemm-bi  only those matrix products, with the models' own weights, on inputs of the right
                       shapes (training: forward, grad-input and grad-weight products, via autograd),
                       plus the classifier. No scan, conv, norm, gating, embedding or CRF: a floor for
                       any implementation of the model in this precision and BLAS.
    scan-bi            (inference only) the selective-scan calls of the bidirectional model alone

and prints the ceilings those floors put on the ratios, next to what the goals need:
  - "bi >= 1.5x BERT (inference)" and "uni >= 1.8x bi" together need uni >= 2.7x BERT;
  - "bi >= 1.0x BERT (training, L=128)" and "uni >= 1.8x bi" together need uni >= 1.8x BERT;
  - uni can be at most time(bert) / time(gemm-uni) times faster than BERT, whatever the rest costs.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speed  # noqa: E402  (the models, inputs and steps of the main benchmark)

GOALS = {"infer": speed.GOAL_INFER_128, "train": speed.GOAL_TRAIN_128}


def gemm_step(model, mode, batch, length):
    """The matrix products of `model`'s mixers and classifier, on random inputs of the shapes they see."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    train = mode == "train"
    calls = []  # (weight, input)
    for layer in model.backbone.layers:
        mixer = layer.mixer
        linears = [mixer.in_proj, mixer.out_proj]
        for names in mixer.directions:
            linears += [getattr(mixer, names.x_proj), getattr(mixer, names.dt_proj)]
        for linear in linears:
            calls.append((linear.weight, torch.randn(batch, length, linear.in_features, generator=g)))
    calls.append((model.classifier.weight, torch.randn(batch, length, model.classifier.in_features, generator=g)))
    if train:
        calls = [(w.detach().clone().requires_grad_(), x.requires_grad_()) for w, x in calls]
    grads = [torch.randn(batch, length, w.shape[0], generator=g) for w, _ in calls]

    def step():
        if train:
            for w, x in calls:
                w.grad = x.grad = None
            torch.autograd.backward([F.linear(x, w) for w, x in calls], grads)
        else:
            with torch.no_grad():
                for w, x in calls:
                    F.linear(x, w)

    return step


def scan_step(model, batch, length):
    """The selective-scan calls of `model` (inference), with its A, D and Δ bias, on random inputs."""
    import torch

    from mamba_ner.scan import selective_scan

    g = torch.Generator().manual_seed(0)
    calls = []
    for layer in model.backbone.layers:
        mixer = layer.mixer
        d, n = mixer.intermediate_size, mixer.ssm_state_size
        for i, names in enumerate(mixer.directions):
            # channels-last views, as the model hands them to the kernel
            u, dt, z = (torch.randn(batch, length, d, generator=g).transpose(1, 2) for _ in range(3))
            B, C = (torch.randn(batch, length, n, generator=g).transpose(1, 2) for _ in range(2))
            A = -torch.exp(getattr(mixer, names.A_log).detach().float())
            extra = dict(reverse=True, y_add=torch.randn(batch, length, d, generator=g).transpose(1, 2),
                         out_scale=0.5) if i else {}
            calls.append((u, dt, A, B, C, getattr(mixer, names.D).detach(), z,
                          getattr(mixer, names.dt_proj).bias.detach(), extra))

    def step():
        with torch.no_grad():
            for u, dt, A, B, C, D, z, bias, extra in calls:
                selective_scan(u, dt, A, B, C, D, z, bias, True, **extra)

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--tokens-per-batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per entry (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    length, batch = args.length, max(1, args.tokens_per_batch // args.length)
    print(f"# Floors at L={length}, batch {batch}\n\n- command: `{' '.join(['python'] + sys.argv)}`")
    print(f"- threads {torch.get_num_threads()} (core count {os.cpu_count()}); torch {torch.__version__}; "
          f"code: {speed.git_describe(speed.CODE_FILES)}")
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    medians = {}
    for mode in ("infer", "train"):
        steps = {}
        for name in ("bert", "uni", "bi"):
            model, steps[name] = speed.make_step(name, mode, length, batch)
            if name != "bert":
                steps[f"gemm-{name}"] = gemm_step(model, mode, batch, length)
            if name == "bi" and mode == "infer":
                steps["scan-bi"] = scan_step(model, batch, length)
        times = {name: [] for name in steps}
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        for _ in range(args.steps):  # round-robin: a change of load hits every entry alike
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        medians[mode] = {name: statistics.median(t) for name, t in times.items()}

    print("| mode | entry | ms per step (median) | tokens/s | share of BERT's step |")
    print("|---|---|---:|---:|---:|")
    for mode, med in medians.items():
        for name, t in med.items():
            print(f"| {mode} | {name} | {t * 1e3:,.1f} | {batch * length / t:,.0f} | {t / med['bert']:.2f} |")
    print("\n| mode | measured bi / BERT | measured uni / BERT | uni / BERT ceiling (GEMMs alone) "
          "| uni / BERT the goals need together | bi / BERT ceiling with uni >= 1.8x bi |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, med in medians.items():
        ceiling = med["bert"] / med["gemm-uni"]
        need = GOALS[mode] * speed.GOAL_UNI_OVER_BI
        print(f"| {mode} | {med['bert'] / med['bi']:.2f}x | {med['bert'] / med['uni']:.2f}x | {ceiling:.2f}x "
              f"| {need:.2f}x ({GOALS[mode]:.1f} x {speed.GOAL_UNI_OVER_BI:.1f}) "
              f"| {ceiling / speed.GOAL_UNI_OVER_BI:.2f}x (goal {GOALS[mode]:.1f}x) |")
    print("\nA ceiling below what the goals need means no implementation in this precision can meet both on this "
          "machine: the products alone already take longer than the goals allow.")
    print(f"\n- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
