// Fused CPU kernels for SqueezeBERT training (Paddle custom operators, fp32).
//
// Paddle's CPU build runs elementwise ops, their gradients and broadcast reductions single-threaded
// and unvectorized, and copies strided views element by element; in a training step those cost more
// than the matrix products. Each op here does one memory pass per direction, on all threads, and
// fuses what surrounds the grouped 1x1 convolutions: bias adds, layout changes between group-major
// and token-major, GELU, dropout, the residual add and LayerNorm, and the masked softmax.
//
// Layouts: "grouped" activations are [G, N, C/G] (one matrix per channel group, N = batch * length),
// "token-major" ones [N, C]; channel c = g * (C/G) + j. Bias vectors are [C] in channel order.
//
// Dropout masks come from a counter-based hash of (seed, element index): the backward pass
// recomputes the mask instead of storing it, and the result does not depend on the thread count.
// The seed is drawn from Paddle's generator by the caller, so paddle.seed() controls it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "paddle/extension.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using Tensor = paddle::Tensor;
using Shape = std::vector<int64_t>;

inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Dropout with rate p: an element is kept (and scaled by 1 / (1 - p)) when the top 24 bits of its hash
// are >= p * 2^24.
struct DropoutMask {
  uint32_t lo, hi, threshold;
  float scale;
  bool active;
  DropoutMask(float p, int64_t seed)
      : lo(static_cast<uint32_t>(seed)),
        hi(static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32)),
        threshold(static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0))),
        scale(p < 1.0f ? 1.0f / (1.0f - p) : 0.0f),
        active(p > 0.0f) {}
};

// out[k] = in[k] * keep-scale of element base + k (in == out allowed). Element indices are 32-bit (the
// ops check numel < 2^32) and the mask fields are copied to locals: both keep the loop vectorizable.
inline void apply_mask(const DropoutMask& mask, uint32_t base, const float* in, float* out, int64_t n) {
  const uint32_t lo = mask.lo, hi = mask.hi, threshold = mask.threshold;
  const float scale = mask.scale;
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    uint32_t h = mix32(mix32(base + static_cast<uint32_t>(k) + lo) ^ hi);
    out[k] = in[k] * ((h >> 8) >= threshold ? scale : 0.0f);
  }
}

Tensor empty(const Shape& shape, const Tensor& like) {
  return paddle::empty(shape, paddle::DataType::FLOAT32, like.place());
}

void check_float(const Tensor& t, const char* name) {
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, name, " must be float32");
  PD_CHECK(t.is_cpu(), name, " must be on the CPU");
  PD_CHECK(t.numel() < (int64_t{1} << 32), name, " has 2^32 or more elements");
}

// Column sums of per-thread partial buffers: out[c] = sum_t part[t][c].
void reduce_parts(const std::vector<float>& parts, int threads, int64_t width, float* out) {
  for (int64_t c = 0; c < width; ++c) out[c] = 0.0f;
  for (int t = 0; t < threads; ++t) {
    const float* p = parts.data() + t * width;
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) out[c] += p[c];
  }
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Token-major [N, G * Cg] -> grouped [G, N, Cg], or back with inverse.
void tokens_to_grouped(const float* x, float* y, int64_t G, int64_t N, int64_t Cg, bool inverse) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      int64_t token = (n * G + g) * Cg, grouped = (g * N + n) * Cg;
      if (inverse)
        std::memcpy(y + token, x + grouped, Cg * sizeof(float));
      else
        std::memcpy(y + grouped, x + token, Cg * sizeof(float));
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// group_major: token-major [N, C] -> grouped [G, N, C/G]; the gradient is the inverse permutation.

std::vector<Tensor> GroupMajor(const Tensor& x, int64_t groups) {
  check_float(x, "group_major input");
  int64_t C = x.shape().back(), N = x.numel() / C, Cg = C / groups;
  Tensor y = empty({groups, N, Cg}, x);
  tokens_to_grouped(x.data<float>(), y.data<float>(), groups, N, Cg, false);
  return {y};
}

std::vector<Tensor> GroupMajorGrad(const Tensor& x, const Tensor& dy, int64_t groups) {
  int64_t C = x.shape().back(), N = x.numel() / C, Cg = C / groups;
  Tensor dx = empty(x.shape(), x);
  tokens_to_grouped(dy.data<float>(), dx.data<float>(), groups, N, Cg, true);
  return {dx};
}

std::vector<Shape> GroupMajorShape(const Shape& x, int64_t groups) {
  int64_t n = 1;
  for (size_t i = 0; i + 1 < x.size(); ++i) n = (x[i] < 0 || n < 0) ? -1 : n * x[i];
  return {{groups, n, x.back() / groups}};
}

std::vector<paddle::DataType> SameDtype(const paddle::DataType& x) { return {x}; }

PD_BUILD_OP(sb_group_major)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"groups: int64_t"})
    .SetKernelFn(PD_KERNEL(GroupMajor))
    .SetInferShapeFn(PD_INFER_SHAPE(GroupMajorShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SameDtype));

PD_BUILD_GRAD_OP(sb_group_major)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"groups: int64_t"})
    .SetKernelFn(PD_KERNEL(GroupMajorGrad));

// ---------------------------------------------------------------------------------------------
// bias_heads: grouped [G, N, P * Cg] + bias [P * C] -> P tensors of attention heads [B, nh, L, d]
// (N = B * L). Within group g, columns [p * Cg, (p + 1) * Cg) belong to part p (Q, K, V side by side
// when P = 3, as one product computes them); bias holds part p's [C] at p * C. A head lies inside
// one group (d divides Cg). Gradient: the inverse permutation, and the bias gradient summed over tokens.

namespace {

struct HeadLayout {
  int64_t G, N, W, Cg, C, B, L, H, d, P;
  HeadLayout(const Shape& y, int64_t parts, int64_t batch, int64_t heads)
      : G(y[0]), N(y[1]), W(y[2]), Cg(y[2] / parts), C(y[0] * (y[2] / parts)), B(batch), L(y[1] / batch),
        H(heads), d(C / heads), P(parts) {}
  // offset of (part p, token b*L + l, head h) in the grouped tensor
  int64_t grouped(int64_t p, int64_t b, int64_t l, int64_t h) const {
    int64_t c0 = h * d;
    return ((c0 / Cg) * N + b * L + l) * W + p * Cg + c0 % Cg;
  }
  int64_t head(int64_t b, int64_t h, int64_t l) const { return ((b * H + h) * L + l) * d; }
};

std::vector<Tensor> split_heads(const Tensor& y, const Tensor& bias, int64_t parts, int64_t batch, int64_t heads) {
  check_float(y, "bias_heads input");
  HeadLayout t(y.shape(), parts, batch, heads);
  PD_CHECK(t.Cg % t.d == 0, "bias_heads: a head must lie inside one channel group");
  std::vector<Tensor> outs;
  std::vector<float*> op;
  for (int64_t p = 0; p < parts; ++p) {
    outs.push_back(empty({batch, heads, t.L, t.d}, y));
    op.push_back(outs.back().data<float>());
  }
  const float *yp = y.data<float>(), *bp = bias.data<float>();
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        const float* bias_row = bp + p * t.C + h * t.d;
        for (int64_t l = 0; l < t.L; ++l) {
          const float* src = yp + t.grouped(p, b, l, h);
          float* dst = op[p] + t.head(b, h, l);
#pragma omp simd
          for (int64_t k = 0; k < t.d; ++k) dst[k] = src[k] + bias_row[k];
        }
      }
  return outs;
}

std::vector<Tensor> join_heads(const Tensor& y, const std::vector<const Tensor*>& douts, int64_t batch,
                               int64_t heads) {
  int64_t parts = static_cast<int64_t>(douts.size());
  HeadLayout t(y.shape(), parts, batch, heads);
  Tensor dy = empty(y.shape(), y), db = empty({parts * t.C}, y);
  float* dyp = dy.data<float>();
  int threads = max_threads();
  std::vector<float> sums(static_cast<size_t>(threads) * parts * t.C, 0.0f);
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        float* sum = sums.data() + (thread_id() * parts + p) * t.C + h * t.d;
        // an output nothing depends on has no gradient: zeros
        const float* gp = douts[p]->initialized() ? douts[p]->data<float>() : nullptr;
        for (int64_t l = 0; l < t.L; ++l) {
          float* dst = dyp + t.grouped(p, b, l, h);
          if (gp == nullptr) {
            std::memset(dst, 0, t.d * sizeof(float));
            continue;
          }
          const float* src = gp + t.head(b, h, l);
#pragma omp simd
          for (int64_t k = 0; k < t.d; ++k) {
            dst[k] = src[k];
            sum[k] += src[k];
          }
        }
      }
  reduce_parts(sums, threads, parts * t.C, db.data<float>());
  return {dy, db};
}

Shape heads_shape(const Shape& y, int64_t parts, int64_t batch, int64_t heads) {
  int64_t C = y[0] * (y[2] / parts);
  return {batch, heads, y[1] < 0 ? -1 : y[1] / batch, C / heads};
}

}  // namespace

std::vector<Tensor> BiasHeads(const Tensor& y, const Tensor& bias, int64_t batch, int64_t heads) {
  return split_heads(y, bias, 1, batch, heads);
}

std::vector<Tensor> BiasHeadsGrad(const Tensor& y, const Tensor& dout, int64_t batch, int64_t heads) {
  return join_heads(y, {&dout}, batch, heads);
}

std::vector<Shape> BiasHeadsShape(const Shape& y, const Shape&, int64_t batch, int64_t heads) {
  return {heads_shape(y, 1, batch, heads)};
}

std::vector<paddle::DataType> FirstDtype2(const paddle::DataType& a, const paddle::DataType&) { return {a}; }

PD_BUILD_OP(sb_bias_heads)
    .Inputs({"Y", "Bias"})
    .Outputs({"Out"})
    .Attrs({"batch: int64_t", "heads: int64_t"})
    .SetKernelFn(PD_KERNEL(BiasHeads))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasHeadsShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstDtype2));

PD_BUILD_GRAD_OP(sb_bias_heads)
    .Inputs({"Y", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Y"), paddle::Grad("Bias")})
    .Attrs({"batch: int64_t", "heads: int64_t"})
    .SetKernelFn(PD_KERNEL(BiasHeadsGrad));

std::vector<Tensor> QkvHeads(const Tensor& y, const Tensor& bias, int64_t batch, int64_t heads) {
  return split_heads(y, bias, 3, batch, heads);
}

std::vector<Tensor> QkvHeadsGrad(const Tensor& y, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                 int64_t batch, int64_t heads) {
  return join_heads(y, {&dq, &dk, &dv}, batch, heads);
}

std::vector<Shape> QkvHeadsShape(const Shape& y, const Shape&, int64_t batch, int64_t heads) {
  Shape one = heads_shape(y, 3, batch, heads);
  return {one, one, one};
}

std::vector<paddle::DataType> QkvHeadsDtype(const paddle::DataType& a, const paddle::DataType&) { return {a, a, a}; }

PD_BUILD_OP(sb_qkv_heads)
    .Inputs({"Y", "Bias"})
    .Outputs({"Q", "K", "V"})
    .Attrs({"batch: int64_t", "heads: int64_t"})
    .SetKernelFn(PD_KERNEL(QkvHeads))
    .SetInferShapeFn(PD_INFER_SHAPE(QkvHeadsShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(QkvHeadsDtype));

PD_BUILD_GRAD_OP(sb_qkv_heads)
    .Inputs({"Y", paddle::Grad("Q"), paddle::Grad("K"), paddle::Grad("V")})
    .Outputs({paddle::Grad("Y"), paddle::Grad("Bias")})
    .Attrs({"batch: int64_t", "heads: int64_t"})
    .SetKernelFn(PD_KERNEL(QkvHeadsGrad));

// ---------------------------------------------------------------------------------------------
// merge_heads: [B, nh, L, d] -> token-major [B, L, nh * d]; gradient the inverse.

void heads_to_tokens(const float* x, float* y, int64_t B, int64_t H, int64_t L, int64_t d, bool inverse) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        int64_t head = ((b * H + h) * L + l) * d, token = ((b * L + l) * H + h) * d;
        if (inverse)
          std::memcpy(y + head, x + token, d * sizeof(float));
        else
          std::memcpy(y + token, x + head, d * sizeof(float));
      }
}

std::vector<Tensor> MergeHeads(const Tensor& x) {
  check_float(x, "merge_heads input");
  auto s = x.shape();
  Tensor y = empty({s[0], s[2], s[1] * s[3]}, x);
  heads_to_tokens(x.data<float>(), y.data<float>(), s[0], s[1], s[2], s[3], false);
  return {y};
}

std::vector<Tensor> MergeHeadsGrad(const Tensor& x, const Tensor& dy) {
  auto s = x.shape();
  Tensor dx = empty(s, x);
  heads_to_tokens(dy.data<float>(), dx.data<float>(), s[0], s[1], s[2], s[3], true);
  return {dx};
}

std::vector<Shape> MergeHeadsShape(const Shape& x) {
  return {{x[0], x[2], x[1] * x[3]}};
}

PD_BUILD_OP(sb_merge_heads)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(MergeHeads))
    .SetInferShapeFn(PD_INFER_SHAPE(MergeHeadsShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SameDtype));

PD_BUILD_GRAD_OP(sb_merge_heads)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(MergeHeadsGrad));

// ---------------------------------------------------------------------------------------------
// softmax_dropout: probs = softmax(scores * scale + mask_bias[b, k]); out = dropout(probs).
// scores [B, nh, Lq, Lk], mask_bias [B, Lk]. The saved probs give the gradient.

std::vector<Tensor> SoftmaxDropout(const Tensor& scores, const Tensor& mask_bias, float scale, float p,
                                   int64_t seed) {
  check_float(scores, "softmax_dropout scores");
  auto s = scores.shape();
  int64_t B = s[0], H = s[1], Lq = s[2], Lk = s[3], rows = B * H * Lq;
  Tensor out = empty(s, scores), probs = empty(s, scores);
  const float *sp = scores.data<float>(), *mp = mask_bias.data<float>();
  float *op = out.data<float>(), *pp = probs.data<float>();
  DropoutMask mask(p, seed);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = sp + r * Lk;
    const float* m = mp + (r / (H * Lq)) * Lk;
    float* pr = pp + r * Lk;
    float mx = -INFINITY;
    for (int64_t k = 0; k < Lk; ++k) {
      pr[k] = x[k] * scale + m[k];
      mx = pr[k] > mx ? pr[k] : mx;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t k = 0; k < Lk; ++k) {
      pr[k] = std::exp(pr[k] - mx);
      sum += pr[k];
    }
    float inv = 1.0f / sum;
    float* o = op + r * Lk;
#pragma omp simd
    for (int64_t k = 0; k < Lk; ++k) pr[k] *= inv;
    if (mask.active)
      apply_mask(mask, static_cast<uint32_t>(r * Lk), pr, o, Lk);
    else
      std::memcpy(o, pr, Lk * sizeof(float));
  }
  return {out, probs};
}

std::vector<Tensor> SoftmaxDropoutGrad(const Tensor& probs, const Tensor& dout, float scale, float p,
                                       int64_t seed) {
  auto s = probs.shape();
  int64_t Lk = s[3], rows = probs.numel() / Lk;
  Tensor dscores = empty(s, probs);
  const float *pp = probs.data<float>(), *gp = dout.data<float>();
  float* dp = dscores.data<float>();
  DropoutMask mask(p, seed);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *pr = pp + r * Lk, *g = gp + r * Lk;
    float* d = dp + r * Lk;
    if (mask.active)
      apply_mask(mask, static_cast<uint32_t>(r * Lk), g, d, Lk);
    else
      std::memcpy(d, g, Lk * sizeof(float));
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t k = 0; k < Lk; ++k) dot += d[k] * pr[k];
#pragma omp simd
    for (int64_t k = 0; k < Lk; ++k) d[k] = scale * pr[k] * (d[k] - dot);
  }
  return {dscores};
}

std::vector<Shape> SoftmaxDropoutShape(const Shape& scores, const Shape&, float, float, int64_t) {
  return {scores, scores};
}

std::vector<paddle::DataType> SoftmaxDropoutDtype(const paddle::DataType& a, const paddle::DataType&) {
  return {a, a};
}

PD_BUILD_OP(sb_softmax_dropout)
    .Inputs({"Scores", "MaskBias"})
    .Outputs({"Out", "Probs"})
    .Attrs({"scale: float", "p: float", "seed: int64_t"})
    .SetKernelFn(PD_KERNEL(SoftmaxDropout))
    .SetInferShapeFn(PD_INFER_SHAPE(SoftmaxDropoutShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SoftmaxDropoutDtype));

PD_BUILD_GRAD_OP(sb_softmax_dropout)
    .Inputs({"Probs", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Scores")})
    .Attrs({"scale: float", "p: float", "seed: int64_t"})
    .SetKernelFn(PD_KERNEL(SoftmaxDropoutGrad));

// ---------------------------------------------------------------------------------------------
// bias_gelu: grouped [G, N, Cg] + bias [C] -> exact (erf) GELU, same layout.

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace

std::vector<Tensor> BiasGelu(const Tensor& x, const Tensor& bias) {
  check_float(x, "bias_gelu input");
  auto s = x.shape();
  int64_t G = s[0], N = s[1], Cg = s[2];
  Tensor y = empty(s, x);
  const float *xp = x.data<float>(), *bp = bias.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = xp + (g * N + n) * Cg;
      const float* br = bp + g * Cg;
      float* yr = yp + (g * N + n) * Cg;
#pragma omp simd
      for (int64_t j = 0; j < Cg; ++j) {
        float t = xr[j] + br[j];
        yr[j] = 0.5f * t * (1.0f + std::erf(t * kInvSqrt2));
      }
    }
  return {y};
}

std::vector<Tensor> BiasGeluGrad(const Tensor& x, const Tensor& bias, const Tensor& dy) {
  auto s = x.shape();
  int64_t G = s[0], N = s[1], Cg = s[2], C = G * Cg;
  Tensor dx = empty(s, x), db = empty({C}, x);
  const float *xp = x.data<float>(), *bp = bias.data<float>(), *gp = dy.data<float>();
  float* dxp = dx.data<float>();
  int threads = max_threads();
  std::vector<float> parts(static_cast<size_t>(threads) * C, 0.0f);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      int64_t row = (g * N + n) * Cg;
      const float* br = bp + g * Cg;
      float* part = parts.data() + thread_id() * C + g * Cg;
#pragma omp simd
      for (int64_t j = 0; j < Cg; ++j) {
        float t = xp[row + j] + br[j];
        float cdf = 0.5f * (1.0f + std::erf(t * kInvSqrt2));
        float pdf = kInvSqrt2Pi * std::exp(-0.5f * t * t);
        float d = gp[row + j] * (cdf + t * pdf);
        dxp[row + j] = d;
        part[j] += d;
      }
    }
  reduce_parts(parts, threads, C, db.data<float>());
  return {dx, db};
}

std::vector<Shape> FirstShape2(const Shape& a, const Shape&) { return {a}; }

PD_BUILD_OP(sb_bias_gelu)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(BiasGelu))
    .SetInferShapeFn(PD_INFER_SHAPE(FirstShape2))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstDtype2));

PD_BUILD_GRAD_OP(sb_bias_gelu)
    .Inputs({"X", "Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(BiasGeluGrad));

// ---------------------------------------------------------------------------------------------
// bias_dropout_residual_layernorm:
//   s = dropout(y + bias) + residual;  out = (s - mean) * rstd * gamma + beta   (per token)
// y grouped [G, N, Cg] (G = 1: token-major), residual and out token-major [N, C].

namespace {
// s for token n, channel-ordered, into row[0..C).
inline void residual_sum(const float* yp, const float* bp, const float* rp, const DropoutMask& mask, int64_t G,
                         int64_t N, int64_t Cg, int64_t n, float* row) {
  int64_t C = G * Cg;
  for (int64_t g = 0; g < G; ++g) {
    const float* yr = yp + (g * N + n) * Cg;
    float* sr = row + g * Cg;
    const float* br = bp + g * Cg;
#pragma omp simd
    for (int64_t j = 0; j < Cg; ++j) sr[j] = yr[j] + br[j];
    if (mask.active) apply_mask(mask, static_cast<uint32_t>(n * C + g * Cg), sr, sr, Cg);
  }
  const float* rr = rp + n * C;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) row[c] += rr[c];
}
}  // namespace

std::vector<Tensor> BiasDropoutResidualLayerNorm(const Tensor& y, const Tensor& bias, const Tensor& residual,
                                                 const Tensor& gamma, const Tensor& beta, float p, int64_t seed,
                                                 float eps) {
  check_float(y, "layernorm input");
  auto s = y.shape();
  int64_t G = s[0], N = s[1], Cg = s[2], C = G * Cg;
  Tensor out = empty(residual.shape(), y), mean = empty({N}, y), rstd = empty({N}, y);
  const float *yp = y.data<float>(), *bp = bias.data<float>(), *rp = residual.data<float>();
  const float *wp = gamma.data<float>(), *cp = beta.data<float>();
  float *op = out.data<float>(), *mp = mean.data<float>(), *sp = rstd.data<float>();
  DropoutMask mask(p, seed);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* row = op + n * C;
    residual_sum(yp, bp, rp, mask, G, N, Cg, n, row);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) sum += row[c];
    float mu = sum / C, var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int64_t c = 0; c < C; ++c) var += (row[c] - mu) * (row[c] - mu);
    float r = 1.0f / std::sqrt(var / C + eps);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) row[c] = (row[c] - mu) * r * wp[c] + cp[c];
    mp[n] = mu;
    sp[n] = r;
  }
  return {out, mean, rstd};
}

std::vector<Tensor> BiasDropoutResidualLayerNormGrad(const Tensor& y, const Tensor& bias, const Tensor& residual,
                                                     const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                                     const Tensor& dout, float p, int64_t seed, float eps) {
  auto s = y.shape();
  int64_t G = s[0], N = s[1], Cg = s[2], C = G * Cg;
  Tensor dy = empty(s, y), db = empty({C}, y), dr = empty(residual.shape(), y);
  Tensor dgamma = empty({C}, y), dbeta = empty({C}, y);
  const float *yp = y.data<float>(), *bp = bias.data<float>(), *rp = residual.data<float>();
  const float *wp = gamma.data<float>(), *mp = mean.data<float>(), *sp = rstd.data<float>();
  const float* gp = dout.data<float>();
  float *dyp = dy.data<float>(), *drp = dr.data<float>();
  DropoutMask mask(p, seed);
  int threads = max_threads();
  // per thread: bias, gamma and beta gradient partial sums
  std::vector<float> parts(static_cast<size_t>(threads) * 3 * C, 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* part = parts.data() + thread_id() * 3 * C;
    float *pb = part, *pw = part + C, *pc = part + 2 * C;
    float* ds = drp + n * C;                       // d(residual) = d(s): computed in place
    residual_sum(yp, bp, rp, mask, G, N, Cg, n, ds);
    const float* g = gp + n * C;
    float mu = mp[n], r = sp[n], a = 0.0f, bsum = 0.0f;
#pragma omp simd reduction(+ : a, bsum)
    for (int64_t c = 0; c < C; ++c) {
      float xhat = (ds[c] - mu) * r, gw = g[c] * wp[c];
      pw[c] += g[c] * xhat;
      pc[c] += g[c];
      a += gw;
      bsum += gw * xhat;
      ds[c] = xhat;
    }
    a /= C;
    bsum /= C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) ds[c] = r * (g[c] * wp[c] - a - ds[c] * bsum);
    for (int64_t gi = 0; gi < G; ++gi) {
      float* dyr = dyp + (gi * N + n) * Cg;
      const float* dsr = ds + gi * Cg;
      float* pbr = pb + gi * Cg;
      if (mask.active)
        apply_mask(mask, static_cast<uint32_t>(n * C + gi * Cg), dsr, dyr, Cg);
      else
        std::memcpy(dyr, dsr, Cg * sizeof(float));
#pragma omp simd
      for (int64_t j = 0; j < Cg; ++j) pbr[j] += dyr[j];
    }
  }
  std::vector<float> sums(3 * C);
  reduce_parts(parts, threads, 3 * C, sums.data());
  std::memcpy(db.data<float>(), sums.data(), C * sizeof(float));
  std::memcpy(dgamma.data<float>(), sums.data() + C, C * sizeof(float));
  std::memcpy(dbeta.data<float>(), sums.data() + 2 * C, C * sizeof(float));
  return {dy, db, dr, dgamma, dbeta};
}

std::vector<Shape> LayerNormShape(const Shape& y, const Shape&, const Shape& residual, const Shape&, const Shape&,
                                  float, int64_t, float) {
  return {residual, {y[1]}, {y[1]}};
}

std::vector<paddle::DataType> LayerNormDtype(const paddle::DataType& y, const paddle::DataType&,
                                             const paddle::DataType&, const paddle::DataType&,
                                             const paddle::DataType&) {
  return {y, y, y};
}

PD_BUILD_OP(sb_bias_dropout_residual_layernorm)
    .Inputs({"Y", "Bias", "Residual", "Gamma", "Beta"})
    .Outputs({"Out", "Mean", "Rstd"})
    .Attrs({"p: float", "seed: int64_t", "eps: float"})
    .SetKernelFn(PD_KERNEL(BiasDropoutResidualLayerNorm))
    .SetInferShapeFn(PD_INFER_SHAPE(LayerNormShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(LayerNormDtype));

PD_BUILD_GRAD_OP(sb_bias_dropout_residual_layernorm)
    .Inputs({"Y", "Bias", "Residual", "Gamma", "Mean", "Rstd", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Y"), paddle::Grad("Bias"), paddle::Grad("Residual"), paddle::Grad("Gamma"),
              paddle::Grad("Beta")})
    .Attrs({"p: float", "seed: int64_t", "eps: float"})
    .SetKernelFn(PD_KERNEL(BiasDropoutResidualLayerNormGrad));

// ---------------------------------------------------------------------------------------------
// dropout: out = x * mask / (1 - p).

std::vector<Tensor> Dropout(const Tensor& x, float p, int64_t seed) {
  check_float(x, "dropout input");
  Tensor y = empty(x.shape(), x);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  DropoutMask mask(p, seed);
  int64_t n = x.numel();
  constexpr int64_t kBlock = 4096;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i += kBlock)
    apply_mask(mask, static_cast<uint32_t>(i), xp + i, yp + i, std::min(kBlock, n - i));
  return {y};
}

std::vector<Tensor> DropoutGrad(const Tensor& dy, float p, int64_t seed) {
  return Dropout(dy, p, seed);
}

PD_BUILD_OP(sb_dropout)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"p: float", "seed: int64_t"})
    .SetKernelFn(PD_KERNEL(Dropout));

PD_BUILD_GRAD_OP(sb_dropout)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"p: float", "seed: int64_t"})
    .SetKernelFn(PD_KERNEL(DropoutGrad));
