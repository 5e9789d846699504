"""The Triton CRF kernels (crf_triton.py) against the Python recursions and brute-force enumeration.

Without a GPU they run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``, set by
conftest.py before the package is imported); the interpreter is slow, so sizes stay small. Tests
marked `gpu` run the kernels on a CUDA device at the sizes of the benchmark.
"""
import itertools
import json
import os
import types

import pytest
import torch
from clean_process import run_without_package

from mamba_ner import MambaCrfConfig, MambaCrfForTokenClassification
from mamba_ner import crf as crf_module
from mamba_ner import crf_triton
from mamba_ner.crf import LinearChainCRF, allowed_transitions

pytestmark = [
    pytest.mark.skipif(not crf_triton.AVAILABLE, reason="triton is not installed"),
    # log(0) = -inf on padding lanes is intended; the interpreter's numpy says so
    pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning"),
]

HAS_CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cuda" if HAS_CUDA and not INTERPRETED else "cpu"


def bio_labels(num_types):
    return ["O"] + [f"{prefix}-T{t}" for t in range(num_types) for prefix in ("B", "I")]


def iobes_labels(num_types):
    return ["O"] + [f"{prefix}-T{t}" for t in range(num_types) for prefix in ("B", "I", "E", "S")]


def make_crf(k, scheme, seed=0):
    labels = {"BIO": lambda: bio_labels((k - 1) // 2), "IOBES": lambda: iobes_labels((k - 1) // 4)}.get(scheme)
    crf = LinearChainCRF(k, labels() if labels else None, scheme)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)
    return crf


def _interpreter_calls_patch_once():
    """Make Triton's interpreter patch `triton.language` once per kernel launch instead of on every call of a
    @triton.jit library function (tl.max, tl.sum, ...): the same result, 2x faster. Returns an undo function;
    does nothing where the interpreter's internals differ from Triton 3.9's."""
    try:
        import triton.language as tl
        from triton.runtime import interpreter
    except ImportError:
        return lambda: None
    original = getattr(interpreter, "_patch_lang", None)
    if not INTERPRETED or original is None:
        return lambda: None
    both = types.FunctionType((lambda: None).__code__, {"tl": tl, "core": tl.core})  # globals naming both modules
    active = []

    class Nothing:
        def restore(self):
            pass

    def patch_lang(fn):
        if active:  # a device function called from a running kernel: already patched
            return Nothing()
        scope = original(both)
        restore = scope.restore
        active.append(True)

        def restore_and_leave():
            active.pop()
            restore()

        scope.restore = restore_and_leave
        return scope

    interpreter._patch_lang = patch_lang
    return lambda: setattr(interpreter, "_patch_lang", original)


@pytest.fixture(scope="module", autouse=True)
def triton_runs_here():
    if not (INTERPRETED or HAS_CUDA):
        pytest.skip("no GPU, and TRITON_INTERPRET=1 was not set before the package was imported")
    undo = _interpreter_calls_patch_once()
    yield
    undo()


def problem(b, l, k, scheme, seed, lengths=None, dtype=torch.float32, scale=2.0):
    """Packed emissions (b, l, k), lengths (b,) (l, 1 and 0 among them when b allows), constrained start/end/trans."""
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(b, l, k, generator=gen, dtype=torch.float64) * scale
    if lengths is None:
        lengths = torch.randint(1, l + 1, (b,), generator=gen)
        lengths[: min(b, 3)] = torch.tensor([l, 1, 0])[: min(b, 3)]
    start, end, trans = (s.detach().double() for s in make_crf(k, scheme, seed).constrained_scores(torch.float64))
    return emissions.to(dtype), torch.as_tensor(lengths), start.to(dtype), end.to(dtype), trans.to(dtype)


def reference(emissions, lengths, start, end, trans, grad_log_z):
    """The Python recursions in float64: log Z, (d emissions, d start, d end, d trans), marginals, Viterbi."""
    e, s, n, t = (x.double() for x in (emissions, start, end, trans))
    mask = torch.arange(e.shape[1])[None, :] < lengths[:, None]
    log_z, alphas = crf_module._log_partition_forward_torch(e, mask, s, n, t)
    grads = crf_module._log_partition_backward_torch(e, mask, n, t, alphas, log_z, grad_log_z.double())
    marginals = crf_module._log_partition_backward_torch(e, mask, n, t, alphas, log_z, torch.ones_like(log_z))[0]
    path = crf_module._viterbi_torch(emissions, mask, start, end, trans, -7)  # in the kernels' dtype: same rounding
    return log_z, grads, marginals, path


def on_device(*tensors):
    return [x.to(DEVICE) for x in tensors]


def max_diff(a, b):
    return (a.double().cpu() - b.double().cpu()).abs().max().item() if a.numel() else 0.0


def run_triton(emissions, lengths, start, end, trans, grad_log_z):
    e, n, s, en, t, g = on_device(emissions, lengths, start, end, trans, grad_log_z)
    log_z, alphas = crf_triton.log_partition_fwd(e, n, s, en, t)
    grads = crf_triton.log_partition_bwd(e, n, en, t, alphas, g)
    marginals = crf_triton.marginals(e, n, s, en, t)
    path = crf_triton.viterbi(e, n, s, en, t, -7)
    return log_z, grads, marginals, path


# ------------------------------------------------------------------------------------------ brute force
def brute_force(emissions, length, start, end, trans):
    """(log Z, d log Z / d (start, end, trans, emissions), marginals, best path) of one row by enumeration, float64."""
    k = emissions.shape[1]
    e, s, n, t = (x.double().clone().requires_grad_(True) for x in (emissions[:length], start, end, trans))
    paths = list(itertools.product(range(k), repeat=length))
    scores = torch.stack([s[p[0]] + sum(e[i, p[i]] for i in range(length)) + sum(t[p[i - 1], p[i]] for i in range(1, length))
                          + n[p[-1]] for p in paths])
    log_z = torch.logsumexp(scores, 0)
    grads = torch.autograd.grad(log_z, (e, s, n, t), allow_unused=True, materialize_grads=True)
    best = paths[int(scores.argmax())]
    return log_z.detach(), grads, list(best)


@pytest.mark.parametrize("k,scheme", [(3, "BIO"), (4, "none"), (5, "IOBES")])
def test_log_z_gradients_marginals_and_viterbi_match_brute_force(k, scheme):
    emissions, lengths, start, end, trans = problem(5, 4, k, scheme, seed=k, lengths=[4, 1, 0, 3, 2])
    grad_log_z = torch.ones(5)
    log_z, (g_em, g_start, g_end, g_trans), marginals, path = run_triton(emissions, lengths, start, end, trans, grad_log_z)
    expected_start, expected_end, expected_trans = torch.zeros(k), torch.zeros(k), torch.zeros(k, k)
    for row, length in enumerate(lengths.tolist()):
        if length == 0:
            assert (g_em[row] == 0).all() and (marginals[row] == 0).all() and (path[row] == -7).all()
            continue
        bf_log_z, (bf_em, bf_start, bf_end, bf_trans), bf_path = brute_force(emissions[row], length, start, end, trans)
        assert log_z[row].item() == pytest.approx(bf_log_z.item(), abs=2e-5)
        assert max_diff(g_em[row, :length], bf_em) < 2e-6
        assert max_diff(marginals[row, :length], bf_em) < 2e-6
        assert (g_em[row, length:] == 0).all() and (marginals[row, length:] == 0).all()
        assert path[row, :length].tolist() == bf_path and (path[row, length:] == -7).all()
        expected_start += bf_start.float()
        expected_end += bf_end.float()
        expected_trans += bf_trans.float()
    # the empty row adds to d end only (as the Python recursion: its log Z is that of position 0)
    empty = 2
    softmax0 = torch.softmax(start + emissions[empty, 0] + end, 0)
    assert max_diff(g_start, expected_start) < 5e-6
    assert max_diff(g_end, expected_end + softmax0) < 5e-6
    assert max_diff(g_trans, expected_trans) < 5e-6


# ------------------------------------------------------------------------------------------ Python recursions
@pytest.mark.parametrize("k,scheme", [(3, "BIO"), (6, "none"), (9, "IOBES"), (21, "BIO"), (41, "BIO")])
def test_kernels_match_python_recursions(k, scheme):
    emissions, lengths, start, end, trans = problem(6, 13, k, scheme, seed=100 + k)
    grad_log_z = torch.randn(6, generator=torch.Generator().manual_seed(k))
    got = run_triton(emissions, lengths, start, end, trans, grad_log_z)
    want = reference(emissions, lengths, start, end, trans, grad_log_z)
    assert max_diff(got[0], want[0]) < 1e-4 * max(1.0, want[0].abs().max().item())
    for name, a, b in zip(("emissions", "start", "end", "trans"), got[1], want[1]):
        assert max_diff(a, b) < 1e-5, f"d {name}: {max_diff(a, b)}"
    assert max_diff(got[2], want[2]) < 1e-5
    assert torch.equal(got[3].cpu(), want[3])


def test_float64_matches_python_recursions_to_rounding():
    emissions, lengths, start, end, trans = problem(4, 9, 5, "BIO", seed=3, dtype=torch.float64)
    grad_log_z = torch.tensor([0.5, -1.0, 2.0, 1.5], dtype=torch.float64)
    got = run_triton(emissions, lengths, start, end, trans, grad_log_z)
    want = reference(emissions, lengths, start, end, trans, grad_log_z)
    assert got[0].dtype == torch.float64 and max_diff(got[0], want[0]) < 1e-10
    for a, b in zip(got[1], want[1]):
        assert max_diff(a, b) < 1e-10
    assert max_diff(got[2], want[2]) < 1e-10


def test_viterbi_breaks_ties_like_torch():
    """Small integer scores make many exact ties; the lowest tag id must win, as in torch."""
    gen = torch.Generator().manual_seed(7)
    b, l, k = 6, 9, 4
    emissions = torch.randint(-1, 2, (b, l, k), generator=gen).float()
    lengths = torch.tensor([9, 5, 1, 0, 9, 3])
    mask = torch.arange(l)[None, :] < lengths[:, None]
    start, end = torch.zeros(k), torch.randint(0, 2, (k,), generator=gen).float()
    for trans in (torch.zeros(k, k), torch.randint(-1, 2, (k, k), generator=gen).float()):
        got = crf_triton.viterbi(*on_device(emissions, lengths, start, end, trans), -100)
        assert torch.equal(got.cpu(), crf_module._viterbi_torch(emissions, mask, start, end, trans, -100))


def test_int16_back_pointers_beyond_127_tags():
    assert crf_triton._backpointer_dtype(127) == torch.int8 and crf_triton._backpointer_dtype(128) == torch.int16
    emissions, lengths, start, end, trans = problem(2, 4, 130, "none", seed=11, lengths=[4, 3], scale=4.0)
    emissions[:, :, 128:] += 10.0  # the best paths go through tags above 127
    mask = torch.arange(4)[None, :] < lengths[:, None]
    got = crf_triton.viterbi(*on_device(emissions, lengths, start, end, trans), -100)
    assert torch.equal(got.cpu(), crf_module._viterbi_torch(emissions, mask, start, end, trans, -100))
    assert got.max() > 127  # the test means something only if a back-pointer above 127 was followed


def test_bfloat16_emissions_are_computed_in_float32():
    emissions, lengths, start, end, trans = problem(3, 7, 5, "BIO", seed=12)
    half = emissions.to(torch.bfloat16)
    got = run_triton(half, lengths, start, end, trans, torch.ones(3))
    want = run_triton(half.float(), lengths, start, end, trans, torch.ones(3))
    assert got[0].dtype == torch.float32 and got[1][0].dtype == torch.float32
    for a, b in zip([got[0], *got[1], got[2]], [want[0], *want[1], want[2]]):
        assert torch.equal(a, b)
    assert torch.equal(got[3], want[3])


def check_float32_accuracy_of_a_long_row(l, offset):
    """One row of length l whose emissions carry `offset` on every tag (posteriors unchanged, |log Z| ~ l * offset):
    the per-step shifts keep log Z to float32 rounding and the marginals and counts to ~1e-5.

    (Unshifted float32 log-space alphas, as the Python recursion's, lose ~1e-2 in the marginals at |log Z| ~ 1e4:
    the rounding of numbers that large.)"""
    k = 5
    emissions, lengths, start, end, trans = problem(1, l, k, "BIO", seed=13, lengths=[l])
    emissions += offset
    e, n, s, en, t = on_device(emissions, lengths, start, end, trans)
    log_z, alphas = crf_triton.log_partition_fwd(e, n, s, en, t)
    g_em, g_start, g_end, g_trans = crf_triton.log_partition_bwd(e, n, en, t, alphas, torch.ones(1, device=DEVICE))
    want_log_z, (w_em, w_start, w_end, w_trans), _, _ = reference(emissions, lengths, start, end, trans, torch.ones(1))
    assert abs(want_log_z.item()) > 1e4
    assert abs(log_z.item() - want_log_z.item()) < 2e-6 * abs(want_log_z.item())
    assert max_diff(g_em, w_em) < 2e-5
    assert max_diff(g_start, w_start) < 2e-5 and max_diff(g_end, w_end) < 2e-5
    assert max_diff(g_trans, w_trans) < 2e-6 * l
    assert torch.allclose(g_em.sum(-1).cpu(), torch.ones(1, l), atol=1e-5)


def test_float32_accuracy_at_large_log_z():
    check_float32_accuracy_of_a_long_row(256, offset=45.0)


@pytest.mark.slow  # ~45 s in the interpreter
def test_float32_accuracy_of_a_4096_long_row():
    check_float32_accuracy_of_a_long_row(4096, offset=10.0)


@pytest.mark.parametrize("scheme,scale,far_transition", [("IOBES", 40.0, False), ("BIO", 2.0, True)])
def test_rows_out_of_the_linear_kernels_range_are_recomputed_in_log_space(scheme, scale, far_transition):
    """Emissions 100+ nats apart within a position, or an allowed transition 200 below the others, would underflow
    products in the linear-space kernels: those rows are flagged and the log-space kernels give them exactly."""
    emissions, lengths, start, end, trans = problem(6, 9, 9, scheme, seed=16, scale=scale)
    if far_transition:
        trans[2, 3] -= 200.0
    grad_log_z = torch.randn(6, generator=torch.Generator().manual_seed(16))
    e, n, s, en, t = on_device(emissions, lengths, start, end, trans)
    _, _, flags = crf_triton._forward_linear(e, n.to(torch.int32), s, en, t)
    assert flags.sum() >= 4 if not far_transition else flags.all()
    got = run_triton(emissions, lengths, start, end, trans, grad_log_z)
    want = reference(emissions, lengths, start, end, trans, grad_log_z)
    assert max_diff(got[0], want[0]) < 2e-6 * want[0].abs().max().item() + 1e-5
    for name, a, b in zip(("emissions", "start", "end", "trans"), got[1], want[1]):
        assert max_diff(a, b) < 1e-5, f"d {name}: {max_diff(a, b)}"
    assert max_diff(got[2], want[2]) < 1e-5
    assert torch.equal(got[3].cpu(), want[3])


def test_empty_batch_and_single_position():
    for b, l in ((0, 3), (2, 1)):
        emissions, lengths, start, end, trans = problem(b, l, 3, "BIO", seed=14, lengths=[1] * b)
        got = run_triton(emissions, lengths, start, end, trans, torch.ones(b))
        want = reference(emissions, lengths, start, end, trans, torch.ones(b))
        assert got[0].shape == (b,) and max_diff(got[0], want[0]) < 1e-5
        for a, w in zip([*got[1], got[2]], [*want[1], want[2]]):
            assert a.shape == w.shape and max_diff(a, w) < 1e-6
        assert torch.equal(got[3].cpu(), want[3])


# ------------------------------------------------------------------------------------------ through LinearChainCRF
def test_crf_module_on_the_triton_path_equals_the_torch_path(monkeypatch):
    """NLL (every reduction) with gradients wrt emissions and every parameter, decode and marginals, with holes
    (-100) in the tags and an empty row; the Triton kernels are the ones that run."""
    crf = make_crf(5, "BIO")
    gen = torch.Generator().manual_seed(8)
    emissions = torch.randn(4, 11, 5, generator=gen)
    tags = torch.randint(0, 5, (4, 11), generator=gen)
    tags[1, 6:] = -100
    tags[2, [0, 3, 4]] = -100
    tags[3] = -100
    results = {}
    for path in ("triton", "torch"):
        monkeypatch.setenv("MAMBA_NER_CRF", path)
        model = crf.to(DEVICE if path == "triton" else "cpu")
        device = model.transitions.device
        outputs = []
        for reduction in ("none", "mean"):
            leaf = emissions.detach().clone().to(device).requires_grad_(True)  # a fresh leaf (to("cpu") would alias)
            model.zero_grad()
            nll = model(leaf, tags.to(device), reduction=reduction)
            nll.sum().backward()
            outputs += [nll.detach(), leaf.grad] + [p.grad.clone() for p in model.parameters()]
        outputs += [model.decode(emissions.to(device), (tags != -100).to(device)),
                    model.marginals(emissions.to(device), (tags != -100).to(device))]
        results[path] = [x.cpu() for x in outputs]
    for got, want in zip(results["triton"], results["torch"]):
        assert got.dtype == want.dtype and got.shape == want.shape
        if got.is_floating_point():
            # relative to the magnitude: NLL sums reach ~1e4 on a GPU, where the torch path's unshifted float32
            # recursion alone rounds by ~1e-3
            assert max_diff(got, want) < 1e-5 + 1e-6 * want.abs().max().item()
        else:
            assert torch.equal(got, want)


def test_triton_path_is_the_one_taken(monkeypatch):
    def fail(*args):
        raise AssertionError("another path ran although MAMBA_NER_CRF=triton")

    for name in ("_log_partition_forward_torch", "_log_partition_backward_torch", "_viterbi_torch", "load_crf_kernel"):
        monkeypatch.setattr(crf_module, name, fail)
    monkeypatch.setenv("MAMBA_NER_CRF", "triton")
    crf = make_crf(5, "BIO").to(DEVICE)
    emissions = torch.randn(2, 6, 5, device=DEVICE, requires_grad=True)
    crf(emissions, torch.zeros(2, 6, dtype=torch.long, device=DEVICE)).backward()
    crf.decode(emissions.detach())
    crf.marginals(emissions.detach())


# ------------------------------------------------------------------------------------------ dispatch
def test_crf_path_dispatch(monkeypatch):
    cpu = torch.zeros(1, 2, 3)
    monkeypatch.setenv("MAMBA_NER_CRF", "auto")
    assert crf_module._crf_path(cpu) in ("cpp", "torch")  # never Triton for CPU tensors
    assert crf_module._crf_path(cpu.half()) == "torch"
    monkeypatch.setenv("MAMBA_NER_CRF", "triton")
    assert crf_module._crf_path(cpu) == "triton"
    monkeypatch.setenv("MAMBA_NER_CRF", "cpp")
    with pytest.raises(ValueError, match=r"MAMBA_NER_CRF=cpp runs on CPU float32/float64 tensors of one dtype, "
                                         r"got emissions of torch.float16 on cpu"):
        crf_module._crf_path(cpu.half())
    monkeypatch.setattr(crf_module, "TRITON_AVAILABLE", False)
    monkeypatch.setenv("MAMBA_NER_CRF", "triton")
    with pytest.raises(RuntimeError, match=r"MAMBA_NER_CRF=triton but triton is not importable \(pip install triton\)"):
        crf_module._crf_path(cpu)


def test_auto_falls_back_to_torch_where_the_kernels_do_not_work(monkeypatch):
    """The probe runs the real kernel once per device (here the interpreter, or the GPU); a failure means torch."""
    monkeypatch.setattr(crf_module, "_TRITON_WORKS", {})
    assert crf_module.triton_works(DEVICE)  # the kernel itself: log Z = log 9

    def broken(*args, **kwargs):
        raise RuntimeError("PTX .version 9.9 does not support .target sm_999")

    monkeypatch.setattr(crf_module, "_TRITON_WORKS", {})
    monkeypatch.setattr(crf_module, "triton_log_partition_fwd", broken)
    with pytest.warns(UserWarning, match=rf"the Triton CRF kernels do not work on {DEVICE} \(RuntimeError: PTX "
                                         r".version 9.9.*MAMBA_NER_CRF=auto uses the PyTorch recursions there"):
        assert not crf_module.triton_works(DEVICE)
    assert crf_module._TRITON_WORKS == {DEVICE: False}
    assert not crf_module.triton_works(DEVICE)  # answered from the cache, the broken kernel not called again


def test_forced_cpp_path_says_when_it_cannot_compile(monkeypatch):
    monkeypatch.setattr(crf_module, "load_crf_kernel", lambda: None)
    monkeypatch.setenv("MAMBA_NER_CRF", "cpp")
    with pytest.raises(RuntimeError, match="MAMBA_NER_CRF=cpp but the C.. CRF kernels could not be compiled"):
        crf_module._crf_path(torch.zeros(1, 2, 3))


def test_forbidden_transitions_get_exactly_zero_probability():
    crf = make_crf(5, "BIO")
    start, end, trans = (s.detach() for s in crf.constrained_scores())
    emissions = torch.randn(2, 6, 5, generator=torch.Generator().manual_seed(15)) * 3
    e, n, s, en, t = on_device(emissions, torch.tensor([6, 4]), start, end, trans)
    log_z, alphas = crf_triton.log_partition_fwd(e, n, s, en, t)
    _, g_start, _, g_trans = crf_triton.log_partition_bwd(e, n, en, t, alphas, torch.ones(2, device=DEVICE))
    start_ok, _, trans_ok = (torch.tensor(ok) for ok in allowed_transitions(bio_labels(2), "BIO"))
    assert not start_ok.all() and not trans_ok.all()
    assert (g_trans.cpu()[~trans_ok] == 0).all() and (g_start.cpu()[~start_ok] == 0).all()


# ------------------------------------------------------------------------------------------ remote code
LOADER_WITHOUT_TRITON = """
import importlib
import json
import sys
sys.modules["triton"] = None  # `import triton` fails here, as on a machine without it
import torch
from transformers import AutoModelForTokenClassification
model = AutoModelForTokenClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
crf = importlib.import_module(type(model).__module__.rsplit(".", 1)[0] + ".crf")
ids = torch.tensor(json.loads(sys.argv[2]))
with torch.no_grad():
    out = model(ids)
print(json.dumps({"triton_available": crf.TRITON_AVAILABLE, "predictions": out.predictions.tolist(),
                  "marginals": model.crf.marginals(out.logits).tolist()}))
"""


def test_checkpoint_carries_crf_triton_and_loads_without_triton(tmp_path):
    labels = ["O", "B-X", "I-X"]
    config = MambaCrfConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, state_size=4,
                            id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    torch.manual_seed(0)
    model = MambaCrfForTokenClassification(config).eval()
    model.save_pretrained(tmp_path / "checkpoint")
    assert (tmp_path / "checkpoint" / "crf_triton.py").is_file()
    ids = torch.randint(1, 30, (2, 5))
    with torch.no_grad():
        out = model(ids)
    got = run_without_package(LOADER_WITHOUT_TRITON, [tmp_path / "checkpoint", json.dumps(ids.tolist())], tmp_path)
    assert got["triton_available"] is False
    assert got["predictions"] == out.predictions.tolist()
    assert torch.allclose(torch.tensor(got["marginals"]), model.crf.marginals(out.logits), atol=1e-5)


# ------------------------------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA or INTERPRETED, reason="needs a CUDA device (and TRITON_INTERPRET unset)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_kernels_match_float64_reference_at_benchmark_size(dtype):
    """16 rows x l = 2048 (mixed lengths), k = 21 BIO: the kernels on the GPU against float64 on the CPU."""
    emissions, lengths, start, end, trans = problem(16, 2048, 21, "BIO", seed=21)
    emissions = emissions.to(dtype)
    grad_log_z = torch.randn(16, generator=torch.Generator().manual_seed(21))
    got = run_triton(emissions, lengths, start, end, trans, grad_log_z)
    want = reference(emissions.float(), lengths, start, end, trans, grad_log_z)
    assert max_diff(got[0], want[0]) < 2e-6 * want[0].abs().max().item() + 1e-4
    for a, b in zip(got[1], want[1]):
        assert max_diff(a, b) < 5e-5 * max(1.0, b.abs().max().item())
    assert max_diff(got[2], want[2]) < 2e-5
    mask = torch.arange(2048)[None, :] < lengths[:, None]
    path32 = crf_module._viterbi_torch(emissions.float(), mask, start, end, trans, -7)
    assert torch.equal(got[3].cpu(), path32)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA or INTERPRETED, reason="needs a CUDA device (and TRITON_INTERPRET unset)")
def test_gpu_auto_picks_triton(monkeypatch):
    monkeypatch.setenv("MAMBA_NER_CRF", "auto")
    assert crf_module._crf_path(torch.zeros(1, 2, 3, device="cuda")) == "triton"
    assert crf_module._crf_path(torch.zeros(1, 2, 3)) in ("cpp", "torch")
