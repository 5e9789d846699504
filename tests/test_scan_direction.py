"""Right-to-left reading and the fused combination (y_add, out_scale, gate) of the scan and conv paths.

The expected values are built row by row with plain slicing and the reference functions, so they
check the C++ kernels (which walk memory backwards) and the composed torch path independently.
"""

import pytest
import torch
import torch.nn.functional as F

from mamba_ner import MambaCrfConfig
from mamba_ner.modeling_mamba_crf import MambaCrfMixer
from mamba_ner.scan import (
    causal_conv1d,
    causal_conv1d_ref,
    cpu_kernel_available,
    reverse_index,
    reverse_within_length,
    selective_scan_cpp,
    selective_scan_ref,
    selective_scan_torch,
)


def reverse_rows(x, lengths):
    """Reverse x[b, :, :lengths[b]] row by row with slicing (None: whole rows)."""
    out = x.clone() if lengths is not None else x.flip(-1)
    if lengths is not None:
        for b, n in enumerate(lengths.tolist()):
            out[b, :, :n] = x[b, :, :n].flip(-1)
    return out


def expected_scan(inputs, reverse, lengths, y_add, out_scale):
    """out_scale * (scan + y_add) * silu(z), one row at a time, read in the requested order."""
    u, delta, A, B, C, D, z, bias = (inputs[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias"))
    rows, states = [], []
    for b in range(u.shape[0]):
        pick = [t[b:b + 1] for t in (u, delta, B, C)]
        if reverse:
            pick = [reverse_rows(t, None if lengths is None else lengths[b:b + 1]) for t in pick]
        out, last = selective_scan_ref(pick[0], pick[1], A, pick[2], pick[3], D, None, bias, True, True)
        if reverse:
            out = reverse_rows(out, None if lengths is None else lengths[b:b + 1])
        rows.append(out)
        states.append(last)
    out = torch.cat(rows)
    if y_add is not None:
        out = out + y_add
    out = out * out_scale
    if z is not None:
        out = out * F.silu(z)
    return out, torch.cat(states)


def make(b, d, l, n, dtype, z_strided, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    inputs = dict(u=rand(b, d, l), delta=rand(b, d, l, scale=0.5),
                  A=(-torch.rand(d, n, generator=g, dtype=torch.float64) * 2 - 0.1).to(dtype),
                  B=rand(b, n, l), C=rand(b, n, l), D=rand(d), delta_bias=rand(d, scale=0.2))
    if z_strided:  # the gate as the model gives it: half of a (b, l, 2d) projection, seen as (b, d, l)
        wide = rand(b, l, 2 * d).requires_grad_()
        inputs["z"] = wide[..., d:].transpose(1, 2)
        leaf_z = wide
    else:
        inputs["z"] = leaf_z = rand(b, d, l).requires_grad_()
    for k in ("u", "delta", "A", "B", "C", "D", "delta_bias"):
        inputs[k].requires_grad_()
    return inputs, leaf_z


LENGTHS = {"full": None, "mixed": torch.tensor([37, 0, 1, 20])}
CASES = [  # reverse, lengths, y_add, out_scale, gate
    (True, "full", False, 1.0, False),
    (True, "mixed", False, 1.0, False),
    (True, "mixed", True, 0.5, True),
    (True, "full", True, 0.5, True),
    (False, "full", True, 0.5, True),
    (False, "full", False, 1.0, True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "rev{:d}-{}-add{:d}-s{}-z{:d}".format(c[0], c[1], c[2], c[3], c[4]))
def test_direction_and_combination_match_row_by_row_reference(fast_scan, case):
    reverse, lengths_kind, with_add, out_scale, gate = case
    b, d, l, n = 4, 21, 37, 16  # 21 channels: a full vector block of 16 and a partial one
    inputs, leaf_z = make(b, d, l, n, torch.float32, z_strided=True)
    if not gate:
        inputs["z"] = None
    lengths = LENGTHS[lengths_kind]
    y_add = torch.randn(b, d, l, generator=torch.Generator().manual_seed(3)).requires_grad_() if with_add else None
    grad_out = torch.randn(b, d, l, generator=torch.Generator().manual_seed(4))

    want, want_last = expected_scan(inputs, reverse, lengths, y_add, out_scale)
    got, got_last = fast_scan(**inputs, delta_softplus=True, return_last_state=True, reverse=reverse, lengths=lengths,
                            y_add=y_add, out_scale=out_scale)
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(got_last, want_last, rtol=1e-5, atol=1e-5 * want_last.abs().max().item())

    leaves = [inputs[k] for k in ("u", "delta", "A", "B", "C", "D", "delta_bias")]
    leaves += [leaf_z] if gate else []
    leaves += [y_add] if with_add else []
    for got_g, want_g in zip(torch.autograd.grad(got, leaves, grad_out), torch.autograd.grad(want, leaves, grad_out)):
        torch.testing.assert_close(got_g, want_g, rtol=1e-4, atol=1e-5 * (want_g.abs().max().item() + 1e-6))


def test_cpp_gradcheck_float64_reverse_with_lengths_and_combination():
    if not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    inputs, _ = make(3, 3, 6, 2, torch.float64, z_strided=False)
    y_add = torch.randn(3, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    names = list(inputs) + ["y_add"]
    lengths = torch.tensor([6, 2, 0])

    def scan(*tensors):
        kw = dict(zip(names, tensors))
        return selective_scan_cpp(**kw, delta_softplus=True, reverse=True, lengths=lengths, out_scale=0.5)

    assert torch.autograd.gradcheck(scan, tuple(inputs.values()) + (y_add,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("path", ["cpp", "torch"])
@pytest.mark.parametrize("lengths", [None, torch.tensor([9, 3, 0])], ids=["full", "mixed"])
def test_reverse_conv_matches_row_by_row_reference(monkeypatch, path, lengths):
    if path == "cpp" and not cpu_kernel_available():
        pytest.skip("the C++ kernel could not be compiled here")
    monkeypatch.setenv("MAMBA_NER_SCAN", path)
    g = torch.Generator().manual_seed(0)
    b, d, l = 3, 21, 9
    wide = torch.randn(b, l, 2 * d, generator=g).requires_grad_()
    x = wide[..., :d].transpose(1, 2)  # a slice of a wider projection, as in the model
    weight, bias = torch.randn(d, 4, generator=g).requires_grad_(), torch.randn(d, generator=g).requires_grad_()
    got = causal_conv1d(x, weight, bias, "silu", reverse=True, lengths=lengths)
    want = torch.cat([
        reverse_rows(causal_conv1d_ref(reverse_rows(x[i:i + 1], None if lengths is None else lengths[i:i + 1]),
                                       weight, bias, "silu"), None if lengths is None else lengths[i:i + 1])
        for i in range(b)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    grad_out = torch.randn(b, d, l, generator=g)
    leaves = [wide, weight, bias]
    for got_g, want_g in zip(torch.autograd.grad(got, leaves, grad_out), torch.autograd.grad(want, leaves, grad_out)):
        torch.testing.assert_close(got_g, want_g, rtol=1e-5, atol=1e-5)


def test_reverse_index_is_an_involution_reversing_the_real_tokens():
    lengths = torch.tensor([5, 3, 0, 1])
    index = reverse_index(lengths, 5)
    assert index.tolist() == [[4, 3, 2, 1, 0], [2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    x = torch.arange(4 * 2 * 5).view(4, 2, 5)
    assert torch.equal(reverse_within_length(reverse_within_length(x, lengths), lengths), x)
    assert torch.equal(reverse_within_length(x, None), x.flip(-1))


def test_direction_arguments_are_checked():
    inputs, _ = make(2, 3, 4, 2, torch.float32, z_strided=False)
    with pytest.raises(ValueError, match="lengths only applies with reverse=True"):
        selective_scan_torch(**inputs, lengths=torch.tensor([4, 4]))
    with pytest.raises(ValueError, match=r"lengths must be an int64 tensor of shape \(batch,\) = \(2,\)"):
        selective_scan_torch(**inputs, reverse=True, lengths=torch.tensor([4.0, 4.0]))
    with pytest.raises(ValueError, match="y_add must have u's shape"):
        selective_scan_torch(**inputs, y_add=torch.zeros(2, 3, 5))
    if cpu_kernel_available():
        with pytest.raises(RuntimeError, match=r"lengths must lie in \[0, length\]"):
            selective_scan_cpp(**inputs, reverse=True, lengths=torch.tensor([5, 1]))


def test_bidirectional_mixer_equals_the_explicit_composition():
    """The fused mixer (reverse kernels, combination inside the second scan) against flip / scan /
    flip back / average / gate written out with the reference functions."""
    torch.manual_seed(0)
    config = MambaCrfConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, state_size=4, expand=2,
                            bidirectional=True, use_conv_bias=True)
    mixer = MambaCrfMixer(config, layer_idx=0)
    with torch.no_grad():
        for name in ("A_log", "A_b_log"):
            getattr(mixer, name).copy_(torch.log(torch.rand_like(getattr(mixer, name)) * 3 + 0.5))
        for name in ("D", "D_b"):
            getattr(mixer, name).normal_()
    hidden = torch.randn(3, 11, 16)
    lengths = torch.tensor([11, 6, 1])

    def direction(x, suffix):
        conv, x_proj, dt_proj = (getattr(mixer, f"{k}{suffix}") for k in ("conv1d", "x_proj", "dt_proj"))
        A_log, D = (mixer.A_log, mixer.D) if not suffix else (mixer.A_b_log, mixer.D_b)
        x = causal_conv1d_ref(x, conv.weight.squeeze(1), conv.bias, "silu")
        dt, B, C = torch.split(x_proj(x.transpose(1, 2)), [config.time_step_rank, 4, 4], dim=-1)
        dt = (dt @ dt_proj.weight.t()).transpose(1, 2)
        return selective_scan_ref(x, dt, -torch.exp(A_log), B.transpose(1, 2), C.transpose(1, 2), D, None,
                                  dt_proj.bias, True)

    x, gate = mixer.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)
    y_backward = torch.cat([reverse_rows(direction(reverse_rows(x[i:i + 1], lengths[i:i + 1]), "_b"), lengths[i:i + 1])
                            for i in range(3)])
    y = 0.5 * (direction(x, "") + y_backward) * F.silu(gate)
    want = mixer.out_proj(y.transpose(1, 2))
    got = mixer(hidden, lengths)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for i, n in enumerate(lengths.tolist()):  # each row's real tokens alone give the same output
        alone = mixer(hidden[i:i + 1, :n], None)
        torch.testing.assert_close(alone, got[i:i + 1, :n], rtol=1e-5, atol=1e-6)


def test_cuda_dispatch_composes_direction_around_a_plain_kernel(monkeypatch):
    """The mamba_ssm path knows no direction or combination: the dispatcher must compose them around it.
    Checked on CPU with a stand-in that has mamba_ssm's signature and refuses the extra arguments."""
    from mamba_ner import scan as scan_module

    seen = []

    def plain_kernel(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                     return_last_state=False):
        seen.append(z is None)
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)

    monkeypatch.setattr(scan_module, "_mamba_ssm_scan", plain_kernel)
    monkeypatch.setenv("MAMBA_NER_SCAN", "cuda")
    inputs, _ = make(4, 21, 37, 16, torch.float32, z_strided=True)
    lengths = LENGTHS["mixed"]
    y_add = torch.randn(4, 21, 37, generator=torch.Generator().manual_seed(3))
    got = scan_module.selective_scan(**inputs, delta_softplus=True, reverse=True, lengths=lengths, y_add=y_add,
                                     out_scale=0.5)
    want, _ = expected_scan(inputs, True, lengths, y_add, 0.5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    assert seen == [True]  # one call, the gate applied outside it
    seen.clear()
    plain = scan_module.selective_scan(**inputs, delta_softplus=True)  # no extras: straight through, gate inside
    assert seen == [False]
    torch.testing.assert_close(plain, selective_scan_ref(**inputs, delta_softplus=True))
