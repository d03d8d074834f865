// SqueezeBERT encoder inference on the CPU (Paddle custom operators): the packed formulation of
// packed_encoder.py (every per-token op on the T real tokens only), computed by oneDNN's matmuls and
// our own attention and LayerNorm loops, with no framework op between them.
//
// Why: in Paddle's predictor the matmuls are under half of a bf16 QQP batch; the rest is per-op
// dispatch, bf16<->fp32 conversions around ops oneDNN does not cover, slices, reshapes and padded
// attention. Here one op runs the embeddings and all layers:
//   - each grouped 1x1 conv is oneDNN matmuls on column blocks ("pieces": a group, or half of one) of
//     the token-major activations [T, C] (no layout changes), with the bias, the exact (erf) GELU and
//     the residual add fused into the matmul as oneDNN post-ops; weights are packed once into oneDNN's
//     blocked layout;
//   - attention runs per (sequence, head) over that sequence's real tokens only, so it needs no mask;
//     in bf16 with a head size of 64 on AMX tiles, otherwise with AVX-512 (or plain loops);
//   - LayerNorm writes both the fp32 residual stream and the bf16 input of the next matmul;
//   - with several threads and enough sequences, each thread encodes its own run of whole sequences
//     start to end (Encoder::forward), so no step waits for another thread.
// Precision "bf16": matmul inputs and weights in bf16 (AMX), and Q, K, V and (on AMX) the attention
// weights P; accumulation, softmax, LayerNorm and the residual stream in fp32. Precision "fp32": everything fp32 (exact to ~1e-6 of the reference).
//
// Weights: the word, position and token-type tables [N, H] and the embedding LayerNorm's weight and bias,
// then per layer, in this order (the product layouts of packed_encoder.py, fp32):
//   qkv [Gq, H/Gq, 3H/Gq] (each group's Q, K, V columns side by side, 1/sqrt(d) folded into Q), its bias,
//   post [Gp, H/Gp, H/Gp], bias, LayerNorm weight, bias,
//   inner [Gi, H/Gi, I/Gi], bias, outer [Go, I/Go, H/Go], bias, LayerNorm weight, bias.
// A 2-D weight [C_in, C_out] is one group. Then the head: the pooler's weight [H, H] and bias [H] (Paddle's
// Linear layout, [in, out]), and the classifier's weight [H, C] and bias [C] where there is one.

#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

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
#include <utility>
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
  Buffer() = default;
  // Moved, never copied: a copy would free the memory its original still points at (the per-thread
  // workspaces are moved when a split batch first follows a shared pass).
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept : data(std::exchange(other.data, nullptr)), bytes(std::exchange(other.bytes, 0)) {}
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

// Pieces per group: an odd group count is cut in two, so that two threads can share a projection's
// pieces whole (each on its own single-threaded product; see Encoder::run).
int64_t splits_for(const Tensor& weight) {
  const int64_t groups = weight.shape().size() == 3 ? weight.shape()[0] : 1;
  return groups % 2 == 1 ? 2 : 1;
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

// One grouped 1x1 convolution as pieces: products [rows, k] x [k, n], piece i reading input columns
// src_col.. (row stride in_cols) and writing output columns dst_col.. (row stride out_cols). A group
// is one piece, or several side by side on its output columns (so that threads can share the work).
struct Piece {
  int64_t src_col = 0, dst_col = 0;
  dnnl_memory_t weights = nullptr;        // in oneDNN's packed layout (Projection::weights_md)
  const float* bias = nullptr;
};

struct Projection {
  int64_t k = 0, n = 0, in_cols = 0, out_cols = 0, groups = 1;
  PostOp post = kNone;
  dnnl_data_type_t src_type = onednn::kF32, dst_type = onednn::kF32;
  Desc weights_md;
  std::vector<Buffer> weights;            // per piece, in that layout
  std::vector<Piece> pieces;
  std::vector<float> bias;                // [out_cols]

  Projection() = default;
  Projection(const Projection&) = delete;
  ~Projection() {
    for (const Piece& piece : pieces) dnnl_memory_destroy(piece.weights);
  }
};

dnnl_primitive_desc_t matmul_desc(const Projection& p, int64_t rows, const_dnnl_memory_desc_t weights,
                                  Desc& src, Desc& dst, Desc& bias, Desc& residual) {
  matrix_desc(src, rows, p.k, p.in_cols, p.src_type);
  matrix_desc(dst, rows, p.n, p.out_cols, p.dst_type);
  matrix_desc(bias, 1, p.n, p.n, onednn::kF32);
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t ops;
  check(dnnl_primitive_attr_create(&attr), "attr");
  check(dnnl_post_ops_create(&ops), "post-ops");
  if (p.post == kGelu) check(dnnl_post_ops_append_eltwise(ops, onednn::kGeluErf, 0.f, 0.f), "gelu post-op");
  if (p.post == kResidual) {
    matrix_desc(residual, rows, p.n, p.out_cols, onednn::kF32);
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

// Fill `p` from an fp32 weight [G, k, n] (or [k, n]) and bias [G * n], each group cut into `splits`
// pieces side by side: oneDNN picks the weights layout for a matmul of kLayoutRows rows; every row count
// then uses that layout (checked in make_product).
constexpr int64_t kLayoutRows = 256;

void pack(Projection& p, const Tensor& weight, const Tensor& bias, PostOp post, bool bf16_inputs, bool f32_output,
          int64_t splits) {
  const auto& shape = weight.shape();
  PD_CHECK(shape.size() == 2 || shape.size() == 3, "a projection weight must be 2-D or 3-D");
  p.groups = shape.size() == 3 ? shape[0] : 1;
  p.k = shape[shape.size() - 2];
  const int64_t group_n = shape[shape.size() - 1];
  PD_CHECK(bias.numel() == p.groups * group_n, "a projection bias has ", bias.numel(), " values, expected ",
           p.groups * group_n);
  if (group_n % splits != 0) splits = 1;
  p.n = group_n / splits;
  p.in_cols = p.groups * p.k;
  p.out_cols = p.groups * group_n;
  p.post = post;
  p.src_type = bf16_inputs ? onednn::kBf16 : onednn::kF32;
  p.dst_type = f32_output ? onednn::kF32 : p.src_type;
  p.bias.assign(bias.data<float>(), bias.data<float>() + bias.numel());
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
  Desc plain;                              // one piece of a group's [k, group_n] fp32 weights
  matrix_desc(plain, p.k, p.n, group_n, onednn::kF32);
  dnnl_primitive_desc_t reorder_pd;
  check(dnnl_reorder_primitive_desc_create(&reorder_pd, plain.md, rt.engine, p.weights_md.md, rt.engine, nullptr),
        "weights reorder descriptor");
  dnnl_primitive_t reorder;
  dnnl_status_t status = dnnl_primitive_create(&reorder, reorder_pd);
  dnnl_primitive_desc_destroy(reorder_pd);
  check(status, "weights reorder");
  const float* w = weight.data<float>();
  p.weights = std::vector<Buffer>(p.groups * splits);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t c = 0; c < splits; ++c) {
      Piece piece;
      piece.src_col = g * p.k;
      piece.dst_col = g * group_n + c * p.n;
      piece.bias = p.bias.data() + piece.dst_col;
      void* data = p.weights[p.pieces.size()].get(dnnl_memory_desc_get_size(p.weights_md.md));
      dnnl_memory_t from;
      check(dnnl_memory_create(&from, plain.md, rt.engine, const_cast<float*>(w + g * p.k * group_n + c * p.n)),
            "memory");
      check(dnnl_memory_create(&piece.weights, p.weights_md.md, rt.engine, data), "memory");
      p.pieces.push_back(piece);
      dnnl_exec_arg_t args[2] = {{onednn::kArgSrc, from}, {onednn::kArgDst, piece.weights}};
      check(dnnl_primitive_execute(reorder, rt.stream, 2, args), "weights reorder");
      check(dnnl_stream_wait(rt.stream), "stream");
      dnnl_memory_destroy(from);
    }
  dnnl_primitive_destroy(reorder);
}

constexpr size_t kEmbeddingTensors = 5;

struct Layer {
  Projection qkv, post, inner, outer;
  std::vector<float> norm1_weight, norm1_bias, norm2_weight, norm2_bias;
};

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

#ifdef __AVX512F__
// Rows [0, l) of a [*, width] matrix of 32-bit values (row stride ld) into its transpose out [width, lp],
// zeros in columns l..lp: 16x16 blocks transposed in registers (scattered scalar stores cost 4x more).
inline void transpose_rows(const uint32_t* in, int64_t ld, int64_t l, int64_t width, uint32_t* out, int64_t lp) {
  alignas(64) static const uint32_t zeros[16] = {};
  for (int64_t j0 = 0; j0 < lp; j0 += 16)
    for (int64_t c0 = 0; c0 < width; c0 += 16) {
      __m512i r[16], t[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(j0 + i < l ? in + (j0 + i) * ld + c0 : zeros);
      for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
      }
      for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
      }
      for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; ++k) {
          t[i + k] = _mm512_shuffle_i32x4(r[i + k], r[i + 4 + k], 0x88);
          t[i + 4 + k] = _mm512_shuffle_i32x4(r[i + k], r[i + 4 + k], 0xdd);
        }
      for (int k = 0; k < 8; ++k) {
        _mm512_storeu_si512(out + (c0 + k) * lp + j0, _mm512_shuffle_i32x4(t[k], t[8 + k], 0x88));
        _mm512_storeu_si512(out + (c0 + 8 + k) * lp + j0, _mm512_shuffle_i32x4(t[k], t[8 + k], 0xdd));
      }
    }
}
#endif

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
  bool keys_done = false;
#ifdef __AVX512F__
  if constexpr (std::is_same_v<E, float>)
    if (d % 16 == 0) {
      transpose_rows(reinterpret_cast<const uint32_t*>(qkv + k_col), qkv_ld, l, d, reinterpret_cast<uint32_t*>(h.kt),
                     h.lp);
      keys_done = true;
    }
#endif
  for (int64_t i = 0; i < l; ++i) {
    const E* row = qkv + i * qkv_ld;
    for (int64_t e = 0; e < d; ++e) {
      h.q[i * d + e] = to_f32(row[q_col + e]);
      if (!keys_done) h.kt[e * h.lp + i] = to_f32(row[k_col + e]);
      h.v[i * d + e] = to_f32(row[v_col + e]);
    }
  }
  // Zeros where the products read beyond the l tokens: query rows up to query_rows, key columns up to lp.
  std::fill(h.q + l * d, h.q + query_rows * d, 0.f);
  if (!keys_done)
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

#ifdef __AVX512F__
// e^x for 16 lanes, x <= 0 (softmax arguments): Cephes' expf reduction and polynomial, within ~1 ulp.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-80.f));          // e^-80 is 0 next to the max's 1
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);       // x - n ln2, in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);                          // * 2^n
}

inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? 0xFFFF : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Each of `rows` score rows (stride lp): e^(s - max) over its first l entries, zeros beyond; the row's
// 1 / sum goes to inv[r] (applied to the context, so P @ V reads unnormalized weights).
inline void softmax_unnormalized(float* s, int64_t rows, int64_t l, int64_t lp, float* inv) {
  for (int64_t r = 0; r < rows; ++r) {
    float* p = s + r * lp;
    __m512 top = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < l; j0 += 16)
      top = _mm512_mask_max_ps(top, first_lanes(l - j0), top, _mm512_loadu_ps(p + j0));
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      const __m512 e = _mm512_maskz_mov_ps(first_lanes(l - j0), exp16(_mm512_sub_ps(_mm512_loadu_ps(p + j0), max)));
      _mm512_storeu_ps(p + j0, e);
      sum = _mm512_add_ps(sum, e);
    }
    inv[r] = 1.f / _mm512_reduce_add_ps(sum);
  }
}

inline void store16(float* out, __m512 v) { _mm512_storeu_ps(out, v); }
#ifdef __AVX512BF16__
inline void store16(bf16* out, __m512 v) {                 // round to nearest even, as to_bf16
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), (__m256i)_mm512_cvtneps_pbh(v));
}
#else
inline void store16(bf16* out, __m512 v) {
  alignas(64) float row[16];
  _mm512_store_ps(row, v);
  for (int e = 0; e < 16; ++e) out[e] = to_bf16(row[e]);
}
#endif

// Context rows i0.. (`rows` of them) = P @ V / sum, P the unnormalized weights of softmax_unnormalized.
template <int D, typename E>
inline void weigh_values(const float* s, const float* inv, const float* v, int64_t rows, int64_t l, int64_t lp,
                         E* context, int64_t context_ld) {
  constexpr int V = D / 16;
  __m512 c[4][V];
  for (int r = 0; r < 4; ++r)
    for (int u = 0; u < V; ++u) c[r][u] = _mm512_setzero_ps();
  for (int64_t j = 0; j < l; ++j) {
    __m512 vj[V];
    for (int u = 0; u < V; ++u) vj[u] = _mm512_loadu_ps(v + j * D + 16 * u);
    for (int r = 0; r < 4; ++r) {
      const __m512 p = _mm512_set1_ps(s[r * lp + j]);
      for (int u = 0; u < V; ++u) c[r][u] = _mm512_fmadd_ps(p, vj[u], c[r][u]);
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 scale = _mm512_set1_ps(inv[r]);
    for (int u = 0; u < V; ++u) store16(context + r * context_ld + 16 * u, _mm512_mul_ps(c[r][u], scale));
  }
}
#endif

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
  const int64_t rows4 = (l + 3) / 4 * 4;
  Head h = load_head(qkv, qkv_ld, q_col, k_col, v_col, l, D, rows4, scratch);
  const int64_t lp = h.lp;
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const float* q = h.q + i0 * D;
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      __m512 a[2][4];                      // even and odd dimensions apart: 8 independent sums
      for (int u = 0; u < 2; ++u)
        for (int r = 0; r < 4; ++r) a[u][r] = _mm512_setzero_ps();
      for (int e = 0; e < D; e += 2)
        for (int u = 0; u < 2; ++u) {
          const __m512 k = _mm512_loadu_ps(h.kt + (e + u) * lp + j0);
          for (int r = 0; r < 4; ++r) a[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * D + e + u]), k, a[u][r]);
        }
      for (int r = 0; r < 4; ++r) _mm512_storeu_ps(h.s + r * lp + j0, _mm512_add_ps(a[0][r], a[1][r]));
    }
    const int64_t rows = std::min<int64_t>(4, l - i0);
    float inv[4];
    softmax_unnormalized(h.s, rows, l, lp, inv);
    weigh_values<D>(h.s, inv, h.v, rows, l, lp, context + i0 * context_ld, context_ld);
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
  static_assert(D % 32 == 0, "pairs are transposed 16 at a time");
  constexpr int V = D / 16, P = D / 2;
  const int64_t lp = (l + 15) / 16 * 16;
  scratch.resize(P * lp + lp * D + 4 * lp);
  uint32_t* kt = reinterpret_cast<uint32_t*>(scratch.data());    // [P, lp] pairs, zero beyond l
  float* v = scratch.data() + P * lp;                             // [lp, D]
  float* s = v + lp * D;                                          // [4, lp]
  transpose_rows(reinterpret_cast<const uint32_t*>(qkv + k_col), qkv_ld / 2, l, P, kt, lp);
  for (int64_t j = 0; j < l; ++j) {
    const bf16* row = qkv + j * qkv_ld;
    for (int u = 0; u < V; ++u) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + v_col + 16 * u));
      _mm512_storeu_ps(v + j * D + 16 * u, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
  }
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const int64_t rows = std::min<int64_t>(4, l - i0);
    const bf16* q[4];
    for (int r = 0; r < 4; ++r) q[r] = qkv + (i0 + std::min<int64_t>(r, rows - 1)) * qkv_ld + q_col;
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      __m512 a[2][4];                      // even and odd pairs apart: 8 independent sums keep the unit busy
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < 4; ++r) a[h][r] = _mm512_setzero_ps();
      for (int e = 0; e < P; e += 2)
        for (int h = 0; h < 2; ++h) {
          const __m512bh k = (__m512bh)_mm512_loadu_si512(kt + (e + h) * lp + j0);
          for (int r = 0; r < 4; ++r)
            a[h][r] = _mm512_dpbf16_ps(a[h][r], (__m512bh)_mm512_set1_epi32(pair_at(q[r] + 2 * (e + h))), k);
        }
      for (int r = 0; r < 4; ++r) _mm512_storeu_ps(s + r * lp + j0, _mm512_add_ps(a[0][r], a[1][r]));
    }
    float inv[4];
    softmax_unnormalized(s, rows, l, lp, inv);
    weigh_values<D>(s, inv, v, rows, l, lp, context + i0 * context_ld, context_ld);
  }
}
#endif

#if defined(__AVX512BF16__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
// AMX needs the kernel's permission per process (oneDNN asks too; asking twice is harmless).
bool amx_usable() {
  static const bool ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return ok;
}

struct TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// V rows [0, l) of [*, 64] bf16 (row stride ld) in AMX's pair layout for the B side of P @ V:
// out[p][e] = (V[2p][e], V[2p + 1][e]) as one 32-bit lane, pairs up to lk / 2, zeros beyond l.
inline void pair_values(const bf16* v, int64_t ld, int64_t l, int64_t lk, uint32_t* out) {
  alignas(64) static const uint16_t lo_index[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                    8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i lo = _mm512_load_si512(lo_index), hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  for (int64_t p = 0; p < lk / 2; ++p) {
    for (int half = 0; half < 2; ++half) {
      const int64_t j = 2 * p;
      const __m512i a = j < l ? _mm512_loadu_si512(v + j * ld + 32 * half) : _mm512_setzero_si512();
      const __m512i b = j + 1 < l ? _mm512_loadu_si512(v + (j + 1) * ld + 32 * half) : _mm512_setzero_si512();
      _mm512_storeu_si512(out + p * 64 + 32 * half, _mm512_permutex2var_epi16(a, lo, b));
      _mm512_storeu_si512(out + p * 64 + 32 * half + 16, _mm512_permutex2var_epi16(a, hi, b));
    }
  }
}

// Attention on AMX tiles, 16 query rows at a time: the scores Q K^T (tmm0; Q dimensions 0-31 / 32-63 in
// tmm1 / tmm3, read in place from qkv; K^T pairs in tmm2), softmax in fp32 (AVX-512), then P @ V with the
// unnormalized weights P in bf16 (tmm1) against V pairs (tmm2) into tmm4..7 (16 dimensions each), scaled
// by 1 / sum in fp32. Q rows past l are read too (the qkv buffer has 16 spare rows); their rows of the
// results are never used. oneDNN loads its own tile configuration, so each call loads ours.
template <int D>
void attend_amx(const bf16* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l,
                bf16* context, int64_t context_ld, std::vector<float>& scratch) {
  static_assert(D == 64, "two 32-dimension steps, four 16-dimension output tiles");
  constexpr int P = D / 2;
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
  const int64_t lp = (l + 15) / 16 * 16, lk = (l + 31) / 32 * 32;
  scratch.resize(P * lp + lk / 2 * D + 16 * lk + 8 * lk + 16 * D);
  uint32_t* kt = reinterpret_cast<uint32_t*>(scratch.data());     // [P, lp] K pairs, zero beyond l
  uint32_t* vv = kt + P * lp;                                       // [lk / 2, D] V pairs, zero beyond l
  float* s = reinterpret_cast<float*>(vv + lk / 2 * D);             // [16, lk] scores, then weights
  bf16* pb = reinterpret_cast<bf16*>(s + 16 * lk);                  // [16, lk] weights in bf16
  float* c = reinterpret_cast<float*>(pb + 16 * lk);                // [16, D] context before scaling
  transpose_rows(reinterpret_cast<const uint32_t*>(qkv + k_col), qkv_ld / 2, l, P, kt, lp);
  pair_values(qkv + v_col, qkv_ld, l, lk, vv);
  const int64_t stride = qkv_ld * 2;
  for (int64_t i0 = 0; i0 < l; i0 += 16) {
    const bf16* q = qkv + i0 * qkv_ld + q_col;
    _tile_loadd(1, q, stride);
    _tile_loadd(3, q + 32, stride);
    for (int64_t j0 = 0; j0 < lp; j0 += 16) {
      _tile_zero(0);
      _tile_loadd(2, kt + j0, lp * 4);
      _tile_dpbf16ps(0, 1, 2);
      _tile_loadd(2, kt + 16 * lp + j0, lp * 4);
      _tile_dpbf16ps(0, 3, 2);
      _tile_stored(0, s + j0, lk * 4);
    }
    const int64_t rows = std::min<int64_t>(16, l - i0);
    float inv[16];
    softmax_unnormalized(s, rows, l, lk, inv);          // zeros from l to lk
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j0 = 0; j0 < lk; j0 += 16) store16(pb + r * lk + j0, _mm512_loadu_ps(s + r * lk + j0));
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int64_t k0 = 0; k0 < lk; k0 += 32) {
      _tile_loadd(1, pb + k0, lk * 2);
      const uint32_t* b = vv + k0 / 2 * D;
      _tile_loadd(2, b, D * 4);
      _tile_dpbf16ps(4, 1, 2);
      _tile_loadd(2, b + 16, D * 4);
      _tile_dpbf16ps(5, 1, 2);
      _tile_loadd(2, b + 32, D * 4);
      _tile_dpbf16ps(6, 1, 2);
      _tile_loadd(2, b + 48, D * 4);
      _tile_dpbf16ps(7, 1, 2);
    }
    _tile_stored(4, c, D * 4);
    _tile_stored(5, c + 16, D * 4);
    _tile_stored(6, c + 32, D * 4);
    _tile_stored(7, c + 48, D * 4);
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 scale = _mm512_set1_ps(inv[r]);
      for (int u = 0; u < D / 16; ++u)
        store16(context + (i0 + r) * context_ld + 16 * u, _mm512_mul_ps(_mm512_loadu_ps(c + r * D + 16 * u), scale));
    }
  }
}
#endif

template <typename E>
void attend(const E* qkv, int64_t qkv_ld, int64_t q_col, int64_t k_col, int64_t v_col, int64_t l, int64_t d,
            E* context, int64_t context_ld, std::vector<float>& scratch) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
  if constexpr (std::is_same_v<E, bf16>) {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    static const bool no_amx = std::getenv("SQUEEZEBERT_NO_AMX_ATTENTION") != nullptr;   // (for A/B runs, tests)
    if (d == 64 && amx_usable() && !no_amx)
      return attend_amx<64>(qkv, qkv_ld, q_col, k_col, v_col, l, context, context_ld, scratch);
#endif
    if (d == 64) return attend_bf16<64>(qkv, qkv_ld, q_col, k_col, v_col, l, context, context_ld, scratch);
  }
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
                float eps, bool parallel) {
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t r = 0; r < rows; ++r)
    layer_norm_row(x + r * n, y + r * n, y16 ? y16 + r * n : nullptr, n, w, b, eps);
}

// The embedding tables and their LayerNorm, fp32.
struct Embeddings {
  std::vector<float> words, positions, types, norm_weight, norm_bias;
  int64_t vocab = 0, max_positions = 0, type_vocab = 0;
  float eps = 1e-12f;
};

struct Dense {                            // a Linear layer of the head: y = x @ weight [k, n] + bias
  std::vector<float> weight, bias;
  int64_t k = 0, n = 0;
};

// out[b] = x[rows[b]] @ d.weight + d.bias (a zero x row where rows[b] < 0; x[b] itself when rows is
// null), then tanh if asked; x [*, k].
// One thread, weights read once: for the pooler and classifier on one row per sequence this is ~10x
// cheaper than Paddle's ops (their dispatch) or numpy's BLAS (its threads spin against OpenMP's).
void dense_rows(const Dense& d, const float* x, const int64_t* rows, int64_t count, bool tanh, float* out) {
  const int64_t k = d.k, n = d.n;
  const float *w = d.weight.data(), *bias = d.bias.data();
  const int64_t padded = (count + 15) / 16 * 16;
  std::vector<float> gathered(padded * k, 0.f);      // the rows read, side by side (zero rows up to 16s)
  for (int64_t b = 0; b < count; ++b) {
    const int64_t row = rows ? rows[b] : b;
    if (row >= 0) std::memcpy(gathered.data() + b * k, x + row * k, k * 4);
  }
  const float* g = gathered.data();
  int64_t j0 = 0;
#ifdef __AVX512F__
  // 16 output columns by 16 rows in registers; each weight vector is loaded once per 16 rows.
  for (; j0 + 16 <= n; j0 += 16)
    for (int64_t b0 = 0; b0 < padded; b0 += 16) {
      const float* rows16 = g + b0 * k;
      __m512 acc[16];
      for (int b = 0; b < 16; ++b) acc[b] = _mm512_loadu_ps(bias + j0);
      for (int64_t c = 0; c < k; ++c) {
        // (rows of the weights are too far apart for the hardware prefetchers: ask 16 rows ahead)
        _mm_prefetch(reinterpret_cast<const char*>(w + std::min(c + 16, k - 1) * n + j0), _MM_HINT_T0);
        const __m512 wc = _mm512_loadu_ps(w + c * n + j0);
        for (int b = 0; b < 16; ++b) acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(rows16[b * k + c]), wc, acc[b]);
      }
      for (int64_t b = 0; b < std::min<int64_t>(16, count - b0); ++b) _mm512_storeu_ps(out + (b0 + b) * n + j0, acc[b]);
    }
#endif
  for (int64_t b = 0; b < count; ++b)           // the columns left (all of them without AVX-512)
    for (int64_t j = j0; j < n; ++j) {
      float sum = bias[j];
      for (int64_t c = 0; c < k; ++c) sum += g[b * k + c] * w[c * n + j];
      out[b * n + j] = sum;
    }
  if (tanh)
    for (int64_t i = 0; i < count * n; ++i) out[i] = std::tanh(out[i]);
}

// Rows rounded up to whole AMX tiles (16), and to multiples of 64 beyond 1024 rows so that the primitives
// per row count stay few. (Multiples of 64 from 256 rows on measured 3-8% slower, bf16 and fp32: a
// per-thread run of 8 QQP pairs is ~250 rows, and every extra row is computed in full.)
int64_t padded_rows(int64_t tokens) {
  const int64_t multiple = tokens > 1024 ? 64 : 16;
  return std::max<int64_t>(16, (tokens + multiple - 1) / multiple * multiple);
}
constexpr size_t kMaxProducts = 1024;    // primitives kept (up to 4 per row count and thread); beyond, start over

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

struct Workspace {                        // the activations of one pass, rows padded
  Buffer x32, x16, qkv, context, a32, a16, inner, out32;
};

struct Encoder {
  Embeddings embeddings;
  std::vector<Dense> head;                  // the pooler, then the classifier if any
  StageClock clock;
  int64_t hidden = 0, intermediate = 0, heads = 0, head_size = 0, qkv_groups = 1;
  float eps = 1e-12f;
  bool use_bf16 = true;
  std::vector<std::unique_ptr<Layer>> layers;
  // Primitives by (role, thread, rows): all layers share shapes, so one set serves every layer.
  std::map<std::tuple<int, int, int64_t>, std::unique_ptr<Product>> products;
  std::vector<Workspace> spaces;            // per thread of a split batch (the first also for a shared pass)
  std::vector<dnnl_stream_t> streams;       // per thread, for single-threaded products
  StageClock untimed;                       // (the other threads of a split batch do not lap the clock)
  std::mutex mutex;

  Encoder() = default;
  Encoder(const Encoder&) = delete;
  ~Encoder() {
    products.clear();
    for (dnnl_stream_t stream : streams) dnnl_stream_destroy(stream);
  }

  // The product for (role, rows) made for `thread` (single-threaded), or for kShared (oneDNN's threads
  // inside). Call make_room first: products made since then stay.
  static constexpr int kShared = -1;        // (no thread has this number)
  Product& product(int role, const Projection& p, int64_t rows, int thread) {
    auto& slot = products[{role, thread, rows}];
    if (!slot) slot = make_product(p, rows);
    return *slot;
  }

  void make_room(size_t needed) {
    if (products.size() + needed > kMaxProducts) products.clear();
  }

  const Projection& projection(int role) const {
    const Layer& first = *layers.front();
    return role == 0 ? first.qkv : role == 1 ? first.post : role == 2 ? first.inner : first.outer;
  }

  // Single-threaded products of `role` for threads 0.., thread t's at rows[t] (made before the threads
  // start: the cache is not shared safely), and a stream per thread.
  std::vector<Product*> single_threaded(int role, const std::vector<int64_t>& rows) {
    const int threads = static_cast<int>(rows.size());
    while (static_cast<int>(streams.size()) < threads) {
      dnnl_stream_t stream;
      check(dnnl_stream_create(&stream, runtime().engine, onednn::kDefaultStreamFlags), "stream");
      streams.push_back(stream);
    }
    std::vector<Product*> made(threads);
    omp_set_num_threads(1);                  // oneDNN sizes a primitive for the threads it sees at creation
    for (int t = 0; t < threads; ++t) made[t] = &product(role, projection(role), rows[t], t);
    omp_set_num_threads(threads);
    return made;
  }

  // The projection `p` (role: 0 qkv, 1 post, 2 inner, 3 outer) of `rows` rows. Thread t >= 0: all pieces
  // on the calling thread, on the single-threaded product made for t before the threads started.
  // kShared: the threads take whole pieces when the pieces divide evenly among them (single-threaded
  // products, no barrier inside); otherwise each piece in turn uses every thread.
  void run(int role, const Projection& p, int64_t rows, const void* src, void* dst, const float* residual, int t) {
    if (t != kShared) {
      auto found = products.find({role, t, rows});
      PD_CHECK(found != products.end(), "no product prepared for thread ", t);
      for (const Piece& piece : p.pieces)
        check(execute(*found->second, p, piece, src, dst, residual, streams[t]), "matmul");
      check(dnnl_stream_wait(streams[t]), "stream");
      return;
    }
    const int threads = omp_get_max_threads();
    const int64_t count = static_cast<int64_t>(p.pieces.size());
    Runtime& rt = runtime();
    if (threads == 1 || count % threads != 0) {
      make_room(1);
      Product& m = product(role, p, rows, kShared);
      for (const Piece& piece : p.pieces) check(execute(m, p, piece, src, dst, residual, rt.stream), "matmul");
      check(dnnl_stream_wait(rt.stream), "stream");
      return;
    }
    make_room(threads);
    const std::vector<Product*> mine = single_threaded(role, std::vector<int64_t>(threads, rows));
    dnnl_status_t failed = 0;                // (no exception may leave an OpenMP region)
#pragma omp parallel num_threads(threads) reduction(max : failed)
    {
      const int i = omp_get_thread_num();
#pragma omp for schedule(static)
      for (int64_t k = 0; k < count; ++k)
        failed = std::max(failed, execute(*mine[i], p, p.pieces[k], src, dst, residual, streams[i]));
      failed = std::max(failed, dnnl_stream_wait(streams[i]));
    }
    check(failed, "matmul");
  }

  // One piece's product; returns oneDNN's status (nonzero: failed).
  static dnnl_status_t execute(Product& m, const Projection& p, const Piece& piece, const void* src, void* dst,
                               const float* residual, dnnl_stream_t stream) {
    const size_t in_size = p.src_type == onednn::kBf16 ? 2 : 4, out_size = p.dst_type == onednn::kBf16 ? 2 : 4;
    dnnl_status_t status =
        dnnl_memory_set_data_handle(m.src, const_cast<char*>(static_cast<const char*>(src)) + piece.src_col * in_size);
    if (status == 0) status = dnnl_memory_set_data_handle(m.dst, static_cast<char*>(dst) + piece.dst_col * out_size);
    if (status == 0) status = dnnl_memory_set_data_handle(m.bias, const_cast<float*>(piece.bias));
    dnnl_exec_arg_t args[5] = {{onednn::kArgSrc, m.src}, {onednn::kArgWeights, piece.weights},
                               {onednn::kArgBias, m.bias}, {onednn::kArgDst, m.dst}, {0, nullptr}};
    int count = 4;
    if (p.post == kResidual) {
      if (status == 0) status = dnnl_memory_set_data_handle(m.residual, const_cast<float*>(residual) + piece.dst_col);
      args[count++] = {onednn::kArgPostOp0Src1, m.residual};
    }
    return status == 0 ? dnnl_primitive_execute(m.primitive, stream, count, args) : status;
  }

  template <typename E>
  void attention(const E* qkv_rows, const int64_t* offsets, int64_t batch, E* context_rows, bool parallel) {
    const int64_t per_group = 3 * hidden / qkv_groups, group_width = hidden / qkv_groups;
    const int64_t tasks = batch * heads;
#pragma omp parallel if (parallel)
    {
      std::vector<float> scratch;
#pragma omp for schedule(static, 1)
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
             bf16* x16, bool parallel) const {
    const Embeddings& e = embeddings;
    const int64_t h = hidden;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < tokens; ++t) {
      const float *w = e.words.data() + ids[t] * h, *p = e.positions.data() + positions[t] * h,
                  *y = e.types.data() + types[t] * h;
      float* row = x + t * h;
      for (int64_t c = 0; c < h; ++c) row[c] = (w[c] + p[c]) + y[c];       // the reference's order
      layer_norm_row(row, row, x16 ? x16 + t * h : nullptr, h, e.norm_weight.data(), e.norm_bias.data(), e.eps);
    }
  }

  // The real tokens' ids, positions and types [tokens], sequence after sequence -> out [tokens, H].
  // With several threads and at least two sequences per thread, each thread encodes its own run of
  // whole sequences (about as many tokens as the others) from start to end on single-threaded
  // products: no barrier between steps, and every row stays in the cache of the core that computes
  // it. Fewer sequences: one pass in which every step uses all threads.
  void forward(const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t tokens,
               const int64_t* offsets, int64_t batch, float* out) {
    const int threads = omp_get_max_threads();
    if (threads < 2 || batch < 2 * threads) {
      if (spaces.empty()) spaces.resize(1);
      return encode(spaces[0], kShared, ids, positions, types, tokens, offsets, batch, out);
    }
    if (static_cast<int>(spaces.size()) < threads) spaces.resize(threads);
    // A sequence of l tokens costs about l + l^2 / 290 token-times (its attention, measured in bf16, is
    // ~11% of its products at QQP's ~31 tokens); each border goes where the running cost is nearest t / threads.
    std::vector<double> cost(batch + 1, 0.);
    for (int64_t b = 0; b < batch; ++b) {
      const double l = static_cast<double>(offsets[b + 1] - offsets[b]);
      cost[b + 1] = cost[b] + l + l * l / 290.;
    }
    std::vector<int64_t> first(threads + 1, batch);       // thread t takes sequences first[t] .. first[t + 1]
    first[0] = 0;
    for (int t = 1; t < threads; ++t) {
      const double target = cost[batch] * t / threads;
      int64_t b = first[t - 1];
      while (b < batch && cost[b + 1] <= target) ++b;
      if (b < batch && cost[b + 1] - target < target - cost[b]) ++b;          // the nearer border
      first[t] = b;
    }
    std::vector<std::vector<int64_t>> local(threads);      // each run's offsets, from 0
    for (int t = 0; t < threads; ++t)
      for (int64_t b = first[t]; b <= first[t + 1]; ++b) local[t].push_back(offsets[b] - offsets[first[t]]);
    std::vector<int64_t> rows(threads);
    for (int t = 0; t < threads; ++t) rows[t] = padded_rows(local[t].back());
    make_room(4 * threads);
    for (int role = 0; role < 4; ++role) single_threaded(role, rows);
    std::string failure;                     // (no exception may leave an OpenMP region)
    // Run t on thread t; should OpenMP form a smaller team (OMP_THREAD_LIMIT, OMP_DYNAMIC on a busy
    // machine), the threads it has take the other runs in turn (run t's products, stream and buffers
    // belong to the run, not to the thread).
#pragma omp parallel num_threads(threads)
    for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) {
      const int64_t start = offsets[first[t]];
      try {
        encode(spaces[t], t, ids + start, positions + start, types + start, local[t].back(), local[t].data(),
               first[t + 1] - first[t], out + start * hidden);
      } catch (const std::exception& e) {
#pragma omp critical
        failure = e.what();
      }
    }
    PD_CHECK(failure.empty(), failure);
  }

  // Embeddings and every layer for one run of sequences, into out [tokens, H]: on the calling thread
  // with thread t's products, or (t == kShared) with every thread in each step.
  void encode(Workspace& w, int t, const int64_t* ids, const int64_t* positions, const int64_t* types,
              int64_t tokens, const int64_t* offsets, int64_t batch, float* out) {
    if (tokens == 0) return;
    const bool parallel = t == kShared, timed = t == kShared || t == 0;
    const int64_t rows = padded_rows(tokens);
    const size_t e = use_bf16 ? 2 : 4, h = hidden;
    float* xs = static_cast<float*>(w.x32.get(rows * h * 4));
    float* as = static_cast<float*>(w.a32.get(rows * h * 4));
    float* os = static_cast<float*>(w.out32.get(rows * h * 4));
    void* q = w.qkv.get((rows + 16) * 3 * h * e);        // 16 spare rows: AMX reads whole 16-row Q tiles
    void* c = w.context.get(rows * h * e);
    void* f = w.inner.get(rows * intermediate * e);
    bf16* x16s = use_bf16 ? static_cast<bf16*>(w.x16.get(rows * h * 2)) : nullptr;
    bf16* a16s = use_bf16 ? static_cast<bf16*>(w.a16.get(rows * h * 2)) : nullptr;
    StageClock& clock = timed ? this->clock : untimed;
    clock.start();
    clock.calls += clock.on;
    embed(ids, positions, types, tokens, xs, x16s, parallel);
    std::memset(xs + tokens * h, 0, (rows - tokens) * h * 4);                   // padding rows: finite values
    if (use_bf16) std::memset(x16s + tokens * h, 0, (rows - tokens) * h * 2);
    std::memset(static_cast<char*>(c) + tokens * h * e, 0, (rows - tokens) * h * e);
    clock.lap(kEmbed);
    for (const auto& layer : layers) {
      run(0, layer->qkv, rows, use_bf16 ? static_cast<void*>(x16s) : xs, q, nullptr, t);
      clock.lap(kQkv);
      if (use_bf16)
        attention(static_cast<const bf16*>(q), offsets, batch, static_cast<bf16*>(c), parallel);
      else
        attention(static_cast<const float*>(q), offsets, batch, static_cast<float*>(c), parallel);
      clock.lap(kAttention);
      run(1, layer->post, rows, c, as, xs, t);
      clock.lap(kPost);
      layer_norm(as, as, a16s, rows, h, layer->norm1_weight.data(), layer->norm1_bias.data(), eps, parallel);
      clock.lap(kNorm1);
      run(2, layer->inner, rows, use_bf16 ? static_cast<void*>(a16s) : as, f, nullptr, t);
      clock.lap(kInner);
      run(3, layer->outer, rows, f, os, as, t);
      clock.lap(kOuter);
      layer_norm(os, xs, x16s, rows, h, layer->norm2_weight.data(), layer->norm2_bias.data(), eps, parallel);
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
// 12 per layer, then weight and bias of each of the `head_layers` head layers; see the top of this file)
// in bf16 or fp32; `eps` is the layers' LayerNorm epsilon, `embedding_eps` the embeddings'. Returns a
// handle for sb_infer_classify.
std::vector<Tensor> PackEncoder(const std::vector<Tensor>& all, int64_t heads, float eps, float embedding_eps,
                                bool bf16, int64_t head_layers) {
  PD_CHECK(head_layers == 1 || head_layers == 2, "head_layers must be 1 (pooler) or 2 (pooler, classifier)");
  const size_t head_tensors = 2 * static_cast<size_t>(head_layers);
  PD_CHECK(all.size() > kEmbeddingTensors + head_tensors && (all.size() - kEmbeddingTensors - head_tensors) % 12 == 0,
           "expected 5 embedding tensors, 12 weight tensors per layer and ", head_tensors, " head tensors, got ",
           all.size());
  for (const Tensor& w : all) require_f32_cpu(w, "every weight");
  const std::vector<Tensor> weights(all.begin(), all.end() - head_tensors);
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
    pack(layer->qkv, w[0], w[1], kNone, bf16, false, splits_for(w[0]));
    pack(layer->post, w[2], w[3], kResidual, bf16, true, splits_for(w[2]));
    layer->norm1_weight = values(w[4]);
    layer->norm1_bias = values(w[5]);
    pack(layer->inner, w[6], w[7], kGelu, bf16, false, splits_for(w[6]));
    pack(layer->outer, w[8], w[9], kResidual, bf16, true, splits_for(w[8]));
    layer->norm2_weight = values(w[10]);
    layer->norm2_bias = values(w[11]);
    const int64_t hidden = layer->qkv.in_cols, intermediate = layer->inner.out_cols;
    PD_CHECK(layer->qkv.out_cols == 3 * hidden && layer->post.in_cols == hidden &&
                 layer->post.out_cols == hidden && layer->inner.in_cols == hidden &&
                 layer->outer.in_cols == intermediate && layer->outer.out_cols == hidden &&
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
  int64_t width = encoder->hidden;          // what the next head layer reads
  for (size_t i = weights.size(); i < all.size(); i += 2) {
    const auto& shape = all[i].shape();
    PD_CHECK(shape.size() == 2 && shape[0] == width && all[i + 1].numel() == shape[1],
             "head layer ", (i - weights.size()) / 2, ": weight must be [", width, ", N] with a bias [N]");
    encoder->head.push_back(Dense{values(all[i]), values(all[i + 1]), shape[0], shape[1]});
    width = shape[1];
  }
  std::lock_guard<std::mutex> lock(registry_mutex);
  const int64_t id = next_handle++;
  registry[id] = std::move(encoder);
  Tensor handle = paddle::empty({1}, paddle::DataType::INT64, paddle::CPUPlace());
  handle.data<int64_t>()[0] = id;
  return {handle};
}

// Each of the n values in [0, limit).
void require_range(const int64_t* v, int64_t n, int64_t limit, const char* what) {
  for (int64_t i = 0; i < n; ++i)
    PD_CHECK(v[i] >= 0 && v[i] < limit, what, " ", v[i], " is outside the table [0, ", limit, ")");
}

// The model on a padded batch: ids, mask (0/1) and token types [B, L] int64. The real tokens (mask 1) are
// packed sequence after sequence, each at its column as position, and encoded; then the head runs on
// each sequence's position-0 token (on zeros where position 0 is padding, as the exported program).
// Returns the head's output [B, N] (the logits, or the pooled output without a classifier) and the
// last layer's output for the real tokens [T, H], fp32.
std::vector<Tensor> Classify(const Tensor& ids, const Tensor& mask, const Tensor& types, const Tensor& handle,
                             int64_t threads) {
  Encoder& encoder = find(handle);
  for (const Tensor* t : {&ids, &mask, &types})
    PD_CHECK(t->is_cpu() && t->dtype() == paddle::DataType::INT64 && t->shape().size() == 2 &&
                 t->shape() == ids.shape(), "ids, mask and types must be int64 [batch, length] on the CPU");
  const int64_t batch = ids.shape()[0], length = ids.shape()[1];
  const int64_t *id = ids.data<int64_t>(), *m = mask.data<int64_t>(), *type = types.data<int64_t>();
  std::vector<int64_t> offsets(batch + 1, 0), first(batch, -1), packed_ids, positions, packed_types;
  packed_ids.reserve(batch * length);
  positions.reserve(batch * length);
  packed_types.reserve(batch * length);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < length; ++j) {
      const int64_t at = b * length + j;
      PD_CHECK(m[at] == 0 || m[at] == 1, "the attention mask must hold only 0 and 1");
      if (!m[at]) continue;
      if (j == 0) first[b] = static_cast<int64_t>(packed_ids.size());
      packed_ids.push_back(id[at]);
      positions.push_back(j);
      packed_types.push_back(type[at]);
    }
    offsets[b + 1] = static_cast<int64_t>(packed_ids.size());
  }
  const int64_t tokens = offsets[batch];
  const Embeddings& e = encoder.embeddings;
  require_range(packed_ids.data(), tokens, e.vocab, "token id");
  require_range(positions.data(), tokens, e.max_positions, "position");
  require_range(packed_types.data(), tokens, e.type_vocab, "token type");
  Tensor hidden = paddle::empty({tokens, encoder.hidden}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  Tensor out = paddle::empty({batch, encoder.head.back().n}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  std::vector<float> pooled(batch * encoder.head.front().n);
  {
    std::lock_guard<std::mutex> lock(encoder.mutex);
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
    if (tokens > 0)
      encoder.forward(packed_ids.data(), positions.data(), packed_types.data(), tokens, offsets.data(), batch,
                      hidden.data<float>());
  }
  const bool classifier = encoder.head.size() == 2;
  dense_rows(encoder.head[0], hidden.data<float>(), first.data(), batch, true,
             classifier ? pooled.data() : out.data<float>());
  if (classifier) dense_rows(encoder.head[1], pooled.data(), nullptr, batch, false, out.data<float>());
  return {out, hidden};
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
// outer, norm2) and the number of calls timed since the previous read [9], then starts over. When each
// thread encodes its own sequences, the clock is the first thread's.
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
std::vector<std::vector<int64_t>> ClassifyShape(const std::vector<int64_t>& ids, const std::vector<int64_t>&,
                                                const std::vector<int64_t>&, const std::vector<int64_t>&) {
  return {{ids.empty() ? -1 : ids[0], -1}, {-1, -1}};
}
std::vector<paddle::DataType> ClassifyDtype(const paddle::DataType&, const paddle::DataType&, const paddle::DataType&,
                                            const paddle::DataType&) {
  return {paddle::DataType::FLOAT32, paddle::DataType::FLOAT32};
}
std::vector<std::vector<int64_t>> NamesShape(const std::vector<int64_t>&) { return {{-1}}; }
std::vector<paddle::DataType> NamesDtype(const paddle::DataType&) { return {paddle::DataType::UINT8}; }

PD_BUILD_OP(sb_infer_pack)
    .Inputs({paddle::Vec("weights")})
    .Outputs({"handle"})
    .Attrs({"heads: int64_t", "eps: float", "embedding_eps: float", "bf16: bool", "head_layers: int64_t"})
    .SetKernelFn(PD_KERNEL(PackEncoder))
    .SetInferShapeFn(PD_INFER_SHAPE(OneShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(Int64Dtype));

PD_BUILD_OP(sb_infer_classify)
    .Inputs({"ids", "mask", "types", "handle"})
    .Outputs({"out", "hidden"})
    .Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(Classify))
    .SetInferShapeFn(PD_INFER_SHAPE(ClassifyShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(ClassifyDtype));

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
