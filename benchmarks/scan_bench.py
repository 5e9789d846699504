"""Scan-only throughput: the selective-scan paths side by side, forward + backward and forward only.

    python benchmarks/scan_bench.py                      # d_inner 512, d_state 16, 4096 tokens a batch
    python benchmarks/scan_bench.py --lengths 128 512 --tokens 8192 --paths torch cpp

Tokens per second at each length with batch = tokens // length (at least 1), the model's size
(hidden 256, expand 2 -> d_inner 512, d_state 16), with z, D, delta_bias and softplus as the model
calls it, and the layouts a Mamba block gives (see `make_inputs`). Absolute numbers on a shared machine are noise: read the ratios within one run. The
reference is slow (its backward records a graph per step), so it runs only up to --ref-max-length.
On a machine shared with other jobs, OpenMP threads wait for each other at every barrier: compare
with ``--threads 1`` when the load average is above the core count.
"""
import argparse
import time

import torch

from mamba_ner.scan import cpu_kernel_available, selective_scan_cpp, selective_scan_ref, selective_scan_torch

PATHS = {"ref": selective_scan_ref, "torch": selective_scan_torch, "cpp": selective_scan_cpp}


def make_inputs(batch, d_inner, length, d_state, dtype):
    """Inputs laid out as a Mamba block produces them: u from the conv is (b, d, l) contiguous;
    delta, z, B and C are transposed views of (b, l, ·) projection outputs."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(dtype).requires_grad_()

    def channels_last(*shape, scale=1.0):  # (b, l, x) memory seen as (b, x, l)
        return (torch.randn(shape[0], shape[2], shape[1], generator=g) * scale).to(dtype).transpose(1, 2)

    A = (-torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)).requires_grad_()
    inputs = dict(u=rand(batch, d_inner, length), delta=channels_last(batch, d_inner, length, scale=0.5), A=A,
                  B=channels_last(batch, d_state, length), C=channels_last(batch, d_state, length), D=rand(d_inner),
                  z=channels_last(batch, d_inner, length), delta_bias=rand(d_inner, scale=0.1))
    for name in ("delta", "B", "C", "z"):
        inputs[name].requires_grad_()
    return inputs


CLOCK = time.perf_counter


def time_once(fn, inputs, backward):
    start = CLOCK()
    if backward:
        out = fn(**inputs, delta_softplus=True)
        torch.autograd.grad(out, list(inputs.values()), torch.ones_like(out))
    else:
        with torch.no_grad():
            fn(**inputs, delta_softplus=True)
    return CLOCK() - start


def saved_megabytes(fn, inputs):
    """Megabytes autograd keeps for backward (counted by a saved-tensor hook; views count in full)."""
    total = [0]

    def pack(tensor):
        total[0] += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(**inputs, delta_softplus=True)
    return total[0] / 2**20


def measure(fn, inputs, backward, repeats):
    time_once(fn, inputs, backward)  # warm-up
    return min(time_once(fn, inputs, backward) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--tokens", type=int, default=4096, help="batch * length")
    parser.add_argument("--d-inner", type=int, default=512)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--ref-max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="defaults to torch.get_num_threads()")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a shared machine (meaningful with --threads 1)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = [p for p in args.paths if p != "cpp" or cpu_kernel_available()]
    dtype = getattr(torch, args.dtype)
    print(f"d_inner {args.d_inner}, d_state {args.d_state}, {args.tokens} tokens/batch, {args.dtype}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock; tokens/s (fwd+bwd | fwd only) and MB kept for backward")
    print("| length | batch | " + " | ".join(f"{p} fwd+bwd | {p} fwd | {p} saved MB" for p in paths) + " |")
    print("|---|---|" + "---|---|---|" * len(paths))
    for length in args.lengths:
        batch = max(1, args.tokens // length)
        inputs = make_inputs(batch, args.d_inner, length, args.d_state, dtype)
        cells = []
        for p in paths:
            if p == "ref" and length > args.ref_max_length:
                cells += ["-", "-", "-"]
                continue
            tokens = batch * length
            train = tokens / measure(PATHS[p], inputs, True, args.repeats)
            infer = tokens / measure(PATHS[p], inputs, False, args.repeats)
            cells += [f"{train:,.0f}", f"{infer:,.0f}", f"{saved_megabytes(PATHS[p], inputs):,.0f}"]
        print(f"| {length} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
