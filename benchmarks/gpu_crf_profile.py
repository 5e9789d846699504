"""Where the CRF loss step's time goes on a GPU (k = 21 BIO): each piece timed alone, then a torch.profiler table.

    python benchmarks/gpu_crf_profile.py      # from the repository root, on a CUDA machine (run 3 in RESULTS.md)
"""
import os, sys, time, statistics
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "src")
import torch
import gpu as G
from mamba_ner import crf_triton as ct
from mamba_ner.crf import pack_by_mask

def t(fn, steps=10):
    for _ in range(3): fn()
    torch.cuda.synchronize(); xs = []
    for _ in range(steps):
        s = time.perf_counter(); fn(); torch.cuda.synchronize(); xs.append(time.perf_counter() - s)
    return statistics.median(xs) * 1e3

for b, l in ((16, 2048), (256, 128), (4, 8192)):
    crf, em, tags = G.crf_problem(b, l, mixed_lengths=False)
    crf, em, tags = crf.cuda(), em.cuda().requires_grad_(True), tags.cuda()
    mask = tags != -100
    lengths = mask.sum(1)
    s, e, tr = crf.constrained_scores(torch.float32)
    s, e, tr = s.detach(), e.detach(), tr.detach()
    emd = em.detach()
    prepared_em, prepared_lengths, prepared_scores = ct._prepare(emd, lengths, s, e, tr)
    log_z, alphas = ct.log_partition_fwd(emd, lengths, s, e, tr)
    g = torch.ones_like(log_z)
    def step():
        em.grad = None
        crf(em, tags).backward()
    res = {
        "full loss step": t(step),
        "fwd kernel(s)": t(lambda: ct.log_partition_fwd(emd, lengths, s, e, tr)),
        "fwd linear only": t(lambda: ct._forward_linear(prepared_em, prepared_lengths, *prepared_scores)),
        "bwd kernel(s)": t(lambda: ct.log_partition_bwd(emd, lengths, e, tr, alphas, g)),
        "pack_by_mask": t(lambda: pack_by_mask(mask, emd.float(), tags)),
        "gold score": t(lambda: crf._gold_score(emd, tags.clamp(min=0), mask)),
        "forward only (no grad)": t(lambda: crf(emd, tags)),
        "viterbi": t(lambda: crf.decode(emd, mask)),
    }
    print(f"{l} x {b}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in res.items()), flush=True)

crf, em, tags = G.crf_problem(16, 2048, mixed_lengths=False)
crf, em, tags = crf.cuda(), em.cuda().requires_grad_(True), tags.cuda()
for _ in range(3):
    crf(em, tags).backward()
torch.cuda.synchronize()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        em.grad = None
        crf(em, tags).backward()
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
