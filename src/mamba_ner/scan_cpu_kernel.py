"""C++ source of the CPU selective-scan kernel, compiled on first use with `load_inline`.

The source lives in a string because checkpoints carry ``.py`` files only (remote code). It is
compiled once per machine into the default torch extensions directory (``TORCH_EXTENSIONS_DIR``
or ``~/.cache/torch_extensions``); the extension's name holds a hash of the source, the flags and
the CPU's feature flags, so a cache shared between different machines never serves a binary built
for another CPU. `load_cpu_kernel` returns ``torch.ops.mamba_ner_scan`` or None (with one logged
warning) when nothing could be compiled.

What the kernel computes (see ``scan.py`` for the glossary): for every chain (b, d),
    h_t = exp(Δ_t A_d) * h_{t-1} + Δ_t u_t B_t;   y_t = C_t · h_t (+ D_d u_t);   out_t = y_t silu(z_t)
with the discretisation fused in, so no (b, d, l, n) tensor exists. The vector lanes run over
channels (W = 64 bytes of them with AVX-512: 16 float32 channels; 32 bytes elsewhere, since AVX2 has
16 vector registers, not 32, for a block's d_state states and decays), so sums over the state
dimension n are plain vector adds. Forward keeps h at the start of every chunk of ``chunk`` steps;
backward walks the chunks in reverse, recomputes the chunk's states into a small per-thread buffer
and runs the adjoint recurrence
    dh_t = dh_{t+1} * exp(Δ_{t+1} A) + gy_t C_t.
Bias and softplus of Δ are fused too (backward multiplies by the softplus' derivative).
dB and dC sum over channels: each work item (one batch row, one fixed group of channel blocks) sums
its channels into its own partial buffer and the partials are added in a fixed order afterwards,
so results do not depend on the thread count.
Layout (channels last, as the model's projections produce them): u, Δ, z, out, y (b, l, d);
B, C (b, l, n); A transposed to (n, d); checkpoints (b, chunks, n, d); last state (b, d, n).
z (and the conv's x) may have rows spaced wider than d: a slice of the input projection is read in
place. Reading order (`Order`): left to right, or right to left over each row's first ``lengths[b]``
positions with the padding after them read last; the kernels walk memory in that order (nothing is
flipped) and the checkpoints follow reading positions. For the bidirectional model the second scan
also takes ``yadd`` and ``scale``: out = scale (y + yadd) silu(z), and backward returns d yadd.

The same extension holds the depthwise causal conv1d (+ SiLU) in front of the scan, also channels
last: x and out (b, l, d), weight transposed to (width, d).
"""
import hashlib
import logging
import threading

import torch

logger = logging.getLogger(__name__)

# C++ shared with the CRF kernels (crf_cpu_kernel.py), spliced into both sources at `// @CEPHES_EXPF@`.
CEPHES_EXPF = r"""
// Cephes' expf, the part shared by the scan's portable vexp and the CRF's scalar exp: for x already
// clamped to the range the caller handles, k = round(x / ln 2) and the result q = e^(x - k ln 2)
// (relative error about 1e-7), so e^x = q 2^k. F is float or a GCC vector of floats.
template <typename F>
inline F cephes_expf_reduced(F xc, F& k) {
  const float magic = 12582912.0f;
  k = (xc * 1.44269504088896341f + magic) - magic;  // round(x / ln 2)
  F r = xc - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  F q = r * 1.9875691500e-4f + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  return q * r * r + r + 1.0f;
}
"""

CPP_SOURCE = r"""
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <string>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

constexpr int kMaxState = 128;

// Vector width in bytes: a ZMM register with AVX-512; elsewhere 32 (a YMM register with AVX2, two
// NEON quads), since the scan keeps d_state states and d_state decays of a block in registers and
// AVX2 has 16 of them, not 32: 64-byte vectors there spill most of them to the stack.
#if defined(__AVX512F__)
#define MAMBA_NER_VEC_BYTES 64
#else
#define MAMBA_NER_VEC_BYTES 32
#endif
template <typename T>
constexpr int lanes() { return MAMBA_NER_VEC_BYTES / sizeof(T); }  // channels per vector block

// One vector block: W = MAMBA_NER_VEC_BYTES bytes of channels (GCC/Clang vector extensions; the
// compiler maps them to one AVX-512 or AVX2 register, two NEON quads...). Written with explicit
// vectors so that accumulators stay in registers instead of round-tripping through memory.
template <typename T>
struct VecOf;
template <>
struct VecOf<float> { typedef float type __attribute__((vector_size(MAMBA_NER_VEC_BYTES))); };
template <>
struct VecOf<double> { typedef double type __attribute__((vector_size(MAMBA_NER_VEC_BYTES))); };
template <typename T>
using Vec = typename VecOf<T>::type;
typedef float VecF __attribute__((vector_size(MAMBA_NER_VEC_BYTES)));
typedef int32_t VecI __attribute__((vector_size(MAMBA_NER_VEC_BYTES)));

template <typename T>
inline Vec<T> splat(T x) { return Vec<T>{} + x; }

// @CEPHES_EXPF@
// exp of every lane with no calls or branches, NaN propagates.
#if defined(__AVX512F__)
// x = k ln2 + r (|r| <= ln2 / 2, two-constant Cody-Waite reduction), e^r by a degree-6 polynomial
// fitted for relative error (8e-8 measured in float32, about 1 ulp), then scalef: p 2^k, which gives
// the denormals, 0 and inf at the ends of the range. 13 instructions.
inline VecF vexp(VecF xv) {
  const __m512 x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), (__m512)xv));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 q = _mm512_set1_ps(1.381948707e-3f);
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(8.368706331e-3f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(4.166829959e-2f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.666652113e-1f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(4.999999404e-1f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
  return (VecF)_mm512_scalef_ps(q, k);
}
#else
// Cephes expf polynomial, relative error about 1e-7. 2^k is applied in two halves so that the whole
// float range is covered: denormals down to x = -103.97 (0 below), inf above ln(FLT_MAX) = 88.72.
inline VecF vexp(VecF x) {
  const VecF lo = splat(-103.972077f), hi = splat(88.7228394f);
  VecF xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  VecF k;  // round(x / ln 2), in [-150, 128]
  const VecF q = cephes_expf_reduced(xc, k);
  const VecI ki = __builtin_convertvector(k, VecI), k1 = ki >> 1, k2 = ki - k1;  // each in [-75, 64]
  const VecF v = q * (VecF)((k1 + 127) << 23) * (VecF)((k2 + 127) << 23);
  return x < lo ? VecF{} : (x > hi ? splat(__builtin_inff()) : v);
}
#endif
// e^x for the scan's decays e^(Δ A), whose argument is never positive (Δ > 0, A < 0). With AVX2 (and
// no AVX-512) a shorter path than vexp's for x <= 88: x clamped at -87.34, so 2^k is one exponent
// field (k >= -126) and no underflow select is needed; below -87.34 the result is 0.9965 times the
// smallest normal float instead of a smaller denormal or 0 (both below what any state can hold
// beside its other terms). A vector with a lane above 88 (not a decay: overflow, inf) takes vexp.
// About 20 instructions instead of 31, and the exponentials are most of the scan's work.
#if defined(__AVX2__) && !defined(__AVX512F__)
inline VecF vexp_decay(VecF x) {
  const __m256 xv = (__m256)x;
  if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(88.0f), _CMP_GT_OQ)) != 0, 0))
    return vexp(x);
  // max returns its second operand when either is NaN: NaN propagates (and stays NaN below)
  const VecF xc = (VecF)_mm256_max_ps(_mm256_set1_ps(-87.34f), xv);
  VecF k;  // round(x / ln 2), in [-126, 127]
  const VecF q = cephes_expf_reduced(xc, k);
  return q * (VecF)((__builtin_convertvector(k, VecI) + 127) << 23);
}
#else
inline VecF vexp_decay(VecF x) { return vexp(x); }
#endif

// lanes as a plain array (GCC cannot subscript vectors of a template-dependent type)
template <typename T>
struct Lanes {
  T v[lanes<T>()];
  explicit Lanes(const Vec<T>& x) { std::memcpy(v, &x, sizeof(v)); }
  Vec<T> vec() const { Vec<T> x; std::memcpy(&x, v, sizeof(v)); return x; }
};

inline Vec<double> vexp(Vec<double> x) {  // float64 runs in tests only
  Lanes<double> l(x);
  for (double& e : l.v) e = std::exp(e);
  return l.vec();
}
inline Vec<double> vexp_decay(Vec<double> x) { return vexp(x); }

// 1 / d for finite d >= 1: on AVX-512 the 14-bit reciprocal and one Newton step (about 1 ulp)
// instead of a division
inline VecF vrecip(VecF d) {
#if defined(__AVX512F__)
  const __m512 dv = (__m512)d, r = _mm512_rcp14_ps(dv);
  return (VecF)_mm512_fmadd_ps(r, _mm512_fnmadd_ps(dv, r, _mm512_set1_ps(1.0f)), r);  // r + r (1 - d r)
#else
  return 1.0f / d;
#endif
}
inline Vec<double> vrecip(Vec<double> d) { return 1.0 / d; }

// 1 / (1 + e^-x); e^-x capped at e^87 so the reciprocal stays finite (below x = -87 the result is
// 1.6e-38 instead of smaller); NaN propagates.
template <typename T>
inline Vec<T> vsigmoid(Vec<T> x) {
  const Vec<T> m = -x;
  return vrecip(T(1) + vexp(m > T(87) ? splat(T(87)) : m));
}

// softplus as torch computes it (log1p(exp(x)), x itself above 20): max(x, 0) + log1p(e), e = exp(-|x|)
// in (0, 1], with log1p(e) = 2 atanh(s), s = e / (2 + e) in (0, 1/3], by its odd series to s^13
// (truncation 1e-8 relative). Above 20 the second term is below half an ulp of x, as in torch.
inline VecF vsoftplus(VecF x) {
  const VecF ax = x < 0.0f ? -x : x;
  const VecF e = vexp(-ax);
  const VecF s = e * vrecip(2.0f + e), z = s * s;
  VecF q = splat(1.0f / 13.0f);
  q = q * z + 1.0f / 11.0f;
  q = q * z + 1.0f / 9.0f;
  q = q * z + 1.0f / 7.0f;
  q = q * z + 1.0f / 5.0f;
  q = q * z + 1.0f / 3.0f;
  q = q * z + 1.0f;
  return (x > 0.0f ? x : VecF{}) + 2.0f * s * q;
}
inline Vec<double> vsoftplus(Vec<double> x) {
  Lanes<double> l(x);
  for (double& e : l.v) e = e > 20.0 ? e : std::log1p(std::exp(e));
  return l.vec();
}

template <typename T>
inline T hsum(Vec<T> v) {
  Lanes<T> l(v);
  T s = T(0);
  for (T e : l.v) s += e;
  return s;
}
#if defined(__AVX512F__)
template <>
inline float hsum<float>(VecF v) { return _mm512_reduce_add_ps((__m512)v); }
#endif

// loads and stores of the first w lanes (all W when FULL)
template <typename T, bool FULL>
inline Vec<T> load(const T* p, int w) {
  Vec<T> v = {};
  if (FULL) {
    std::memcpy(&v, p, sizeof(v));
  } else {
    Lanes<T> l(v);
    for (int k = 0; k < w; ++k) l.v[k] = p[k];
    v = l.vec();
  }
  return v;
}
template <typename T, bool FULL>
inline void store(T* p, Vec<T> v, int w) {
  if (FULL) {
    std::memcpy(p, &v, sizeof(v));
  } else {
    Lanes<T> l(v);
    for (int k = 0; k < w; ++k) p[k] = l.v[k];
  }
}

struct Dims {
  int64_t nb, L, nd, N, K, nck;
};

// Reading order. Left to right, reading position p is memory position p. Right to left (`rev`),
// the first `len` positions of a row are read backwards and the padding after them keeps its place
// and is read last: p -> len - 1 - p for p < len, p otherwise (`len` = the row's length, or L).
struct Order {
  bool rev;
  const int64_t* lens;  // (b,) or null: every row has length L
  int64_t L;
  inline int64_t len(int64_t b) const { return lens ? lens[b] : L; }
  inline int64_t at(int64_t len_b, int64_t p) const { return rev && p < len_b ? len_b - 1 - p : p; }
};

template <typename T>
struct Fwd {  // pointers; optional ones may be null. dt is delta before bias and softplus
  const T *u, *dt, *z, *A, *B, *C, *D, *dbias;
  bool softplus;
  T *out, *last, *ckpt, *ysave;
  const T* yadd;  // added to y before the scale and the gate
  T scale;        // out = scale * (y + yadd) * silu(z)
  Order order;
  int64_t zsb, zsl;  // z's batch and row strides (its channels are contiguous)
};

// Forward over the whole sequence for one block of W channels [d0, d0 + w) of batch row b.
template <typename T, int NT, bool FULL>
void fwd_block(const Fwd<T>& p, const Dims& s, int64_t b, int64_t d0, int w) {
  using V = Vec<T>;
  const int N = NT > 0 ? NT : (int)s.N;
  const int64_t nd = s.nd;
  V h[NT > 0 ? NT : kMaxState], a[NT > 0 ? NT : kMaxState];
  for (int n = 0; n < N; ++n) { a[n] = load<T, FULL>(p.A + n * nd + d0, w); h[n] = V{}; }
  const V Dv = p.D ? load<T, FULL>(p.D + d0, w) : V{};
  const V biasv = p.dbias ? load<T, FULL>(p.dbias + d0, w) : V{};
  int64_t next_ckpt = 0;
  const int64_t len_b = p.order.len(b);
  // Δ (bias, softplus) of the next step is computed one step ahead: it does not depend on the state,
  // and so its latency overlaps the current step's recurrence instead of delaying the next one.
  auto delta_at = [&](int64_t t) {
    V dtv = load<T, FULL>(p.dt + (b * s.L + p.order.at(len_b, t)) * nd + d0, w) + biasv;
    return p.softplus ? vsoftplus(dtv) : dtv;
  };
  V dt_next = delta_at(0);
  for (int64_t t = 0; t < s.L; ++t) {  // t: reading position; m: memory position
    if (p.ckpt && t == next_ckpt) {
      T* ck = p.ckpt + ((b * s.nck + t / s.K) * N) * nd + d0;
      for (int n = 0; n < N; ++n) store<T, FULL>(ck + n * nd, h[n], w);
      next_ckpt += s.K;
    }
    const int64_t m = p.order.at(len_b, t);
    const int64_t row = (b * s.L + m) * nd + d0;
    const V uv = load<T, FULL>(p.u + row, w);
    const V dtv = dt_next;
    if (t + 1 < s.L) dt_next = delta_at(t + 1);
    const V dtu = dtv * uv;
    const T* Bs = p.B + (b * s.L + m) * N;
    const T* Cs = p.C + (b * s.L + m) * N;
    V y0 = {}, y1 = {};  // two accumulators: shorter dependency chain
    int n = 0;
    for (; n + 1 < N; n += 2) {
      h[n] = vexp_decay(dtv * a[n]) * h[n] + dtu * Bs[n];
      h[n + 1] = vexp_decay(dtv * a[n + 1]) * h[n + 1] + dtu * Bs[n + 1];
      y0 += h[n] * Cs[n];
      y1 += h[n + 1] * Cs[n + 1];
    }
    if (n < N) {
      h[n] = vexp_decay(dtv * a[n]) * h[n] + dtu * Bs[n];
      y0 += h[n] * Cs[n];
    }
    V y = y0 + y1 + Dv * uv;
    if (p.yadd) y += load<T, FULL>(p.yadd + row, w);
    if (p.scale != T(1)) y *= p.scale;
    if (p.z) {
      if (p.ysave) store<T, FULL>(p.ysave + row, y, w);  // y before the gate, for dz in backward
      const V zv = load<T, FULL>(p.z + b * p.zsb + m * p.zsl + d0, w);
      y *= zv * vsigmoid<T>(zv);
    }
    store<T, FULL>(p.out + row, y, w);
  }
  for (int n = 0; n < N; ++n) {
    Lanes<T> l(h[n]);
    for (int k = 0; k < w; ++k) p.last[(b * nd + d0 + k) * N + n] = l.v[k];
  }
}

template <typename T>
struct Bwd {
  const T *u, *dt, *z, *A, *B, *C, *D, *dbias, *ckpt, *ysave, *g;
  bool softplus;
  T *du, *ddt, *dz;  // ddt: gradient wrt delta (before bias and softplus)
  T* dyadd;          // gradient wrt yadd (null: not wanted)
  T scale;
  Order order;
  int64_t zsb, zsl;
};

// Scratch of one work item, in vectors.
template <typename T>
struct Scratch {
  Vec<T>* hbuf;   // [K][N] states of the chunk
  Vec<T>* dabuf;  // [K][N] exp(Δ A) of the chunk
  Vec<T>* gy;     // [K] gradient wrt y
  Vec<T>* accB;   // [K][N] per-lane sums of dB over this item's blocks
  Vec<T>* accC;   // [K][N]
  Vec<T>* dt;     // [K] Δ after bias and softplus
  Vec<T>* ddt_dpre;  // [K] derivative of the softplus
};

// Backward through one chunk [t0, t0 + kk) for one block of channels; dh, dA, dD carry over chunks.
template <typename T, int NT, bool FULL>
void bwd_block_chunk(const Bwd<T>& p, const Dims& s, const Scratch<T>& sc, int64_t b, int64_t d0, int w,
                     int64_t ck, Vec<T>* dh, Vec<T>* dA, Vec<T>* dD, Vec<T>* dbias) {
  using V = Vec<T>;
  const int N = NT > 0 ? NT : (int)s.N;
  const int64_t nd = s.nd, t0 = ck * s.K, kk = std::min(s.L, t0 + s.K) - t0;
  V a[NT > 0 ? NT : kMaxState], h0[NT > 0 ? NT : kMaxState], h[NT > 0 ? NT : kMaxState];
  const T* ckrow = p.ckpt + ((b * s.nck + ck) * N) * nd + d0;
  for (int n = 0; n < N; ++n) {
    a[n] = load<T, FULL>(p.A + n * nd + d0, w);
    h0[n] = h[n] = load<T, FULL>(ckrow + n * nd, w);
  }
  const V Dv = p.D ? load<T, FULL>(p.D + d0, w) : V{};
  const V biasv = p.dbias ? load<T, FULL>(p.dbias + d0, w) : V{};
  const int64_t len_b = p.order.len(b);
  // 1a. what does not depend on the state (Δ, the softplus' derivative, the gate, the skip
  // connection), as independent iterations
  for (int64_t j = 0; j < kk; ++j) {
    const int64_t m = p.order.at(len_b, t0 + j);  // memory position of reading position t0 + j
    const int64_t row = (b * s.L + m) * nd + d0;
    const V pre = load<T, FULL>(p.dt + row, w) + biasv;
    sc.dt[j] = p.softplus ? vsoftplus(pre) : pre;
    sc.ddt_dpre[j] = p.softplus ? vsigmoid<T>(pre) : splat(T(1));
    V gg = load<T, FULL>(p.g + row, w);
    if (p.z) {
      const V zv = load<T, FULL>(p.z + b * p.zsb + m * p.zsl + d0, w), sz = vsigmoid<T>(zv);
      store<T, FULL>(p.dz + row, gg * load<T, FULL>(p.ysave + row, w) * sz * (T(1) + zv * (T(1) - sz)), w);
      gg *= zv * sz;
    }
    if (p.scale != T(1)) gg *= p.scale;
    if (p.dyadd) store<T, FULL>(p.dyadd + row, gg, w);
    sc.gy[j] = gg;
    *dD += gg * load<T, FULL>(p.u + row, w);
  }
  // 1b. recompute the chunk's states
  for (int64_t j = 0; j < kk; ++j) {
    const int64_t m = p.order.at(len_b, t0 + j);
    const V dtv = sc.dt[j];
    const V dtu = dtv * load<T, FULL>(p.u + (b * s.L + m) * nd + d0, w);
    const T* Bs = p.B + (b * s.L + m) * N;
    V* hs = sc.hbuf + j * N;
    V* das = sc.dabuf + j * N;
    for (int n = 0; n < N; ++n) {
      const V da = vexp_decay(dtv * a[n]);
      h[n] = da * h[n] + dtu * Bs[n];
      hs[n] = h[n];
      das[n] = da;
    }
  }
  // 2. adjoint recurrence, backwards through the chunk
  for (int64_t j = kk - 1; j >= 0; --j) {
    const int64_t m = p.order.at(len_b, t0 + j);
    const int64_t row = (b * s.L + m) * nd + d0;
    const V uv = load<T, FULL>(p.u + row, w);
    const V dtv = sc.dt[j];
    const V dtu = dtv * uv;
    const V gy = sc.gy[j];
    const T* Bs = p.B + (b * s.L + m) * N;
    const T* Cs = p.C + (b * s.L + m) * N;
    const V* hc = sc.hbuf + j * N;
    const V* hp = j > 0 ? sc.hbuf + (j - 1) * N : h0;
    const V* da = sc.dabuf + j * N;
    V* aB = sc.accB + j * N;
    V* aC = sc.accC + j * N;
    V ddv0 = {}, ddv1 = {}, sB0 = {}, sB1 = {};
    int n = 0;
    for (; n + 1 < N; n += 2) {
      const V dht0 = dh[n] + gy * Cs[n], dht1 = dh[n + 1] + gy * Cs[n + 1];  // gradient wrt h_t
      aC[n] += gy * hc[n];
      aC[n + 1] += gy * hc[n + 1];
      const V darg0 = dht0 * hp[n] * da[n], darg1 = dht1 * hp[n + 1] * da[n + 1];  // wrt Δ_t A
      ddv0 += darg0 * a[n];
      ddv1 += darg1 * a[n + 1];
      sB0 += dht0 * Bs[n];
      sB1 += dht1 * Bs[n + 1];
      dA[n] += darg0 * dtv;
      dA[n + 1] += darg1 * dtv;
      aB[n] += dht0 * dtu;
      aB[n + 1] += dht1 * dtu;
      dh[n] = dht0 * da[n];
      dh[n + 1] = dht1 * da[n + 1];
    }
    if (n < N) {
      const V dht = dh[n] + gy * Cs[n];
      aC[n] += gy * hc[n];
      const V darg = dht * hp[n] * da[n];
      ddv0 += darg * a[n];
      sB0 += dht * Bs[n];
      dA[n] += darg * dtv;
      aB[n] += dht * dtu;
      dh[n] = dht * da[n];
    }
    const V sB = sB0 + sB1;
    const V ddelta = (ddv0 + ddv1 + uv * sB) * sc.ddt_dpre[j];
    store<T, FULL>(p.ddt + row, ddelta, w);
    *dbias += ddelta;
    store<T, FULL>(p.du + row, gy * Dv + dtv * sB, w);
  }
}

template <typename T, int NT>
void scan_fwd_impl(const Fwd<T>& p, const Dims& s) {
  constexpr int W = lanes<T>();
  const int64_t nblk = (s.nd + W - 1) / W;
  at::parallel_for(0, s.nb * nblk, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / nblk, d0 = (item % nblk) * W;
      const int w = (int)std::min<int64_t>(W, s.nd - d0);
      if (w == W) fwd_block<T, NT, true>(p, s, b, d0, w);
      else fwd_block<T, NT, false>(p, s, b, d0, w);
    }
  });
}

// G groups of channel blocks per batch row; every (row, group) is one work item.
template <typename T, int NT>
void scan_bwd_impl(const Bwd<T>& p, const Dims& s, int64_t G, T* dApart, T* dDpart, T* dBpart, T* dCpart) {
  constexpr int W = lanes<T>();
  const int64_t N = s.N, K = s.K, nd = s.nd;
  const int64_t nblk = (nd + W - 1) / W, per_group = (nblk + G - 1) / G;
  at::parallel_for(0, s.nb * G, 1, [&](int64_t begin, int64_t end) {
    using V = Vec<T>;
    std::vector<V> buf((4 * N + 3) * K);  // std::vector of over-aligned types: C++17 aligns them
    V* q = buf.data();
    Scratch<T> sc{q, q + K * N, q + 2 * K * N, q + 2 * K * N + K, q + 3 * K * N + K, q + 4 * K * N + K,
                  q + 4 * K * N + 2 * K};
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / G, gi = item % G;
      const int64_t blk0 = std::min(nblk, gi * per_group), blk1 = std::min(nblk, blk0 + per_group);
      std::vector<V> carry((blk1 - blk0) * (2 * N + 2), V{});  // dh, dA, dD, dbias of each block
      for (int64_t ck = s.nck - 1; ck >= 0; --ck) {
        const int64_t t0 = ck * K, kk = std::min(s.L, t0 + K) - t0;
        std::fill(sc.accB, sc.accB + kk * N, V{});
        std::fill(sc.accC, sc.accC + kk * N, V{});
        for (int64_t blk = blk0; blk < blk1; ++blk) {
          const int64_t d0 = blk * W;
          const int w = (int)std::min<int64_t>(W, nd - d0);
          V* dh = carry.data() + (blk - blk0) * (2 * N + 2);
          if (w == W) bwd_block_chunk<T, NT, true>(p, s, sc, b, d0, w, ck, dh, dh + N, dh + 2 * N, dh + 2 * N + 1);
          else bwd_block_chunk<T, NT, false>(p, s, sc, b, d0, w, ck, dh, dh + N, dh + 2 * N, dh + 2 * N + 1);
        }
        const int64_t len_b = p.order.len(b);
        for (int64_t j = 0; j < kk; ++j) {
          const int64_t m = p.order.at(len_b, t0 + j);
          for (int64_t n = 0; n < N; ++n) {
            dBpart[(item * s.L + m) * N + n] = hsum<T>(sc.accB[j * N + n]);
            dCpart[(item * s.L + m) * N + n] = hsum<T>(sc.accC[j * N + n]);
          }
        }
      }
      for (int64_t blk = blk0; blk < blk1; ++blk) {
        const int64_t d0 = blk * W;
        const int w = (int)std::min<int64_t>(W, nd - d0);
        const V* dA = carry.data() + (blk - blk0) * (2 * N + 2) + N;
        for (int64_t n = 0; n < N; ++n) {
          Lanes<T> l(dA[n]);
          for (int k = 0; k < w; ++k) dApart[(b * N + n) * nd + d0 + k] = l.v[k];
        }
        Lanes<T> lD(dA[N]), lbias(dA[N + 1]);
        for (int k = 0; k < w; ++k) {
          dDpart[(b * 2) * nd + d0 + k] = lD.v[k];
          dDpart[(b * 2 + 1) * nd + d0 + k] = lbias.v[k];
        }
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

Dims check(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
           const at::Tensor& Ct, int64_t K) {
  TORCH_CHECK(u.dim() == 3 && dt.sizes() == u.sizes(), "u and dt must be (b, l, d)");
  TORCH_CHECK(A.dim() == 2 && A.size(1) == u.size(2) && A.size(0) <= kMaxState, "A must be (n, d), n <= 128");
  TORCH_CHECK(Bt.dim() == 3 && Bt.size(0) == u.size(0) && Bt.size(1) == u.size(1) && Bt.size(2) == A.size(0),
              "Bt must be (b, l, n)");
  TORCH_CHECK(Ct.sizes() == Bt.sizes(), "Ct must be (b, l, n)");
  for (const at::Tensor* t : {&u, &dt, &A, &Bt, &Ct}) {
    TORCH_CHECK(t->is_contiguous() && t->device().is_cpu() && t->scalar_type() == u.scalar_type(),
                "inputs must be contiguous CPU tensors of one dtype");
  }
  TORCH_CHECK(u.scalar_type() == at::kFloat || u.scalar_type() == at::kDouble, "float32 or float64 only");
  TORCH_CHECK(K >= 1, "chunk must be positive");
  TORCH_CHECK(u.size(1) >= 1 && A.size(0) >= 1, "length and d_state must be at least 1");
  const int64_t L = u.size(1);
  return Dims{u.size(0), L, u.size(2), A.size(0), K, (L + K - 1) / K};
}

template <typename T>
const T* opt_ptr(const c10::optional<at::Tensor>& t, const at::Tensor& like, int64_t numel) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->is_contiguous() && t->scalar_type() == like.scalar_type() && t->numel() == numel,
              "optional input has the wrong shape or dtype");
  return t->data_ptr<T>();
}

// A (b, l, d) tensor whose channels are contiguous but whose rows may be spaced wider than d (a
// slice of a wider projection): checked, and its batch and row strides returned.
template <typename T>
const T* rows_ptr(const c10::optional<at::Tensor>& t, const at::Tensor& like, int64_t* sb, int64_t* sl) {
  *sb = like.size(1) * like.size(2);
  *sl = like.size(2);
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->sizes() == like.sizes() && t->scalar_type() == like.scalar_type() && t->device().is_cpu() &&
                  (t->stride(2) == 1 || t->size(2) == 1),
              "a (b, l, d) input must have u's shape and dtype and contiguous channels");
  *sb = t->stride(0);
  *sl = t->stride(1);
  return t->data_ptr<T>();
}

// Reading order from the optional lengths (int64 (b,), each in [0, L]) and the direction.
Order make_order(const c10::optional<at::Tensor>& lengths, bool reverse, int64_t nb, int64_t L) {
  if (!lengths.has_value() || !lengths->defined()) return Order{reverse, nullptr, L};
  const at::Tensor& t = *lengths;
  TORCH_CHECK(t.dim() == 1 && t.size(0) == nb && t.scalar_type() == at::kLong && t.is_contiguous() &&
                  t.device().is_cpu(), "lengths must be a contiguous int64 CPU tensor of shape (batch,)");
  const int64_t* lp = t.data_ptr<int64_t>();
  for (int64_t b = 0; b < nb; ++b) TORCH_CHECK(lp[b] >= 0 && lp[b] <= L, "lengths must lie in [0, length]");
  return Order{reverse, lp, L};
}

// d_state known at compile time for Mamba's 16 (float only; float64 is for tests); any other at run time
#define DISPATCH_STATE(N, NAME, ...)                                                  \
  if constexpr (std::is_same<scalar_t, float>::value) {                               \
    if (N == 16) NAME<scalar_t, 16>(__VA_ARGS__);                                     \
    else NAME<scalar_t, 0>(__VA_ARGS__);                                              \
  } else {                                                                            \
    NAME<scalar_t, 0>(__VA_ARGS__);                                                   \
  }

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan_fwd(
    const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt, const at::Tensor& Ct,
    const c10::optional<at::Tensor>& D, const c10::optional<at::Tensor>& z, const c10::optional<at::Tensor>& dbias,
    bool softplus, int64_t K, bool save, const c10::optional<at::Tensor>& yadd, double scale,
    const c10::optional<at::Tensor>& lengths, bool reverse) {
  const Dims s = check(u, dt, A, Bt, Ct, K);
  const Order order = make_order(lengths, reverse, s.nb, s.L);
  at::Tensor out = at::empty_like(u);
  at::Tensor last = at::empty({s.nb, s.nd, s.N}, u.options());
  at::Tensor ckpt = save ? at::empty({s.nb, s.nck, s.N, s.nd}, u.options()) : at::empty({0}, u.options());
  const bool keep_y = save && z.has_value() && z->defined();
  at::Tensor ysave = keep_y ? at::empty_like(u) : at::empty({0}, u.options());
  if (u.numel() == 0) {  // empty batch or no channels
    last.zero_();
    if (save) ckpt.zero_();
    return {out, last, ckpt, ysave};
  }
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_fwd", [&] {
    int64_t zsb, zsl;
    const scalar_t* zp = rows_ptr<scalar_t>(z, u, &zsb, &zsl);
    Fwd<scalar_t> p{u.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(), zp,
                    A.data_ptr<scalar_t>(), Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(),
                    opt_ptr<scalar_t>(D, u, s.nd), opt_ptr<scalar_t>(dbias, u, s.nd), softplus,
                    out.data_ptr<scalar_t>(), last.data_ptr<scalar_t>(),
                    save ? ckpt.data_ptr<scalar_t>() : nullptr, keep_y ? ysave.data_ptr<scalar_t>() : nullptr,
                    opt_ptr<scalar_t>(yadd, u, u.numel()), (scalar_t)scale, order, zsb, zsl};
    DISPATCH_STATE(s.N, scan_fwd_impl, p, s)
  });
  return {out, last, ckpt, ysave};
}

std::vector<at::Tensor> scan_bwd(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                 const at::Tensor& Bt, const at::Tensor& Ct, const c10::optional<at::Tensor>& D,
                                 const c10::optional<at::Tensor>& z, const c10::optional<at::Tensor>& dbias,
                                 bool softplus, const c10::optional<at::Tensor>& ysave,
                                 const at::Tensor& ckpt, const at::Tensor& g, int64_t K, double scale,
                                 const c10::optional<at::Tensor>& lengths, bool reverse, bool want_dyadd) {
  const Dims s = check(u, dt, A, Bt, Ct, K);
  const Order order = make_order(lengths, reverse, s.nb, s.L);
  TORCH_CHECK(g.sizes() == u.sizes() && g.is_contiguous() && g.scalar_type() == u.scalar_type(), "bad grad");
  TORCH_CHECK(ckpt.dim() == 4 && ckpt.size(1) == s.nck && ckpt.is_contiguous(), "bad checkpoints");
  const bool has_z = z.has_value() && z->defined();
  if (u.numel() == 0) {  // empty batch or no channels
    return {at::zeros_like(u), at::zeros_like(u), at::zeros({s.N, s.nd}, u.options()),
            at::zeros({s.nb, s.L, s.N}, u.options()), at::zeros({s.nb, s.L, s.N}, u.options()),
            at::zeros({s.nd}, u.options()), has_z ? at::zeros_like(u) : at::empty({0}, u.options()),
            at::zeros({s.nd}, u.options()), want_dyadd ? at::zeros_like(u) : at::empty({0}, u.options())};
  }
  constexpr int64_t W64 = 64;  // bytes per vector block
  const int64_t W = W64 / (int64_t)u.element_size();
  const int64_t nblk = (s.nd + W - 1) / W;
  // groups of channel blocks per batch row: enough work items to keep threads busy, independent
  // of the thread count so that the summation order (and so the result) never changes
  const int64_t G = std::min<int64_t>(nblk, std::max<int64_t>(1, (16 + s.nb - 1) / s.nb));
  at::Tensor du = at::empty_like(u), ddt = at::empty_like(u);
  at::Tensor dz = has_z ? at::empty_like(u) : at::empty({0}, u.options());
  at::Tensor dyadd = want_dyadd ? at::empty_like(u) : at::empty({0}, u.options());
  at::Tensor dApart = at::empty({s.nb, s.N * s.nd}, u.options());
  at::Tensor dDpart = at::empty({s.nb, 2, s.nd}, u.options());  // dD and dbias
  at::Tensor dBpart = at::empty({s.nb, G, s.L * s.N}, u.options());
  at::Tensor dCpart = at::empty({s.nb, G, s.L * s.N}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_bwd", [&] {
    const scalar_t* ysp = has_z ? opt_ptr<scalar_t>(ysave, u, u.numel()) : nullptr;
    TORCH_CHECK(!has_z || ysp, "the pre-gate output y is needed when z is given");
    int64_t zsb, zsl;
    const scalar_t* zp = rows_ptr<scalar_t>(z, u, &zsb, &zsl);
    Bwd<scalar_t> p{u.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(), zp,
                    A.data_ptr<scalar_t>(), Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(),
                    opt_ptr<scalar_t>(D, u, s.nd), opt_ptr<scalar_t>(dbias, u, s.nd), ckpt.data_ptr<scalar_t>(), ysp,
                    g.data_ptr<scalar_t>(), softplus, du.data_ptr<scalar_t>(), ddt.data_ptr<scalar_t>(),
                    has_z ? dz.data_ptr<scalar_t>() : nullptr, want_dyadd ? dyadd.data_ptr<scalar_t>() : nullptr,
                    (scalar_t)scale, order, zsb, zsl};
    DISPATCH_STATE(s.N, scan_bwd_impl, p, s, G, dApart.data_ptr<scalar_t>(), dDpart.data_ptr<scalar_t>(),
                   dBpart.data_ptr<scalar_t>(), dCpart.data_ptr<scalar_t>())
  });
  at::Tensor dB, dC, dA, dDb;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "mamba_ner_scan_reduce", [&] {
    dB = sum_groups<scalar_t>(dBpart).view({s.nb, s.L, s.N});
    dC = sum_groups<scalar_t>(dCpart).view({s.nb, s.L, s.N});
    // sums over the batch, in batch order
    dA = sum_groups<scalar_t>(dApart.view({1, s.nb, s.N * s.nd})).view({s.N, s.nd});
    dDb = sum_groups<scalar_t>(dDpart.view({1, s.nb, 2 * s.nd})).view({2, s.nd});
  });
  return {du, ddt, dA.contiguous(), dB, dC, dDb.select(0, 0).contiguous(), dz, dDb.select(0, 1).contiguous(), dyadd};
}

// ---------------------------------------------------------------------------------------------
// Depthwise causal conv1d (+ SiLU), channels last: x, out (b, l, d); weight transposed to (width, d).
// out_t = act(bias + Σ_j w_j * x_{t-(width-1)+j}), t a reading position (see Order), x's rows may be
// spaced wider than d. Each row's taps are found once; every block of W channels is then summed in a
// register.
// ---------------------------------------------------------------------------------------------
template <typename T>
struct Taps {  // the taps of one output row: the x rows and the weight rows they meet
  std::vector<const T*> x, w;
  std::vector<int64_t> j;  // tap index (row of dw)
  int n = 0;
};

template <typename T>
inline void find_taps(Taps<T>& taps, const T* x, int64_t xsb, int64_t xsl, const T* wt, int64_t b, int64_t t,
                      int64_t nd, int64_t width, const Order& order, int64_t len_b) {
  taps.n = 0;
  for (int64_t j = 0; j < width; ++j) {
    const int64_t s = t - (width - 1) + j;
    if (s < 0) continue;
    taps.x[taps.n] = x + b * xsb + order.at(len_b, s) * xsl;
    taps.w[taps.n] = wt + j * nd;
    taps.j[taps.n++] = j;
  }
}

template <typename T, bool FULL>
inline Vec<T> conv_pre(const Taps<T>& taps, const T* bias, int64_t d0, int w) {
  Vec<T> acc = bias ? load<T, FULL>(bias + d0, w) : Vec<T>{};
  for (int i = 0; i < taps.n; ++i) acc += load<T, FULL>(taps.w[i] + d0, w) * load<T, FULL>(taps.x[i] + d0, w);
  return acc;
}

template <typename T, bool FULL>
inline void conv_fwd_block(const Taps<T>& taps, const T* bias, T* o, int64_t d0, int w, bool silu) {
  Vec<T> acc = conv_pre<T, FULL>(taps, bias, d0, w);
  if (silu) acc *= vsigmoid<T>(acc);
  store<T, FULL>(o + d0, acc, w);
}

// Calls f.template operator()<FULL>(d0, w) for every block of W channels of a row.
template <typename T, typename F>
inline void for_blocks(int64_t nd, F&& f) {
  constexpr int W = lanes<T>();
  int64_t d0 = 0;
  for (; d0 + W <= nd; d0 += W) f(std::true_type{}, d0, W);
  if (d0 < nd) f(std::false_type{}, d0, (int)(nd - d0));
}

at::Tensor conv_fwd(const at::Tensor& x, const at::Tensor& wt, const c10::optional<at::Tensor>& bias, bool silu,
                    const c10::optional<at::Tensor>& lengths, bool reverse) {
  TORCH_CHECK(x.dim() == 3 && (x.stride(2) == 1 || x.size(2) == 1) && wt.dim() == 2 && wt.is_contiguous() &&
                  wt.size(1) == x.size(2),
              "x must be (b, l, d) with contiguous channels and weight (width, d)");
  TORCH_CHECK(x.scalar_type() == wt.scalar_type() && x.device().is_cpu(), "one dtype, CPU");
  at::Tensor out = at::empty(x.sizes(), x.options());
  const int64_t xsb = x.stride(0), xsl = x.stride(1);
  const int64_t nb = x.size(0), L = x.size(1), nd = x.size(2), width = wt.size(0);
  const Order order = make_order(lengths, reverse, nb, L);
  if (x.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mamba_ner_conv_fwd", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = wt.data_ptr<scalar_t>();
    const scalar_t* bp = opt_ptr<scalar_t>(bias, x, nd);
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, nb * L, std::max<int64_t>(1, 16384 / nd), [&](int64_t begin, int64_t end) {
      Taps<scalar_t> taps{std::vector<const scalar_t*>(width), std::vector<const scalar_t*>(width),
                          std::vector<int64_t>(width)};
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / L, len_b = order.len(b);
        scalar_t* o = op + (b * L + order.at(len_b, r % L)) * nd;
        find_taps(taps, xp, xsb, xsl, wp, b, r % L, nd, width, order, len_b);
        for_blocks<scalar_t>(nd, [&](auto full, int64_t d0, int w) {
          conv_fwd_block<scalar_t, decltype(full)::value>(taps, bp, o, d0, w, silu);
        });
      }
    });
  });
  return out;
}

template <typename T>
void conv_bwd_impl(const T* xp, int64_t xsb, int64_t xsl, const T* wp, const T* bp, const T* gp, T* gq, T* pp,
                   T* dxp, int64_t nb, int64_t L, int64_t nd, int64_t width, int64_t R, bool silu,
                   const Order& order) {
  using V = Vec<T>;
  const int64_t rows = nb * L, nblocks = (rows + R - 1) / R;
  // 1. gradient wrt the pre-activation, and the dw / dbias partial sums of each block of rows
  at::parallel_for(0, nblocks, 1, [&](int64_t begin, int64_t end) {
    Taps<T> taps{std::vector<const T*>(width), std::vector<const T*>(width), std::vector<int64_t>(width)};
    for (int64_t blk = begin; blk < end; ++blk) {
      T* acc = pp + blk * (width + 1) * nd;  // [width] rows of dw, then dbias
      for (int64_t r = blk * R; r < std::min(rows, blk * R + R); ++r) {
        const int64_t b = r / L, t = r % L, len_b = order.len(b);  // t: reading position
        const int64_t mrow = b * L + order.at(len_b, t);
        const T* g_ = gp + mrow * nd;
        T* gq_ = gq + mrow * nd;
        find_taps(taps, xp, xsb, xsl, wp, b, t, nd, width, order, len_b);
        for_blocks<T>(nd, [&](auto full, int64_t d0, int w) {
          constexpr bool FULL = decltype(full)::value;
          V gv = load<T, FULL>(g_ + d0, w);
          if (silu) {
            const V pv = conv_pre<T, FULL>(taps, bp, d0, w), sg = vsigmoid<T>(pv);
            gv = gv * sg * (T(1) + pv * (T(1) - sg));
            store<T, FULL>(gq_ + d0, gv, w);
          }
          T* ab = acc + width * nd + d0;
          store<T, FULL>(ab, load<T, FULL>(ab, w) + gv, w);
          for (int i = 0; i < taps.n; ++i) {
            T* aj = acc + taps.j[i] * nd + d0;
            store<T, FULL>(aj, load<T, FULL>(aj, w) + gv * load<T, FULL>(taps.x[i] + d0, w), w);
          }
        });
      }
    }
  });
  // 2. dx_s = Σ_j w_j * gpre_{s+(width-1)-j}
  const T* gr = silu ? gq : gp;
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / nd), [&](int64_t begin, int64_t end) {
    std::vector<const T*> gts(width), wts(width);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / L, s = r % L, len_b = order.len(b);  // s: reading position
      T* o = dxp + (b * L + order.at(len_b, s)) * nd;
      int n = 0;
      for (int64_t j = 0; j < width; ++j) {
        const int64_t t = s + (width - 1) - j;
        if (t >= L) continue;
        gts[n] = gr + (b * L + order.at(len_b, t)) * nd;
        wts[n++] = wp + j * nd;
      }
      for_blocks<T>(nd, [&](auto full, int64_t d0, int w) {
        constexpr bool FULL = decltype(full)::value;
        V sum = {};
        for (int i = 0; i < n; ++i) sum += load<T, FULL>(wts[i] + d0, w) * load<T, FULL>(gts[i] + d0, w);
        store<T, FULL>(o + d0, sum, w);
      });
    }
  });
}

// Returns dx (b, l, d), dwt (width, d), dbias (d). Rows are cut into fixed blocks of 64 whose
// partial sums of dw and dbias are added in block order: deterministic for any thread count.
std::vector<at::Tensor> conv_bwd(const at::Tensor& x, const at::Tensor& wt, const c10::optional<at::Tensor>& bias,
                                 const at::Tensor& g, bool silu, const c10::optional<at::Tensor>& lengths,
                                 bool reverse) {
  TORCH_CHECK(g.sizes() == x.sizes() && g.is_contiguous() && g.scalar_type() == x.scalar_type(), "bad grad");
  TORCH_CHECK(x.dim() == 3 && (x.stride(2) == 1 || x.size(2) == 1), "x must have contiguous channels");
  const int64_t nb = x.size(0), L = x.size(1), nd = x.size(2), width = wt.size(0);
  const Order order = make_order(lengths, reverse, nb, L);
  const int64_t rows = nb * L, R = 64, nblocks = std::max<int64_t>(1, (rows + R - 1) / R);
  at::Tensor gpre = silu ? at::empty(x.sizes(), x.options()) : g;
  at::Tensor dx = at::empty(x.sizes(), x.options());
  at::Tensor part = at::zeros({nblocks, width + 1, nd}, x.options());
  at::Tensor sums;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mamba_ner_conv_bwd", [&] {
    if (x.numel() > 0) {
      conv_bwd_impl<scalar_t>(x.data_ptr<scalar_t>(), x.stride(0), x.stride(1), wt.data_ptr<scalar_t>(),
                              opt_ptr<scalar_t>(bias, x, nd),
                              g.data_ptr<scalar_t>(), gpre.data_ptr<scalar_t>(), part.data_ptr<scalar_t>(),
                              dx.data_ptr<scalar_t>(), nb, L, nd, width, R, silu, order);
    }
    sums = sum_groups<scalar_t>(part.view({1, nblocks, (width + 1) * nd})).view({width + 1, nd});
  });
  return {dx, sums.slice(0, 0, width).contiguous(), sums.select(0, width).contiguous()};
}

}  // namespace

// Which vector code this build holds: "avx512" (exp, reciprocal by intrinsics, 64-byte blocks) or
// "generic" (the portable vector extensions in 32-byte blocks, as on machines without AVX-512 or with a
// build lacking -march=native; "generic-avx2" when the compiler targets AVX2).
std::string simd() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "generic-avx2";
#else
  return "generic";
#endif
}

TORCH_LIBRARY(mamba_ner_scan, m) {
  m.def("simd() -> str", &simd);
  m.def("fwd(Tensor u, Tensor delta, Tensor A, Tensor Bt, Tensor Ct, Tensor? D, Tensor? z, Tensor? delta_bias,"
        " bool softplus, int chunk, bool save, Tensor? yadd, float scale, Tensor? lengths, bool reverse)"
        " -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("bwd(Tensor u, Tensor delta, Tensor A, Tensor Bt, Tensor Ct, Tensor? D, Tensor? z, Tensor? delta_bias,"
        " bool softplus, Tensor? y, Tensor ckpt,"
        " Tensor g, int chunk, float scale, Tensor? lengths, bool reverse, bool want_dyadd) -> Tensor[]");
  m.def("conv_fwd(Tensor x, Tensor wt, Tensor? bias, bool silu, Tensor? lengths, bool reverse) -> Tensor");
  m.def("conv_bwd(Tensor x, Tensor wt, Tensor? bias, Tensor g, bool silu, Tensor? lengths, bool reverse)"
        " -> Tensor[]");
}

TORCH_LIBRARY_IMPL(mamba_ner_scan, CPU, m) {
  m.impl("fwd", &scan_fwd);
  m.impl("bwd", &scan_bwd);
  m.impl("conv_fwd", &conv_fwd);
  m.impl("conv_bwd", &conv_bwd);
}
"""

CPP_SOURCE = CPP_SOURCE.replace("// @CEPHES_EXPF@\n", CEPHES_EXPF)

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


def _remove_stale_lock(name, max_age_s=600):
    """torch waits forever on the lock file of a build that was killed: drop one older than max_age_s."""
    import os
    import time

    try:
        from torch.utils.cpp_extension import _get_build_directory  # private; the same folder load_inline uses

        lock = os.path.join(_get_build_directory(name, False), "lock")
        if time.time() - os.path.getmtime(lock) > max_age_s:
            os.remove(lock)
            logger.warning("Removed a stale build lock %s", lock)
    except Exception:  # no lock (the usual case), another process removed it first, or torch changed
        pass


def load_inline_once(state, source, namespace, what, log=logger):
    """Compile `source` (first call only) and return ``torch.ops.<namespace>``, or None if that failed.

    Shared by the C++ extensions of this package: `state` is the caller's ``{"tried", "ops"}`` dict,
    the source defines ``TORCH_LIBRARY(<namespace>, ...)``, and the extension's name is the namespace
    plus a hash of the source, the flags and the CPU's features. On failure `log` gets one warning
    naming `what` and later calls return None at once."""
    with _lock:
        if state["tried"]:
            return state["ops"]
        state["tried"] = True
        from torch.utils.cpp_extension import load_inline

        errors = []
        for flags in _FLAG_SETS:
            tag = hashlib.sha1((source + " ".join(flags) + _cpu_features()).encode()).hexdigest()[:12]
            name = f"{namespace}_{tag}"
            try:
                _remove_stale_lock(name)
                log.info("Loading the C++ %s %s (compiled once per machine, ~30 s)", what, name)
                load_inline(name=name, cpp_sources=[source], extra_cflags=flags,
                            extra_ldflags=["-fopenmp"] if "-fopenmp" in flags else [],
                            is_python_module=False, no_implicit_headers=True, verbose=False)
                state["ops"] = getattr(torch.ops, namespace)
                return state["ops"]
            except Exception as err:  # no compiler, unsupported flag, ...: try the next, then give up
                errors.append(f"{' '.join(flags)}: {type(err).__name__}: {str(err).strip()[-300:]}")
        log.warning("Could not compile the C++ %s; using the pure-PyTorch path instead "
                    "(install g++ to get it). Errors: %s", what, " | ".join(errors))
        return None


def load_cpu_kernel():
    """Compile (first call only) and return ``torch.ops.mamba_ner_scan``, or None if that failed."""
    return load_inline_once(_state, CPP_SOURCE, "mamba_ner_scan", "selective scan")
