// SqueezeBERT encoder inference on the CPU (Paddle custom operators): the packed formulation of
// packed_encoder.py (every per-token op on the T real tokens only), computed by oneDNN's matmuls and
// our own attention and LayerNorm loops, with no framework op between them.
//
// Why: in Paddle's predictor the matmuls are under half of a bf16 QQP batch; the rest is per-op
// dispatch, bf16<->fp32 conversions around ops oneDNN does not cover, slices, reshapes and padded
// attention. Here one op runs the embeddings and all layers:
//   - each grouped 1x1 conv is G oneDNN matmuls on column blocks of the token-major activations
//     [T, C] (no layout changes), with the bias, the exact (erf) GELU and the residual add fused
//     into the matmul as oneDNN post-ops; weights are packed once into oneDNN's blocked layout;
//   - attention runs per (sequence, head) over that sequence's real tokens only, so it needs no mask;
//   - LayerNorm writes both the fp32 residual stream and the bf16 input of the next matmul.
// Precision "bf16": matmul inputs and weights in bf16 (AMX), accumulation, softmax, LayerNorm and the
// residual stream in fp32. Precision "fp32": everything fp32 (exact to ~1e-6 of the reference).
//
// Weights: the word, position and token-type tables [N, H] and the embedding LayerNorm's weight and bias,
// then per layer, in this order (the product layouts of packed_encoder.py, fp32):
//   qkv [Gq, H/Gq, 3H/Gq] (each group's Q, K, V columns side by side, 1/sqrt(d) folded into Q), its bias,
//   post [Gp, H/Gp, H/Gp], bias, LayerNorm weight, bias,
//   inner [Gi, H/Gi, I/Gi], bias, outer [Go, I/Go, H/Go], bias, LayerNorm weight, bias.
// A 2-D weight [C_in, C_out] is one group.

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "onednn_c_api.h"
#include "paddle/extension.h"

namespace {

using Tensor = paddle::Tensor;
using bf16 = uint16_t;

void check(dnnl_status_t status, const char* what) {
  PD_CHECK(status == 0, "oneDNN: ", what, " failed (status ", status, ")");
}

inline bf16 to_bf16(float f) {           // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16>(u >> 16);
}

inline float to_f32(bf16 h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float to_f32(float f) { return f; }
inline void store(float* p, float v) { *p = v; }
inline void store(bf16* p, float v) { *p = to_bf16(v); }

struct Buffer {                           // 64-byte aligned scratch that only grows
  void* data = nullptr;
  size_t bytes = 0;
  void* get(size_t n) {
    if (n > bytes) {
      std::free(data);
      data = nullptr;
      bytes = 0;                          // (a failed allocation leaves the buffer empty, not stale)
      const size_t size = (n + 63) / 64 * 64;
      data = std::aligned_alloc(64, size);
      PD_CHECK(data != nullptr, "out of memory for a ", size, "-byte inference buffer");
      bytes = size;
    }
    return data;
  }
  ~Buffer() { std::free(data); }
};

struct Desc {                             // an owned memory descriptor
  dnnl_memory_desc_t md = nullptr;
  Desc() = default;
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (md) dnnl_memory_desc_destroy(md);
  }
};

// A 2-D [rows, cols] row-major matrix whose rows are `ld` elements apart.
void matrix_desc(Desc& d, int64_t rows, int64_t cols, int64_t ld, dnnl_data_type_t type) {
  dnnl_dims_t dims = {rows, cols}, strides = {ld, 1};
  check(dnnl_memory_desc_create_with_strides(&d.md, 2, dims, type, strides), "memory descriptor");
}

struct Runtime {
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  Runtime() {
    const dnnl_version_t* v = dnnl_version();
    PD_CHECK(v->major == 3, "this build expects oneDNN 3.x, Paddle loaded ", v->major, ".", v->minor);
    check(dnnl_engine_create(&engine, onednn::kCpu, 0), "engine");
    check(dnnl_stream_create(&stream, engine, onednn::kDefaultStreamFlags), "stream");
  }
};

Runtime& runtime() {
  static Runtime r;
  return r;
}

enum PostOp { kNone = 0, kGelu = 1, kResidual = 2 };

// A matmul primitive for one projection shape at one row count, with memory objects to point at data.
struct Product {
  dnnl_primitive_t primitive = nullptr;
  dnnl_memory_t src = nullptr, dst = nullptr, bias = nullptr, residual = nullptr;
  std::string impl;
  ~Product() {
    for (dnnl_memory_t m : {src, dst, bias, residual})
      if (m) dnnl_memory_destroy(m);
    if (primitive) dnnl_primitive_destroy(primitive);
  }
};

// One grouped 1x1 convolution: G products [rows, k] x [k, n], group j reading columns j*k.. of the
// input (row stride G*k) and writing columns j*n.. of the output (row stride G*n).
struct Projection {
  int64_t groups = 1, k = 0, n = 0;
  PostOp post = kNone;
  dnnl_data_type_t src_type = onednn::kF32, dst_type = onednn::kF32;
  Desc weights_md;                        // oneDNN's packed layout of one group's weights
  std::vector<Buffer> weights;            // per group, in that layout
  std::vector<dnnl_memory_t> weight_mem;
  std::vector<float> bias;                // [G * n]

  Projection() = default;
  Projection(const Projection&) = delete;
  ~Projection() {
    for (dnnl_memory_t m : weight_mem) dnnl_memory_destroy(m);
  }
};

dnnl_primitive_desc_t matmul_desc(const Projection& p, int64_t rows, const_dnnl_memory_desc_t weights,
                                  Desc& src, Desc& dst, Desc& bias, Desc& residual) {
  matrix_desc(src, rows, p.k, p.groups * p.k, p.src_type);
  matrix_desc(dst, rows, p.n, p.groups * p.n, p.dst_type);
  matrix_desc(bias, 1, p.n, p.n, onednn::kF32);
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t ops;
  check(dnnl_primitive_attr_create(&attr), "attr");
  check(dnnl_post_ops_create(&ops), "post-ops");
  if (p.post == kGelu) check(dnnl_post_ops_append_eltwise(ops, onednn::kGeluErf, 0.f, 0.f), "gelu post-op");
  if (p.post == kResidual) {
    matrix_desc(residual, rows, p.n, p.groups * p.n, onednn::kF32);
    check(dnnl_post_ops_append_binary(ops, onednn::kBinaryAdd, residual.md), "residual post-op");
  }
  check(dnnl_primitive_attr_set_post_ops(attr, ops), "set post-ops");
  dnnl_primitive_desc_t pd;
  dnnl_status_t status = dnnl_matmul_primitive_desc_create(&pd, runtime().engine, src.md, weights, bias.md, dst.md, attr);
  dnnl_post_ops_destroy(ops);
  dnnl_primitive_attr_destroy(attr);
  check(status, "matmul descriptor");
  return pd;
}

// The matmul for `p` at `rows` rows, on weights in `p.weights_md`, with memory objects to point at data.
std::unique_ptr<Product> make_product(const Projection& p, int64_t rows) {
  Desc src, dst, bias, residual;
  dnnl_primitive_desc_t pd = matmul_desc(p, rows, p.weights_md.md, src, dst, bias, residual);
  auto product = std::make_unique<Product>();
  const char* impl = nullptr;
  dnnl_primitive_desc_query(pd, onednn::kImplInfo, 0, &impl);
  product->impl = impl ? impl : "";
  dnnl_status_t status = dnnl_primitive_create(&product->primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  check(status, "matmul primitive");
  dnnl_engine_t engine = runtime().engine;
  check(dnnl_memory_create(&product->src, src.md, engine, nullptr), "src memory");
  check(dnnl_memory_create(&product->dst, dst.md, engine, nullptr), "dst memory");
  check(dnnl_memory_create(&product->bias, bias.md, engine, nullptr), "bias memory");
  if (p.post == kResidual) check(dnnl_memory_create(&product->residual, residual.md, engine, nullptr), "residual");
  return product;
}

// Fill `p` from an fp32 weight [G, k, n] (or [k, n]) and bias [G * n]: oneDNN picks the weights layout
// for a matmul of kLayoutRows rows; every row count then uses that layout (checked in make_product).
constexpr int64_t kLayoutRows = 256;

void pack(Projection& p, const Tensor& weight, const Tensor& bias, PostOp post, bool bf16_inputs, bool f32_output) {
  const auto& shape = weight.shape();
  PD_CHECK(shape.size() == 2 || shape.size() == 3, "a projection weight must be 2-D or 3-D");
  p.groups = shape.size() == 3 ? shape[0] : 1;
  p.k = shape[shape.size() - 2];
  p.n = shape[shape.size() - 1];
  PD_CHECK(bias.numel() == p.groups * p.n, "a projection bias has ", bias.numel(), " values, expected ",
           p.groups * p.n);
  p.post = post;
  p.src_type = bf16_inputs ? onednn::kBf16 : onednn::kF32;
  p.dst_type = f32_output ? onednn::kF32 : p.src_type;
  {
    Desc src, dst, b, residual, any;
    dnnl_dims_t dims = {p.k, p.n};
    check(dnnl_memory_desc_create_with_tag(&any.md, 2, dims, p.src_type, onednn::kAnyFormat), "weights desc");
    dnnl_primitive_desc_t pd = matmul_desc(p, kLayoutRows, any.md, src, dst, b, residual);
    dnnl_status_t status = dnnl_memory_desc_clone(&p.weights_md.md, dnnl_primitive_desc_query_md(pd, onednn::kWeightsMd, 0));
    dnnl_primitive_desc_destroy(pd);
    check(status, "weights layout");
  }
  Runtime& rt = runtime();
  Desc plain;
  matrix_desc(plain, p.k, p.n, p.n, onednn::kF32);
  dnnl_primitive_desc_t reorder_pd;
  check(dnnl_reorder_primitive_desc_create(&reorder_pd, plain.md, rt.engine, p.weights_md.md, rt.engine, nullptr),
        "weights reorder descriptor");
  dnnl_primitive_t reorder;
  dnnl_status_t status = dnnl_primitive_create(&reorder, reorder_pd);
  dnnl_primitive_desc_destroy(reorder_pd);
  check(status, "weights reorder");
  const float* w = weight.data<float>();
  p.weights = std::vector<Buffer>(p.groups);
  for (int64_t g = 0; g < p.groups; ++g) {
    void* data = p.weights[g].get(dnnl_memory_desc_get_size(p.weights_md.md));
    dnnl_memory_t from, to;
    check(dnnl_memory_create(&from, plain.md, rt.engine, const_cast<float*>(w + g * p.k * p.n)), "memory");
    check(dnnl_memory_create(&to, p.weights_md.md, rt.engine, data), "memory");
    dnnl_exec_arg_t args[2] = {{onednn::kArgSrc, from}, {onednn::kArgDst, to}};
    check(dnnl_primitive_execute(reorder, rt.stream, 2, args), "weights reorder");
    check(dnnl_stream_wait(rt.stream), "stream");
    dnnl_memory_destroy(from);
    p.weight_mem.push_back(to);
  }
  dnnl_primitive_destroy(reorder);
  p.bias.assign(bias.data<float>(), bias.data<float>() + bias.numel());
}

constexpr size_t kEmbeddingTensors = 5;

struct Layer {
  Projection qkv, post, inner, outer;
  std::vector<float> norm1_weight, norm1_bias, norm2_weight, norm2_bias;
};

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

// Attention over one sequence's real tokens: qkv rows [0, l) of [*, 3H] (row stride qkv_ld; head h's
// Q, K and V at q_col, k_col, v_col), context rows (stride context_ld) at column h * d. Scores are
// fp32 and the softmax is exact over the l real keys, so no mask is needed.
//
// The fp32 copies are laid out for the products: Q [l, d], K transposed [d, lp] and V [lp, d], with
// lp = l rounded up to 16 and zeros beyond l.
struct Head {
  float *q, *kt, *v, *s;
  int64_t lp;
};

template <typename E>
Head load_head(const E* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l, int64_t d,
               int64_t query_rows, std::vector<float>& scratch) {
  Head h;
  h.lp = (l + 15) / 16 * 16;
  scratch.resize(query_rows * d + d * h.lp + h.lp * d + 4 * h.lp);
  h.q = scratch.data();
  h.kt = h.q + query_rows * d;
  h.v = h.kt + d * h.lp;
  h.s = h.v + h.lp * d;
  for (int64_t i = 0; i < l; ++i) {
    const E* row = qkv + i * qkv_ld;
    for (int64_t e = 0; e < d; ++e) {
      h.q[i * d + e] = to_f32(row[q_col + e]);
      h.kt[e * h.lp + i] = to_f32(row[k_col + e]);
      h.v[i * d + e] = to_f32(row[v_col + e]);
    }
  }
  // Zeros where the products read beyond the l tokens: query rows up to query_rows, key columns up to lp.
  std::fill(h.q + l * d, h.q + query_rows * d, 0.f);
  for (int64_t e = 0; e < d; ++e) std::fill(h.kt + e * h.lp + l, h.kt + (e + 1) * h.lp, 0.f);
  return h;
}

// Softmax over the first l entries of each of `rows` score rows (stride lp), in place.
void softmax_rows(float* s, int64_t rows, int64_t l, int64_t lp) {
  for (int64_t r = 0; r < rows; ++r) {
    float* p = s + r * lp;
    float top = p[0];
    for (int64_t j = 1; j < l; ++j) top = std::max(top, p[j]);
    float sum = 0.f;
    for (int64_t j = 0; j < l; ++j) {
      p[j] = std::exp(std::max(p[j] - top, -80.f));    // e^-80 is 0 next to the max's 1; keeps exp off its slow path
      sum += p[j];
    }
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < l; ++j) p[j] *= inv;
  }
}

// Any head size: plain loops.
template <typename E>
void attend_any(const E* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l, int64_t d,
                E* context, int64_t context_ld, std::vector<float>& scratch) {
  Head h = load_head(qkv, qkv_ld, q_col, k_col, v_col, l, d, l, scratch);
  for (int64_t i = 0; i < l; ++i) {
    float* p = h.s;
    for (int64_t j = 0; j < l; ++j) {
      float dot = 0.f;
      for (int64_t e = 0; e < d; ++e) dot += h.q[i * d + e] * h.kt[e * h.lp + j];
      p[j] = dot;
    }
    softmax_rows(p, 1, l, h.lp);
    E* out = context + i * context_ld;
    for (int64_t e = 0; e < d; ++e) {
      float acc = 0.f;
      for (int64_t j = 0; j < l; ++j) acc += p[j] * h.v[j * d + e];
      store(out + e, acc);
    }
  }
}

#ifdef __AVX512F__
// Head size D (a multiple of 16): four query rows at a time, their scores and context in registers.
template <int D, typename E>
void attend_blocked(const E* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l,
                    E* context, int64_t context_ld, std::vector<float>& scratch) {
  constexpr int V = D / 16;
  const int64_t rows4 = (l + 3) / 4 * 4;
  Head h = load_head(qkv, qkv_ld, q_col, k_col, v_col, l, D, rows4, scratch);
  const int64_t lp = h.lp;
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const float* q = h.q + i0 * D;
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int e = 0; e < D; ++e) {
        const __m512 k = _mm512_loadu_ps(h.kt + e * lp + j0);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[e]), k, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[D + e]), k, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(q[2 * D + e]), k, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(q[3 * D + e]), k, a3);
      }
      _mm512_storeu_ps(h.s + j0, a0);
      _mm512_storeu_ps(h.s + lp + j0, a1);
      _mm512_storeu_ps(h.s + 2 * lp + j0, a2);
      _mm512_storeu_ps(h.s + 3 * lp + j0, a3);
    }
    const int64_t rows = std::min<int64_t>(4, l - i0);
    softmax_rows(h.s, rows, l, lp);
    __m512 c[4][V];
    for (int r = 0; r < 4; ++r)
      for (int u = 0; u < V; ++u) c[r][u] = _mm512_setzero_ps();
    for (int64_t j = 0; j < l; ++j) {
      __m512 vj[V];
      for (int u = 0; u < V; ++u) vj[u] = _mm512_loadu_ps(h.v + j * D + 16 * u);
      for (int r = 0; r < 4; ++r) {
        const __m512 p = _mm512_set1_ps(h.s[r * lp + j]);
        for (int u = 0; u < V; ++u) c[r][u] = _mm512_fmadd_ps(p, vj[u], c[r][u]);
      }
    }
    alignas(64) float row[D];
    for (int64_t r = 0; r < rows; ++r) {
      for (int u = 0; u < V; ++u) _mm512_store_ps(row + 16 * u, c[r][u]);
      E* out = context + (i0 + r) * context_ld;
      for (int e = 0; e < D; ++e) store(out + e, row[e]);
    }
  }
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BF16__)
inline uint32_t pair_at(const bf16* p) {       // two adjacent bf16 values as one 32-bit lane
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// bf16 Q and K straight into AVX512-BF16 dot products (pairs of head dimensions per instruction, exact
// products, fp32 sums): K is laid out [d/2, lp] in pairs, so no conversion and half the transposing.
// Softmax and P @ V in fp32, as attend_blocked.
template <int D>
void attend_bf16(const bf16* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l,
                 bf16* context, int64_t context_ld, std::vector<float>& scratch) {
  constexpr int V = D / 16, P = D / 2;
  const int64_t lp = (l + 15) / 16 * 16;
  scratch.resize(P * lp + lp * D + 4 * lp);
  uint32_t* kt = reinterpret_cast<uint32_t*>(scratch.data());    // [P, lp] pairs, zero beyond l
  float* v = scratch.data() + P * lp;                             // [lp, D]
  float* s = v + lp * D;                                          // [4, lp]
  for (int64_t j = 0; j < l; ++j) {
    const bf16* row = qkv + j * qkv_ld;
    for (int e = 0; e < P; ++e) kt[e * lp + j] = pair_at(row + k_col + 2 * e);
    for (int u = 0; u < V; ++u) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + v_col + 16 * u));
      _mm512_storeu_ps(v + j * D + 16 * u, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
  }
  for (int e = 0; e < P; ++e) std::fill(kt + e * lp + l, kt + (e + 1) * lp, 0u);
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const int64_t rows = std::min<int64_t>(4, l - i0);
    const bf16* q[4];
    for (int r = 0; r < 4; ++r) q[r] = qkv + (i0 + std::min<int64_t>(r, rows - 1)) * qkv_ld + q_col;
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int e = 0; e < P; ++e) {
        const __m512bh k = (__m512bh)_mm512_loadu_si512(kt + e * lp + j0);
        a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_set1_epi32(pair_at(q[0] + 2 * e)), k);
        a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_set1_epi32(pair_at(q[1] + 2 * e)), k);
        a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_set1_epi32(pair_at(q[2] + 2 * e)), k);
        a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_set1_epi32(pair_at(q[3] + 2 * e)), k);
      }
      _mm512_storeu_ps(s + j0, a0);
      _mm512_storeu_ps(s + lp + j0, a1);
      _mm512_storeu_ps(s + 2 * lp + j0, a2);
      _mm512_storeu_ps(s + 3 * lp + j0, a3);
    }
    softmax_rows(s, rows, l, lp);
    __m512 c[4][V];
    for (int r = 0; r < 4; ++r)
      for (int u = 0; u < V; ++u) c[r][u] = _mm512_setzero_ps();
    for (int64_t j = 0; j < l; ++j) {
      __m512 vj[V];
      for (int u = 0; u < V; ++u) vj[u] = _mm512_loadu_ps(v + j * D + 16 * u);
      for (int r = 0; r < 4; ++r) {
        const __m512 pr = _mm512_set1_ps(s[r * lp + j]);
        for (int u = 0; u < V; ++u) c[r][u] = _mm512_fmadd_ps(pr, vj[u], c[r][u]);
      }
    }
    alignas(64) float row[D];
    for (int64_t r = 0; r < rows; ++r) {
      for (int u = 0; u < V; ++u) _mm512_store_ps(row + 16 * u, c[r][u]);
      bf16* out = context + (i0 + r) * context_ld;
      for (int e = 0; e < D; ++e) out[e] = to_bf16(row[e]);
    }
  }
}
#endif

template <typename E>
void attend(const E* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l, int64_t d,
            E* context, int64_t context_ld, std::vector<float>& scratch) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
  if constexpr (std::is_same_v<E, bf16>)
    if (d == 64) return attend_bf16<64>(qkv, qkv_ld, q_col, k_col, v_col, l, context, context_ld, scratch);
#endif
#ifdef __AVX512F__
  if (d == 64) return attend_blocked<64>(qkv, qkv_ld, q_col, k_col, v_col, l, context, context_ld, scratch);
#endif
  attend_any(qkv, qkv_ld, q_col, k_col, v_col, l, d, context, context_ld, scratch);
}

// LayerNorm of one row `in` [n] into `out` (may be `in`), and into `out16` (bf16) when given.
inline void layer_norm_row(const float* in, float* out, bf16* out16, int64_t n, const float* w, const float* b,
                           float eps) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
  if (n % 16 == 0) {           // (GCC keeps these loops at 256 bits; this is the whole row in 512-bit steps)
    __m512 sum = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; c += 16) sum = _mm512_add_ps(sum, _mm512_loadu_ps(in + c));
    const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / n);
    __m512 squares = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; c += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(in + c), mean);
      squares = _mm512_fmadd_ps(d, d, squares);
    }
    const __m512 rstd = _mm512_set1_ps(1.f / std::sqrt(_mm512_reduce_add_ps(squares) / n + eps));
    for (int64_t c = 0; c < n; c += 16) {
      const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(in + c), mean), rstd);
      const __m512 y = _mm512_fmadd_ps(d, _mm512_loadu_ps(w + c), _mm512_loadu_ps(b + c));
      _mm512_storeu_ps(out + c, y);
      if (out16 != nullptr)       // round to nearest even, as to_bf16
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out16 + c), (__m256i)_mm512_cvtneps_pbh(y));
    }
    return;
  }
#endif
  float sum = 0.f;
  for (int64_t c = 0; c < n; ++c) sum += in[c];
  const float mean = sum / n;
  float var = 0.f;
  for (int64_t c = 0; c < n; ++c) var += (in[c] - mean) * (in[c] - mean);
  const float rstd = 1.f / std::sqrt(var / n + eps);
  for (int64_t c = 0; c < n; ++c) out[c] = (in[c] - mean) * rstd * w[c] + b[c];
  if (out16 != nullptr)
    for (int64_t c = 0; c < n; ++c) out16[c] = to_bf16(out[c]);
}

// LayerNorm of each row of x [rows, n] into y (may be x), and into y16 (bf16) when given.
void layer_norm(const float* x, float* y, bf16* y16, int64_t rows, int64_t n, const float* w, const float* b,
                float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    layer_norm_row(x + r * n, y + r * n, y16 ? y16 + r * n : nullptr, n, w, b, eps);
}

// The embedding tables and their LayerNorm, fp32.
struct Embeddings {
  std::vector<float> words, positions, types, norm_weight, norm_bias;
  int64_t vocab = 0, max_positions = 0, type_vocab = 0;
  float eps = 1e-12f;
};

// Rows are padded to a multiple of 16 (64 beyond 256 rows): the primitives per row count stay few.
int64_t padded_rows(int64_t tokens) {
  const int64_t multiple = tokens > 256 ? 64 : 16;
  return std::max<int64_t>(16, (tokens + multiple - 1) / multiple * multiple);
}
constexpr size_t kMaxProducts = 256;     // primitives kept (4 per row count); beyond, the cache starts over

// Where the time goes, when asked (sb_infer_profile): seconds per stage over the calls since the last read.
enum Stage { kEmbed, kQkv, kAttention, kPost, kNorm1, kInner, kOuter, kNorm2, kStages };

struct StageClock {
  bool on = false;
  double seconds[kStages] = {};
  int64_t calls = 0;
  std::chrono::steady_clock::time_point last;
  void start() {
    if (on) last = std::chrono::steady_clock::now();
  }
  void lap(Stage stage) {          // the time since start() or the previous lap goes to `stage`
    if (!on) return;
    const auto now = std::chrono::steady_clock::now();
    seconds[stage] += std::chrono::duration<double>(now - last).count();
    last = now;
  }
};

struct Encoder {
  Embeddings embeddings;
  StageClock clock;
  int64_t hidden = 0, intermediate = 0, heads = 0, head_size = 0, qkv_groups = 1;
  float eps = 1e-12f;
  bool use_bf16 = true;
  std::vector<std::unique_ptr<Layer>> layers;
  // Primitives by (role, rows): all layers share shapes, so one set serves every layer.
  std::map<std::pair<int, int64_t>, std::unique_ptr<Product>> products;
  Buffer x32, x16, qkv, context, a32, a16, inner, out32;
  std::mutex mutex;

  void run(int role, const Projection& p, int64_t rows, const void* src, void* dst, const float* residual) {
    if (products.size() >= kMaxProducts && !products.count({role, rows})) products.clear();
    auto& slot = products[{role, rows}];
    if (!slot) slot = make_product(p, rows);
    Product& m = *slot;
    const size_t in_size = p.src_type == onednn::kBf16 ? 2 : 4, out_size = p.dst_type == onednn::kBf16 ? 2 : 4;
    Runtime& rt = runtime();
    for (int64_t g = 0; g < p.groups; ++g) {
      check(dnnl_memory_set_data_handle(m.src, const_cast<char*>(static_cast<const char*>(src)) + g * p.k * in_size),
            "set src");
      check(dnnl_memory_set_data_handle(m.dst, static_cast<char*>(dst) + g * p.n * out_size), "set dst");
      check(dnnl_memory_set_data_handle(m.bias, const_cast<float*>(p.bias.data()) + g * p.n), "set bias");
      dnnl_exec_arg_t args[5] = {{onednn::kArgSrc, m.src}, {onednn::kArgWeights, p.weight_mem[g]},
                                 {onednn::kArgBias, m.bias}, {onednn::kArgDst, m.dst}, {0, nullptr}};
      int count = 4;
      if (p.post == kResidual) {
        check(dnnl_memory_set_data_handle(m.residual, const_cast<float*>(residual) + g * p.n), "set residual");
        args[count++] = {onednn::kArgPostOp0Src1, m.residual};
      }
      check(dnnl_primitive_execute(m.primitive, rt.stream, count, args), "matmul");
    }
    check(dnnl_stream_wait(rt.stream), "stream");
  }

  template <typename E>
  void attention(const E* qkv_rows, const int64_t* offsets, int64_t batch, E* context_rows) {
    const int64_t per_group = 3 * hidden / qkv_groups, group_width = hidden / qkv_groups;
    const int64_t tasks = batch * heads;
#pragma omp parallel
    {
      std::vector<float> scratch;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / heads, h = t % heads;
        const int64_t start = offsets[b], l = offsets[b + 1] - offsets[b];
        if (l <= 0) continue;
        const int64_t channel = h * head_size, g = channel / group_width, within = channel % group_width;
        const int64_t q_col = g * per_group + within;
        attend(qkv_rows + start * 3 * hidden, 3 * hidden, q_col, q_col + group_width, q_col + 2 * group_width, l,
               head_size, context_rows + start * hidden + channel, hidden, scratch);
      }
    }
  }

  // Word + position + type embeddings of each token, then LayerNorm: into x [tokens, H] (and x16).
  void embed(const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t tokens, float* x,
             bf16* x16) const {
    const Embeddings& e = embeddings;
    const int64_t h = hidden;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      const float *w = e.words.data() + ids[t] * h, *p = e.positions.data() + positions[t] * h,
                  *y = e.types.data() + types[t] * h;
      float* row = x + t * h;
      for (int64_t c = 0; c < h; ++c) row[c] = (w[c] + p[c]) + y[c];       // the reference's order
      layer_norm_row(row, row, x16 ? x16 + t * h : nullptr, h, e.norm_weight.data(), e.norm_bias.data(), e.eps);
    }
  }

  // The real tokens' ids, positions and types [tokens], sequence after sequence -> out [tokens, H].
  void forward(const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t tokens,
               const int64_t* offsets, int64_t batch, float* out) {
    const int64_t rows = padded_rows(tokens);
    const size_t e = use_bf16 ? 2 : 4, h = hidden;
    float* xs = static_cast<float*>(x32.get(rows * h * 4));
    float* as = static_cast<float*>(a32.get(rows * h * 4));
    float* os = static_cast<float*>(out32.get(rows * h * 4));
    void* q = qkv.get(rows * 3 * h * e);
    void* c = context.get(rows * h * e);
    void* f = inner.get(rows * intermediate * e);
    bf16* x16s = use_bf16 ? static_cast<bf16*>(x16.get(rows * h * 2)) : nullptr;
    bf16* a16s = use_bf16 ? static_cast<bf16*>(a16.get(rows * h * 2)) : nullptr;
    clock.start();
    clock.calls += clock.on;
    embed(ids, positions, types, tokens, xs, x16s);
    std::memset(xs + tokens * h, 0, (rows - tokens) * h * 4);                   // padding rows: finite values
    if (use_bf16) std::memset(x16s + tokens * h, 0, (rows - tokens) * h * 2);
    std::memset(static_cast<char*>(c) + tokens * h * e, 0, (rows - tokens) * h * e);
    clock.lap(kEmbed);
    for (const auto& layer : layers) {
      run(0, layer->qkv, rows, use_bf16 ? static_cast<void*>(x16s) : xs, q, nullptr);
      clock.lap(kQkv);
      if (use_bf16)
        attention(static_cast<const bf16*>(q), offsets, batch, static_cast<bf16*>(c));
      else
        attention(static_cast<const float*>(q), offsets, batch, static_cast<float*>(c));
      clock.lap(kAttention);
      run(1, layer->post, rows, c, as, xs);
      clock.lap(kPost);
      layer_norm(as, as, a16s, rows, h, layer->norm1_weight.data(), layer->norm1_bias.data(), eps);
      clock.lap(kNorm1);
      run(2, layer->inner, rows, use_bf16 ? static_cast<void*>(a16s) : as, f, nullptr);
      clock.lap(kInner);
      run(3, layer->outer, rows, f, os, as);
      clock.lap(kOuter);
      layer_norm(os, xs, x16s, rows, h, layer->norm2_weight.data(), layer->norm2_bias.data(), eps);
      clock.lap(kNorm2);
    }
    std::memcpy(out, xs, tokens * h * 4);
  }
};

std::mutex registry_mutex;
std::map<int64_t, std::unique_ptr<Encoder>> registry;
int64_t next_handle = 1;

Encoder& find(const Tensor& handle) {
  PD_CHECK(handle.numel() == 1 && handle.dtype() == paddle::DataType::INT64, "handle must be one int64");
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(handle.data<int64_t>()[0]);
  PD_CHECK(it != registry.end(), "no such encoder (released?)");
  return *it->second;
}

void require_f32_cpu(const Tensor& t, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32, what, " must be fp32 on the CPU");
}

}  // namespace

// Pack the weights (the word, position and type tables [N, H], their LayerNorm's weight and bias, then
// 12 per layer, see the top of this file) in bf16 or fp32; `eps` is the layers' LayerNorm epsilon,
// `embedding_eps` the embeddings'. Returns a handle for sb_infer_encode.
std::vector<Tensor> PackEncoder(const std::vector<Tensor>& weights, int64_t heads, float eps, float embedding_eps,
                                bool bf16) {
  PD_CHECK(weights.size() > kEmbeddingTensors && (weights.size() - kEmbeddingTensors) % 12 == 0,
           "expected 5 embedding tensors and 12 weight tensors per layer, got ", weights.size());
  for (const Tensor& w : weights) require_f32_cpu(w, "every weight");
  auto encoder = std::make_unique<Encoder>();
  encoder->use_bf16 = bf16;
  encoder->eps = eps;
  encoder->heads = heads;
  Embeddings& e = encoder->embeddings;
  e.words = values(weights[0]);
  e.positions = values(weights[1]);
  e.types = values(weights[2]);
  e.norm_weight = values(weights[3]);
  e.norm_bias = values(weights[4]);
  e.vocab = weights[0].shape()[0];
  e.max_positions = weights[1].shape()[0];
  e.type_vocab = weights[2].shape()[0];
  e.eps = embedding_eps;
  for (size_t i = kEmbeddingTensors; i < weights.size(); i += 12) {
    const Tensor* w = &weights[i];
    auto layer = std::make_unique<Layer>();
    pack(layer->qkv, w[0], w[1], kNone, bf16, false);
    pack(layer->post, w[2], w[3], kResidual, bf16, true);
    layer->norm1_weight = values(w[4]);
    layer->norm1_bias = values(w[5]);
    pack(layer->inner, w[6], w[7], kGelu, bf16, false);
    pack(layer->outer, w[8], w[9], kResidual, bf16, true);
    layer->norm2_weight = values(w[10]);
    layer->norm2_bias = values(w[11]);
    const int64_t hidden = layer->qkv.groups * layer->qkv.k, intermediate = layer->inner.groups * layer->inner.n;
    PD_CHECK(layer->qkv.groups * layer->qkv.n == 3 * hidden && layer->post.groups * layer->post.k == hidden &&
                 layer->post.groups * layer->post.n == hidden && layer->inner.groups * layer->inner.k == hidden &&
                 layer->outer.groups * layer->outer.k == intermediate &&
                 layer->outer.groups * layer->outer.n == hidden &&
                 static_cast<int64_t>(layer->norm1_weight.size()) == hidden &&
                 static_cast<int64_t>(layer->norm2_weight.size()) == hidden,
             "layer ", (i - kEmbeddingTensors) / 12, ": inconsistent weight shapes");
    PD_CHECK(i == kEmbeddingTensors || (hidden == encoder->hidden && intermediate == encoder->intermediate &&
                        layer->qkv.groups == encoder->qkv_groups && layer->post.groups == encoder->layers[0]->post.groups &&
                        layer->inner.groups == encoder->layers[0]->inner.groups &&
                        layer->outer.groups == encoder->layers[0]->outer.groups),
             "layer ", (i - kEmbeddingTensors) / 12, " differs in shape from layer 0");
    encoder->hidden = hidden;
    encoder->intermediate = intermediate;
    encoder->qkv_groups = layer->qkv.groups;
    encoder->layers.push_back(std::move(layer));
  }
  for (int k = 0; k < 3; ++k)
    PD_CHECK(weights[k].shape().size() == 2 && weights[k].shape()[1] == encoder->hidden,
             "embedding table ", k, " must be [N, ", encoder->hidden, "]");
  PD_CHECK(e.norm_weight.size() == static_cast<size_t>(encoder->hidden) && e.norm_bias.size() == e.norm_weight.size(),
           "the embedding LayerNorm must have ", encoder->hidden, " weights");
  PD_CHECK(heads > 0 && encoder->hidden % heads == 0, "hidden size ", encoder->hidden, " is not a multiple of ", heads,
           " heads");
  encoder->head_size = encoder->hidden / heads;
  PD_CHECK((encoder->hidden / encoder->qkv_groups) % encoder->head_size == 0,
           "an attention head would span two Q/K/V groups");
  std::lock_guard<std::mutex> lock(registry_mutex);
  const int64_t id = next_handle++;
  registry[id] = std::move(encoder);
  Tensor handle = paddle::empty({1}, paddle::DataType::INT64, paddle::CPUPlace());
  handle.data<int64_t>()[0] = id;
  return {handle};
}

// Index tensors must be int64 [tokens] on the CPU, each value in [0, limit).
const int64_t* indices(const Tensor& t, int64_t tokens, int64_t limit, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::INT64 && t.numel() == tokens,
           what, " must be int64 [", tokens, "] on the CPU");
  const int64_t* v = t.data<int64_t>();
  for (int64_t i = 0; i < tokens; ++i)
    PD_CHECK(v[i] >= 0 && v[i] < limit, what, " ", v[i], " is outside the table [0, ", limit, ")");
  return v;
}

// Run the model on the real tokens: ids, positions and types [tokens] int64, sequence after sequence;
// offsets [batch + 1] int64 are where each sequence starts (offsets[batch] == tokens).
// Returns the last layer's output [tokens, H] fp32.
std::vector<Tensor> Encode(const Tensor& ids, const Tensor& positions, const Tensor& types, const Tensor& offsets,
                           const Tensor& handle, int64_t threads) {
  Encoder& encoder = find(handle);
  PD_CHECK(offsets.is_cpu() && offsets.dtype() == paddle::DataType::INT64 && offsets.shape().size() == 1 &&
               offsets.numel() >= 1, "offsets must be int64 [batch + 1] on the CPU");
  const int64_t tokens = ids.numel(), batch = offsets.numel() - 1;
  const int64_t* o = offsets.data<int64_t>();
  PD_CHECK(o[0] == 0 && o[batch] == tokens, "offsets must run from 0 to the token count");
  for (int64_t b = 0; b < batch; ++b) PD_CHECK(o[b + 1] >= o[b], "offsets must not decrease");
  const Embeddings& e = encoder.embeddings;
  const int64_t* i = indices(ids, tokens, e.vocab, "token id");
  const int64_t* p = indices(positions, tokens, e.max_positions, "position");
  const int64_t* y = indices(types, tokens, e.type_vocab, "token type");
  Tensor out = paddle::empty({tokens, encoder.hidden}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  if (tokens == 0) return {out};
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  std::lock_guard<std::mutex> lock(encoder.mutex);
  encoder.forward(i, p, y, tokens, o, batch, out.data<float>());
  return {out};
}

std::vector<Tensor> Release(const Tensor& handle) {
  PD_CHECK(handle.numel() == 1 && handle.dtype() == paddle::DataType::INT64, "handle must be one int64");
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry.erase(handle.data<int64_t>()[0]);
  return {paddle::full({1}, 0, paddle::DataType::INT64, paddle::CPUPlace())};
}

// The matmul implementations oneDNN chose, one per role, at `rows` rows (for tests and diagnostics).
std::vector<Tensor> Implementations(const Tensor& handle, int64_t rows) {
  Encoder& encoder = find(handle);
  PD_CHECK(rows >= 1 && rows <= (1 << 20), "rows must be in [1, 2^20], got ", rows);
  const Layer& first = *encoder.layers.front();
  std::string names;
  for (const Projection* p : {&first.qkv, &first.post, &first.inner, &first.outer}) {
    names += make_product(*p, rows)->impl;
    names += "\n";
  }
  Tensor out = paddle::empty({static_cast<int64_t>(names.size())}, paddle::DataType::UINT8, paddle::CPUPlace());
  std::memcpy(out.data<uint8_t>(), names.data(), names.size());
  return {out};
}

// Turn the stage clock on or off; returns the seconds per stage (embed, qkv, attention, post, norm1, inner,
// outer, norm2) and the number of calls timed since the previous read [9], then starts over.
std::vector<Tensor> Profile(const Tensor& handle, bool enable) {
  Encoder& encoder = find(handle);
  std::lock_guard<std::mutex> lock(encoder.mutex);
  Tensor out = paddle::empty({kStages + 1}, paddle::DataType::FLOAT64, paddle::CPUPlace());
  double* o = out.data<double>();
  for (int i = 0; i < kStages; ++i) o[i] = encoder.clock.seconds[i];
  o[kStages] = static_cast<double>(encoder.clock.calls);
  encoder.clock = StageClock();
  encoder.clock.on = enable;
  return {out};
}

std::vector<std::vector<int64_t>> OneShape(const std::vector<std::vector<int64_t>>&) { return {{1}}; }
std::vector<std::vector<int64_t>> OneShapeSingle(const std::vector<int64_t>&) { return {{1}}; }
std::vector<paddle::DataType> Int64Dtype(const std::vector<paddle::DataType>&) { return {paddle::DataType::INT64}; }
std::vector<paddle::DataType> Int64DtypeSingle(const paddle::DataType&) { return {paddle::DataType::INT64}; }
std::vector<std::vector<int64_t>> EncodeShape(const std::vector<int64_t>& ids, const std::vector<int64_t>&,
                                              const std::vector<int64_t>&, const std::vector<int64_t>&,
                                              const std::vector<int64_t>&) {
  return {{ids.empty() ? -1 : ids[0], -1}};
}
std::vector<paddle::DataType> EncodeDtype(const paddle::DataType&, const paddle::DataType&, const paddle::DataType&,
                                          const paddle::DataType&, const paddle::DataType&) {
  return {paddle::DataType::FLOAT32};
}
std::vector<std::vector<int64_t>> NamesShape(const std::vector<int64_t>&) { return {{-1}}; }
std::vector<paddle::DataType> NamesDtype(const paddle::DataType&) { return {paddle::DataType::UINT8}; }

PD_BUILD_OP(sb_infer_pack)
    .Inputs({paddle::Vec("weights")})
    .Outputs({"handle"})
    .Attrs({"heads: int64_t", "eps: float", "embedding_eps: float", "bf16: bool"})
    .SetKernelFn(PD_KERNEL(PackEncoder))
    .SetInferShapeFn(PD_INFER_SHAPE(OneShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(Int64Dtype));

PD_BUILD_OP(sb_infer_encode)
    .Inputs({"ids", "positions", "types", "offsets", "handle"})
    .Outputs({"out"})
    .Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(Encode))
    .SetInferShapeFn(PD_INFER_SHAPE(EncodeShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(EncodeDtype));

PD_BUILD_OP(sb_infer_release)
    .Inputs({"handle"})
    .Outputs({"released"})
    .SetKernelFn(PD_KERNEL(Release))
    .SetInferShapeFn(PD_INFER_SHAPE(OneShapeSingle))
    .SetInferDtypeFn(PD_INFER_DTYPE(Int64DtypeSingle));

std::vector<std::vector<int64_t>> StagesShape(const std::vector<int64_t>&) { return {{kStages + 1}}; }
std::vector<paddle::DataType> StagesDtype(const paddle::DataType&) { return {paddle::DataType::FLOAT64}; }

PD_BUILD_OP(sb_infer_profile)
    .Inputs({"handle"})
    .Outputs({"seconds"})
    .Attrs({"enable: bool"})
    .SetKernelFn(PD_KERNEL(Profile))
    .SetInferShapeFn(PD_INFER_SHAPE(StagesShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(StagesDtype));

PD_BUILD_OP(sb_infer_implementations)
    .Inputs({"handle"})
    .Outputs({"names"})
    .Attrs({"rows: int64_t"})
    .SetKernelFn(PD_KERNEL(Implementations))
    .SetInferShapeFn(PD_INFER_SHAPE(NamesShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(NamesDtype));
