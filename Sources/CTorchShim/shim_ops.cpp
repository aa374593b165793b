// Shape, elementwise, reduction and linear-algebra operations.
#include "shim_internal.h"

#include <ATen/ops/allclose.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/amin.h>
#include <ATen/ops/argmax.h>
#include <ATen/ops/argmin.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/hardsigmoid.h>
#include <ATen/ops/hardswish.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/hardtanh.h>
#include <ATen/ops/leaky_relu.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/one_hot.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/scatter.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/std.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/var.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>

using namespace sk;

namespace {

std::vector<at::Tensor> tensor_list(const sk_tensor *ts, int64_t n) {
  if (n <= 0 || ts == nullptr) throw std::invalid_argument("expected a non-empty list of tensors");
  std::vector<at::Tensor> list;
  list.reserve(n);
  for (int64_t i = 0; i < n; i++) list.push_back(T(ts[i]));
  return list;
}

at::Tensor binary(sk_binary_op op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
  case SK_ADD: return a.add(b);
  case SK_SUB: return a.sub(b);
  case SK_MUL: return a.mul(b);
  case SK_DIV: return a.div(b);
  case SK_POW: return a.pow(b);
  case SK_MAXIMUM: return at::maximum(a, b);
  case SK_MINIMUM: return at::minimum(a, b);
  case SK_REMAINDER: return a.remainder(b);
  case SK_FLOOR_DIV: return a.div(b, "floor");
  case SK_EQ: return a.eq(b);
  case SK_NE: return a.ne(b);
  case SK_LT: return a.lt(b);
  case SK_LE: return a.le(b);
  case SK_GT: return a.gt(b);
  case SK_GE: return a.ge(b);
  case SK_LOGICAL_AND: return a.logical_and(b);
  case SK_LOGICAL_OR: return a.logical_or(b);
  case SK_ATAN2: return a.atan2(b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(static_cast<int>(op)));
}

void binary_inplace(sk_binary_op op, at::Tensor &a, const at::Tensor &b) {
  switch (op) {
  case SK_ADD: a.add_(b); return;
  case SK_SUB: a.sub_(b); return;
  case SK_MUL: a.mul_(b); return;
  case SK_DIV: a.div_(b); return;
  case SK_POW: a.pow_(b); return;
  case SK_MAXIMUM: at::maximum_out(a, a, b); return;
  case SK_MINIMUM: at::minimum_out(a, a, b); return;
  case SK_REMAINDER: a.remainder_(b); return;
  case SK_FLOOR_DIV: a.div_(b, "floor"); return;
  case SK_ATAN2: a.atan2_(b); return;
  default: break;
  }
  throw std::invalid_argument("comparison and logical ops have no in-place form");
}

at::Tensor unary(sk_unary_op op, const at::Tensor &a) {
  switch (op) {
  case SK_NEG: return a.neg();
  case SK_EXP: return a.exp();
  case SK_LOG: return a.log();
  case SK_SQRT: return a.sqrt();
  case SK_RSQRT: return a.rsqrt();
  case SK_ABS: return a.abs();
  case SK_SIGMOID: return a.sigmoid();
  case SK_TANH: return a.tanh();
  case SK_RELU: return at::relu(a);
  case SK_RELU6: return at::hardtanh(a, 0, 6);  // what F.relu6 computes
  case SK_HARDSWISH: return at::hardswish(a);
  case SK_HARDSIGMOID: return at::hardsigmoid(a);
  case SK_FLOOR: return a.floor();
  case SK_CEIL: return a.ceil();
  case SK_ROUND: return a.round();
  case SK_SIGN: return a.sign();
  case SK_SIN: return a.sin();
  case SK_COS: return a.cos();
  case SK_LOGICAL_NOT: return a.logical_not();
  case SK_LOG1P: return a.log1p();
  case SK_EXPM1: return a.expm1();
  case SK_RECIPROCAL: return a.reciprocal();
  case SK_SQUARE: return a.square();
  case SK_ISNAN: return a.isnan();
  case SK_ISFINITE: return a.isfinite();
  case SK_ZERO: return at::zeros_like(a);
  case SK_SILU: return at::silu(a);
  }
  throw std::invalid_argument("unknown unary op " + std::to_string(static_cast<int>(op)));
}

void unary_inplace(sk_unary_op op, at::Tensor &a) {
  switch (op) {
  case SK_NEG: a.neg_(); return;
  case SK_EXP: a.exp_(); return;
  case SK_LOG: a.log_(); return;
  case SK_SQRT: a.sqrt_(); return;
  case SK_RSQRT: a.rsqrt_(); return;
  case SK_ABS: a.abs_(); return;
  case SK_SIGMOID: a.sigmoid_(); return;
  case SK_TANH: a.tanh_(); return;
  case SK_RELU: at::relu_(a); return;
  case SK_RELU6: at::hardtanh_(a, 0, 6); return;
  case SK_HARDSWISH: at::hardswish_(a); return;
  case SK_HARDSIGMOID: at::hardsigmoid_(a); return;
  case SK_FLOOR: a.floor_(); return;
  case SK_CEIL: a.ceil_(); return;
  case SK_ROUND: a.round_(); return;
  case SK_SIGN: a.sign_(); return;
  case SK_SIN: a.sin_(); return;
  case SK_COS: a.cos_(); return;
  case SK_LOGICAL_NOT: a.logical_not_(); return;
  case SK_LOG1P: a.log1p_(); return;
  case SK_EXPM1: a.expm1_(); return;
  case SK_RECIPROCAL: a.reciprocal_(); return;
  case SK_SQUARE: a.square_(); return;
  case SK_ZERO: a.zero_(); return;
  case SK_SILU: at::silu_(a); return;
  default: break;
  }
  throw std::invalid_argument("this unary op has no in-place form");
}

std::optional<at::Scalar> bound(double v, int32_t has) {
  return has ? std::optional<at::Scalar>(number(v)) : std::nullopt;
}

} // namespace

extern "C" {

sk_status sk_reshape(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).reshape(ints(shape, ndim))); });
}

sk_status sk_view(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).view(ints(shape, ndim))); });
}

sk_status sk_expand(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).expand(ints(shape, ndim))); });
}

sk_status sk_permute(sk_tensor t, const int64_t *dims, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).permute(ints(dims, ndim))); });
}

sk_status sk_flip(sk_tensor t, const int64_t *dims, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).flip(ints(dims, ndim))); });
}

sk_status sk_repeat(sk_tensor t, const int64_t *repeats, int64_t ndim, sk_tensor *out) {
  return guard([&] { put(out, T(t).repeat(ints(repeats, ndim))); });
}

sk_status sk_as_strided(sk_tensor t, const int64_t *shape, const int64_t *strides, int64_t ndim, int64_t offset,
                        sk_tensor *out) {
  return guard([&] { put(out, T(t).as_strided(ints(shape, ndim), ints(strides, ndim), offset)); });
}

sk_status sk_transpose(sk_tensor t, int64_t dim0, int64_t dim1, sk_tensor *out) {
  return guard([&] { put(out, T(t).transpose(dim0, dim1)); });
}

sk_status sk_slice(sk_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, sk_tensor *out) {
  return guard([&] { put(out, T(t).slice(dim, start, end, step)); });
}

sk_status sk_select(sk_tensor t, int64_t dim, int64_t index, sk_tensor *out) {
  return guard([&] { put(out, T(t).select(dim, index)); });
}

sk_status sk_index_select(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor *out) {
  return guard([&] { put(out, T(t).index_select(dim, T(index))); });
}

sk_status sk_masked_select(sk_tensor t, sk_tensor mask, sk_tensor *out) {
  return guard([&] { put(out, T(t).masked_select(T(mask))); });
}

sk_status sk_gather(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor *out) {
  return guard([&] { put(out, T(t).gather(dim, T(index))); });
}

sk_status sk_scatter(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor src, sk_tensor *out) {
  return guard([&] { put(out, T(t).scatter(dim, T(index), T(src))); });
}

sk_status sk_squeeze(sk_tensor t, int64_t dim, int32_t all_dims, sk_tensor *out) {
  return guard([&] { put(out, all_dims ? T(t).squeeze() : T(t).squeeze(dim)); });
}

sk_status sk_unsqueeze(sk_tensor t, int64_t dim, sk_tensor *out) {
  return guard([&] { put(out, T(t).unsqueeze(dim)); });
}

sk_status sk_cat(const sk_tensor *ts, int64_t n, int64_t dim, sk_tensor *out) {
  return guard([&] { put(out, at::cat(tensor_list(ts, n), dim)); });
}

sk_status sk_stack(const sk_tensor *ts, int64_t n, int64_t dim, sk_tensor *out) {
  return guard([&] { put(out, at::stack(tensor_list(ts, n), dim)); });
}

sk_status sk_binary(sk_binary_op op, sk_tensor a, sk_tensor b, sk_tensor *out) {
  return guard([&] { put(out, binary(op, T(a), T(b))); });
}

sk_status sk_binary_scalar(sk_binary_op op, sk_tensor a, double b, sk_tensor *out) {
  return guard([&] { put(out, binary(op, T(a), wrap_scalar(b, T(a)))); });
}

sk_status sk_scalar_binary(sk_binary_op op, double a, sk_tensor b, sk_tensor *out) {
  return guard([&] { put(out, binary(op, wrap_scalar(a, T(b)), T(b))); });
}

sk_status sk_binary_(sk_binary_op op, sk_tensor a, sk_tensor b) {
  return guard([&] { binary_inplace(op, a->t, T(b)); });
}

sk_status sk_binary_scalar_(sk_binary_op op, sk_tensor a, double b) {
  return guard([&] { binary_inplace(op, a->t, wrap_scalar(b, T(a))); });
}

sk_status sk_unary(sk_unary_op op, sk_tensor a, sk_tensor *out) {
  return guard([&] { put(out, unary(op, T(a))); });
}

sk_status sk_unary_(sk_unary_op op, sk_tensor a) {
  return guard([&] {
    T(a);
    unary_inplace(op, a->t);
  });
}

sk_status sk_clamp(sk_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi, sk_tensor *out) {
  return guard([&] { put(out, T(t).clamp(bound(lo, has_lo), bound(hi, has_hi))); });
}

sk_status sk_clamp_(sk_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi) {
  return guard([&] { T(t).clamp_(bound(lo, has_lo), bound(hi, has_hi)); });
}

sk_status sk_leaky_relu(sk_tensor t, double slope, sk_tensor *out) {
  return guard([&] { put(out, at::leaky_relu(T(t), slope)); });
}

sk_status sk_where(sk_tensor cond, sk_tensor a, sk_tensor b, sk_tensor *out) {
  return guard([&] { put(out, at::where(T(cond), T(a), T(b))); });
}

sk_status sk_masked_fill(sk_tensor t, sk_tensor mask, double value, sk_tensor *out) {
  return guard([&] { put(out, T(t).masked_fill(T(mask), value)); });
}

sk_status sk_fill_(sk_tensor t, double value) {
  return guard([&] { T(t).fill_(value); });
}

sk_status sk_uniform_(sk_tensor t, double from, double to) {
  return guard([&] { T(t).uniform_(from, to); });
}

sk_status sk_normal_(sk_tensor t, double mean, double std) {
  return guard([&] { T(t).normal_(mean, std); });
}

sk_status sk_addcmul_(sk_tensor a, sk_tensor b, sk_tensor c, double alpha) {
  return guard([&] { T(a).addcmul_(T(b), T(c), alpha); });
}

sk_status sk_addcdiv_(sk_tensor a, sk_tensor b, sk_tensor c, double alpha) {
  return guard([&] { T(a).addcdiv_(T(b), T(c), alpha); });
}

sk_status sk_add_scaled_(sk_tensor a, sk_tensor b, double alpha) {
  return guard([&] { T(a).add_(T(b), alpha); });
}

sk_status sk_lerp_(sk_tensor a, sk_tensor b, double weight) {
  return guard([&] { T(a).lerp_(T(b), weight); });
}

sk_status sk_reduce(sk_reduce_op op, sk_tensor t, const int64_t *dims, int64_t ndim, int32_t keepdim,
                    sk_tensor *out) {
  return guard([&] {
    const at::Tensor &x = T(t);
    auto d = ints(dims, ndim);
    const bool all = ndim == 0;
    at::OptionalIntArrayRef od = all ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(d);
    // Ops whose ATen form takes one dimension at a time reduce the highest first.
    auto one_by_one = [&](auto reduce_all, auto reduce_dim) {
      if (all) return keepdim ? reduce_all(x).reshape(std::vector<int64_t>(x.dim(), 1)) : reduce_all(x);
      std::vector<int64_t> sorted(d.begin(), d.end());
      for (auto &v : sorted) v = c10::maybe_wrap_dim(v, x.dim());
      std::sort(sorted.rbegin(), sorted.rend());
      at::Tensor r = x;
      for (auto v : sorted) r = reduce_dim(r, v);
      return r;
    };
    switch (op) {
    case SK_SUM: put(out, all && !keepdim ? x.sum() : x.sum(od, keepdim)); return;
    case SK_MEAN: put(out, all && !keepdim ? x.mean() : x.mean(od, keepdim)); return;
    case SK_AMAX: put(out, at::amax(x, d, keepdim)); return;
    case SK_AMIN: put(out, at::amin(x, d, keepdim)); return;
    case SK_VAR: put(out, at::var(x, od, /*unbiased=*/true, keepdim)); return;
    case SK_STD: put(out, at::std(x, od, /*unbiased=*/true, keepdim)); return;
    // Its gradient is 0 at a zero vector, where sqrt(sum(x²)) would give NaN.
    case SK_NORM2: put(out, at::linalg_vector_norm(x, 2, od, keepdim)); return;
    case SK_PROD:
      put(out, one_by_one([](const at::Tensor &a) { return a.prod(); },
                          [&](const at::Tensor &a, int64_t v) { return a.prod(v, keepdim); }));
      return;
    case SK_ALL:
      put(out, one_by_one([](const at::Tensor &a) { return a.all(); },
                          [&](const at::Tensor &a, int64_t v) { return a.all(v, keepdim); }));
      return;
    case SK_ANY:
      put(out, one_by_one([](const at::Tensor &a) { return a.any(); },
                          [&](const at::Tensor &a, int64_t v) { return a.any(v, keepdim); }));
      return;
    }
    throw std::invalid_argument("unknown reduction " + std::to_string(static_cast<int>(op)));
  });
}

sk_status sk_max_dim(sk_tensor t, int64_t dim, int32_t keepdim, int32_t take_min, sk_tensor *values,
                     sk_tensor *indices) {
  return guard([&] {
    auto r = take_min ? T(t).min(dim, keepdim) : T(t).max(dim, keepdim);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}

sk_status sk_argmax(sk_tensor t, int64_t dim, int32_t all_dims, int32_t keepdim, int32_t take_min,
                    sk_tensor *out) {
  return guard([&] {
    std::optional<int64_t> d = all_dims ? std::nullopt : std::optional<int64_t>(dim);
    put(out, take_min ? at::argmin(T(t), d, keepdim) : at::argmax(T(t), d, keepdim));
  });
}

sk_status sk_topk(sk_tensor t, int64_t k, int64_t dim, int32_t largest, sk_tensor *values, sk_tensor *indices) {
  return guard([&] {
    auto r = at::topk(T(t), k, dim, largest != 0, /*sorted=*/true);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}

sk_status sk_sort(sk_tensor t, int64_t dim, int32_t descending, sk_tensor *values, sk_tensor *indices) {
  return guard([&] {
    auto r = at::sort(T(t), dim, descending != 0);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}

sk_status sk_bincount(sk_tensor t, sk_tensor weights, int64_t minlength, sk_tensor *out) {
  return guard([&] { put(out, at::bincount(T(t), opt(weights), minlength)); });
}

sk_status sk_allclose(sk_tensor a, sk_tensor b, double rtol, double atol, int32_t *out) {
  return guard([&] { *out = at::allclose(T(a), T(b), rtol, atol); });
}

sk_status sk_matmul(sk_tensor a, sk_tensor b, sk_tensor *out) {
  return guard([&] { put(out, at::matmul(T(a), T(b))); });
}

sk_status sk_linear(sk_tensor x, sk_tensor weight, sk_tensor bias, sk_tensor *out) {
  return guard([&] { put(out, at::linear(T(x), T(weight), opt(bias))); });
}

sk_status sk_softmax(sk_tensor t, int64_t dim, int32_t log, sk_tensor *out) {
  return guard([&] { put(out, log ? at::log_softmax(T(t), dim) : at::softmax(T(t), dim)); });
}

sk_status sk_one_hot(sk_tensor t, int64_t num_classes, sk_tensor *out) {
  return guard([&] { put(out, at::one_hot(T(t), num_classes)); });
}

} // extern "C"
