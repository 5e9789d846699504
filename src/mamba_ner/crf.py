"""Linear-chain CRF: negative log-likelihood, batched Viterbi, marginals, scheme constraints.

This file travels with saved checkpoints (remote code): it imports only `torch`, the standard
library and its sibling `crf_cpu_kernel.py`. Written by hand because no maintained library offers a
CRF with masks that may have holes (label -100 on special tokens and non-first sub-words) plus hard
BIO/IOBES constraints; the design follows kmkurn/pytorch-crf (start/end/transition scores, no fake
START/STOP tags).

Glossary of dimensions: b = batch, l = sequence length, k = number of tags.

Masks: a position takes part in the CRF when its mask is true. Masks need not be contiguous: the
valid positions of each row are packed to the front (stable order) before the recursions, so a
sentence whose sub-word continuations carry -100 is scored as the chain of its first sub-words.
Rows with no valid position contribute nothing (loss 0, not counted in the mean).

Constraints: forbidden transitions (e.g. `O -> I-X` in BIO) get a score of `FORBIDDEN` (-10,000)
added, so they have probability exp(-10000) = 0 in float32 both in the NLL and in Viterbi. The
constraint pattern is plain Python data derived from the label names, turned into tensors on the
device of the emissions when first used: it never sits in a buffer that `from_pretrained` could
leave uninitialised.

Paths: the recursions (log Z with its forward-backward gradient, Viterbi, marginals) run in the
Triton kernels of `crf_triton.py` on CUDA tensors when triton imports, in the C++ kernels of
`crf_cpu_kernel.py` (compiled on first use) on CPU float32/float64 tensors, and otherwise, or when
those cannot be compiled, as the Python loops `_log_partition_forward_torch`,
`_log_partition_backward_torch` and `_viterbi_torch`, which stay the reference.
``MAMBA_NER_CRF=auto|torch|cpp|triton`` forces one path (``triton`` on CPU tensors needs
``TRITON_INTERPRET=1``, Triton's interpreter: that is how the tests run the kernels without a GPU).
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import nn

from .crf_cpu_kernel import load_crf_kernel
from .crf_triton import AVAILABLE as TRITON_AVAILABLE
from .crf_triton import log_partition_bwd as triton_log_partition_bwd
from .crf_triton import log_partition_fwd as triton_log_partition_fwd
from .crf_triton import marginals as triton_marginals
from .crf_triton import viterbi as triton_viterbi

FORBIDDEN = -10000.0
CRF_ENV_VAR = "MAMBA_NER_CRF"
_CRF_PATHS = ("auto", "torch", "cpp", "triton")


def _crf_path(emissions, *scores) -> str:
    """Which recursions run on these tensors: "triton", "cpp" or "torch" (see the module docstring).

    auto: Triton for CUDA tensors when triton imports; the C++ kernels for CPU float32/float64 tensors of
    one dtype when they compile; else the Python recursions. A forced path that cannot run raises.
    """
    path = os.environ.get(CRF_ENV_VAR, "auto").strip().lower() or "auto"
    if path not in _CRF_PATHS:
        raise ValueError(f"{CRF_ENV_VAR}={path!r}; expected one of {', '.join(_CRF_PATHS)}")
    if path == "torch":
        return "torch"
    if path == "auto" and emissions.is_cuda:
        return "triton" if TRITON_AVAILABLE and triton_works(emissions.device) else "torch"
    if path == "triton":
        if not TRITON_AVAILABLE:
            raise RuntimeError(f"{CRF_ENV_VAR}=triton but triton is not importable (pip install triton)")
        return "triton"
    on_cpu = emissions.dtype in (torch.float32, torch.float64) and all(
        t.device.type == "cpu" and t.dtype == emissions.dtype for t in (emissions, *scores))
    if path == "cpp":
        if not on_cpu:
            raise ValueError(f"{CRF_ENV_VAR}=cpp runs on CPU float32/float64 tensors of one dtype, got emissions "
                             f"of {emissions.dtype} on {emissions.device}")
        if load_crf_kernel() is None:
            raise RuntimeError(f"{CRF_ENV_VAR}=cpp but the C++ CRF kernels could not be compiled (see the warning "
                               "logged above)")
        return "cpp"
    return "cpp" if on_cpu and load_crf_kernel() is not None else "torch"


_TRITON_WORKS: dict[str, bool] = {}


def triton_works(device) -> bool:
    """Whether the Triton kernels compile and give log Z right on `device` (probed once per device).

    `auto` uses this to fall back to the Python recursions, with a warning, where triton imports but cannot
    compile for the GPU at hand (no compiler, an unsupported architecture or driver).
    """
    key = str(torch.device(device))
    if key not in _TRITON_WORKS:
        try:
            zeros = torch.zeros(3, device=device)
            log_z, _ = triton_log_partition_fwd(torch.zeros(1, 2, 3, device=device),
                                                torch.tensor([2], device=device), zeros, zeros,
                                                torch.zeros(3, 3, device=device))
            works = abs(log_z.item() - math.log(9.0)) < 1e-4  # 3 tags, 2 steps, all scores 0: 9 paths
            problem = f"log Z {log_z.item()} instead of log 9"
        except Exception as error:  # any failure of the compiler or the driver
            works, problem = False, f"{type(error).__name__}: {error}"
        if not works:
            warnings.warn(f"the Triton CRF kernels do not work on {key} ({problem}); {CRF_ENV_VAR}=auto uses the "
                          "PyTorch recursions there", stacklevel=2)
        _TRITON_WORKS[key] = works
    return _TRITON_WORKS[key]


def _parse_tag(label: str, prefixes: str) -> tuple[str, str | None]:
    """Split `B-DISE` into ("B", "DISE"); `O` into ("O", None). Raises ValueError otherwise."""
    if label == "O":
        return "O", None
    for sep in ("-", "_"):
        if len(label) > 2 and label[1] == sep and label[0] in prefixes:
            return label[0], label[2:]
    raise ValueError(f"label {label!r} is not valid for this tagging scheme (expected 'O' or one of {list(prefixes)}-TYPE)")


def allowed_transitions(labels: list[str], scheme: str) -> tuple[list[bool], list[bool], list[list[bool]]]:
    """Which starts, ends and transitions the tagging scheme allows.

    Args:
        labels: tag names in id order (`id2label` values).
        scheme: `"BIO"` (IOB2), `"IOBES"` or `"none"`.

    Returns:
        (start_ok[k], end_ok[k], trans_ok[k][k]) with trans_ok[i][j] true when tag j may follow tag i.
    """
    k = len(labels)
    if scheme == "none":
        return [True] * k, [True] * k, [[True] * k for _ in range(k)]
    if scheme == "BIO":
        parsed = [_parse_tag(label, "BI") for label in labels]

        def may_follow(prev, cur):  # prev is None at the start
            p_prefix, p_type = prev if prev is not None else ("O", None)
            c_prefix, c_type = cur
            if c_prefix == "I":
                return p_prefix in "BI" and p_type == c_type
            return True

        start_ok = [may_follow(None, c) for c in parsed]
        end_ok = [True] * k
    elif scheme == "IOBES":
        parsed = [_parse_tag(label, "BIES") for label in labels]

        def may_follow(prev, cur):
            p_prefix, p_type = prev if prev is not None else ("O", None)
            c_prefix, c_type = cur
            inside = p_prefix in "BI"  # an entity is open and must be continued
            if c_prefix in "IE":
                return inside and p_type == c_type
            return not inside

        start_ok = [may_follow(None, c) for c in parsed]
        end_ok = [p in ("O", "E", "S") for p, _ in parsed]
    else:
        raise ValueError(f"unknown tagging scheme {scheme!r}; expected 'BIO', 'IOBES' or 'none'")
    trans_ok = [[may_follow(parsed[i], parsed[j]) for j in range(k)] for i in range(k)]
    return start_ok, end_ok, trans_ok


def pack_by_mask(mask: torch.Tensor, *tensors: torch.Tensor):
    """Move the positions where `mask` is true to the front of each row, keeping their order.

    Args:
        mask: (b, l) bool.
        tensors: each (b, l, ...).

    Returns:
        (packed_mask (b, l) bool, order (b, l) long, *packed tensors); `packed[:, i] = x[:, order[:, i]]`
        and `packed_mask` is true exactly on the first `mask.sum(1)` positions of each row.
    """
    lengths = mask.sum(1)  # (b,)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (b, l) valid positions first
    positions = torch.arange(mask.shape[1], device=mask.device)
    packed_mask = positions[None, :] < lengths[:, None]  # (b, l)
    packed = []
    for x in tensors:
        index = order.view(order.shape + (1,) * (x.dim() - 2)).expand_as(x)
        packed.append(torch.gather(x, 1, index))
    return (packed_mask, order, *packed)


def unpack_by_order(packed: torch.Tensor, order: torch.Tensor, fill) -> torch.Tensor:
    """Inverse of `pack_by_mask` for one (b, l, ...) tensor; positions not written get `fill`."""
    out = torch.full_like(packed, fill)
    index = order.view(order.shape + (1,) * (packed.dim() - 2)).expand_as(packed)
    return out.scatter(1, index, packed)


class LinearChainCRF(nn.Module):
    """Linear-chain CRF over `num_tags` tags with optional hard constraints.

    Parameters: `start_transitions` (k,), `end_transitions` (k,), `transitions` (k, k) where
    `transitions[i, j]` scores tag i followed by tag j. They are initialised by the owning
    `PreTrainedModel._init_weights` (uniform in [-0.1, 0.1]), not here, because `from_pretrained`
    builds modules on the meta device.

    Args:
        num_tags: number of tags k.
        labels: tag names in id order; with `scheme` they define the forbidden transitions.
        scheme: "BIO", "IOBES" or "none".
    """

    def __init__(self, num_tags: int, labels: list[str] | None = None, scheme: str = "none"):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        if labels is not None and len(labels) != num_tags:
            raise ValueError(f"got {len(labels)} labels for {num_tags} tags")
        if labels is None and scheme != "none":
            raise ValueError(f"scheme {scheme!r} needs the label names to derive its constraints")
        self.num_tags = num_tags
        self.scheme = scheme
        self._allowed = allowed_transitions(labels, scheme) if labels is not None else allowed_transitions(["O"] * num_tags, "none")
        self._constraint_cache: dict = {}
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, scheme={self.scheme}"

    # ----------------------------------------------------------------- scores with constraints
    def _penalties(self, device, dtype):
        key = (device, dtype)
        if key not in self._constraint_cache:
            start_ok, end_ok, trans_ok = self._allowed

            def penalty(ok):
                return torch.where(torch.tensor(ok, device=device), 0.0, FORBIDDEN).to(dtype)

            self._constraint_cache[key] = (penalty(start_ok), penalty(end_ok), penalty(trans_ok))
        return self._constraint_cache[key]

    def constrained_scores(self, dtype=torch.float32):
        """(start (k,), end (k,), transitions (k, k)) with the forbidden moves set to FORBIDDEN."""
        start_pen, end_pen, trans_pen = self._penalties(self.transitions.device, dtype)
        return (
            self.start_transitions.to(dtype) + start_pen,
            self.end_transitions.to(dtype) + end_pen,
            self.transitions.to(dtype) + trans_pen,
        )

    # ----------------------------------------------------------------- checks
    def _check(self, emissions, tags=None, mask=None):
        if emissions.dim() != 3:
            raise ValueError(f"emissions must have dimension of 3, got {emissions.dim()}")
        if emissions.size(2) != self.num_tags:
            raise ValueError(f"expected last dimension of emissions is {self.num_tags}, got {emissions.size(2)}")
        if tags is not None and tags.shape != emissions.shape[:2]:
            raise ValueError(
                f"the first two dimensions of emissions and tags must match, got {tuple(emissions.shape[:2])} and {tuple(tags.shape)}"
            )
        if mask is not None and mask.shape != emissions.shape[:2]:
            raise ValueError(
                f"the first two dimensions of emissions and mask must match, got {tuple(emissions.shape[:2])} and {tuple(mask.shape)}"
            )

    def _mask(self, emissions, tags=None, mask=None):
        """Combine the given mask with `tags != -100` into one (b, l) bool mask."""
        b, l, _ = emissions.shape
        full = torch.ones(b, l, dtype=torch.bool, device=emissions.device)
        if mask is not None:
            full = full & mask.bool()
        if tags is not None:
            full = full & (tags != -100)
            valid_tags = tags[full]
            if valid_tags.numel() and (valid_tags.min() < 0 or valid_tags.max() >= self.num_tags):
                raise ValueError(f"tags must be in [0, {self.num_tags}) or -100, got values in [{int(valid_tags.min())}, {int(valid_tags.max())}]")
        return full

    # ----------------------------------------------------------------- likelihood
    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood of `tags`.

        Args:
            emissions: (b, l, k) scores.
            tags: (b, l) long; -100 marks positions outside the chain.
            mask: (b, l) bool/int, optional; false positions are outside the chain.
            reduction: "mean" (over rows with at least one valid position), "sum" or "none" ((b,)).

        Returns:
            The NLL, reduced as asked.
        """
        self._check(emissions, tags, mask)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"invalid reduction: {reduction}")
        valid = self._mask(emissions, tags, mask)
        packed_mask, _, emissions, tags = pack_by_mask(valid, emissions.float(), tags)
        tags = tags.clamp(min=0)  # padding positions are masked out below
        nll = self._log_partition(emissions, packed_mask) - self._gold_score(emissions, tags, packed_mask)  # (b,)
        has_tokens = packed_mask[:, 0]
        nll = torch.where(has_tokens, nll, torch.zeros_like(nll))
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        return nll.sum() / has_tokens.sum().clamp(min=1)

    def _gold_score(self, emissions, tags, mask):
        """Score of the tag path (b,) for packed inputs (mask true on a prefix of each row)."""
        start, end, trans = self.constrained_scores(emissions.dtype)
        b, l, _ = emissions.shape
        maskf = mask.to(emissions.dtype)
        # gathers, not advanced indexing: the backward of `trans[tags[:, :-1], tags[:, 1:]]` is an
        # index_put with accumulation, which sorts the indices and synchronises (1.7 ms of a 5 ms CRF loss
        # step at 16 x 2048 on an H200); a gather's backward is a plain scatter-add.
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (b, l)
        score = start.gather(0, tags[:, 0]) + (emit * maskf).sum(1)
        if l > 1:
            pairs = (tags[:, :-1] * trans.shape[1] + tags[:, 1:]).reshape(-1)  # (b * (l - 1),) flat [prev, next]
            score = score + (trans.reshape(-1).gather(0, pairs).view(b, l - 1) * maskf[:, 1:]).sum(1)
        last = (mask.sum(1) - 1).clamp(min=0)  # (b,)
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)
        return score + end.gather(0, last_tags)

    def _log_partition(self, emissions, mask):
        """log Z (b,) by the forward algorithm over packed inputs (hand-written backward)."""
        start, end, trans = self.constrained_scores(emissions.dtype)
        return _LogPartition.apply(emissions, mask, start, end, trans)

    def _log_partition_ref(self, emissions, mask):
        """Plain autograd version of `_log_partition`, kept as the reference the tests compare with."""
        start, end, trans = self.constrained_scores(emissions.dtype)
        # unbind, not emissions[:, i]: the backward of each index would allocate a full (b, l, k)
        # gradient, making the backward quadratic in length.
        steps = emissions.unbind(1)  # l tensors of (b, k)
        keep = mask.unsqueeze(2).unbind(1)  # l tensors of (b, 1)
        alpha = start + steps[0]  # (b, k)
        for emission, keep_i in zip(steps[1:], keep[1:]):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emission  # (b, k)
            alpha = torch.where(keep_i, step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    # ----------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None, pad_value: int = -100) -> torch.Tensor:
        """Batched Viterbi.

        Args:
            emissions: (b, l, k).
            mask: (b, l) bool, optional; false positions get `pad_value` and are skipped by the chain.

        Returns:
            (b, l) long tensor of best tag ids, `pad_value` where the mask is false.
        """
        self._check(emissions, None, mask)
        valid = self._mask(emissions, None, mask)
        packed_mask, order, emissions = pack_by_mask(valid, emissions.float())
        start, end, trans = self.constrained_scores(emissions.dtype)
        packed_tags = _viterbi(emissions, packed_mask, start, end, trans, pad_value)
        return unpack_by_order(packed_tags, order, pad_value)

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior marginals p(tag_i = j | x), (b, l, k); zeros where the mask is false.

        Computed by forward-backward: the Triton kernels directly, elsewhere as the gradient of log Z with
        respect to the emissions.
        """
        self._check(emissions, None, mask)
        valid = self._mask(emissions, None, mask)
        emissions = emissions.detach().float()
        start, end, trans = (score.detach() for score in self.constrained_scores(emissions.dtype))
        if _crf_path(emissions, start, end, trans) == "triton":
            packed_mask, order, packed = pack_by_mask(valid, emissions)
            marginals = triton_marginals(packed, packed_mask.sum(1), start, end, trans).to(emissions.dtype)
            return unpack_by_order(marginals, order, 0.0) * valid.unsqueeze(2)
        with torch.enable_grad():
            leaf = emissions.requires_grad_(True)
            packed_mask, _, packed = pack_by_mask(valid, leaf)
            log_z = self._log_partition(packed, packed_mask)
            (grad,) = torch.autograd.grad(log_z.sum(), leaf)
        return grad * valid.unsqueeze(2)


class _LogPartition(torch.autograd.Function):
    """log Z of a linear-chain CRF with the forward-backward algorithm as its backward.

    Autograd through the forward recursion records ~4 nodes per position; this function runs both
    recursions without recording anything, which makes the loss several times cheaper on long
    sequences. Inputs are packed (mask true on a prefix of each row). Both recursions run in the
    Triton kernels or the C++ kernels (see `_crf_path`), else in `_log_partition_forward_torch` and
    `_log_partition_backward_torch`. The Triton kernels take each row's length (the mask must be
    packed) and store alphas shifted per step, which only their own backward reads.

    Shapes: emissions (b, l, k), mask (b, l) bool, start (k,), end (k,), trans (k, k).
    """

    @staticmethod
    def forward(ctx, emissions, mask, start, end, trans):
        ctx.path = _crf_path(emissions, start, end, trans)
        if ctx.path == "triton":
            log_z, alphas = triton_log_partition_fwd(emissions, mask.sum(1), start, end, trans)
            log_z = log_z.to(emissions.dtype)
        elif ctx.path == "cpp":
            mask = mask.to(torch.bool).contiguous()
            log_z, alphas = load_crf_kernel().log_partition_fwd(emissions.contiguous(), mask, start.contiguous(),
                                                                end.contiguous(), trans.contiguous())
        else:
            log_z, alphas = _log_partition_forward_torch(emissions, mask, start, end, trans)
        ctx.save_for_backward(emissions, mask, end, trans, alphas, log_z)
        return log_z

    @staticmethod
    def backward(ctx, grad_log_z):
        emissions, mask, end, trans, alphas, log_z = ctx.saved_tensors
        if ctx.path == "triton":
            grads = triton_log_partition_bwd(emissions, mask.sum(1), end, trans, alphas, grad_log_z)
            grads = [grad.to(like.dtype) for grad, like in zip(grads, (emissions, end, end, trans))]
        elif ctx.path == "cpp":
            grads = load_crf_kernel().log_partition_bwd(emissions.contiguous(), mask, end.contiguous(), trans.contiguous(),
                                                        alphas, log_z, grad_log_z.to(emissions.dtype).contiguous())
        else:
            grads = _log_partition_backward_torch(emissions, mask, end, trans, alphas, log_z, grad_log_z)
        grad_emissions, grad_start, grad_end, grad_trans = grads
        return grad_emissions, None, grad_start, grad_end, grad_trans


def _log_partition_forward_torch(emissions, mask, start, end, trans):
    """Forward algorithm as Python loop over time (reference of the C++ kernel): (log Z (b,), alphas (b, l, k))."""
    steps = emissions.unbind(1)
    keep = mask.unsqueeze(2).unbind(1)
    alphas = [start + steps[0]]  # each (b, k)
    for emission, keep_i in zip(steps[1:], keep[1:]):
        step = torch.logsumexp(alphas[-1].unsqueeze(2) + trans, dim=1) + emission
        alphas.append(torch.where(keep_i, step, alphas[-1]))
    log_z = torch.logsumexp(alphas[-1] + end, dim=1)  # (b,)
    return log_z, torch.stack(alphas, 1)


def _log_partition_backward_torch(emissions, mask, end, trans, alphas, log_z, grad_log_z):
    """Gradients of log Z by forward-backward, Python loop over time (reference of the C++ kernel).

    Returns (d emissions (b, l, k), d start (k,), d end (k,), d trans (k, k))."""
    b, l, k = emissions.shape
    # beta_i: log-sum of the scores of every continuation after position i (end included);
    # past the end of a row it stays `end`, so the last real position gets beta = end.
    betas = [end.expand(b, k)]
    steps = emissions.unbind(1)
    keep = mask.unsqueeze(2).unbind(1)
    for i in range(l - 2, -1, -1):
        step = torch.logsumexp(trans + (steps[i + 1] + betas[-1]).unsqueeze(1), dim=2)
        betas.append(torch.where(keep[i + 1], step, betas[-1]))
    betas = torch.stack(betas[::-1], 1)  # (b, l, k)
    maskf = mask.unsqueeze(2).to(emissions.dtype)  # (b, l, 1)
    g = grad_log_z.view(b, 1, 1)
    unary = torch.exp(alphas + betas - log_z.view(b, 1, 1)) * maskf  # (b, l, k) marginals
    grad_emissions = g * unary
    grad_start = (g[:, 0] * unary[:, 0]).sum(0)
    last = (mask.sum(1) - 1).clamp(min=0)
    last_alpha = alphas.gather(1, last.view(b, 1, 1).expand(b, 1, k)).squeeze(1)  # (b, k)
    grad_end = (grad_log_z.view(b, 1) * torch.exp(last_alpha + end - log_z.view(b, 1))).sum(0)
    if l > 1:
        pair = (alphas[:, :-1].unsqueeze(3) + trans + (emissions[:, 1:] + betas[:, 1:]).unsqueeze(2)
                - log_z.view(b, 1, 1, 1))  # (b, l-1, k, k)
        grad_trans = (torch.exp(pair) * maskf[:, 1:].unsqueeze(3) * g.unsqueeze(3)).sum((0, 1))
    else:
        grad_trans = torch.zeros_like(trans)
    return grad_emissions, grad_start, grad_end, grad_trans


def _viterbi(emissions, mask, start, end, trans, pad_value=-100):
    """Best paths (b, l) long over packed inputs, `pad_value` where the mask is false; path as `_crf_path` says."""
    path = _crf_path(emissions, start, end, trans)
    if path == "triton":
        return triton_viterbi(emissions, mask.sum(1), start, end, trans, int(pad_value))
    if path == "cpp":
        return load_crf_kernel().viterbi(emissions.contiguous(), mask.to(torch.bool).contiguous(), start.contiguous(),
                                         end.contiguous(), trans.contiguous(), int(pad_value))
    return _viterbi_torch(emissions, mask, start, end, trans, pad_value)


def _viterbi_torch(emissions, mask, start, end, trans, pad_value=-100):
    """Batched Viterbi as a Python loop over time (reference of the C++ kernel); see `_viterbi`."""
    b, l, k = emissions.shape
    steps = emissions.unbind(1)  # l tensors of (b, k)
    keep = mask.unsqueeze(2).unbind(1)  # l tensors of (b, 1)
    # Past the end of a row, each tag points to itself so the back-trace passes through.
    identity = torch.arange(k, device=emissions.device).expand(b, k)
    score = start + steps[0]  # (b, k)
    history = []
    for emission, keep_i in zip(steps[1:], keep[1:]):
        best, best_prev = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)  # (b, k) each
        score = torch.where(keep_i, best + emission, score)
        history.append(torch.where(keep_i, best_prev, identity))
    best_last = (score + end).argmax(dim=1)  # (b,)
    path = [best_last]
    for best_prev in reversed(history):
        best_last = best_prev.gather(1, best_last.unsqueeze(1)).squeeze(1)
        path.append(best_last)
    packed_tags = torch.stack(path[::-1], dim=1)  # (b, l)
    return torch.where(mask, packed_tags, torch.full_like(packed_tags, pad_value))
