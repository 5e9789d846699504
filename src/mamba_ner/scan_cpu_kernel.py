"""C++ source of the CPU selective-scan kernel, compiled on first use with `load_inline`.

The source lives in a string because checkpoints carry ``.py`` files only (remote code). It is
compiled once per machine into the default torch extensions directory (``TORCH_EXTENSIONS_DIR``
or ``~/.cache/torch_extensions``); the extension's name holds a hash of the source, the flags and
the CPU's feature flags, so a cache shared between different machines never serves a binary built
for another CPU. `load_cpu_kernel` returns ``torch.ops.mamba_ner_scan`` or None (with one logged
warning) when nothing could be compiled.

What the kernel computes (see ``scan.py`` for the glossary): for every chain (b, d) in parallel,
    h_t = exp(Δ_t A_d) * h_{t-1} + Δ_t u_t B_t;   y_t = C_t · h_t (+ D_d u_t);   out_t = y_t silu(z_t)
with the discretisation fused in, so no (b, d, l, n) tensor exists. Forward keeps h at the start of
every chunk of ``chunk`` steps; backward walks the chunks in reverse, recomputes the chunk's states
into a small per-thread buffer and runs the adjoint recurrence
    dh_t = dh_{t+1} * exp(Δ_{t+1} A) + gy_t C_t.
dB and dC sum over channels: each work item (one batch row, one fixed group of channels) adds into
its own partial buffer and the partials are summed in a fixed order afterwards, so results do not
depend on the thread count. Δ (bias, softplus) is prepared by the caller in PyTorch.
Layout: u, Δ, z, out (b, d, l) contiguous; B, C transposed to (b, l, n) contiguous.
"""
import hashlib
import logging
import threading

import torch

logger = logging.getLogger(__name__)

CPP_SOURCE = r"""
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

constexpr int kMaxState = 256;

// exp without calls or branches so that loops over it vectorise; Cephes expf polynomial,
// relative error about 1e-7; 0 below the float range, NaN propagates.
inline float exp_(float x) {
  const float lo = -87.3365447f, hi = 88.3762626f;
  float xc = x < lo ? lo : x;  // (written so that it compiles to vmaxps / vminps, NaN kept)
  xc = xc > hi ? hi : xc;
  float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  float r = xc - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)k + 127) << 23;
  float s;
  std::memcpy(&s, &bits, sizeof(s));
  float v = p * s;
  return x < lo ? 0.0f : v;
}
inline double exp_(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid_(T x) { return T(1) / (T(1) + exp_(-x)); }

// sum of p[0..N): a shuffle tree for the common float / d_state 16 case (an ordered scalar
// sum otherwise costs ~30 instructions per step in the hot loops)
template <typename T, int NT>
inline T hsum_(const T* p, int N) {
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value && NT == 16) return _mm512_reduce_add_ps(_mm512_loadu_ps(p));
#endif
#if defined(__AVX2__)
  if constexpr (std::is_same<T, float>::value && (NT == 8 || NT == 16)) {
    __m256 v = _mm256_loadu_ps(p);
    if constexpr (NT == 16) v = _mm256_add_ps(v, _mm256_loadu_ps(p + 8));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
#endif
  T s = T(0);
  for (int i = 0; i < N; ++i) s += p[i];
  return s;
}

template <typename T, int NT>
void scan_fwd_impl(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
                   const at::Tensor& Ct, const T* Dp, const T* zp, T* outp, T* lastp, T* ckp, T* ysp, int64_t K) {
  const int64_t nb = u.size(0), nd = u.size(1), L = u.size(2);
  const int N = NT > 0 ? NT : (int)A.size(1);
  const int64_t nck = (L + K - 1) / K;
  const T* up = u.data_ptr<T>();
  const T* dtp = dt.data_ptr<T>();
  const T* Ap = A.data_ptr<T>();
  const T* Bp = Bt.data_ptr<T>();
  const T* Cp = Ct.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / (L * N));
  at::parallel_for(0, nb * nd, grain, [&](int64_t begin, int64_t end) {
    T h[NT > 0 ? NT : kMaxState], a[NT > 0 ? NT : kMaxState], prod[NT > 0 ? NT : kMaxState];
    for (int64_t c = begin; c < end; ++c) {
      const int64_t b = c / nd, d = c % nd;
      const T* u_ = up + c * L;
      const T* dt_ = dtp + c * L;
      const T* B_ = Bp + b * L * N;
      const T* C_ = Cp + b * L * N;
      T* o_ = outp + c * L;
      for (int i = 0; i < N; ++i) { a[i] = Ap[d * N + i]; h[i] = T(0); }
      T* ck_ = ckp ? ckp + c * nck * N : nullptr;
      for (int64_t t0 = 0; t0 < L; t0 += K) {
        if (ck_) { std::memcpy(ck_ + (t0 / K) * N, h, sizeof(T) * N); }
        const int64_t t1 = std::min(L, t0 + K);
        for (int64_t t = t0; t < t1; ++t) {
          const T dtt = dt_[t], dtu = dtt * u_[t];
          const T* Bs = B_ + t * N;
          const T* Cs = C_ + t * N;
#pragma omp simd
          for (int i = 0; i < N; ++i) {
            const T hi = exp_(dtt * a[i]) * h[i] + dtu * Bs[i];
            h[i] = hi;
            prod[i] = hi * Cs[i];
          }
          o_[t] = hsum_<T, NT>(prod, N);
        }
      }
      if (Dp) {
        const T Dd = Dp[d];
#pragma omp simd
        for (int64_t t = 0; t < L; ++t) o_[t] += Dd * u_[t];
      }
      if (zp) {
        const T* z_ = zp + c * L;
        if (ysp) std::memcpy(ysp + c * L, o_, sizeof(T) * L);  // y before the gate, for dz
#pragma omp simd
        for (int64_t t = 0; t < L; ++t) o_[t] *= z_[t] * sigmoid_(z_[t]);
      }
      std::memcpy(lastp + c * N, h, sizeof(T) * N);
    }
  });
}

template <typename T, int NT>
void scan_bwd_impl(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
                   const at::Tensor& Ct, const T* Dp, const T* zp, const T* ysp, const T* ckp, const T* gp, int64_t K,
                   int64_t G, T* dup, T* ddtp, T* dzp, T* dApart, T* dDpart, T* dBpart, T* dCpart) {
  const int64_t nb = u.size(0), nd = u.size(1), L = u.size(2);
  const int N = NT > 0 ? NT : (int)A.size(1);
  const int64_t nck = (L + K - 1) / K;
  const int64_t per_group = (nd + G - 1) / G;
  const T* up = u.data_ptr<T>();
  const T* dtp = dt.data_ptr<T>();
  const T* Ap = A.data_ptr<T>();
  const T* Bp = Bt.data_ptr<T>();
  const T* Cp = Ct.data_ptr<T>();
  at::parallel_for(0, nb * G, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> hbuf(K * N), dabuf(K * N), ybuf(K), gybuf(K);
    T h[NT > 0 ? NT : kMaxState], a[NT > 0 ? NT : kMaxState];
    T dh[NT > 0 ? NT : kMaxState], dAacc[NT > 0 ? NT : kMaxState];
    T pA[NT > 0 ? NT : kMaxState], pB[NT > 0 ? NT : kMaxState];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / G, gi = item % G;
      const int64_t d0 = gi * per_group, d1 = std::min(nd, d0 + per_group);
      T* dBg = dBpart + item * L * N;  // (L, N) partial of this (batch row, channel group)
      T* dCg = dCpart + item * L * N;
      const T* B_ = Bp + b * L * N;
      const T* C_ = Cp + b * L * N;
      for (int64_t d = d0; d < d1; ++d) {
        const int64_t c = b * nd + d;
        const T* u_ = up + c * L;
        const T* dt_ = dtp + c * L;
        const T* g_ = gp + c * L;
        const T* z_ = zp ? zp + c * L : nullptr;
        const T* ys_ = ysp ? ysp + c * L : nullptr;
        const T* ck_ = ckp + c * nck * N;
        T* du_ = dup + c * L;
        T* ddt_ = ddtp + c * L;
        T* dz_ = dzp ? dzp + c * L : nullptr;
        const T Dd = Dp ? Dp[d] : T(0);
        for (int i = 0; i < N; ++i) { a[i] = Ap[d * N + i]; dh[i] = T(0); dAacc[i] = T(0); }
        T dDacc = T(0);
        for (int64_t ck = nck - 1; ck >= 0; --ck) {
          const int64_t t0 = ck * K, kk = std::min(L, t0 + K) - t0;
          // 1. recompute this chunk's states (and y for dz, unless forward kept it)
          std::memcpy(h, ck_ + ck * N, sizeof(T) * N);
          for (int64_t j = 0; j < kk && ys_; ++j) {
            const int64_t t = t0 + j;
            const T dtt = dt_[t], dtu = dtt * u_[t];
            const T* Bs = B_ + t * N;
            T* hs = hbuf.data() + j * N;
            T* das = dabuf.data() + j * N;
#pragma omp simd
            for (int i = 0; i < N; ++i) {
              const T da = exp_(dtt * a[i]);
              const T hi = da * h[i] + dtu * Bs[i];
              h[i] = hi;
              hs[i] = hi;
              das[i] = da;
            }
          }
          for (int64_t j = 0; j < kk && !ys_; ++j) {
            const int64_t t = t0 + j;
            const T dtt = dt_[t], dtu = dtt * u_[t];
            const T* Bs = B_ + t * N;
            const T* Cs = C_ + t * N;
            T* hs = hbuf.data() + j * N;
            T* das = dabuf.data() + j * N;
#pragma omp simd
            for (int i = 0; i < N; ++i) {
              const T da = exp_(dtt * a[i]);
              const T hi = da * h[i] + dtu * Bs[i];
              h[i] = hi;
              hs[i] = hi;
              das[i] = da;
              pB[i] = hi * Cs[i];
            }
            ybuf[j] = hsum_<T, NT>(pB, N) + Dd * u_[t];
          }
          // 2. gate and skip connection, vectorised over the chunk
          T* gy = gybuf.data();
          const T* yb = ybuf.data();
#pragma omp simd reduction(+ : dDacc)
          for (int64_t j = 0; j < kk; ++j) {
            const int64_t t = t0 + j;
            T gg = g_[t];
            if (z_) {
              const T zz = z_[t], sz = sigmoid_(zz);
              const T y = ys_ ? ys_[t] : yb[j];
              dz_[t] = gg * y * sz * (T(1) + zz * (T(1) - sz));
              gg *= zz * sz;
            }
            gy[j] = gg;
            du_[t] = gg * Dd;
            dDacc += gg * u_[t];
          }
          // 3. adjoint recurrence, backwards through the chunk
          for (int64_t j = kk - 1; j >= 0; --j) {
            const int64_t t = t0 + j;
            const T gyt = gy[j], dtt = dt_[t], ut = u_[t], dtu = dtt * ut;
            const T* hp = j > 0 ? hbuf.data() + (j - 1) * N : ck_ + ck * N;
            const T* hc = hbuf.data() + j * N;
            const T* da = dabuf.data() + j * N;
            const T* Bs = B_ + t * N;
            const T* Cs = C_ + t * N;
            T* dBs = dBg + t * N;
            T* dCs = dCg + t * N;
#pragma omp simd
            for (int i = 0; i < N; ++i) {
              const T dht = dh[i] + gyt * Cs[i];  // gradient wrt h_t
              dCs[i] += gyt * hc[i];
              const T darg = dht * hp[i] * da[i];  // gradient wrt Δ_t A
              pB[i] = dht * Bs[i];
              pA[i] = darg * a[i] + ut * pB[i];
              dAacc[i] += darg * dtt;
              dBs[i] += dht * dtu;
              dh[i] = dht * da[i];
            }
            ddt_[t] = hsum_<T, NT>(pA, N);
            du_[t] += dtt * hsum_<T, NT>(pB, N);
          }
        }
        std::memcpy(dApart + c * N, dAacc, sizeof(T) * N);
        dDpart[c] = dDacc;
      }
    }
  });
}

// out[r, x] = sum over g of part[r, g, x], in a fixed order (deterministic).
template <typename T>
at::Tensor sum_groups(const at::Tensor& part) {
  const int64_t R = part.size(0), G = part.size(1), X = part.size(2);
  if (G == 1) return part.select(1, 0);
  at::Tensor out = at::empty({R, X}, part.options());
  const T* pp = part.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const int64_t block = 4096;
  const int64_t nblk = (X + block - 1) / block;
  at::parallel_for(0, R * nblk, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t r = w / nblk, x0 = (w % nblk) * block, x1 = std::min(X, x0 + block);
      T* o = op + r * X;
      std::memcpy(o + x0, pp + r * G * X + x0, sizeof(T) * (x1 - x0));
      for (int64_t g = 1; g < G; ++g) {
        const T* p = pp + (r * G + g) * X;
#pragma omp simd
        for (int64_t x = x0; x < x1; ++x) o[x] += p[x];
      }
    }
  });
  return out;
}

void check(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
           const at::Tensor& Ct, int64_t K) {
  TORCH_CHECK(u.dim() == 3 && dt.sizes() == u.sizes(), "u and dt must be (b, d, l)");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == u.size(1) && A.size(1) <= kMaxState, "A must be (d, n), n <= 256");
  TORCH_CHECK(Bt.dim() == 3 && Bt.size(0) == u.size(0) && Bt.size(1) == u.size(2) && Bt.size(2) == A.size(1),
              "Bt must be (b, l, n)");
  TORCH_CHECK(Ct.sizes() == Bt.sizes(), "Ct must be (b, l, n)");
  for (const at::Tensor* t : {&u, &dt, &A, &Bt, &Ct}) {
    TORCH_CHECK(t->is_contiguous() && t->device().is_cpu() && t->scalar_type() == u.scalar_type(),
                "inputs must be contiguous CPU tensors of one dtype");
  }
  TORCH_CHECK(u.scalar_type() == at::kFloat || u.scalar_type() == at::kDouble, "float32 or float64 only");
  TORCH_CHECK(K >= 1, "chunk must be positive");
}

template <typename T>
const T* opt_ptr(const c10::optional<at::Tensor>& t, const at::Tensor& like, int64_t numel) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->is_contiguous() && t->scalar_type() == like.scalar_type() && t->numel() == numel,
              "optional input has the wrong shape or dtype");
  return t->data_ptr<T>();
}

#define DISPATCH_STATE(N, NAME, ...)                                     \
  switch (N) {                                                           \
    case 4: NAME<scalar_t, 4>(__VA_ARGS__); break;                       \
    case 8: NAME<scalar_t, 8>(__VA_ARGS__); break;                       \
    case 16: NAME<scalar_t, 16>(__VA_ARGS__); break;                     \
    case 32: NAME<scalar_t, 32>(__VA_ARGS__); break;                     \
    default: NAME<scalar_t, 0>(__VA_ARGS__); break;                      \
  }

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan_fwd(
    const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt, const at::Tensor& Ct,
    const c10::optional<at::Tensor>& D, const c10::optional<at::Tensor>& z, int64_t K, bool save) {
  check(u, dt, A, Bt, Ct, K);
  const int64_t nb = u.size(0), nd = u.size(1), L = u.size(2), N = A.size(1);
  at::Tensor out = at::empty_like(u);
  at::Tensor last = at::empty({nb, nd, N}, u.options());
  at::Tensor ckpt = save ? at::empty({nb, nd, (L + K - 1) / K, N}, u.options()) : at::empty({0}, u.options());
  const bool keep_y = save && z.has_value() && z->defined();
  at::Tensor ysave = keep_y ? at::empty_like(u) : at::empty({0}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_fwd", [&] {
    const scalar_t* Dp = opt_ptr<scalar_t>(D, u, nd);
    const scalar_t* zp = opt_ptr<scalar_t>(z, u, u.numel());
    scalar_t* ckp = save ? ckpt.data_ptr<scalar_t>() : nullptr;
    scalar_t* ysp = keep_y ? ysave.data_ptr<scalar_t>() : nullptr;
    if constexpr (std::is_same<scalar_t, float>::value) {
      DISPATCH_STATE(N, scan_fwd_impl, u, dt, A, Bt, Ct, Dp, zp, out.data_ptr<scalar_t>(),
                     last.data_ptr<scalar_t>(), ckp, ysp, K)
    } else {
      scan_fwd_impl<scalar_t, 0>(u, dt, A, Bt, Ct, Dp, zp, out.data_ptr<scalar_t>(), last.data_ptr<scalar_t>(),
                                 ckp, ysp, K);
    }
  });
  return {out, last, ckpt, ysave};
}

std::vector<at::Tensor> scan_bwd(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                 const at::Tensor& Bt, const at::Tensor& Ct, const c10::optional<at::Tensor>& D,
                                 const c10::optional<at::Tensor>& z, const c10::optional<at::Tensor>& ysave,
                                 const at::Tensor& ckpt, const at::Tensor& g,
                                 int64_t K) {
  check(u, dt, A, Bt, Ct, K);
  const int64_t nb = u.size(0), nd = u.size(1), L = u.size(2), N = A.size(1);
  TORCH_CHECK(g.sizes() == u.sizes() && g.is_contiguous() && g.scalar_type() == u.scalar_type(), "bad grad");
  TORCH_CHECK(ckpt.dim() == 4 && ckpt.size(2) == (L + K - 1) / K && ckpt.is_contiguous(), "bad checkpoints");
  // channel groups per batch row: enough work items to keep threads busy, independent of the
  // thread count so that the summation order (and so the result) never changes
  const int64_t G = std::min<int64_t>(nd, std::max<int64_t>(1, (32 + nb - 1) / nb));
  at::Tensor du = at::empty_like(u), ddt = at::empty_like(u);
  const bool has_z = z.has_value() && z->defined();
  at::Tensor dz = has_z ? at::empty_like(u) : at::empty({0}, u.options());
  at::Tensor dApart = at::empty({nb, nd, N}, u.options());
  at::Tensor dDpart = at::empty({nb, nd}, u.options());
  at::Tensor dBpart = at::zeros({nb, G, L * N}, u.options());
  at::Tensor dCpart = at::zeros({nb, G, L * N}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_bwd", [&] {
    const scalar_t* Dp = opt_ptr<scalar_t>(D, u, nd);
    const scalar_t* zp = opt_ptr<scalar_t>(z, u, u.numel());
    scalar_t* dzp = has_z ? dz.data_ptr<scalar_t>() : nullptr;
    const scalar_t* ysp = has_z ? opt_ptr<scalar_t>(ysave, u, u.numel()) : nullptr;
    if constexpr (std::is_same<scalar_t, float>::value) {
      DISPATCH_STATE(N, scan_bwd_impl, u, dt, A, Bt, Ct, Dp, zp, ysp, ckpt.data_ptr<scalar_t>(),
                     g.data_ptr<scalar_t>(), K, G, du.data_ptr<scalar_t>(), ddt.data_ptr<scalar_t>(), dzp,
                     dApart.data_ptr<scalar_t>(), dDpart.data_ptr<scalar_t>(), dBpart.data_ptr<scalar_t>(),
                     dCpart.data_ptr<scalar_t>())
    } else {
      scan_bwd_impl<scalar_t, 0>(u, dt, A, Bt, Ct, Dp, zp, ysp, ckpt.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), K,
                                 G, du.data_ptr<scalar_t>(), ddt.data_ptr<scalar_t>(), dzp,
                                 dApart.data_ptr<scalar_t>(), dDpart.data_ptr<scalar_t>(),
                                 dBpart.data_ptr<scalar_t>(), dCpart.data_ptr<scalar_t>());
    }
  });
  at::Tensor dB, dC, dA, dD;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_reduce", [&] {
    dB = sum_groups<scalar_t>(dBpart).view({nb, L, N});
    dC = sum_groups<scalar_t>(dCpart).view({nb, L, N});
    // sums over the batch, in batch order
    dA = sum_groups<scalar_t>(dApart.view({1, nb, nd * N})).view({nd, N});
    dD = sum_groups<scalar_t>(dDpart.view({1, nb, nd})).view({nd});
  });
  return {du, ddt, dA.contiguous(), dB, dC, dD.contiguous(), dz};
}

}  // namespace

TORCH_LIBRARY(mamba_ner_scan, m) {
  m.def("fwd(Tensor u, Tensor dt, Tensor A, Tensor Bt, Tensor Ct, Tensor? D, Tensor? z, int chunk, bool save)"
        " -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("bwd(Tensor u, Tensor dt, Tensor A, Tensor Bt, Tensor Ct, Tensor? D, Tensor? z, Tensor? y, Tensor ckpt,"
        " Tensor g, int chunk) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(mamba_ner_scan, CPU, m) {
  m.impl("fwd", &scan_fwd);
  m.impl("bwd", &scan_bwd);
}
"""

_FLAG_SETS = (["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"])
_lock = threading.Lock()
_state = {"tried": False, "ops": None}


def _cpu_features():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def load_cpu_kernel():
    """Compile (first call only) and return ``torch.ops.mamba_ner_scan``, or None if that failed."""
    with _lock:
        if _state["tried"]:
            return _state["ops"]
        _state["tried"] = True
        from torch.utils.cpp_extension import load_inline

        errors = []
        for flags in _FLAG_SETS:
            tag = hashlib.sha1((CPP_SOURCE + " ".join(flags) + _cpu_features()).encode()).hexdigest()[:12]
            try:
                load_inline(name=f"mamba_ner_scan_{tag}", cpp_sources=[CPP_SOURCE], extra_cflags=flags,
                            extra_ldflags=["-fopenmp"] if "-fopenmp" in flags else [],
                            is_python_module=False, no_implicit_headers=True, verbose=False)
                _state["ops"] = torch.ops.mamba_ner_scan
                return _state["ops"]
            except Exception as err:  # no compiler, unsupported flag, ...: try the next, then give up
                errors.append(f"{' '.join(flags)}: {type(err).__name__}: {str(err).strip()[-300:]}")
        logger.warning("Could not compile the C++ selective scan; using the pure-PyTorch path instead "
                       "(install g++ to get it). Errors: %s", " | ".join(errors))
        return None
