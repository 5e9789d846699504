"""The CRF against brute-force enumeration over every tag sequence on tiny inputs."""
import itertools
import logging
import math

import pytest
import torch

from mamba_ner import crf as crf_module
from mamba_ner import crf_cpu_kernel
from mamba_ner.crf import FORBIDDEN, LinearChainCRF, allowed_transitions

BIO_LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y"]


@pytest.fixture(params=["auto", "torch"])
def crf_path(request, monkeypatch):
    """Run a test on the C++ kernels (auto, when they compile) and on the Python recursions (torch)."""
    monkeypatch.setenv("MAMBA_NER_CRF", request.param)
    return request.param


def make_crf(labels=None, scheme="none", num_tags=None, seed=0):
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags or len(labels), labels, scheme)
    with torch.no_grad():
        for p in crf.parameters():
            p.uniform_(-1, 1)
    return crf


def path_score(crf, emissions, tags):
    """Score of one tag path over one unmasked sequence, written out term by term."""
    start, end, trans = crf.constrained_scores(torch.float64)
    e = emissions.double()
    s = start[tags[0]] + e[0, tags[0]]
    for i in range(1, len(tags)):
        s = s + trans[tags[i - 1], tags[i]] + e[i, tags[i]]
    return s + end[tags[-1]]


def brute_force(crf, emissions, length):
    """(log Z, best path) by enumerating all k^length paths of the first `length` positions."""
    scores = {p: path_score(crf, emissions[:length], list(p)) for p in itertools.product(range(crf.num_tags), repeat=length)}
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    best = max(scores, key=lambda p: scores[p].item())
    return log_z, list(best)


@pytest.mark.parametrize("labels,scheme", [(None, "none"), (BIO_LABELS, "BIO")])
@pytest.mark.usefixtures("crf_path")
def test_log_partition_and_viterbi_match_brute_force_with_masks(labels, scheme):
    crf = make_crf(labels, scheme, num_tags=4 if labels is None else None)
    k = crf.num_tags
    torch.manual_seed(1)
    emissions = torch.randn(3, 4, k)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    lengths = mask.sum(1).tolist()
    log_z = crf._log_partition(emissions, mask)
    decoded = crf.decode(emissions, mask)
    for row, length in enumerate(lengths):
        expected_log_z, expected_path = brute_force(crf, emissions[row], length)
        assert log_z[row].item() == pytest.approx(expected_log_z.item(), abs=1e-4)
        assert decoded[row, :length].tolist() == expected_path
        assert (decoded[row, length:] == -100).all()


@pytest.mark.usefixtures("crf_path")
def test_nll_matches_brute_force_and_gradients_flow():
    crf = make_crf(BIO_LABELS, "BIO")
    torch.manual_seed(2)
    emissions = torch.randn(2, 3, 5, requires_grad=True)
    tags = torch.tensor([[1, 2, 0], [3, 4, -100]])
    nll = crf(emissions, tags, reduction="none")
    for row, length in enumerate([3, 2]):
        log_z, _ = brute_force(crf, emissions[row].detach(), length)
        gold = path_score(crf, emissions[row].detach()[:length], tags[row, :length].tolist())
        assert nll[row].item() == pytest.approx((log_z - gold).item(), abs=1e-4)
    nll.mean().backward()
    assert emissions.grad is not None and emissions.grad.abs().sum() > 0
    assert crf.transitions.grad is not None and crf.transitions.grad.abs().sum() > 0
    assert crf.start_transitions.grad.abs().sum() > 0 and crf.end_transitions.grad.abs().sum() > 0
    assert emissions.grad[1, 2].abs().sum() == 0  # a -100 position gets no gradient


@pytest.mark.usefixtures("crf_path")
def test_probabilities_sum_to_one_and_forbidden_paths_have_zero_probability():
    crf = make_crf(BIO_LABELS, "BIO")
    start_ok, _, trans_ok = allowed_transitions(BIO_LABELS, "BIO")
    torch.manual_seed(3)
    emissions = torch.randn(1, 3, 5)
    total = 0.0
    n_forbidden = 0
    for path in itertools.product(range(5), repeat=3):
        prob = math.exp(-crf(emissions, torch.tensor([path])).item())
        allowed = start_ok[path[0]] and trans_ok[path[0]][path[1]] and trans_ok[path[1]][path[2]]
        if allowed:
            total += prob
        else:
            n_forbidden += 1
            assert prob == 0.0, f"forbidden path {[BIO_LABELS[t] for t in path]} has probability {prob}"
    assert total == pytest.approx(1.0, abs=1e-5)
    assert n_forbidden > 0


def test_bio_constraints():
    start_ok, end_ok, trans_ok = allowed_transitions(BIO_LABELS, "BIO")
    ix = {label: i for i, label in enumerate(BIO_LABELS)}
    assert start_ok == [True, True, False, True, False]
    assert all(end_ok)
    assert not trans_ok[ix["O"]][ix["I-X"]]
    assert not trans_ok[ix["B-X"]][ix["I-Y"]]
    assert not trans_ok[ix["I-Y"]][ix["I-X"]]
    assert trans_ok[ix["B-X"]][ix["I-X"]] and trans_ok[ix["I-X"]][ix["I-X"]]
    assert trans_ok[ix["I-X"]][ix["B-Y"]] and trans_ok[ix["O"]][ix["B-X"]]


def test_iobes_constraints():
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    start_ok, end_ok, trans_ok = allowed_transitions(labels, "IOBES")
    ix = {label: i for i, label in enumerate(labels)}
    assert start_ok == [True, True, False, False, True]
    assert end_ok == [True, False, False, True, True]
    assert trans_ok[ix["B-X"]][ix["E-X"]] and trans_ok[ix["B-X"]][ix["I-X"]]
    assert not trans_ok[ix["B-X"]][ix["O"]] and not trans_ok[ix["O"]][ix["E-X"]]
    assert trans_ok[ix["E-X"]][ix["S-X"]] and not trans_ok[ix["S-X"]][ix["I-X"]]


@pytest.mark.usefixtures("crf_path")
def test_viterbi_never_outputs_forbidden_transition_even_when_emissions_favour_it():
    crf = make_crf(BIO_LABELS, "BIO")
    emissions = torch.zeros(1, 3, 5)
    emissions[0, :, BIO_LABELS.index("I-X")] = 50.0  # argmax would say I-X I-X I-X
    path = crf.decode(emissions)[0].tolist()
    assert [BIO_LABELS[t] for t in path] == ["B-X", "I-X", "I-X"]


@pytest.mark.usefixtures("crf_path")
def test_holes_in_mask_equal_the_compacted_chain():
    crf = make_crf(BIO_LABELS, "BIO")
    torch.manual_seed(4)
    emissions = torch.randn(1, 5, 5)
    tags_with_holes = torch.tensor([[-100, 1, -100, 2, 0]])
    compact = emissions[:, [1, 3, 4]]
    assert crf(emissions, tags_with_holes).item() == pytest.approx(crf(compact, torch.tensor([[1, 2, 0]])).item(), abs=1e-5)
    holes = tags_with_holes != -100
    decoded = crf.decode(emissions, holes)
    assert decoded[0, [0, 2]].tolist() == [-100, -100]
    assert decoded[0, [1, 3, 4]].tolist() == crf.decode(compact)[0].tolist()


@pytest.mark.usefixtures("crf_path")
def test_rows_without_any_tag_are_ignored_by_the_mean():
    crf = make_crf(BIO_LABELS, "BIO")
    emissions = torch.randn(2, 3, 5)
    tags = torch.tensor([[1, 2, 0], [-100, -100, -100]])
    both = crf(emissions, tags)
    alone = crf(emissions[:1], tags[:1])
    assert both.item() == pytest.approx(alone.item(), abs=1e-5)


@pytest.mark.usefixtures("crf_path")
def test_marginals_match_brute_force():
    crf = make_crf(BIO_LABELS, "BIO")
    torch.manual_seed(5)
    emissions = torch.randn(1, 3, 5)
    marg = crf.marginals(emissions)
    expected = torch.zeros(3, 5, dtype=torch.float64)
    log_z, _ = brute_force(crf, emissions[0], 3)
    for path in itertools.product(range(5), repeat=3):
        p = torch.exp(path_score(crf, emissions[0], list(path)) - log_z)
        for i, t in enumerate(path):
            expected[i, t] += p
    assert torch.allclose(marg[0].double(), expected, atol=1e-5)
    assert torch.allclose(marg.sum(-1), torch.ones(1, 3), atol=1e-5)


def test_forbidden_constant_is_large_enough():
    assert math.exp(FORBIDDEN) == 0.0


# ---------------------------------------------------------------- input validation, one test each
def test_error_emissions_dim():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match="emissions must have dimension of 3, got 2"):
        crf.decode(torch.randn(2, 3))


def test_error_emissions_last_dim():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match="expected last dimension of emissions is 3, got 4"):
        crf.decode(torch.randn(1, 2, 4))


def test_error_tags_shape():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match=r"the first two dimensions of emissions and tags must match, got \(1, 2\) and \(1, 3\)"):
        crf(torch.randn(1, 2, 3), torch.zeros(1, 3, dtype=torch.long))


def test_error_mask_shape():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match=r"the first two dimensions of emissions and mask must match, got \(1, 2\) and \(1, 3\)"):
        crf.decode(torch.randn(1, 2, 3), torch.ones(1, 3, dtype=torch.bool))


def test_error_reduction():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match="invalid reduction: foo"):
        crf(torch.randn(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), reduction="foo")


def test_error_tag_out_of_range():
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match=r"tags must be in \[0, 3\) or -100"):
        crf(torch.randn(1, 2, 3), torch.tensor([[0, 3]]))


def test_error_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tagging scheme 'XYZ'"):
        LinearChainCRF(2, ["O", "B-X"], "XYZ")


def test_error_label_not_in_scheme():
    with pytest.raises(ValueError, match="label 'S-X' is not valid for this tagging scheme"):
        LinearChainCRF(2, ["O", "S-X"], "BIO")


def test_error_label_count():
    with pytest.raises(ValueError, match="got 2 labels for 3 tags"):
        LinearChainCRF(3, ["O", "B-X"], "BIO")


@pytest.mark.usefixtures("crf_path")
def test_hand_written_backward_matches_autograd_reference():
    crf = make_crf(BIO_LABELS, "BIO")
    torch.manual_seed(6)
    for length in (1, 2, 7):
        emissions = torch.randn(3, length, 5, dtype=torch.float64, requires_grad=True)
        mask = torch.ones(3, length, dtype=torch.bool)
        mask[1, max(1, length - 2):] = False
        mask[2, 1:] = False
        weights = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
        fast = (crf._log_partition(emissions, mask) * weights).sum()
        inputs = [emissions, *crf.parameters()]
        fast_grads = torch.autograd.grad(fast, inputs, allow_unused=True, materialize_grads=True)
        ref = (crf._log_partition_ref(emissions, mask) * weights).sum()
        ref_grads = torch.autograd.grad(ref, inputs, allow_unused=True, materialize_grads=True)
        assert fast.item() == pytest.approx(ref.item(), abs=1e-9)
        for a, b in zip(fast_grads, ref_grads):
            assert torch.allclose(a.double(), b.double(), atol=1e-9)


# ---------------------------------------------------------------- C++ kernels against the Python recursions
@pytest.fixture
def ops(monkeypatch):
    """The compiled CRF ops (the test is skipped where nothing compiles), with MAMBA_NER_CRF=auto."""
    kernel = crf_cpu_kernel.load_crf_kernel()
    if kernel is None:
        pytest.skip("the C++ CRF kernels could not be compiled here")
    monkeypatch.setenv("MAMBA_NER_CRF", "auto")
    return kernel


def random_problem(b, l, k, dtype, scheme, seed, holes=False):
    """Packed emissions, mask (random row lengths, with lengths l, 1 and 0 when b allows), start, end, trans."""
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(b, l, k, dtype=dtype, generator=gen) * 2
    lengths = torch.randint(1, l + 1, (b,), generator=gen)
    lengths[0] = l
    if b > 2:
        lengths[1] = 1
        lengths[2] = 0  # a row with no valid position
    mask = torch.arange(l)[None, :] < lengths[:, None]
    if holes:  # not packed: the kernels must still treat every position as the Python code does
        mask = torch.rand(b, l, generator=gen) < 0.7
    labels = BIO_LABELS if scheme == "BIO" else None
    crf = make_crf(labels, scheme, num_tags=k if labels is None else None, seed=seed)
    start, end, trans = crf.constrained_scores(dtype)
    return emissions, mask, start.detach(), end.detach(), trans.detach()


def assert_close(a, b, dtype, what):
    rtol, atol = (1e-10, 1e-10) if dtype == torch.float64 else (1e-5, 2e-5)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    assert torch.allclose(a, b, rtol=rtol, atol=atol), f"{what}: max abs diff {(a - b).abs().max().item()}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scheme", ["none", "BIO"])
@pytest.mark.parametrize("b,l", [(1, 1), (3, 1), (4, 2), (5, 7), (3, 13), (2, 40)])
def test_kernels_match_python_recursions(ops, b, l, scheme, dtype):
    k = 5 if scheme == "BIO" else 6
    for holes in (False, True):
        emissions, mask, start, end, trans = random_problem(b, l, k, dtype, scheme, seed=b * 100 + l, holes=holes)
        log_z, alphas = ops.log_partition_fwd(emissions, mask, start, end, trans)
        log_z_ref, alphas_ref = crf_module._log_partition_forward_torch(emissions, mask, start, end, trans)
        assert_close(log_z, log_z_ref, dtype, "log Z")
        assert_close(alphas, alphas_ref, dtype, "alphas")
        grad_log_z = torch.randn(b, dtype=dtype)
        grads = ops.log_partition_bwd(emissions, mask, end, trans, alphas, log_z, grad_log_z)
        grads_ref = crf_module._log_partition_backward_torch(emissions, mask, end, trans, alphas_ref, log_z_ref, grad_log_z)
        for name, got, want in zip(("emissions", "start", "end", "trans"), grads, grads_ref):
            assert_close(got, want, dtype, f"grad {name}")
        path = ops.viterbi(emissions, mask, start, end, trans, -7)
        assert torch.equal(path, crf_module._viterbi_torch(emissions, mask, start, end, trans, -7))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_viterbi_kernel_breaks_ties_like_torch(ops, dtype):
    """Small integer scores make many exact ties; the first maximum (lowest tag id) must win as in torch."""
    gen = torch.Generator().manual_seed(7)
    b, l, k = 6, 9, 4
    emissions = torch.randint(-1, 2, (b, l, k), generator=gen).to(dtype)
    mask = torch.arange(l)[None, :] < torch.tensor([9, 5, 1, 0, 9, 3])[:, None]
    start, end = torch.zeros(k, dtype=dtype), torch.randint(0, 2, (k,), generator=gen).to(dtype)
    for trans in (torch.zeros(k, k, dtype=dtype), torch.randint(-1, 2, (k, k), generator=gen).to(dtype)):
        path = ops.viterbi(emissions, mask, start, end, trans, -100)
        assert torch.equal(path, crf_module._viterbi_torch(emissions, mask, start, end, trans, -100))


@pytest.mark.parametrize("scheme", ["none", "BIO"])
def test_crf_module_same_on_both_paths(ops, monkeypatch, scheme):
    """NLL with gradients wrt emissions and every parameter, decode and marginals: kernel vs Python."""
    labels = BIO_LABELS if scheme == "BIO" else None
    crf = make_crf(labels, scheme, num_tags=5)
    torch.manual_seed(8)
    emissions = torch.randn(4, 11, 5)
    tags = torch.randint(0, 5, (4, 11))
    tags[1, 6:] = -100
    tags[2, [0, 3, 4]] = -100
    tags[3] = -100
    results = {}
    for path in ("auto", "torch"):
        monkeypatch.setenv("MAMBA_NER_CRF", path)
        leaf = emissions.clone().requires_grad_(True)
        crf.zero_grad()
        nll = crf(leaf, tags, reduction="sum")
        nll.backward()
        results[path] = [nll.detach(), leaf.grad] + [p.grad.clone() for p in crf.parameters()]
        results[path] += [crf.decode(emissions, tags != -100), crf.marginals(emissions, tags != -100)]
    for got, want in zip(results["auto"], results["torch"]):
        if got.is_floating_point():
            assert_close(got, want, torch.float32, "crf")
        else:
            assert torch.equal(got, want)


def test_kernel_path_is_the_one_taken(ops, monkeypatch):
    def fail(*args):
        raise AssertionError("the Python recursion ran although the C++ kernels are loaded")

    for name in ("_log_partition_forward_torch", "_log_partition_backward_torch", "_viterbi_torch"):
        monkeypatch.setattr(crf_module, name, fail)
    crf = make_crf(BIO_LABELS, "BIO")
    emissions = torch.randn(2, 6, 5, requires_grad=True)
    crf(emissions, torch.zeros(2, 6, dtype=torch.long)).backward()
    crf.decode(emissions.detach())
    crf.marginals(emissions.detach())


def test_gradcheck_through_kernel(ops):
    emissions, _, start, end, trans = random_problem(3, 4, 3, torch.float64, "none", seed=9)
    # rows of length >= 1: the log Z of an empty row is discarded by the NLL, and both paths give it no gradient
    mask = torch.arange(4)[None, :] < torch.tensor([4, 1, 3])[:, None]
    inputs = [t.clone().requires_grad_(True) for t in (emissions, start, end, trans)]

    def log_z(e, s, n, t):
        return crf_module._LogPartition.apply(e, mask, s, n, t)

    assert torch.autograd.gradcheck(log_z, inputs)


def test_crf_env_var_is_checked(monkeypatch):
    monkeypatch.setenv("MAMBA_NER_CRF", "fast")
    crf = make_crf(num_tags=3)
    with pytest.raises(ValueError, match="MAMBA_NER_CRF='fast'; expected one of auto, torch, cpp, triton"):
        crf.decode(torch.randn(1, 2, 3))


def test_failed_crf_compile_falls_back_with_one_warning(monkeypatch, caplog):
    import torch.utils.cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", no_compiler)
    monkeypatch.setattr(crf_cpu_kernel, "_state", {"tried": False, "ops": None})
    monkeypatch.setenv("MAMBA_NER_CRF", "auto")
    crf = make_crf(BIO_LABELS, "BIO")
    emissions = torch.randn(2, 4, 5)
    with caplog.at_level(logging.WARNING, logger=crf_cpu_kernel.__name__):
        decoded = crf.decode(emissions)
        nll = crf(emissions, decoded)
    warnings = [r for r in caplog.records if "Could not compile the C++ CRF kernels" in r.getMessage()]
    assert len(warnings) == 1 and "no compiler here" in warnings[0].getMessage()
    monkeypatch.setenv("MAMBA_NER_CRF", "torch")
    assert torch.equal(decoded, crf.decode(emissions))
    assert nll.item() == pytest.approx(crf(emissions, decoded).item(), abs=1e-5)
