"""Selective scan (the S6 recurrence of Mamba), fast on CPU, with a plain reference beside it.

Why this is written by hand: `transformers`' CPU path for Mamba loops over time with autograd
recording every step, and its backward grows with L² (it indexes ``discrete_A[:, :, i]``, so every
step allocates a full-size gradient). `mamba_ssm` has the fused kernel, but only for CUDA. This
module gives the same function as ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` with
three interchangeable implementations and keeps the reference beside them (tests compare all).

Glossary (shapes in comments use these names)
    b   batch                      d   d_inner (channels)
    l   sequence length            n   d_state
    Δ   delta after ``delta_bias`` and the optional softplus (the step size)
    h   state (b, d, n):  h_t = exp(Δ_t A) * h_{t-1} + Δ_t B_t u_t
    y   y_t = C_t · h_t + D u_t;   out_t = y_t * silu(z_t) when z is given

Paths, chosen by `selective_scan` (force one with ``MAMBA_NER_SCAN=auto|ref|torch|cpp|cuda``):
    cuda    mamba_ssm's kernel, when it imports and the tensors are on CUDA
    cpp     a C++ kernel compiled on first use (source in ``scan_cpu_kernel.py``), CPU tensors,
            d_state <= 128; bias, softplus, discretisation, D and the gate are fused into it, so
            no (b, d, l, n) tensor is ever materialised. It works channels last: inputs that are
            transposed views of (b, l, ·) memory, as the projections produce them, are not copied,
            and the output is such a view. Threads: torch.get_num_threads(); results do not depend
            on the thread count. Compile failure: one logged warning, then the torch path.
    torch   pure PyTorch, in chunks of time with a hand-written backward (any device)
    ref     `selective_scan_ref`: a per-step loop that autograd differentiates; obviously correct

All paths compute in float32 (float64 when given float64) and return ``out`` in ``u``'s dtype and
``last_state`` in the compute dtype, as mamba_ssm does. Memory is linear in length: the fast paths
keep the state only at chunk boundaries and recompute the rest in backward.

`causal_conv1d` (the depthwise conv + SiLU in front of the scan) follows the same pattern: the
`causal_conv1d` CUDA kernel, a channels-last C++ kernel, and `causal_conv1d_ref` (`F.conv1d`).

Direction and combination (keyword-only, for the bidirectional model; every path takes them):
    reverse, lengths   read each row right to left over its first ``lengths[b]`` positions (all of
                       them when ``lengths`` is None); the padding after them keeps its place and is
                       read last. Same as `reverse_within_length` before and after the left-to-right
                       function, which is how the non-C++ paths do it; the C++ kernels only change
                       the order in which they walk memory, so nothing is copied.
    y_add, out_scale   ``out = out_scale * (y + y_add) * silu(z)``: the backward direction adds the
                       forward one's output and averages inside the kernel (scan only).
"""
import logging
import os

import torch
import torch.nn.functional as F

from .scan_cpu_kernel import load_cpu_kernel

logger = logging.getLogger(__name__)

try:  # optional CUDA kernels (pip install mamba-ner[cuda])
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _mamba_ssm_scan
except ImportError:  # also raised when mamba_ssm is installed without its compiled extension
    _mamba_ssm_scan = None
try:
    from causal_conv1d import causal_conv1d_fn as _cuda_causal_conv1d
except ImportError:
    _cuda_causal_conv1d = None

SCAN_ENV_VAR = "MAMBA_NER_SCAN"
_PATHS = ("auto", "ref", "torch", "cpp", "cuda")


def _check_inputs(u, delta, A, B, C, D, z, delta_bias):
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d_inner, length), got shape {tuple(u.shape)}")
    b, d, l = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must have u's shape {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"A must be (d_inner={d}, d_state), got shape {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != (b, n, l):
            raise ValueError(f"{name} must be (batch, d_state, length) = {(b, n, l)}, got {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (d,):
            raise ValueError(f"{name} must be (d_inner,) = ({d},), got {tuple(t.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must have u's shape {tuple(u.shape)}, got {tuple(z.shape)}")
    if l == 0:
        raise ValueError("length must be at least 1")


def reverse_index(lengths, length):
    """(b, length) gather index that reverses the first ``lengths[b]`` positions of each row and leaves
    the rest in place (an involution)."""
    positions = torch.arange(length, device=lengths.device)
    lengths = lengths[:, None]
    return torch.where(positions[None, :] < lengths, lengths - 1 - positions[None, :], positions[None, :])


def reverse_within_length(x, lengths=None):
    """Reverse each row of x (b, c, l) over its first ``lengths[b]`` positions; None = a full flip."""
    if lengths is None:
        return x.flip(-1)
    index = reverse_index(lengths, x.shape[-1])
    return x.gather(2, index.unsqueeze(1).expand_as(x))


def _check_direction(u, lengths, reverse, y_add=None):
    """The direction and combination arguments (module docstring) against u (b, d, l)."""
    if y_add is not None and y_add.shape != u.shape:
        raise ValueError(f"y_add must have u's shape {tuple(u.shape)}, got {tuple(y_add.shape)}")
    if lengths is None:
        return
    if not reverse:
        raise ValueError("lengths only applies with reverse=True")
    if lengths.dim() != 1 or lengths.shape[0] != u.shape[0] or lengths.dtype != torch.long:
        raise ValueError(f"lengths must be an int64 tensor of shape (batch,) = ({u.shape[0]},), "
                         f"got {lengths.dtype} {tuple(lengths.shape)}")


def _compute_dtype(u):
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _to(t, dtype):
    return None if t is None else t.to(dtype)


# --------------------------------------------------------------------------------------------
# Reference
# --------------------------------------------------------------------------------------------
def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, *, reverse=False, lengths=None, y_add=None, out_scale=1.0):
    """Plain selective scan: one step per position, autograd does the backward.

    Args:
        u (`torch.Tensor` of shape `(b, d, l)`): input.
        delta (`torch.Tensor` of shape `(b, d, l)`): step size before bias and softplus.
        A (`torch.Tensor` of shape `(d, n)`): state matrix (diagonal per channel), real.
        B, C (`torch.Tensor` of shape `(b, n, l)`): input and output projections of the state.
        D (`torch.Tensor` of shape `(d,)`, *optional*): skip connection.
        z (`torch.Tensor` of shape `(b, d, l)`, *optional*): gate, ``out = y * silu(z)``.
        delta_bias (`torch.Tensor` of shape `(d,)`, *optional*): added to delta.
        delta_softplus (`bool`): apply softplus to ``delta + delta_bias``.
        return_last_state (`bool`): also return the final state.
        reverse, lengths, y_add, out_scale: direction and combination (module docstring).

    Returns:
        out `(b, d, l)` in u's dtype, and with ``return_last_state`` the state `(b, d, n)` in the
        compute dtype (float32, or float64 for float64 inputs).
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    _check_direction(u, lengths, reverse, y_add)
    if reverse or y_add is not None or out_scale != 1.0:
        return _composed(selective_scan_ref, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, reverse, lengths, y_add, out_scale)
    dtype_in = u.dtype
    cdt = _compute_dtype(u)
    u, delta, A, B, C = (t.to(cdt) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(cdt)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, _ = u.shape
    h = u.new_zeros(b, d, A.shape[1])  # (b, d, n)
    ys = []
    for u_t, dt_t, B_t, C_t in zip(u.unbind(2), delta.unbind(2), B.unbind(2), C.unbind(2)):
        h = torch.exp(dt_t[:, :, None] * A) * h + (dt_t * u_t)[:, :, None] * B_t[:, None, :]  # (b, d, n)
        ys.append((h * C_t[:, None, :]).sum(-1))  # (b, d)
    y = torch.stack(ys, dim=2)  # (b, d, l)
    if D is not None:
        y = y + D.to(cdt)[:, None] * u
    out = y if z is None else y * F.silu(z.to(cdt))
    out = out.to(dtype_in)
    return (out, h) if return_last_state else out


def _composed(scan, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, reverse, lengths,
              y_add, out_scale):
    """Direction and combination around a left-to-right `scan` that knows neither: reverse the inputs,
    scan, reverse the output back, then add, scale and gate. The caller has checked the arguments."""
    if reverse:
        u, delta, B, C = (reverse_within_length(t, lengths) for t in (u, delta, B, C))
    out, last_state = scan(u, delta, A, B, C, D, None, delta_bias, delta_softplus, True)
    cdt = _compute_dtype(u)
    out = out.to(cdt)
    if reverse:
        out = reverse_within_length(out, lengths)
    if y_add is not None:
        out = out + y_add.to(cdt)
    if out_scale != 1.0:
        out = out * out_scale
    if z is not None:
        out = out * F.silu(z.to(cdt))
    out = out.to(u.dtype)
    return (out, last_state) if return_last_state else out


# --------------------------------------------------------------------------------------------
# Pure-PyTorch fast path: chunks of time, hand-written backward
# --------------------------------------------------------------------------------------------
_CHUNK_ELEMENTS = 1 << 21  # elements of one (k, b, d, n) chunk tensor


def _chunk_len(b, d, n, l):
    return max(1, min(l, max(16, _CHUNK_ELEMENTS // max(1, b * d * n))))


def _chunk_states(h0, dt, u, A, B):
    """States over one chunk of k steps, starting from h0 (time-major inputs).

    Args: h0 (b, d, n); dt, u (k, b, d); A (d, n); B (k, b, n).
    Returns: hs (k, b, d, n) with hs[i] = h after step i, and dA (k, b, d, n) = exp(Δ A).
    """
    dA = torch.exp(dt[..., None] * A)  # (k, b, d, n)
    hs = (dt * u)[..., None] * B[:, :, None, :]  # (k, b, d, n) = Δ B u
    h = h0
    for dA_i, hs_i in zip(dA, hs):  # hs_i holds Δ B u for this step, becomes h_i in place
        h = hs_i.addcmul_(dA_i, h)
    return hs, dA


def _bmm(x, y):
    """Batched product over the two leading dims: (k, b, i, j) @ (k, b, j, m) -> (k, b, i, m)."""
    k, b = x.shape[:2]
    return torch.bmm(x.reshape(k * b, *x.shape[2:]), y.reshape(k * b, *y.shape[2:])).reshape(k, b, x.shape[2],
                                                                                             y.shape[3])


class _TorchScan(torch.autograd.Function):
    """Inputs are already in the compute dtype; D, z, delta_bias may be None.

    Works time-major inside ((l, b, ·) copies of u, Δ, B, C), so each chunk is one contiguous slice.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        b, d, l = u.shape
        n = A.shape[1]
        dt = delta if delta_bias is None else delta + delta_bias[:, None]
        if delta_softplus:
            dt = F.softplus(dt)
        u_l, dt_l = u.permute(2, 0, 1).contiguous(), dt.permute(2, 0, 1).contiguous()  # (l, b, d)
        B_l, C_l = B.permute(2, 0, 1).contiguous(), C.permute(2, 0, 1).contiguous()  # (l, b, n)
        k = _chunk_len(b, d, n, l)
        save = any(ctx.needs_input_grad[:8])
        h = u.new_zeros(b, d, n)
        checkpoints = []  # state before each chunk, (b, d, n) each
        y_l = u.new_empty(l, b, d)
        for c0 in range(0, l, k):
            if save:
                checkpoints.append(h)
            hs, _ = _chunk_states(h, dt_l[c0:c0 + k], u_l[c0:c0 + k], A, B_l[c0:c0 + k])
            y_l[c0:c0 + k] = _bmm(hs, C_l[c0:c0 + k, :, :, None]).squeeze(-1)  # C·h
            h = hs[-1].clone()
        y = y_l.permute(1, 2, 0)  # (b, d, l)
        if D is not None:
            y = y + u * D[:, None]
        out = y if z is None else y * F.silu(z)
        if save:
            ctx.save_for_backward(u_l, delta, dt_l, A, B_l, C_l, D, z, delta_bias, y if z is not None else None,
                                  torch.stack(checkpoints))
            ctx.delta_softplus = delta_softplus
            ctx.chunk = k
        ctx.mark_non_differentiable(h)
        return out, h

    @staticmethod
    def backward(ctx, g, _g_last_state):
        u_l, delta, dt_l, A, B_l, C_l, D, z, delta_bias, y, checkpoints = ctx.saved_tensors
        l, b, d = u_l.shape
        k = ctx.chunk
        g = g.to(u_l.dtype)
        dz = None
        if z is not None:
            sz = torch.sigmoid(z)
            dz = g * y * sz * (1 + z * (1 - sz))
            g = g * z * sz  # gradient wrt y
        dD = None if D is None else (g * u_l.permute(1, 2, 0)).sum((0, 2))
        g_l = g.permute(2, 0, 1).contiguous()  # (l, b, d)
        du_l, ddt_l = torch.empty_like(u_l), torch.empty_like(u_l)
        dB_l, dC_l = torch.empty_like(B_l), torch.empty_like(C_l)
        dA = torch.zeros_like(A)
        dh = torch.zeros_like(checkpoints[0])  # (b, d, n): gradient reaching h_t from step t+1
        for ci in reversed(range(checkpoints.shape[0])):
            sl = slice(ci * k, min(ci * k + k, l))
            dt_c, u_c, B_c, g_c = dt_l[sl], u_l[sl], B_l[sl], g_l[sl]  # (k, b, ·)
            hs, dA_c = _chunk_states(checkpoints[ci], dt_c, u_c, A, B_c)  # (k, b, d, n)
            dC_l[sl] = _bmm(g_c[:, :, None, :], hs).squeeze(2)  # Σ_d gy h
            dh_tot = g_c[..., None] * C_l[sl][:, :, None, :]  # (k, b, d, n), becomes dL/dh_t
            for i in reversed(range(dh_tot.shape[0])):
                dh = dh_tot[i].add_(dh) * dA_c[i]
            dhB = _bmm(dh_tot, B_c[..., None]).squeeze(-1)  # (k, b, d)
            dB_l[sl] = _bmm((dt_c * u_c)[:, :, None, :], dh_tot).squeeze(2)
            du_l[sl] = dt_c * dhB
            d_arg = dh_tot.mul_(dA_c)  # (k, b, d, n): gradient wrt Δ A, times h_{t-1} below
            d_arg[1:] *= hs[:-1]
            d_arg[0] *= checkpoints[ci]
            dA += (d_arg * dt_c[..., None]).sum((0, 1))
            ddt_l[sl] = (d_arg * A).sum(-1) + u_c * dhB
        du = du_l.permute(1, 2, 0)
        if D is not None:
            du = du + g * D[:, None]
        ddelta = ddt_l.permute(1, 2, 0)
        if ctx.delta_softplus:
            pre = delta if delta_bias is None else delta + delta_bias[:, None]
            ddelta = ddelta * torch.sigmoid(pre)
        dbias = None if delta_bias is None else ddelta.sum((0, 2))
        return du, ddelta, dA, dB_l.permute(1, 2, 0), dC_l.permute(1, 2, 0), dD, dz, dbias, None


def selective_scan_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         return_last_state=False, *, reverse=False, lengths=None, y_add=None, out_scale=1.0):
    """Pure-PyTorch fast path; same arguments and results as `selective_scan_ref`."""
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    _check_direction(u, lengths, reverse, y_add)
    if reverse or y_add is not None or out_scale != 1.0:
        return _composed(selective_scan_torch, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, reverse, lengths, y_add, out_scale)
    cdt = _compute_dtype(u)
    out, last_state = _TorchScan.apply(u.to(cdt), delta.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt), _to(D, cdt),
                                       _to(z, cdt), _to(delta_bias, cdt), delta_softplus)
    out = out.to(u.dtype)
    return (out, last_state) if return_last_state else out


# --------------------------------------------------------------------------------------------
# Compiled CPU path (kernel source and compilation in scan_cpu_kernel.py)
# --------------------------------------------------------------------------------------------
_CPP_CHUNK = 32  # steps between stored states; backward recomputes the rest into a per-thread buffer
_CPP_MAX_STATE = 128  # kMaxState in the kernel


def _channels_last(t):
    """(b, d, l) -> a (b, l, d) view with contiguous channels, copying only when the channels are not
    (the kernels take rows spaced wider than d, such as a slice of the input projection, as they are)."""
    t = t.transpose(1, 2)
    return t if t.stride(2) == 1 else t.contiguous()


def cpu_kernel_available():
    """True when the C++ kernel is compiled (compiles it on the first call)."""
    return load_cpu_kernel() is not None


class _CppScan(torch.autograd.Function):
    """Inputs in the compute dtype; D, z and delta_bias may be None.

    The kernel works channels last: (b, l, d) for u, Δ, z and the output, (b, l, n) for B and C.
    Tensors that are transposed views of such memory (as the model's projections give) are not copied.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, y_add, out_scale, lengths, reverse):
        ops = load_cpu_kernel()
        u_, delta_ = u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous()  # (b, l, d)
        z_ = None if z is None else _channels_last(z)
        y_add_ = None if y_add is None else y_add.transpose(1, 2).contiguous()
        A_ = A.t().contiguous()  # (n, d)
        B_, C_ = B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous()  # (b, l, n)
        D = None if D is None else D.contiguous()
        delta_bias = None if delta_bias is None else delta_bias.contiguous()
        save = any(ctx.needs_input_grad)
        out, last_state, checkpoints, y = ops.fwd(u_, delta_, A_, B_, C_, D, z_, delta_bias, delta_softplus,
                                                  _CPP_CHUNK, save, y_add_, out_scale, lengths, reverse)
        if save:  # y: output before the gate, kept for dz
            ctx.save_for_backward(u_, delta_, A_, B_, C_, D, z_, delta_bias, None if z is None else y, checkpoints,
                                  lengths)
            ctx.delta_softplus, ctx.out_scale, ctx.reverse = delta_softplus, out_scale, reverse
            ctx.has_y_add = y_add is not None
        ctx.mark_non_differentiable(last_state)
        return out.transpose(1, 2), last_state

    @staticmethod
    def backward(ctx, g, _g_last_state):
        u_, delta_, A_, B_, C_, D, z_, delta_bias, y, checkpoints, lengths = ctx.saved_tensors
        g_ = g.to(u_.dtype).transpose(1, 2).contiguous()  # (b, l, d)
        du, ddelta, dA, dB, dC, dD, dz, dbias, dy_add = load_cpu_kernel().bwd(
            u_, delta_, A_, B_, C_, D, z_, delta_bias, ctx.delta_softplus, y, checkpoints, g_, _CPP_CHUNK,
            ctx.out_scale, lengths, ctx.reverse, ctx.has_y_add)
        return (du.transpose(1, 2), ddelta.transpose(1, 2), dA.t(), dB.transpose(1, 2), dC.transpose(1, 2),
                None if D is None else dD, None if z_ is None else dz.transpose(1, 2),
                None if delta_bias is None else dbias, None,
                dy_add.transpose(1, 2) if ctx.has_y_add else None, None, None, None)


def selective_scan_cpp(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, *, reverse=False, lengths=None, y_add=None, out_scale=1.0):
    """Compiled CPU path; same arguments and results as `selective_scan_ref`.

    Raises RuntimeError when the kernel could not be compiled (see `cpu_kernel_available`).
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    _check_direction(u, lengths, reverse, y_add)
    if load_cpu_kernel() is None:
        raise RuntimeError("the C++ selective scan could not be compiled (see the logged warning)")
    if A.shape[1] > _CPP_MAX_STATE:
        raise ValueError(f"the C++ scan supports d_state <= {_CPP_MAX_STATE}, got {A.shape[1]}")
    cdt = _compute_dtype(u)
    out, last_state = _CppScan.apply(u.to(cdt), delta.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt), _to(D, cdt),
                                     _to(z, cdt), _to(delta_bias, cdt), bool(delta_softplus), _to(y_add, cdt),
                                     float(out_scale), _lengths_arg(lengths, reverse), bool(reverse))
    out = out.to(u.dtype)
    return (out, last_state) if return_last_state else out


def _lengths_arg(lengths, reverse):
    return lengths.contiguous() if (reverse and lengths is not None) else None


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------
def _requested_path():
    path = os.environ.get(SCAN_ENV_VAR, "auto").strip().lower() or "auto"
    if path not in _PATHS:
        raise ValueError(f"{SCAN_ENV_VAR}={path!r}; expected one of {', '.join(_PATHS)}")
    return path


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, *, reverse=False, lengths=None, y_add=None, out_scale=1.0):
    """Selective scan with mamba_ssm's ``selective_scan_fn`` signature; see `selective_scan_ref`.

    Uses mamba_ssm on CUDA tensors when it imports, the compiled CPU kernel on CPU tensors when it
    compiles, and the pure-PyTorch path otherwise. ``MAMBA_NER_SCAN`` forces one path. The
    keyword-only direction and combination arguments are described in the module docstring.
    """
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    extra = dict(reverse=reverse, lengths=lengths, y_add=y_add, out_scale=out_scale)
    path = _requested_path()
    if path == "ref":
        return selective_scan_ref(*args, **extra)
    if path == "cuda" or (path == "auto" and u.is_cuda and _mamba_ssm_scan is not None):
        if _mamba_ssm_scan is None:
            raise RuntimeError(f"{SCAN_ENV_VAR}=cuda but mamba_ssm is not importable")
        if reverse or y_add is not None or out_scale != 1.0:
            _check_inputs(u, delta, A, B, C, D, z, delta_bias)
            _check_direction(u, lengths, reverse, y_add)
            return _composed(_mamba_ssm_scan, *args, **extra)
        return _mamba_ssm_scan(*args)
    if path == "cpp" or (path == "auto" and u.device.type == "cpu" and A.shape[-1] <= _CPP_MAX_STATE
                         and cpu_kernel_available()):
        return selective_scan_cpp(*args, **extra)
    return selective_scan_torch(*args, **extra)


# --------------------------------------------------------------------------------------------
# Depthwise causal convolution (the conv in front of the scan)
# --------------------------------------------------------------------------------------------
def _check_conv(x, weight, bias, activation):
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"x must be (batch, d, length) and weight (d, width), got {tuple(x.shape)} "
                         f"and {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (x.shape[1],):
        raise ValueError(f"bias must be (d,) = ({x.shape[1]},), got {tuple(bias.shape)}")
    if activation not in (None, "silu", "swish"):
        raise ValueError(f"activation must be None, 'silu' or 'swish', got {activation!r}")


def causal_conv1d_ref(x, weight, bias=None, activation="silu", *, reverse=False, lengths=None):
    """Depthwise causal conv1d with `F.conv1d`: out_t = Σ_j weight[:, j] x_{t-(width-1)+j} (+ bias).

    Args:
        x (`torch.Tensor` of shape `(b, d, l)`), weight `(d, width)`, bias `(d,)` or None;
        activation: None, "silu" or "swish" (the same);
        reverse, lengths: read right to left (module docstring): "causal" in that reading order.
    Returns: `(b, d, l)`.
    """
    _check_conv(x, weight, bias, activation)
    _check_direction(x, lengths, reverse)
    if reverse:
        out = causal_conv1d_ref(reverse_within_length(x, lengths), weight, bias, activation)
        return reverse_within_length(out, lengths)
    width = weight.shape[1]
    out = F.conv1d(x, weight[:, None, :], bias, padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return out if activation is None else F.silu(out)


class _CppConv(torch.autograd.Function):
    """Channels-last C++ conv: (b, l, d) memory inside; x given as (b, d, l), possibly a transposed view."""

    @staticmethod
    def forward(ctx, x, weight, bias, silu, lengths, reverse):
        ops = load_cpu_kernel()
        x_ = _channels_last(x)  # (b, l, d)
        weight_ = weight.t().contiguous()  # (width, d)
        bias = None if bias is None else bias.contiguous()
        ctx.save_for_backward(x_, weight_, bias, lengths)
        ctx.silu, ctx.reverse = silu, reverse
        return ops.conv_fwd(x_, weight_, bias, silu, lengths, reverse).transpose(1, 2)

    @staticmethod
    def backward(ctx, g):
        x_, weight_, bias, lengths = ctx.saved_tensors
        dx, dweight, dbias = load_cpu_kernel().conv_bwd(x_, weight_, bias, g.to(x_.dtype).transpose(1, 2).contiguous(),
                                                        ctx.silu, lengths, ctx.reverse)
        return dx.transpose(1, 2), dweight.t(), None if bias is None else dbias, None, None, None


def causal_conv1d(x, weight, bias=None, activation="silu", *, reverse=False, lengths=None):
    """Same as `causal_conv1d_ref`; the `causal_conv1d` kernel for CUDA tensors when installed, the C++
    kernel on CPU (channels last, SiLU fused: the output is a (b, d, l) view of (b, l, d) memory, which
    is the layout `selective_scan` takes without a copy), `causal_conv1d_ref` otherwise.
    ``MAMBA_NER_SCAN`` picks the path as for the scan (ref and torch both mean `F.conv1d`).
    ``reverse``/``lengths``: see `causal_conv1d_ref`."""
    _check_conv(x, weight, bias, activation)
    _check_direction(x, lengths, reverse)
    path = _requested_path()
    if path in ("auto", "cuda") and x.is_cuda and _cuda_causal_conv1d is not None:
        if reverse:
            out = _cuda_causal_conv1d(reverse_within_length(x, lengths), weight, bias, activation=activation)
            return reverse_within_length(out, lengths)
        return _cuda_causal_conv1d(x, weight, bias, activation=activation)
    if path == "cpp" or (path == "auto" and x.device.type == "cpu" and cpu_kernel_available()):
        if load_cpu_kernel() is None:
            raise RuntimeError("the C++ kernels could not be compiled (see the logged warning)")
        cdt = _compute_dtype(x)
        out = _CppConv.apply(x.to(cdt), weight.to(cdt), _to(bias, cdt), activation is not None,
                             _lengths_arg(lengths, reverse), bool(reverse))
        return out.to(x.dtype)
    return causal_conv1d_ref(x, weight, bias, activation, reverse=reverse, lengths=lengths)
