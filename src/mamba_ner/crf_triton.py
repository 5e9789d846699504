"""Triton kernels of the linear-chain CRF for CUDA tensors: log Z, its forward-backward gradient, marginals, Viterbi.

This file travels with saved checkpoints (remote code). `triton` is imported under ``try/except
ImportError``: without it `AVAILABLE` is false, nothing here is defined beyond the flag and the
wrappers (which then raise), and ``crf.py`` keeps its other paths. Written by hand because the CRF
libraries on GPU loop over time in Python (one handful of kernel launches per position) and
torch-struct's parallel scan materialises batch x l/2 x k^3 tensors; the pattern here is the one of
NeMo's RNNT loss and seqdist's CTC-CRF: one program per sequence, the loop over time inside it.

Glossary: b = batch, l = padded length, k = number of tags, BLOCK_K = k rounded up to a power of two,
n = a row's own length (its valid positions are packed to the front, as ``crf.py`` does).

Inputs are the *packed* tensors of ``crf.py``: emissions (b, l, k) float32 / bfloat16 / float16 /
float64, lengths (b,) integer, start (k,), end (k,), trans (k, k) with trans[i, j] scoring tag i
followed by tag j and the forbidden moves already at `crf.FORBIDDEN` (-10,000), so their
exponentials are exactly 0. Computation is in float32 (float64 for float64 emissions, as the tests'
gradient checks want). Padding lanes (tags >= k) hold -inf.

Two kinds of recursion. The linear-space kernels (`_forward_kernel`, `_backward_kernel`) keep each
step's vector normalised to max 1 and multiply it with P = exp(trans - max trans), computed once: per
step a (BLOCK_K, BLOCK_K) multiply-and-sum plus BLOCK_K logs and exponentials, against a BLOCK_K^2
exponential tile in log space (Rabiner's scaling, with the scale kept as a log in float64). Their sums
have only non-negative terms, so they are exact to rounding as long as no term leaves float32's
normal range; each row checks that every reachable lane stays within `limit` nats of its max (see
`_scaled_transitions`) and flags itself otherwise. The log-space kernels (`_forward_log_kernel`,
`_backward_log_kernel`: max-shifted log-sum-exps, exact at any dynamic range) then recompute just
the flagged rows: rows where a reachable tag falls ~80 nats (less the spread of the allowed
transition scores) below the best one at some position, i.e. emissions tens of nats apart.
Either way alphas and betas are shifted by their max at every step and every probability is
normalised where it is formed, so float32 keeps its precision however large log Z grows (the Python
recursion's unshifted float32 alphas lose ~1e-2 in the marginals at |log Z| ~ 1e4; tested at l = 256
with |log Z| > 1e4, and l = 4096 in a slow test).

- `log_partition_fwd` -> (log Z (b,), alphas (b, l, k)): the forward algorithm; the shifts add up in
  float64. The alphas are stored as logs shifted to max 0 at each step (the same from both kinds of
  kernel, so either backward reads either forward's), for `log_partition_bwd` only; just the
  first max(n, 1) positions are written. An empty row gets log Z of its position 0, as the Python
  recursion does (``crf.py`` gives such rows loss 0 and no gradient).
- `log_partition_bwd` -> (d emissions (b, l, k), d start (k,), d end (k,), d trans (k, k)) for a given
  d log Z: the backward (beta) recursion from each row's end, d emissions = g * marginals and d trans =
  g * expected transition counts, d start / d end = g * marginals of the first / last position. Each
  program accumulates its row's counts in registers and writes one partial per row; the partials are
  summed over rows by torch (no atomics, deterministic). The gold path's share of the NLL gradient is
  not here: ``crf.py`` differentiates the gold score with autograd.
- `marginals` -> p(tag_i = j | x) (b, l, k), zeros past each row's end: the same two kernels without
  the transition counts.
- `viterbi` -> best path (b, l) long, `pad_value` past each row's end. Back-pointers are int8 for
  k <= 127 (int16, int32 beyond) in a (b, l, k) buffer; the back-trace runs in the kernel. Ties go to
  the lowest tag id, as torch's ``max`` / ``argmax``, so paths equal the Python recursion's exactly.

Off a GPU the kernels run in Triton's interpreter when ``TRITON_INTERPRET=1`` is set before this
module is imported (the tests do so in ``conftest.py``); that is for testing only (slow).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # a machine without triton still loads checkpoints; crf.py uses its other paths
    triton = None

AVAILABLE = triton is not None


def _block_k(k: int) -> int:
    return max(2, 1 << (k - 1).bit_length())  # tl.arange needs a power of two >= 2


def _num_warps(block_k: int) -> int:
    """Warps per program: one warp keeps every reduction over tags inside the warp (shuffles, no barrier)."""
    return 1 if block_k <= 32 else (2 if block_k <= 64 else 4)


def _backpointer_dtype(k: int) -> torch.dtype:
    return torch.int8 if k <= 127 else (torch.int16 if k <= 32767 else torch.int32)


if AVAILABLE:
    # Inside the loops over time everything is written inline: in Triton's interpreter each call of a
    # @triton.jit helper costs as much as the rest of a step.

    @triton.jit
    def _load_tags(ptr, K, BLOCK_K: tl.constexpr):
        """A (k,) score vector as (BLOCK_K,), -inf on the padding lanes."""
        tags = tl.arange(0, BLOCK_K)
        return tl.load(ptr + tags, mask=tags < K, other=float("-inf"))

    @triton.jit
    def _load_transitions(trans_ptr, K, BLOCK_K: tl.constexpr):
        """trans (BLOCK_K, BLOCK_K) [prev, next], -inf on the padding lanes."""
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        return tl.load(trans_ptr + tags[:, None] * K + tags[None, :], mask=ok[:, None] & ok[None, :], other=float("-inf"))

    @triton.jit
    def _max_or_zero(x):
        """max of a (BLOCK_K,) vector, 0 where it is -inf (a shift that keeps -inf lanes at -inf, never NaN)."""
        m = tl.max(x, 0)
        return tl.where(m == float("-inf"), 0.0, m)

    @triton.jit
    def _scaled_transitions(trans, RANGE: tl.constexpr):
        """(P, top, limit) for the linear-space recursions; trans (BLOCK_K, BLOCK_K) in either orientation.

        P = exp(trans - top) with top = max(trans), so 0 <= P <= 1; forbidden moves (at least 1,000 below top,
        crf.FORBIDDEN is -10,000) and padding lanes are exact zeros, as their exponentials are in the log-space
        kernels. `spread` is how far below top the smallest other entry lies; `limit` = RANGE - spread is how far
        below its max a normalised vector may let a lane fall so that every product of the lane with an entry
        of P stays above exp(-RANGE), a normal float (exp(-80) ~ 1.8e-35 in float32): sums of such products
        are exact to rounding (no cancellation, all terms positive). limit <= 0 flags every row.
        """
        top = tl.max(tl.max(trans, 1), 0)
        top = tl.where(top == float("-inf"), 0.0, top)
        gap = top - trans
        spread = tl.max(tl.max(tl.where(gap < 1000.0, gap, 0.0), 1), 0)
        return tl.exp(-gap), top, RANGE - spread

    @triton.jit
    def _forward_kernel(em_ptr, len_ptr, start_ptr, end_ptr, trans_ptr, alpha_ptr, logz_ptr, flag_ptr, L, K,
                        BLOCK_K: tl.constexpr, RANGE: tl.constexpr):
        """One row in linear space: alpha_t = log(exp(alpha_{t-1}) @ P) + em_t, shifted by its max every step.

        Rabiner's scaling in the log domain: the stored alpha has max 0, so exp(alpha) lies in [0, 1] and
        the product with P (a (BLOCK_K, BLOCK_K) multiply and sum, no exponential of the tile) is a sum of
        non-negative terms; the shifts, plus top per step, add up (in float64) to log Z. -inf lanes (tags no
        allowed path reaches) stay exact zeros. The row is flagged (flag_ptr) when a reachable lane falls
        more than `limit` below the max (see `_scaled_transitions`): then a product could leave float32's
        normal range and `_forward_log_kernel` recomputes the row.
        """
        dtype = alpha_ptr.dtype.element_ty  # the compute dtype, as start, end and trans
        row = tl.program_id(0).to(tl.int64)
        n = tl.maximum(tl.load(len_ptr + row).to(tl.int32), 1)
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        probs, top, limit = _scaled_transitions(_load_transitions(trans_ptr, K, BLOCK_K), RANGE)  # [prev, next]
        start, end = _load_tags(start_ptr, K, BLOCK_K), _load_tags(end_ptr, K, BLOCK_K)
        em_row = em_ptr + row * L * K
        alpha_row = alpha_ptr + row * L * K
        alpha = start + tl.load(em_row + tags, mask=ok, other=0.0).to(dtype)  # (BLOCK_K,)
        shift = _max_or_zero(alpha)
        alpha -= shift
        log_scale = shift.to(tl.float64)
        tl.store(alpha_row + tags, alpha, mask=ok)
        # per lane: the lowest reachable alpha so far; lanes 1,000 below the max (a forbidden start) count as
        # exact zeros, as forbidden moves do: exp(-1000) is 0 in float32 and float64, in both kernels
        lowest = tl.where(alpha < -1000.0, 0.0, alpha)
        # the next step's emissions are loaded before this step's reductions, to hide the load
        emission = tl.load(em_row + K + tags, mask=tags < tl.where(n > 1, K, 0), other=0.0).to(dtype)
        for t in range(1, n):
            upcoming = tl.load(em_row + (t + 1) * K + tags, mask=tags < tl.where(t + 1 < n, K, 0), other=0.0).to(dtype)
            alpha = tl.log(tl.sum(tl.exp(alpha)[:, None] * probs, 0)) + emission  # log alpha_t - (shifts + t top)
            shift = tl.max(alpha, 0)
            shift = tl.where(shift == float("-inf"), 0.0, shift)
            alpha -= shift
            log_scale += shift.to(tl.float64)
            tl.store(alpha_row + t * K + tags, alpha, mask=ok)
            lowest = tl.minimum(lowest, tl.where(alpha < -1000.0, 0.0, alpha))
            emission = upcoming
        last = alpha + end
        shift = _max_or_zero(last)
        log_z = log_scale + (n - 1).to(tl.float64) * top.to(tl.float64) \
            + (shift + tl.log(tl.sum(tl.exp(last - shift), 0))).to(tl.float64)
        tl.store(logz_ptr + row, log_z.to(dtype))
        flag = (tl.min(lowest, 0) < -limit) | (limit <= 0) | (log_z == float("-inf"))
        tl.store(flag_ptr + row, flag.to(tl.int32))

    @triton.jit
    def _backward_kernel(em_ptr, len_ptr, end_ptr, trans_t_ptr, alpha_ptr, glogz_ptr, gem_ptr, gstart_ptr, gend_ptr,
                         gtrans_ptr, flag_ptr, L, K, BLOCK_K: tl.constexpr, PAIRS: tl.constexpr, RANGE: tl.constexpr):
        """One row in linear space, t = n-1 .. 1: beta_{t-1} = log(P @ exp(em_t + beta_t - max)), up to a constant.

        With u = exp(em_t + beta_t - max) in [0, 1] and S[j, i] = P[i, j] u[j] (the transposed tile, so
        that the sum over j runs down a column), r = sum_j S[j, :] is beta_{t-1} up to a constant and the
        pair marginals of step t are S[j, i] a[i] / sum_i a[i] r[i], a = exp(alpha_{t-1}). That normaliser
        is formed in log space, q = alpha_{t-1} + log r, as the marginal of t - 1 is (softmax(q)), so that
        neither a tiny a nor a tiny r underflows it: counts += S[j, i] exp(alpha_{t-1}[i] - max q) / sum
        exp(q - max q), where alpha_{t-1}[i] - max q <= -log r[i] <= RANGE keeps the factor finite. The
        beta recursion alone needs the range check: a row is flagged when a reachable lane of
        em_t + beta_t falls more than `limit` below the max, and `_backward_log_kernel` then recomputes it.
        d em_t = g marginal_t, d start = g marginal_0, d end = g marginal_{n-1}, d trans = g counts (PAIRS only).
        """
        dtype = alpha_ptr.dtype.element_ty
        row = tl.program_id(0).to(tl.int64)
        n = tl.load(len_ptr + row).to(tl.int32)
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        # trans transposed, [next, prev], read from a transposed copy: a row-contiguous load gets the layout of
        # the forward (a column of the tile per thread), so the sum over next runs inside each thread
        probs_t, _, limit = _scaled_transitions(_load_transitions(trans_t_ptr, K, BLOCK_K), RANGE)
        end = _load_tags(end_ptr, K, BLOCK_K)
        g = tl.load(glogz_ptr + row).to(dtype)
        em_row = em_ptr + row * L * K
        alpha_row = alpha_ptr + row * L * K
        gem_row = gem_ptr + row * L * K
        last = tl.maximum(n, 1) - 1
        beta = end  # beta of the last position
        q = tl.load(alpha_row + last * K + tags, mask=ok, other=float("-inf")).to(dtype) + beta
        weight = tl.exp(q - _max_or_zero(q))
        marginal = weight / tl.sum(weight, 0)
        tl.store(gend_ptr + row * K + tags, g * marginal, mask=ok)
        counts_t = tl.zeros((BLOCK_K, BLOCK_K), dtype=dtype)  # expected transitions, [next, prev]
        lowest = tl.zeros((BLOCK_K,), dtype=dtype)  # per lane: the lowest em_t + beta_t - max above -1000 so far
        emission = tl.load(em_row + last * K + tags, mask=tags < tl.where(n > 1, K, 0), other=0.0).to(dtype)
        alpha_prev = tl.load(alpha_row + (last - 1) * K + tags, mask=tags < tl.where(n > 1, K, 0),
                             other=float("-inf")).to(dtype)
        for s in range(1, n):
            t = n - s  # position t (>= 1) hands beta to position t - 1
            next_emission = tl.load(em_row + (t - 1) * K + tags, mask=tags < tl.where(t > 1, K, 0), other=0.0).to(dtype)
            next_alpha = tl.load(alpha_row + (t - 2) * K + tags, mask=tags < tl.where(t > 1, K, 0),
                                 other=float("-inf")).to(dtype)
            tl.store(gem_row + t * K + tags, g * marginal, mask=ok)
            x = emission + beta
            x_max = tl.max(x, 0)
            x -= tl.where(x_max == float("-inf"), 0.0, x_max)
            lowest = tl.minimum(lowest, tl.where(x < -1000.0, 0.0, x))  # as in _forward_kernel
            scaled = probs_t * tl.exp(x)[:, None]  # S[j, i] = P[i, j] u[j]
            beta = tl.log(tl.sum(scaled, 0))  # log r: beta of position t - 1, up to a constant
            q = alpha_prev + beta
            q_max = tl.max(q, 0)
            q_max = tl.where(q_max == float("-inf"), 0.0, q_max)
            weight = tl.exp(q - q_max)
            inv_norm = 1.0 / tl.sum(weight, 0)
            marginal = weight * inv_norm
            if PAIRS:
                # alpha_prev - q_max <= RANGE in a row that stays unflagged, so the minimum changes nothing there; it
                # keeps a flagged row (recomputed in log space) free of inf * 0
                factor = tl.where(beta == float("-inf"), 0.0, g * inv_norm * tl.exp(tl.minimum(alpha_prev - q_max, RANGE)))
                counts_t += scaled * factor[None, :]
            emission = next_emission
            alpha_prev = next_alpha
        has_tokens = n > 0  # an empty row: no gradient for its emissions or start
        tl.store(gem_row + tags, g * marginal, mask=tags < tl.where(has_tokens, K, 0))
        tl.store(gstart_ptr + row * K + tags, tl.where(has_tokens, g * marginal, 0.0), mask=ok)
        if PAIRS:
            pair = tags[None, :] * K + tags[:, None]  # counts_t[j, i] is d trans[i, j]
            tl.store(gtrans_ptr + row * K * K + pair, counts_t, mask=ok[:, None] & ok[None, :])
        flag = (tl.min(lowest, 0) < -limit) | (limit <= 0)
        tl.store(flag_ptr + row, flag.to(tl.int32))

    @triton.jit
    def _forward_log_kernel(em_ptr, len_ptr, start_ptr, end_ptr, trans_ptr, alpha_ptr, logz_ptr, flag_ptr, L, K,
                            BLOCK_K: tl.constexpr):
        """One flagged row (others return at once): alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + trans[i, j]) + em_t[j],
        shifted by its max every step.

        The shifted alphas (max 0) are stored; the shifts add up (in float64) to log Z together with
        logsumexp(alpha_{n-1} + end). A column max inside every log-sum-exp: exact at any dynamic range.
        """
        dtype = alpha_ptr.dtype.element_ty  # the compute dtype, as start, end and trans
        row = tl.program_id(0).to(tl.int64)
        if tl.load(flag_ptr + row) == 0:
            return
        n = tl.maximum(tl.load(len_ptr + row).to(tl.int32), 1)
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        trans = _load_transitions(trans_ptr, K, BLOCK_K)
        start, end = _load_tags(start_ptr, K, BLOCK_K), _load_tags(end_ptr, K, BLOCK_K)
        em_row = em_ptr + row * L * K
        alpha_row = alpha_ptr + row * L * K
        alpha = start + tl.load(em_row + tags, mask=ok, other=0.0).to(dtype)  # (BLOCK_K,)
        shift = _max_or_zero(alpha)
        alpha -= shift
        log_scale = shift.to(tl.float64)
        tl.store(alpha_row + tags, alpha, mask=ok)
        # the next step's emissions are loaded before this step's reductions, to hide the load
        emission = tl.load(em_row + K + tags, mask=tags < tl.where(n > 1, K, 0), other=0.0).to(dtype)
        for t in range(1, n):
            upcoming = tl.load(em_row + (t + 1) * K + tags, mask=tags < tl.where(t + 1 < n, K, 0), other=0.0).to(dtype)
            x = alpha[:, None] + trans  # (prev, next)
            m = tl.max(x, 0)
            m = tl.where(m == float("-inf"), 0.0, m)
            alpha = m + tl.log(tl.sum(tl.exp(x - m[None, :]), 0)) + emission
            shift = tl.max(alpha, 0)
            shift = tl.where(shift == float("-inf"), 0.0, shift)
            alpha -= shift
            log_scale += shift.to(tl.float64)
            tl.store(alpha_row + t * K + tags, alpha, mask=ok)
            emission = upcoming
        last = alpha + end
        shift = _max_or_zero(last)
        log_z = log_scale + (shift + tl.log(tl.sum(tl.exp(last - shift), 0))).to(tl.float64)
        tl.store(logz_ptr + row, log_z.to(dtype))

    @triton.jit
    def _backward_log_kernel(em_ptr, len_ptr, end_ptr, trans_ptr, alpha_ptr, glogz_ptr, gem_ptr, gstart_ptr, gend_ptr,
                             gtrans_ptr, flag_ptr, L, K, BLOCK_K: tl.constexpr, PAIRS: tl.constexpr):
        """One flagged row (others return at once), t = n-1 .. 0: beta_{t-1}[i] = logsumexp_j(trans[i, j] + em_t[j] + beta_t[j]), shifted by its max.

        Every quantity is normalised where it is used, so no large number enters (and log Z is not needed):
        marginal_t = softmax_j(alpha_t + beta_t); with m[i] the max over j of trans[i, j] + em_t[j] + beta_t[j]
        and w[i, j] = exp(that - m[i]), the expected transitions of step t are
        exp(alpha_{t-1}[i] + m[i] - M) w[i, j] / N, where M and N are the max and the normaliser of marginal_{t-1}.
        d em_t = g marginal_t, d start = g marginal_0, d end = g marginal_{n-1}, d trans = g counts (PAIRS only).
        """
        dtype = alpha_ptr.dtype.element_ty
        row = tl.program_id(0).to(tl.int64)
        if tl.load(flag_ptr + row) == 0:
            return
        n = tl.load(len_ptr + row).to(tl.int32)
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        trans, end = _load_transitions(trans_ptr, K, BLOCK_K), _load_tags(end_ptr, K, BLOCK_K)
        g = tl.load(glogz_ptr + row).to(dtype)
        em_row = em_ptr + row * L * K
        alpha_row = alpha_ptr + row * L * K
        gem_row = gem_ptr + row * L * K
        last = tl.maximum(n, 1) - 1
        beta = end  # beta of the last position
        q = tl.load(alpha_row + last * K + tags, mask=ok, other=float("-inf")).to(dtype) + beta
        weight = tl.exp(q - _max_or_zero(q))
        marginal = weight / tl.sum(weight, 0)
        tl.store(gend_ptr + row * K + tags, g * marginal, mask=ok)
        counts = tl.zeros((BLOCK_K, BLOCK_K), dtype=dtype)  # expected transitions, [prev, next]
        emission = tl.load(em_row + last * K + tags, mask=tags < tl.where(n > 1, K, 0), other=0.0).to(dtype)
        alpha_prev = tl.load(alpha_row + (last - 1) * K + tags, mask=tags < tl.where(n > 1, K, 0),
                             other=float("-inf")).to(dtype)
        for s in range(1, n):
            t = n - s  # position t (>= 1) hands beta to position t - 1
            next_emission = tl.load(em_row + (t - 1) * K + tags, mask=tags < tl.where(t > 1, K, 0), other=0.0).to(dtype)
            next_alpha = tl.load(alpha_row + (t - 2) * K + tags, mask=tags < tl.where(t > 1, K, 0),
                                 other=float("-inf")).to(dtype)
            tl.store(gem_row + t * K + tags, g * marginal, mask=ok)
            x = trans + (emission + beta)[None, :]  # (prev, next)
            m = tl.max(x, 1)
            m = tl.where(m == float("-inf"), 0.0, m)
            w = tl.exp(x - m[:, None])
            beta = m + tl.log(tl.sum(w, 1))  # beta of position t - 1
            q = alpha_prev + beta
            q_max = tl.max(q, 0)
            q_max = tl.where(q_max == float("-inf"), 0.0, q_max)
            weight = tl.exp(q - q_max)
            inv_norm = 1.0 / tl.sum(weight, 0)
            marginal = weight * inv_norm
            if PAIRS:
                counts += (g * inv_norm * tl.exp(alpha_prev + m - q_max))[:, None] * w
            beta_max = tl.max(beta, 0)
            beta -= tl.where(beta_max == float("-inf"), 0.0, beta_max)
            emission = next_emission
            alpha_prev = next_alpha
        has_tokens = n > 0  # an empty row: no gradient for its emissions or start
        tl.store(gem_row + tags, g * marginal, mask=tags < tl.where(has_tokens, K, 0))
        tl.store(gstart_ptr + row * K + tags, tl.where(has_tokens, g * marginal, 0.0), mask=ok)
        if PAIRS:
            pair = tags[:, None] * K + tags[None, :]
            tl.store(gtrans_ptr + row * K * K + pair, counts, mask=ok[:, None] & ok[None, :])

    @triton.jit
    def _viterbi_kernel(em_ptr, len_ptr, start_ptr, end_ptr, trans_ptr, bp_ptr, path_ptr, L, K,
                        BLOCK_K: tl.constexpr):
        """One row: score_t[j] = max_i(score_{t-1}[i] + trans[i, j]) + em_t[j] with back-pointers, then the back-trace.

        Not shifted: the same operations in the same order as the Python recursion, so the same paths.
        """
        dtype = start_ptr.dtype.element_ty  # the compute dtype
        row = tl.program_id(0).to(tl.int64)
        n = tl.load(len_ptr + row).to(tl.int32)
        tags = tl.arange(0, BLOCK_K)
        ok = tags < K
        trans = _load_transitions(trans_ptr, K, BLOCK_K)
        start, end = _load_tags(start_ptr, K, BLOCK_K), _load_tags(end_ptr, K, BLOCK_K)
        em_row = em_ptr + row * L * K
        bp_row = bp_ptr + row * L * K
        path_row = path_ptr + row * L
        score = start + tl.load(em_row + tags, mask=ok, other=0.0).to(dtype)
        emission = tl.load(em_row + K + tags, mask=tags < tl.where(n > 1, K, 0), other=0.0).to(dtype)
        for t in range(1, n):
            upcoming = tl.load(em_row + (t + 1) * K + tags, mask=tags < tl.where(t + 1 < n, K, 0), other=0.0).to(dtype)
            best, best_prev = tl.max(score[:, None] + trans, 0, return_indices=True, return_indices_tie_break_left=True)
            tl.store(bp_row + t * K + tags, best_prev.to(bp_ptr.dtype.element_ty), mask=ok)
            score = best + emission
            emission = upcoming
        _, cur = tl.max(score + end, 0, return_indices=True, return_indices_tie_break_left=True)
        cur = cur.to(tl.int64)
        tl.store(path_row + n - 1, cur, mask=n > 0)
        tl.debug_barrier()  # the back-pointers written by every thread of the program are visible below
        for s in range(1, n):
            t = n - s
            cur = tl.load(bp_row + t * K + cur).to(tl.int64)
            tl.store(path_row + t - 1, cur)


def _check(emissions, lengths):
    if not AVAILABLE:
        raise RuntimeError("the Triton CRF kernels need triton (pip install triton); it is not importable here")
    if emissions.dim() != 3 or emissions.shape[1] < 1 or lengths.shape != emissions.shape[:1]:
        raise ValueError(f"expected emissions (b, l >= 1, k) and lengths (b,), got {tuple(emissions.shape)} and "
                         f"{tuple(lengths.shape)}")
    if not emissions.is_floating_point():
        raise ValueError(f"emissions must be floating point, got {emissions.dtype}")


def _compute_dtype(emissions):
    return torch.float64 if emissions.dtype == torch.float64 else torch.float32


def _prepare(emissions, lengths, *scores):
    """Contiguous inputs for the kernels: emissions as they are, lengths int32, scores in the compute dtype."""
    _check(emissions, lengths)
    dtype = _compute_dtype(emissions)
    scores = [s.to(device=emissions.device, dtype=dtype).contiguous() for s in scores]
    return emissions.contiguous(), lengths.to(device=emissions.device, dtype=torch.int32).contiguous(), scores


def _range(dtype) -> float:
    """How many nats below 1 a product in the linear-space kernels may fall: exp(-RANGE) stays a normal float."""
    return 700.0 if dtype == torch.float64 else 80.0


def _forward_linear(emissions, lengths, start, end, trans):
    """The linear-space forward kernel alone: (log Z (b,), alphas (b, l, k), flags (b,) int32); prepared inputs.

    Rows with flag 1 left the kernel's range (their log Z and alphas are not to be used as they are)."""
    b, l, k = emissions.shape
    alphas = torch.empty(b, l, k, dtype=_compute_dtype(emissions), device=emissions.device)
    log_z = torch.empty(b, dtype=alphas.dtype, device=emissions.device)
    flags = torch.zeros(b, dtype=torch.int32, device=emissions.device)
    if b:
        block_k = _block_k(k)
        _forward_kernel[(b,)](emissions, lengths, start, end, trans, alphas, log_z, flags, l, k, BLOCK_K=block_k,
                              RANGE=_range(alphas.dtype), num_warps=_num_warps(block_k))
    return log_z, alphas, flags


def log_partition_fwd(emissions, lengths, start, end, trans):
    """Forward algorithm. Returns (log Z (b,), alphas (b, l, k)) in float32 (float64 for float64 emissions).

    The linear-space kernel runs every row; the log-space kernel then recomputes the rows it flagged (it
    returns at once for the others: one more launch, no synchronisation with the host).
    """
    emissions, lengths, (start, end, trans) = _prepare(emissions, lengths, start, end, trans)
    b, l, k = emissions.shape
    log_z, alphas, flags = _forward_linear(emissions, lengths, start, end, trans)
    if b:
        block_k = _block_k(k)
        _forward_log_kernel[(b,)](emissions, lengths, start, end, trans, alphas, log_z, flags, l, k,
                                  BLOCK_K=block_k, num_warps=_num_warps(block_k))
    return log_z, alphas


def log_partition_bwd(emissions, lengths, end, trans, alphas, grad_log_z, pairs=True):
    """Gradients of log Z (forward-backward), given the alphas of `log_partition_fwd` and d log Z (b,).

    Returns (d emissions (b, l, k), d start (k,), d end (k,), d trans (k, k)) in the compute dtype; d trans
    is None when `pairs` is false.
    """
    emissions, lengths, (end, trans) = _prepare(emissions, lengths, end, trans)
    b, l, k = emissions.shape
    dtype = alphas.dtype
    grad_log_z = grad_log_z.to(dtype).contiguous()
    grad_emissions = torch.zeros(b, l, k, dtype=dtype, device=emissions.device)
    grad_start = torch.empty(b, k, dtype=dtype, device=emissions.device)  # per row, summed below
    grad_end = torch.empty(b, k, dtype=dtype, device=emissions.device)
    grad_trans = torch.empty(b, k, k, dtype=dtype, device=emissions.device) if pairs else grad_start  # unused without pairs
    flags = torch.zeros(b, dtype=torch.int32, device=emissions.device)
    if b:
        block_k = _block_k(k)
        outputs = (alphas.contiguous(), grad_log_z, grad_emissions, grad_start, grad_end, grad_trans, flags, l, k)
        _backward_kernel[(b,)](emissions, lengths, end, trans.t().contiguous(), *outputs, BLOCK_K=block_k, PAIRS=pairs,
                               RANGE=_range(dtype), num_warps=_num_warps(block_k))
        # the rows the linear-space kernel flagged, again in log space (every output of such a row is rewritten)
        _backward_log_kernel[(b,)](emissions, lengths, end, trans, *outputs, BLOCK_K=block_k, PAIRS=pairs,
                                   num_warps=_num_warps(block_k))
    return grad_emissions, grad_start.sum(0), grad_end.sum(0), grad_trans.sum(0) if pairs else None


def marginals(emissions, lengths, start, end, trans):
    """Posterior marginals p(tag_t = j | x) (b, l, k) in the compute dtype; zeros past each row's end."""
    log_z, alphas = log_partition_fwd(emissions, lengths, start, end, trans)
    return log_partition_bwd(emissions, lengths, end, trans, alphas, torch.ones_like(log_z), pairs=False)[0]


def viterbi(emissions, lengths, start, end, trans, pad_value=-100):
    """Best paths (b, l) long, `pad_value` past each row's end."""
    emissions, lengths, (start, end, trans) = _prepare(emissions, lengths, start, end, trans)
    b, l, k = emissions.shape
    path = torch.full((b, l), pad_value, dtype=torch.long, device=emissions.device)
    if b:
        backpointers = torch.empty(b, l, k, dtype=_backpointer_dtype(k), device=emissions.device)
        block_k = _block_k(k)
        _viterbi_kernel[(b,)](emissions, lengths, start, end, trans, backpointers, path, l, k, BLOCK_K=block_k,
                              num_warps=_num_warps(block_k))
    return path
