"""C++ source of the CPU kernels of the linear-chain CRF, compiled on first use with `load_inline`.

The source lives in a string because checkpoints carry ``.py`` files only (remote code); it is built,
cached and loaded exactly like the selective scan's (see ``scan_cpu_kernel.py``, whose
`load_inline_once` this module reuses). `load_crf_kernel` returns ``torch.ops.mamba_ner_crf`` or
None (with one logged warning) when nothing could be compiled; ``crf.py`` then keeps its pure-PyTorch
recursions, which stay the reference.

The three ops take the *packed* tensors ``crf.py`` builds (b = batch, l = length, k = tags):
emissions (b, l, k) contiguous float32/float64, mask (b, l) bool (true on a prefix of each row, but
every position is handled as the Python code does: a false position carries the previous state
over), start (k,), end (k,), trans (k, k) with trans[i, j] scoring tag i followed by tag j and the
forbidden moves already at -10000.

- ``log_partition_fwd`` -> (log Z (b,), alphas (b, l, k)): the forward algorithm.
- ``log_partition_bwd`` -> (d emissions, d start, d end, d trans) given d log Z: forward-backward,
  exactly the formulas of ``_LogPartition.backward``; the batch sums of d start/end/trans go through
  per-row partials added in row order, so results do not depend on the thread count.
- ``viterbi`` -> best path (b, l) long, ``pad_value`` where the mask is false; ties go to the
  lowest tag id, as torch's ``max``/``argmax`` do.

Rows run in parallel (``at::parallel_for``, grain 1); inside a row the loop over time is sequential
and the loops over tags are plain loops (k is small) with a max-shifted log-sum-exp.
"""

import logging

from .scan_cpu_kernel import CEPHES_EXPF, load_inline_once

logger = logging.getLogger(__name__)

CPP_SOURCE = r"""
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

// @CEPHES_EXPF@
// exp of the shifted arguments of a log-sum-exp (x <= ~0). float32: Cephes expf polynomial without
// calls or branches (relative error about 1e-7, 0 below the float range), so that the loops over
// tags vectorise; float64 (tests, gradcheck): std::exp.
inline float exp_shifted(float x) {
  const float lo = -87.3365447f;
  const float xc = x < lo ? lo : x;
  float k;  // round(x / ln 2)
  const float q = cephes_expf_reduced(xc, k);
  const int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  const float v = q * scale;
  return x < lo ? 0.0f : v;
}
inline double exp_shifted(double x) { return std::exp(x); }

// log(sum(exp(v[0..n)))) as torch.logsumexp: max-shifted; an infinite max is returned as it is.
template <typename T>
inline T logsumexp(const T* v, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, v[i]);
  if (!std::isfinite(m)) return m;
  T s = T(0);
  for (int64_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return m + std::log(s);
}

// cur[j] = logsumexp over p of (prev[p] + trans[p, j]), plus add[j]; vectorised over j. As
// torch.logsumexp: shifted by the max over p, and where that max is infinite it is the result.
template <typename T>
void logsumexp_columns(const T* prev, const T* trans, const T* add, int64_t K, T* cur, T* m, T* s) {
  for (int64_t j = 0; j < K; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
    s[j] = T(0);
  }
  for (int64_t p = 0; p < K; ++p) {
    const T a = prev[p];
    const T* tr = trans + p * K;
    for (int64_t j = 0; j < K; ++j) {
      const T v = a + tr[j];
      m[j] = v > m[j] ? v : m[j];
    }
  }
  for (int64_t j = 0; j < K; ++j) {  // keep the max in cur; shift by 0 where it is not finite
    cur[j] = m[j];
    m[j] = std::isfinite(m[j]) ? m[j] : T(0);
  }
  for (int64_t p = 0; p < K; ++p) {
    const T a = prev[p];
    const T* tr = trans + p * K;
    for (int64_t j = 0; j < K; ++j) s[j] += exp_shifted(a + tr[j] - m[j]);
  }
  for (int64_t j = 0; j < K; ++j) cur[j] = (std::isfinite(cur[j]) ? m[j] + std::log(s[j]) : cur[j]) + add[j];
}

void check_inputs(const at::Tensor& em, const at::Tensor& mask, const at::Tensor& end, const at::Tensor& trans) {
  TORCH_CHECK(em.dim() == 3 && em.is_contiguous() && em.size(1) >= 1, "emissions must be contiguous (b, l >= 1, k)");
  TORCH_CHECK(em.scalar_type() == at::kFloat || em.scalar_type() == at::kDouble, "emissions must be float32 or float64");
  const int64_t k = em.size(2);
  TORCH_CHECK(k >= 1, "need at least one tag");
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.is_contiguous() && mask.dim() == 2 && mask.size(0) == em.size(0) &&
              mask.size(1) == em.size(1), "mask must be a contiguous (b, l) bool tensor");
  TORCH_CHECK(end.dim() == 1 && end.size(0) == k && end.is_contiguous() && end.scalar_type() == em.scalar_type(),
              "end must be contiguous (k,) of the emissions' dtype");
  TORCH_CHECK(trans.dim() == 2 && trans.size(0) == k && trans.size(1) == k && trans.is_contiguous() &&
              trans.scalar_type() == em.scalar_type(), "trans must be contiguous (k, k) of the emissions' dtype");
}

void check_start(const at::Tensor& em, const at::Tensor& start) {
  TORCH_CHECK(start.dim() == 1 && start.size(0) == em.size(2) && start.is_contiguous() &&
              start.scalar_type() == em.scalar_type(), "start must be contiguous (k,) of the emissions' dtype");
}

// ------------------------------------------------------------------ forward algorithm
template <typename T>
void fwd_row(const T* em, const bool* mk, const T* start, const T* end, const T* trans, int64_t L, int64_t K,
             T* alpha, T* logz, T* tmp) {
  for (int64_t j = 0; j < K; ++j) alpha[j] = start[j] + em[j];
  for (int64_t i = 1; i < L; ++i) {
    const T* prev = alpha + (i - 1) * K;
    T* cur = alpha + i * K;
    if (mk[i]) logsumexp_columns(prev, trans, em + i * K, K, cur, tmp, tmp + K);
    else std::copy(prev, prev + K, cur);  // a false position carries the state over
  }
  const T* last = alpha + (L - 1) * K;
  for (int64_t j = 0; j < K; ++j) tmp[j] = last[j] + end[j];
  *logz = logsumexp(tmp, K);
}

std::vector<at::Tensor> log_partition_fwd(const at::Tensor& em, const at::Tensor& mask, const at::Tensor& start,
                                          const at::Tensor& end, const at::Tensor& trans) {
  check_inputs(em, mask, end, trans);
  check_start(em, start);
  const int64_t B = em.size(0), L = em.size(1), K = em.size(2);
  at::Tensor alphas = at::empty({B, L, K}, em.options());
  at::Tensor logz = at::empty({B}, em.options());
  AT_DISPATCH_FLOATING_TYPES(em.scalar_type(), "mamba_ner_crf_fwd", [&] {
    const scalar_t *ep = em.data_ptr<scalar_t>(), *sp = start.data_ptr<scalar_t>(), *np = end.data_ptr<scalar_t>(),
                   *tp = trans.data_ptr<scalar_t>();
    const bool* mp = mask.data_ptr<bool>();
    scalar_t *ap = alphas.data_ptr<scalar_t>(), *zp = logz.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t stop) {
      std::vector<scalar_t> tmp(2 * K);
      for (int64_t b = begin; b < stop; ++b)
        fwd_row<scalar_t>(ep + b * L * K, mp + b * L, sp, np, tp, L, K, ap + b * L * K, zp + b, tmp.data());
    });
  });
  return {logz, alphas};
}

// ------------------------------------------------------------------ forward-backward gradients
// One row: gem (L, K) and this row's partials of d start (K), d end (K), d trans (K, K). The loops run
// over the previous tag p (vectorised) with transT[j, p] = trans[p, j]; the exponentials of the pair
// marginals are shared with the log-sum-exp that gives beta:
//   exp(alpha[i-1, p] + trans[p, j] + w[j] - log Z) = exp(alpha[i-1, p] + m[p] - log Z) exp(trans[p, j] + w[j] - m[p])
// with w = emissions[i] + beta[i] and m[p] the max over j of trans[p, j] + w[j].
template <typename T>
void bwd_row(const T* em, const bool* mk, const T* end, const T* transT, const T* alpha, T logz, T g, int64_t L,
             int64_t K, T* gem, T* gstart, T* gend, T* gtrans, T* gtransT, T* beta, T* nbeta, T* w, T* m, T* s, T* c) {
  int64_t count = 0;
  for (int64_t i = 0; i < L; ++i) count += mk[i];
  const T* alast = alpha + std::max<int64_t>(count - 1, 0) * K;
  for (int64_t j = 0; j < K; ++j) gend[j] = g * std::exp(alast[j] + end[j] - logz);
  std::fill(gtransT, gtransT + K * K, T(0));
  std::copy(end, end + K, beta);  // beta of position L - 1
  for (int64_t i = L - 1; i >= 0; --i) {
    const T* a = alpha + i * K;
    T* ge = gem + i * K;
    if (mk[i]) {
      for (int64_t j = 0; j < K; ++j) ge[j] = g * exp_shifted(a[j] + beta[j] - logz);
    } else {
      std::fill(ge, ge + K, T(0));
    }
    if (i == 0) break;
    if (!mk[i]) continue;  // beta of position i - 1 is the same
    const T* e = em + i * K;
    const T* ap = alpha + (i - 1) * K;
    for (int64_t j = 0; j < K; ++j) w[j] = e[j] + beta[j];
    for (int64_t p = 0; p < K; ++p) {
      m[p] = -std::numeric_limits<T>::infinity();
      s[p] = T(0);
    }
    for (int64_t j = 0; j < K; ++j) {
      const T wj = w[j];
      const T* tc = transT + j * K;
      for (int64_t p = 0; p < K; ++p) {
        const T v = tc[p] + wj;
        m[p] = v > m[p] ? v : m[p];
      }
    }
    for (int64_t p = 0; p < K; ++p) {
      nbeta[p] = m[p];
      m[p] = std::isfinite(m[p]) ? m[p] : T(0);
      c[p] = g * std::exp(ap[p] + m[p] - logz);
    }
    for (int64_t j = 0; j < K; ++j) {
      const T wj = w[j];
      const T* tc = transT + j * K;
      T* gt = gtransT + j * K;
      for (int64_t p = 0; p < K; ++p) {
        const T x = exp_shifted(tc[p] + wj - m[p]);
        s[p] += x;
        gt[p] += c[p] * x;
      }
    }
    for (int64_t p = 0; p < K; ++p) nbeta[p] = std::isfinite(nbeta[p]) ? m[p] + std::log(s[p]) : nbeta[p];
    std::swap(beta, nbeta);
  }
  std::copy(gem, gem + K, gstart);
  for (int64_t p = 0; p < K; ++p)
    for (int64_t j = 0; j < K; ++j) gtrans[p * K + j] = gtransT[j * K + p];
}

std::vector<at::Tensor> log_partition_bwd(const at::Tensor& em, const at::Tensor& mask, const at::Tensor& end,
                                          const at::Tensor& trans, const at::Tensor& alphas, const at::Tensor& logz,
                                          const at::Tensor& glogz) {
  check_inputs(em, mask, end, trans);
  TORCH_CHECK(alphas.sizes() == em.sizes() && alphas.is_contiguous() && alphas.scalar_type() == em.scalar_type(), "bad alphas");
  const int64_t B = em.size(0), L = em.size(1), K = em.size(2);
  TORCH_CHECK(logz.dim() == 1 && logz.size(0) == B && logz.is_contiguous() && logz.scalar_type() == em.scalar_type(), "bad log_z");
  TORCH_CHECK(glogz.dim() == 1 && glogz.size(0) == B && glogz.is_contiguous() && glogz.scalar_type() == em.scalar_type(),
              "bad grad_log_z");
  at::Tensor gem = at::empty_like(em);
  at::Tensor part = at::empty({B, K * K + 2 * K}, em.options());  // per row: d trans, d start, d end
  at::Tensor transT = trans.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(em.scalar_type(), "mamba_ner_crf_bwd", [&] {
    const scalar_t *ep = em.data_ptr<scalar_t>(), *np = end.data_ptr<scalar_t>(), *tp = transT.data_ptr<scalar_t>(),
                   *ap = alphas.data_ptr<scalar_t>(), *zp = logz.data_ptr<scalar_t>(), *gp = glogz.data_ptr<scalar_t>();
    const bool* mp = mask.data_ptr<bool>();
    scalar_t *gep = gem.data_ptr<scalar_t>(), *pp = part.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t stop) {
      std::vector<scalar_t> buf(K * K + 6 * K);
      scalar_t* q = buf.data() + K * K;
      for (int64_t b = begin; b < stop; ++b) {
        scalar_t* row = pp + b * (K * K + 2 * K);
        bwd_row<scalar_t>(ep + b * L * K, mp + b * L, np, tp, ap + b * L * K, zp[b], gp[b], L, K, gep + b * L * K,
                          row + K * K, row + K * K + K, row, buf.data(), q, q + K, q + 2 * K, q + 3 * K, q + 4 * K,
                          q + 5 * K);
      }
    });
  });
  // sum the partials over rows in row order (deterministic for any thread count)
  at::Tensor total = at::zeros({K * K + 2 * K}, em.options());
  AT_DISPATCH_FLOATING_TYPES(em.scalar_type(), "mamba_ner_crf_bwd_sum", [&] {
    const scalar_t* pp = part.data_ptr<scalar_t>();
    scalar_t* tp = total.data_ptr<scalar_t>();
    const int64_t X = K * K + 2 * K;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t x = 0; x < X; ++x) tp[x] += pp[b * X + x];
  });
  return {gem, total.slice(0, K * K, K * K + K).clone(), total.slice(0, K * K + K, K * K + 2 * K).clone(),
          total.slice(0, 0, K * K).view({K, K}).clone()};
}

// ------------------------------------------------------------------ Viterbi
// true when v replaces best as in torch's max: greater, or the first NaN
template <typename T>
inline bool better(T v, T best) {
  return v > best || (v != v && best == best);
}

template <typename T>
void viterbi_row(const T* em, const bool* mk, const T* start, const T* end, const T* trans, int64_t L, int64_t K,
                 int64_t pad, int64_t* out, T* score, T* nscore, int32_t* hist) {
  for (int64_t j = 0; j < K; ++j) score[j] = start[j] + em[j];
  for (int64_t i = 1; i < L; ++i) {
    int32_t* h = hist + i * K;
    if (!mk[i]) {  // past the end of a row each tag points to itself
      for (int64_t j = 0; j < K; ++j) h[j] = (int32_t)j;
      continue;
    }
    // best previous tag p for every tag j, vectorised over j; p ascends, so the first maximum wins
    for (int64_t j = 0; j < K; ++j) {
      nscore[j] = score[0] + trans[j];
      h[j] = 0;
    }
    for (int64_t p = 1; p < K; ++p) {
      const T sp = score[p];
      const T* tr = trans + p * K;
      for (int64_t j = 0; j < K; ++j) {
        const T v = sp + tr[j];
        const bool take = better(v, nscore[j]);
        nscore[j] = take ? v : nscore[j];
        h[j] = take ? (int32_t)p : h[j];
      }
    }
    const T* e = em + i * K;
    for (int64_t j = 0; j < K; ++j) nscore[j] += e[j];
    std::swap(score, nscore);
  }
  T best = score[0] + end[0];
  int64_t cur = 0;
  for (int64_t j = 1; j < K; ++j) {
    const T v = score[j] + end[j];
    if (better(v, best)) {
      best = v;
      cur = j;
    }
  }
  out[L - 1] = cur;
  for (int64_t i = L - 1; i >= 1; --i) {
    cur = hist[i * K + cur];
    out[i - 1] = cur;
  }
  for (int64_t i = 0; i < L; ++i)
    if (!mk[i]) out[i] = pad;
}

at::Tensor viterbi(const at::Tensor& em, const at::Tensor& mask, const at::Tensor& start, const at::Tensor& end,
                   const at::Tensor& trans, int64_t pad_value) {
  check_inputs(em, mask, end, trans);
  check_start(em, start);
  const int64_t B = em.size(0), L = em.size(1), K = em.size(2);
  at::Tensor out = at::empty({B, L}, em.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(em.scalar_type(), "mamba_ner_crf_viterbi", [&] {
    const scalar_t *ep = em.data_ptr<scalar_t>(), *sp = start.data_ptr<scalar_t>(), *np = end.data_ptr<scalar_t>(),
                   *tp = trans.data_ptr<scalar_t>();
    const bool* mp = mask.data_ptr<bool>();
    int64_t* op = out.data_ptr<int64_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t stop) {
      std::vector<scalar_t> buf(2 * K);
      std::vector<int32_t> hist(L * K);
      for (int64_t b = begin; b < stop; ++b)
        viterbi_row<scalar_t>(ep + b * L * K, mp + b * L, sp, np, tp, L, K, pad_value, op + b * L, buf.data(),
                              buf.data() + K, hist.data());
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(mamba_ner_crf, m) {
  m.def("log_partition_fwd(Tensor emissions, Tensor mask, Tensor start, Tensor end, Tensor trans) -> Tensor[]");
  m.def("log_partition_bwd(Tensor emissions, Tensor mask, Tensor end, Tensor trans, Tensor alphas, Tensor log_z,"
        " Tensor grad_log_z) -> Tensor[]");
  m.def("viterbi(Tensor emissions, Tensor mask, Tensor start, Tensor end, Tensor trans, int pad_value) -> Tensor");
}

TORCH_LIBRARY_IMPL(mamba_ner_crf, CPU, m) {
  m.impl("log_partition_fwd", &log_partition_fwd);
  m.impl("log_partition_bwd", &log_partition_bwd);
  m.impl("viterbi", &viterbi);
}
"""
CPP_SOURCE = CPP_SOURCE.replace("// @CEPHES_EXPF@\n", CEPHES_EXPF)

_state = {"tried": False, "ops": None}


def load_crf_kernel():
    """Compile (first call only) and return ``torch.ops.mamba_ner_crf``, or None if that failed."""
    return load_inline_once(_state, CPP_SOURCE, "mamba_ner_crf", "CRF kernels", logger)
