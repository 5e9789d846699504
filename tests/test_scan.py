"""The fast selective-scan paths against the plain reference: outputs, last state, every gradient."""
import functools
import logging

import pytest
import torch

from mamba_ner import scan as scan_module
from mamba_ner import scan_cpu_kernel
from mamba_ner.scan import (
    causal_conv1d,
    causal_conv1d_ref,
    cpu_kernel_available,
    selective_scan,
    selective_scan_cpp,
    selective_scan_ref,
    selective_scan_torch,
)

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_inputs(b, d, l, n, dtype=torch.float32, D=True, z=True, delta_bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_()

    inputs = dict(u=rand(b, d, l), delta=rand(b, d, l, scale=0.5),
                  A=(-torch.rand(d, n, generator=g, dtype=torch.float64) * 2 - 0.1).to(dtype).requires_grad_(),
                  B=rand(b, n, l), C=rand(b, n, l),
                  D=rand(d) if D else None, z=rand(b, d, l) if z else None,
                  delta_bias=rand(d, scale=0.2) if delta_bias else None)
    return inputs


def run(fn, inputs, grad_out, delta_softplus):
    out, last_state = fn(**inputs, delta_softplus=delta_softplus, return_last_state=True)
    names = [k for k in NAMES if inputs[k] is not None]
    grads = torch.autograd.grad(out, [inputs[k] for k in names], grad_out)
    return out, last_state, dict(zip(names, grads))


def assert_close(actual, expected, rtol, atol, what):
    scale = expected.detach().abs().max().item() + 1e-6
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol * scale, msg=lambda m: f"{what}: {m}")


@pytest.fixture
def small_torch_chunks(monkeypatch):
    """Make the torch path use chunks of 16 steps, so that chunk boundaries are crossed."""
    monkeypatch.setattr(scan_module, "_CHUNK_ELEMENTS", 1)


SHAPES = [(1, 3, 1, 4), (2, 5, 7, 3), (3, 4, 33, 16), (2, 6, 131, 8), (1, 2, 200, 5)]
OPTIONS = [  # D, z, delta_bias, delta_softplus
    (True, True, True, True),
    (False, False, False, False),
    (True, False, True, False),
    (False, True, False, True),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}d{}l{}n{}".format(*s))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "D{:d}z{:d}bias{:d}sp{:d}".format(*o))
def test_fast_paths_match_reference_fp32(fast_scan, small_torch_chunks, shape, options):
    D, z, bias, softplus = options
    inputs = make_inputs(*shape, D=D, z=z, delta_bias=bias)
    grad_out = torch.randn(shape[0], shape[1], shape[2], generator=torch.Generator().manual_seed(1))
    out_ref, last_ref, grads_ref = run(selective_scan_ref, inputs, grad_out, softplus)
    out, last, grads = run(fast_scan, inputs, grad_out, softplus)
    assert out.dtype == torch.float32 and out.shape == out_ref.shape
    assert last.shape == (shape[0], shape[1], shape[3])
    assert_close(out, out_ref, 1e-5, 1e-5, "out")
    assert_close(last, last_ref, 1e-5, 1e-5, "last_state")
    assert grads.keys() == grads_ref.keys()
    for name, grad in grads_ref.items():
        assert_close(grads[name], grad, 1e-4, 1e-5, f"grad {name}")


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (2, 8, 70, 16)], ids=str)
def test_fast_paths_match_reference_bf16(fast_scan, shape):
    inputs = make_inputs(*shape, dtype=torch.bfloat16)
    grad_out = torch.randn(shape[0], shape[1], shape[2], generator=torch.Generator().manual_seed(1))
    out_ref, last_ref, grads_ref = run(selective_scan_ref, inputs, grad_out.bfloat16(), True)
    out, last, grads = run(fast_scan, inputs, grad_out.bfloat16(), True)
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32
    assert_close(out, out_ref, 2e-2, 2e-2, "out")
    assert_close(last, last_ref, 1e-3, 1e-3, "last_state")
    for name, grad in grads_ref.items():
        assert grads[name].dtype == torch.bfloat16
        assert_close(grads[name], grad, 3e-2, 3e-2, f"grad {name}")


@pytest.mark.parametrize("path", ["ref", "torch", "cpp"])
def test_gradcheck_float64(path, small_torch_chunks):
    if path == "cpp" and not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    fn = {"ref": selective_scan_ref, "torch": selective_scan_torch, "cpp": selective_scan_cpp}[path]
    inputs = make_inputs(2, 3, 5, 2, dtype=torch.float64)
    names = list(inputs)

    def scan(*tensors):
        out, last_state = fn(**dict(zip(names, tensors)), delta_softplus=True, return_last_state=True)
        return out

    assert torch.autograd.gradcheck(scan, tuple(inputs.values()), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_softplus_of_extreme_deltas(fast_scan):
    """Δ from -40 to 40, across softplus' threshold (20) and into its underflow."""
    inputs = make_inputs(1, 81, 6, 4, delta_bias=False)
    with torch.no_grad():
        inputs["delta"].copy_(torch.linspace(-40, 40, 81)[None, :, None].expand(1, 81, 6))
        inputs["A"].mul_(0.01)
    grad_out = torch.randn(1, 81, 6, generator=torch.Generator().manual_seed(1))
    out_ref, last_ref, grads_ref = run(selective_scan_ref, inputs, grad_out, True)
    out, last, grads = run(fast_scan, inputs, grad_out, True)
    assert_close(out, out_ref, 1e-5, 1e-6, "out")
    for name, grad in grads_ref.items():
        assert_close(grads[name], grad, 1e-4, 1e-6, f"grad {name}")


def test_long_sequence_crosses_chunks_cpp():
    if not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    shape = (2, 3, 64 * 3 + 1, 16)  # the kernel stores the state every 64 steps
    inputs = make_inputs(*shape)
    grad_out = torch.randn(2, 3, shape[2], generator=torch.Generator().manual_seed(1))
    out_ref, last_ref, grads_ref = run(selective_scan_ref, inputs, grad_out, True)
    out, last, grads = run(selective_scan_cpp, inputs, grad_out, True)
    assert_close(out, out_ref, 1e-5, 1e-5, "out")
    for name, grad in grads_ref.items():
        assert_close(grads[name], grad, 1e-4, 1e-5, f"grad {name}")


@pytest.mark.parametrize("b, d", [(0, 3), (2, 0)])
def test_empty_batch_or_channels(fast_scan, b, d):
    inputs = make_inputs(b, d, 5, 4)
    out, last_state = fast_scan(**inputs, delta_softplus=True, return_last_state=True)
    assert out.shape == (b, d, 5) and last_state.shape == (b, d, 4)
    out.sum().backward()
    assert all(t.grad is not None and t.grad.shape == t.shape for t in inputs.values())


def test_padded_rows_do_not_see_their_padding(fast_scan):
    """Real tokens come first in each row: outputs on them must not depend on what follows."""
    lengths = [9, 4, 1]
    inputs = make_inputs(3, 4, 9, 6)
    out = fast_scan(**inputs, delta_softplus=True)
    for row, length in enumerate(lengths):
        alone = {k: (v if k in ("A", "D", "delta_bias") else v[row:row + 1, :, :length]) for k, v in inputs.items()}
        expected = selective_scan_ref(**alone, delta_softplus=True)
        assert_close(out[row:row + 1, :, :length], expected, 1e-5, 1e-5, f"row {row}")


def test_cpp_is_deterministic_across_runs_and_thread_counts():
    if not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    inputs = make_inputs(3, 40, 150, 16)
    grad_out = torch.randn(3, 40, 150, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    try:
        results = []
        for n_threads in (threads, 1, threads):
            torch.set_num_threads(n_threads)
            results.append(run(selective_scan_cpp, inputs, grad_out, True))
    finally:
        torch.set_num_threads(threads)
    first = results[0]
    for other in results[1:]:
        assert torch.equal(first[0], other[0]) and torch.equal(first[1], other[1])
        for name in first[2]:
            assert torch.equal(first[2][name], other[2][name]), name


def test_env_var_forces_the_path(monkeypatch):
    calls = []
    for name in ("selective_scan_ref", "selective_scan_torch", "selective_scan_cpp"):
        original = getattr(scan_module, name)
        monkeypatch.setattr(scan_module, name,
                            lambda *a, _n=name, _f=original, **k: calls.append(_n) or _f(*a, **k))
    inputs = make_inputs(1, 2, 3, 2)
    for path, expected in (("ref", "selective_scan_ref"), ("torch", "selective_scan_torch")):
        monkeypatch.setenv("MAMBA_NER_SCAN", path)
        calls.clear()
        selective_scan(**inputs)
        assert calls == [expected]
    monkeypatch.setenv("MAMBA_NER_SCAN", "auto")
    calls.clear()
    selective_scan(**inputs)
    assert calls == ["selective_scan_cpp" if cpu_kernel_available() else "selective_scan_torch"]
    monkeypatch.setenv("MAMBA_NER_SCAN", "fast")
    with pytest.raises(ValueError, match="MAMBA_NER_SCAN='fast'; expected one of auto, ref, torch, cpp, cuda"):
        selective_scan(**inputs)


def test_failed_compile_falls_back_with_one_warning(monkeypatch, caplog):
    import torch.utils.cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", no_compiler)
    monkeypatch.setattr(scan_cpu_kernel, "_state", {"tried": False, "ops": None})
    monkeypatch.setenv("MAMBA_NER_SCAN", "auto")
    inputs = make_inputs(2, 3, 5, 4)
    with caplog.at_level(logging.WARNING, logger=scan_cpu_kernel.__name__):
        out = selective_scan(**inputs, delta_softplus=True)
        selective_scan(**inputs, delta_softplus=True)
    warnings = [r for r in caplog.records if "Could not compile the C++ selective scan" in r.getMessage()]
    assert len(warnings) == 1 and "no compiler here" in warnings[0].getMessage()
    assert_close(out, selective_scan_ref(**inputs, delta_softplus=True), 1e-5, 1e-5, "fallback out")
    monkeypatch.setenv("MAMBA_NER_SCAN", "cpp")
    with pytest.raises(RuntimeError, match="could not be compiled"):
        selective_scan(**inputs)


@pytest.mark.parametrize("change, message", [
    (dict(u=torch.zeros(2, 3)), "u must be (batch, d_inner, length)"),
    (dict(delta=torch.zeros(2, 3, 4)), "delta must have u's shape"),
    (dict(A=torch.zeros(4, 2)), "A must be (d_inner=3, d_state)"),
    (dict(B=torch.zeros(2, 3, 5)), "B must be (batch, d_state, length)"),
    (dict(D=torch.zeros(4)), "D must be (d_inner,)"),
    (dict(z=torch.zeros(2, 3, 4)), "z must have u's shape"),
])
def test_bad_shapes_raise(change, message):
    inputs = {k: (v.detach() if v is not None else None) for k, v in make_inputs(2, 3, 5, 2).items()}
    inputs.update(change)
    for fn in (selective_scan_ref, selective_scan_torch, selective_scan):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fn(**inputs)


@pytest.mark.gpu
def test_cuda_kernel_matches_reference():
    if not torch.cuda.is_available() or scan_module._mamba_ssm_scan is None:
        pytest.skip("needs CUDA and mamba_ssm")
    inputs = {k: v.detach().cuda().requires_grad_() for k, v in make_inputs(2, 64, 300, 16).items()}
    grad_out = torch.randn(2, 64, 300, device="cuda")
    out_ref, last_ref, grads_ref = run(selective_scan_ref, inputs, grad_out, True)
    out, last, grads = run(selective_scan, inputs, grad_out, True)
    assert_close(out, out_ref, 1e-4, 1e-4, "out")
    assert_close(last, last_ref, 1e-4, 1e-4, "last_state")
    for name, grad in grads_ref.items():
        assert_close(grads[name], grad, 1e-3, 1e-3, f"grad {name}")


@pytest.mark.gpu
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_cuda_kernel_composition_matches_reference(direction):
    """The bidirectional model's use of mamba_ssm: reverse within each row's length, y_add and out_scale."""
    if not torch.cuda.is_available() or scan_module._mamba_ssm_scan is None:
        pytest.skip("needs CUDA and mamba_ssm")
    b, d, l, n = 3, 64, 300, 16
    inputs = make_inputs(b, d, l, n)
    g = torch.Generator().manual_seed(4)
    reverse = direction == "reverse"
    extra = dict(reverse=reverse, lengths=torch.tensor([300, 170, 1]) if reverse else None,
                 y_add=torch.randn(b, d, l, generator=g), out_scale=0.5)
    grad_out = torch.randn(b, d, l, generator=g)
    out_ref, last_ref, grads_ref = run(functools.partial(selective_scan_ref, **extra), inputs, grad_out, True)
    cuda = {k: v.detach().cuda().requires_grad_() for k, v in inputs.items() if v is not None}
    cuda_extra = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in extra.items()}
    out, last, grads = run(functools.partial(selective_scan, **cuda_extra), cuda, grad_out.cuda(), True)
    assert_close(out.cpu(), out_ref, 1e-4, 1e-4, "out")
    for name, grad in grads_ref.items():
        assert_close(grads[name].cpu(), grad, 1e-3, 1e-3, f"grad {name}")


@pytest.mark.gpu
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_causal_conv1d_matches_reference(reverse, dtype):
    """causal-conv1d's CUDA kernel, also reversed within each row's length, against F.conv1d on the CPU."""
    if not torch.cuda.is_available() or scan_module._cuda_causal_conv1d is None:
        pytest.skip("needs CUDA and causal_conv1d")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 64, 257, generator=g).requires_grad_()
    weight = torch.randn(64, 4, generator=g).requires_grad_()
    bias = torch.randn(64, generator=g).requires_grad_()
    lengths = torch.tensor([257, 100, 1]) if reverse else None
    grad_out = torch.randn(3, 64, 257, generator=g)
    expected = causal_conv1d_ref(x, weight, bias, "silu", reverse=reverse, lengths=lengths)
    want = torch.autograd.grad(expected, (x, weight, bias), grad_out)
    leaves = [t.detach().cuda().to(dtype).requires_grad_() for t in (x, weight, bias)]
    actual = causal_conv1d(*leaves, "silu", reverse=reverse, lengths=None if lengths is None else lengths.cuda())
    got = torch.autograd.grad(actual, leaves, grad_out.cuda().to(dtype))
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    assert actual.dtype == dtype
    assert_close(actual.float().cpu(), expected, tol, tol, "conv out")
    for name, a, w in zip(("x", "weight", "bias"), got, want):
        assert_close(a.float().cpu(), w, tol, tol, f"conv grad {name}")


@pytest.fixture(params=["cpp", "torch"])
def conv_path(request, monkeypatch):
    if request.param == "cpp" and not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    monkeypatch.setenv("MAMBA_NER_SCAN", request.param)
    return request.param


@pytest.mark.parametrize("width", [1, 4, 17])  # 17: wider than the register path (16 taps)
@pytest.mark.parametrize("length", [1, 3, 130])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias, activation", [(True, "silu"), (False, None)])
def test_causal_conv1d_matches_reference(conv_path, width, length, channels_last, bias, activation):
    g = torch.Generator().manual_seed(0)
    b, d = 2, 21  # 21 channels: one full vector block of 16 and a partial one
    if channels_last:  # (b, l, d) memory seen as (b, d, l), as the in-projection gives it
        x = torch.randn(b, length, d, generator=g).transpose(1, 2).requires_grad_()
    else:
        x = torch.randn(b, d, length, generator=g).requires_grad_()
    weight = torch.randn(d, width, generator=g).requires_grad_()
    bias_t = torch.randn(d, generator=g).requires_grad_() if bias else None
    leaves = [t for t in (x, weight, bias_t) if t is not None]
    grad_out = torch.randn(b, d, length, generator=g)
    expected = causal_conv1d_ref(x, weight, bias_t, activation=activation)
    actual = causal_conv1d(x, weight, bias_t, activation=activation)
    assert_close(actual, expected, 1e-5, 1e-6, "conv out")
    for got, want in zip(torch.autograd.grad(actual, leaves, grad_out), torch.autograd.grad(expected, leaves, grad_out)):
        assert_close(got, want, 1e-5, 1e-6, "conv grad")
    causal = causal_conv1d(x[..., :1], weight, bias_t, activation=activation)
    assert_close(causal, actual[..., :1], 1e-6, 1e-6, "first position sees only itself")


def test_causal_conv1d_rejects_bad_arguments():
    x, weight = torch.zeros(2, 3, 4), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="activation must be None, 'silu' or 'swish', got 'relu'"):
        causal_conv1d(x, weight, activation="relu")
    with pytest.raises(ValueError, match="x must be"):
        causal_conv1d(x, torch.zeros(4, 4))


def test_causal_conv1d_gradcheck_float64(conv_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, generator=g, dtype=torch.float64).requires_grad_()
    weight = torch.randn(3, 4, generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: causal_conv1d(*a, activation="silu"), (x, weight, bias))


def test_causal_conv1d_bf16(conv_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 20, 9, generator=g).bfloat16()
    weight, bias = torch.randn(20, 4, generator=g).bfloat16(), torch.randn(20, generator=g).bfloat16()
    out = causal_conv1d(x, weight, bias)
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), causal_conv1d_ref(x.float(), weight.float(), bias.float()), 2e-2, 2e-2, "bf16 conv")



def test_decay_over_the_whole_float_range_matches_reference(fast_scan):
    """exp(Δ A) from -120 to 100 and at ±inf / NaN, read through a two-step scan (y_2 = exp(Δ_2 A) h_1 with
    h_1 = 1): the kernels' own exp must give the reference's values, infinities and NaNs."""
    x = torch.cat([torch.linspace(-120, 100, 4001),
                   torch.tensor([float("-inf"), float("nan"), 88.7, 89.0, 1e8, -1e8, -1e30])])
    d = x.numel()
    u = torch.zeros(1, d, 2)
    u[..., 0] = 1
    delta, A = torch.ones(1, d, 2), x[:, None].clone()
    B, C = torch.ones(1, 1, 2), torch.tensor([[[0.0, 1.0]]])
    got = fast_scan(u, delta, A, B, C)[0, :, 1]
    want = selective_scan_ref(u, delta, A, B, C)[0, :, 1]
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want))
    normal = torch.isfinite(want) & (want.abs() >= torch.finfo(torch.float32).tiny)
    assert ((got[normal] - want[normal]).abs() / want[normal].abs()).max() < 5e-7
    assert (got[torch.isfinite(want) & ~normal].abs() <= torch.finfo(torch.float32).tiny).all()  # 0 or denormal
