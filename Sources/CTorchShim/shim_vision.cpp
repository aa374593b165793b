// Convolution, pooling, normalisation, resampling and padding.
#include "shim_internal.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <ATen/ops/adaptive_avg_pool2d.h>
#include <ATen/ops/adaptive_max_pool2d.h>
#include <ATen/ops/avg_pool2d.h>
#include <ATen/ops/batch_norm.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/conv_transpose2d.h>
#include <ATen/ops/dropout.h>
#include <ATen/ops/feature_dropout.h>
#include <ATen/ops/grid_sampler.h>
#include <ATen/ops/group_norm.h>
#include <ATen/ops/max_pool2d.h>
#include <ATen/ops/max_pool2d_with_indices.h>
#include <ATen/ops/max_unpool2d.h>
#include <ATen/ops/_nnpack_available.h>
#include <ATen/ops/_nnpack_spatial_convolution.h>
#include <ATen/ops/hardswish.h>
#include <ATen/ops/hardtanh.h>
#include <ATen/ops/leaky_relu.h>
#include <ATen/ops/pad.h>
#include <ATen/ops/int_repr.h>
#include <ATen/ops/quantize_per_tensor.h>
#include <ATen/ops/_make_per_tensor_quantized_tensor.h>
#include <ATen/ops/dequantize.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/_upsample_nearest_exact2d.h>
#include <ATen/ops/upsample_bicubic2d.h>
#include <ATen/ops/upsample_bilinear2d.h>
#include <ATen/ops/upsample_nearest2d.h>

using namespace sk;

namespace {
std::optional<double> scale(const double *scales, int i) {
  if (scales == nullptr || scales[i] <= 0) return std::nullopt;
  return scales[i];
}
} // namespace

extern "C" {

sk_status sk_conv2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups, sk_tensor *out) {
  return guard([&] { put(out, at::conv2d(T(x), T(w), opt(b), pair(stride), pair(padding), pair(dilation), groups)); });
}

sk_status sk_conv_transpose2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride, const int64_t *padding,
                              const int64_t *output_padding, int64_t groups, const int64_t *dilation,
                              sk_tensor *out) {
  return guard([&] {
    put(out, at::conv_transpose2d(T(x), T(w), opt(b), pair(stride), pair(padding), pair(output_padding), groups,
                                  pair(dilation)));
  });
}

sk_status sk_max_pool2d(sk_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                        const int64_t *dilation, int32_t ceil_mode, sk_tensor *out, sk_tensor *indices) {
  return guard([&] {
    if (indices) {
      auto r = at::max_pool2d_with_indices(T(x), pair(kernel), pair(stride), pair(padding), pair(dilation),
                                           ceil_mode != 0);
      put(out, std::get<0>(r));
      put(indices, std::get<1>(r));
    } else {
      put(out, at::max_pool2d(T(x), pair(kernel), pair(stride), pair(padding), pair(dilation), ceil_mode != 0));
    }
  });
}

sk_status sk_max_unpool2d(sk_tensor x, sk_tensor indices, const int64_t *output_size, sk_tensor *out) {
  return guard([&] { put(out, at::max_unpool2d(T(x), T(indices), pair(output_size))); });
}

sk_status sk_avg_pool2d(sk_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                        int32_t ceil_mode, int32_t count_include_pad, int64_t divisor_override, sk_tensor *out) {
  return guard([&] {
    std::optional<int64_t> divisor = divisor_override > 0 ? std::optional<int64_t>(divisor_override) : std::nullopt;
    put(out, at::avg_pool2d(T(x), pair(kernel), pair(stride), pair(padding), ceil_mode != 0,
                            count_include_pad != 0, divisor));
  });
}

sk_status sk_adaptive_avg_pool2d(sk_tensor x, const int64_t *output_size, sk_tensor *out) {
  return guard([&] { put(out, at::adaptive_avg_pool2d(T(x), pair(output_size))); });
}

sk_status sk_adaptive_max_pool2d(sk_tensor x, const int64_t *output_size, sk_tensor *out) {
  return guard([&] { put(out, std::get<0>(at::adaptive_max_pool2d(T(x), pair(output_size)))); });
}

sk_status sk_batch_norm(sk_tensor x, sk_tensor weight, sk_tensor bias, sk_tensor running_mean, sk_tensor running_var,
                        int32_t training, double momentum, double eps, sk_tensor *out) {
  return guard([&] {
    const at::Tensor &in = T(x);
    // F.batch_norm's own check: one value per channel has no variance to normalise by.
    int64_t values_per_channel = in.dim() >= 1 ? in.size(0) : 0;
    for (int64_t d = 2; d < in.dim(); d++) values_per_channel *= in.size(d);
    if (training && values_per_channel == 1)
      throw std::invalid_argument(c10::str("Expected more than 1 value per channel when training, got input size ",
                                           in.sizes()));
    put(out, at::batch_norm(in, opt(weight), opt(bias), opt(running_mean), opt(running_var), training != 0,
                            momentum, eps, /*cudnn_enabled=*/true));
  });
}

sk_status sk_group_norm(sk_tensor x, int64_t groups, sk_tensor weight, sk_tensor bias, double eps, sk_tensor *out) {
  return guard([&] { put(out, at::group_norm(T(x), groups, opt(weight), opt(bias), eps, /*cudnn_enabled=*/true)); });
}

sk_status sk_dropout(sk_tensor x, double p, int32_t training, int32_t feature, sk_tensor *out) {
  return guard([&] {
    if (p < 0 || p > 1) throw std::invalid_argument("dropout probability must be in [0, 1], got " + std::to_string(p));
    put(out, feature ? at::feature_dropout(T(x), p, training != 0) : at::dropout(T(x), p, training != 0));
  });
}

sk_status sk_interpolate(sk_tensor x, sk_interp_mode mode, const int64_t *size, const double *scales,
                         int32_t align_corners, sk_tensor *out) {
  return guard([&] {
    const at::Tensor &in = T(x);
    if (in.dim() != 4) throw std::invalid_argument("interpolate expects a 4-D (N, C, H, W) tensor, got " +
                                                   std::to_string(in.dim()) + "-D");
    auto s = pair(size);
    switch (mode) {
    case SK_NEAREST: put(out, at::upsample_nearest2d(in, s, scale(scales, 0), scale(scales, 1))); return;
    case SK_NEAREST_EXACT: put(out, at::_upsample_nearest_exact2d(in, s, scale(scales, 0), scale(scales, 1))); return;
    case SK_BILINEAR:
      put(out, at::upsample_bilinear2d(in, s, align_corners != 0, scale(scales, 0), scale(scales, 1)));
      return;
    case SK_BICUBIC:
      put(out, at::upsample_bicubic2d(in, s, align_corners != 0, scale(scales, 0), scale(scales, 1)));
      return;
    }
    throw std::invalid_argument("unknown interpolation mode");
  });
}

sk_status sk_grid_sample(sk_tensor x, sk_tensor grid, sk_interp_mode mode, sk_grid_padding padding,
                         int32_t align_corners, sk_tensor *out) {
  return guard([&] {
    int64_t m;
    switch (mode) {  // grid_sampler's own numbering
    case SK_BILINEAR: m = 0; break;
    case SK_NEAREST: m = 1; break;
    case SK_BICUBIC: m = 2; break;
    default: throw std::invalid_argument("grid_sample supports bilinear, nearest and bicubic");
    }
    if (padding < SK_PAD_ZEROS || padding > SK_PAD_REFLECTION) throw std::invalid_argument("unknown padding mode");
    put(out, at::grid_sampler(T(x), T(grid), m, static_cast<int64_t>(padding), align_corners != 0));
  });
}

sk_status sk_pad(sk_tensor x, const int64_t *pads, int64_t npads, sk_pad_mode mode, double value, sk_tensor *out) {
  return guard([&] {
    const char *name;
    switch (mode) {
    case SK_PAD_CONSTANT: name = "constant"; break;
    case SK_PAD_REFLECT: name = "reflect"; break;
    case SK_PAD_REPLICATE: name = "replicate"; break;
    case SK_PAD_CIRCULAR: name = "circular"; break;
    default: throw std::invalid_argument("unknown pad mode");
    }
    std::optional<double> v = mode == SK_PAD_CONSTANT ? std::optional<double>(value) : std::nullopt;
    put(out, at::pad(T(x), ints(pads, npads), name, v));
  });
}

} // extern "C"

// oneDNN's fused convolutions (the kernels torch.compile's CPU backend uses), reached
// through the dispatcher: the activation, and for a residual block the addition,
// run inside the convolution instead of as passes over its output.
sk_status sk_conv2d_fused(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride, const int64_t *padding,
                          const int64_t *dilation, int64_t groups, const char *activation, const double *scalars,
                          int32_t scalar_count, sk_tensor residual, sk_tensor *out) {
  return guard([&] {
    using Scalars = c10::List<std::optional<at::Scalar>>;
    Scalars values;
    for (int32_t i = 0; i < scalar_count; ++i) values.push_back(at::Scalar(scalars[i]));
    if (!residual) {
      static auto unary = c10::Dispatcher::singleton()
        .findSchemaOrThrow("mkldnn::_convolution_pointwise", "")
        .typed<at::Tensor(const at::Tensor &, const at::Tensor &, const std::optional<at::Tensor> &, c10::IntArrayRef,
                          c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view, Scalars,
                          std::optional<std::string_view>)>();
      put(out, unary.call(T(x), T(w), opt(b), pair(padding), pair(stride), pair(dilation), groups, activation, values,
                          std::string_view("")));
      return;
    }
    static auto binary = c10::Dispatcher::singleton()
      .findSchemaOrThrow("mkldnn::_convolution_pointwise", "binary")
      .typed<at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, const std::optional<at::Tensor> &,
                        c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view,
                        std::optional<at::Scalar>, std::optional<std::string_view>, Scalars,
                        std::optional<std::string_view>)>();
    put(out, binary.call(T(x), T(residual), T(w), opt(b), pair(padding), pair(stride), pair(dilation), groups, "add",
                         at::Scalar(1.0), std::string_view(activation), values, std::string_view("")));
  });
}

int32_t sk_nnpack_available(void) {
  try {
    return at::_nnpack_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

sk_status sk_nnpack_conv2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *padding, const char *activation,
                           const double *scalars, int32_t scalar_count, sk_tensor *out) {
  return guard([&] {
    if (!at::_nnpack_available()) throw std::runtime_error("sk_nnpack_conv2d: NNPACK is not available on this CPU");
    auto y = at::_nnpack_spatial_convolution(T(x).contiguous(), T(w).contiguous(), opt(b), pair(padding),
                                             at::IntArrayRef({1, 1}));
    std::string_view name(activation);
    auto scalar = [&](int32_t i) {
      if (i >= scalar_count) throw std::invalid_argument("sk_nnpack_conv2d: " + std::string(name) + " needs more scalars");
      return scalars[i];
    };
    if (name == "relu") y.relu_();
    else if (name == "hardtanh") at::hardtanh_(y, scalar(0), scalar(1));
    else if (name == "hardswish") at::hardswish_(y);
    else if (name == "sigmoid") y.sigmoid_();
    else if (name == "leaky_relu") at::leaky_relu_(y, scalar(0));
    else if (name != "none") throw std::invalid_argument("sk_nnpack_conv2d: unknown activation " + std::string(name));
    put(out, y);
  });
}

// int8 convolutions: oneDNN's quantized kernels (VNNI, AMX) through the dispatcher,
// as PyTorch's x86 post-training quantisation lowers them. The input is quantised
// per tensor to uint8, the weight per output channel to int8 (symmetric); the output
// is float32, so everything around a convolution stays as it is. These operators take
// their int[] arguments as lists.
using Ints = c10::List<int64_t>;
static Ints ints(const int64_t *pair) { return Ints(std::vector<int64_t>(pair, pair + 2)); }

// quantize_per_tensor warns that quantised tensor types are deprecated; SegKit only
// uses it for the uint8 values the int8 kernels read, so the notice would mislead.
struct SilentWarnings : c10::WarningHandler {
  void process(const c10::Warning &) override {}
};

sk_status sk_qconv_prepack(sk_tensor w, sk_tensor w_scales, double x_scale, int64_t x_zero_point,
                           const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups,
                           const int64_t *x_shape, sk_tensor *out) {
  return guard([&] {
    static auto prepack = c10::Dispatcher::singleton()
      .findSchemaOrThrow("onednn::qconv_prepack", "")
      .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t, Ints, Ints, Ints, int64_t, std::optional<Ints>)>();
    put(out, prepack.call(T(w), T(w_scales), x_scale, x_zero_point, ints(stride), ints(padding), ints(dilation), groups,
                          Ints(std::vector<int64_t>(x_shape, x_shape + 4))));
  });
}

namespace {
// The uint8 values `x` as a quantised tensor (a view of the same memory), for the kernels that take one.
at::Tensor quantized_view(const at::Tensor &x, double scale, int64_t zero_point) {
  if (x.scalar_type() != at::kByte) throw std::invalid_argument("int8 activations must be uint8, got " + std::string(c10::toString(x.scalar_type())));
  return at::_make_per_tensor_quantized_tensor(x, scale, zero_point);
}

// The stored values of quantised `q` as a uint8 tensor sharing its memory (int_repr copies them).
at::Tensor uint8_view(const at::Tensor &q) {
  auto storage = q;  // kept alive by the view's deleter
  return at::from_blob(q.data_ptr(), q.sizes(), q.strides(), [storage](void *) {}, at::TensorOptions().dtype(at::kByte));
}
} // namespace

sk_status sk_quantize_u8(sk_tensor x, double scale, int64_t zero_point, sk_tensor *out) {
  return guard([&] {
    static SilentWarnings silent;
    c10::WarningUtils::WarningHandlerGuard quiet(&silent);
    put(out, uint8_view(at::quantize_per_tensor(T(x).contiguous(at::MemoryFormat::ChannelsLast), scale, zero_point, at::kQUInt8)));
  });
}

sk_status sk_dequantize_u8(sk_tensor x, double scale, int64_t zero_point, sk_tensor *out) {
  return guard([&] {
    static SilentWarnings silent;
    c10::WarningUtils::WarningHandlerGuard quiet(&silent);
    put(out, quantized_view(T(x), scale, zero_point).dequantize());
  });
}

sk_status sk_max_pool2d_u8(sk_tensor x, double scale, int64_t zero_point, const int64_t *kernel, const int64_t *stride,
                           const int64_t *padding, int32_t ceil_mode, sk_tensor *out) {
  return guard([&] {
    static SilentWarnings silent;
    c10::WarningUtils::WarningHandlerGuard quiet(&silent);
    auto pooled = at::max_pool2d(quantized_view(T(x), scale, zero_point), pair(kernel), pair(stride), pair(padding),
                                 at::IntArrayRef({1, 1}), ceil_mode != 0);
    put(out, uint8_view(pooled));
  });
}

sk_status sk_qconv2d_u8(sk_tensor x, double x_scale, int64_t x_zero_point, sk_tensor packed, sk_tensor w_scales,
                        sk_tensor w_zero_points, sk_tensor b, const int64_t *stride, const int64_t *padding,
                        const int64_t *dilation, int64_t groups, sk_tensor accum, double accum_scale,
                        int64_t accum_zero_point, int32_t accum_in_place, const char *activation, const double *scalars,
                        int32_t scalar_count, double out_scale, int64_t out_zero_point, sk_tensor *out) {
  return guard([&] {
    // out_scale 0: dequantised, float32 output.
    std::optional<at::ScalarType> out_type = out_scale > 0 ? std::nullopt : std::optional<at::ScalarType>(at::kFloat);
    if (out_scale <= 0) out_scale = 1.0, out_zero_point = 0;
    using Scalars = c10::List<std::optional<at::Scalar>>;
    Scalars values;
    for (int32_t i = 0; i < scalar_count; ++i) values.push_back(at::Scalar(scalars[i]));
    auto input = T(x);
    if (input.scalar_type() != at::kByte) throw std::invalid_argument("sk_qconv2d_u8: x must be uint8");
    input = input.contiguous(at::MemoryFormat::ChannelsLast);
    if (accum == nullptr) {
      static auto qconv = c10::Dispatcher::singleton()
        .findSchemaOrThrow("onednn::qconv2d_pointwise", "")
        .typed<at::Tensor(at::Tensor, double, int64_t, at::Tensor, at::Tensor, at::Tensor, std::optional<at::Tensor>, Ints, Ints, Ints, int64_t, double, int64_t, std::optional<at::ScalarType>, std::string_view, Scalars,
                          std::optional<std::string_view>)>();
      put(out, qconv.call(input, x_scale, x_zero_point, T(packed), T(w_scales), T(w_zero_points), opt(b), ints(stride),
                          ints(padding), ints(dilation), groups, out_scale, out_zero_point, out_type, activation, values,
                          std::string_view("")));
      return;
    }
    std::string_view unary(activation);
    if (unary != "none" && unary != "relu") throw std::invalid_argument("sk_qconv2d_u8: with accum, activation must be none or relu");
    if (T(accum).scalar_type() != at::kByte) throw std::invalid_argument("sk_qconv2d_u8: accum must be uint8");
    static auto qconv = c10::Dispatcher::singleton()
      .findSchemaOrThrow("onednn::qconv2d_pointwise", "binary")
      .typed<at::Tensor(at::Tensor, double, int64_t, at::Tensor, at::Tensor, at::Tensor, at::Tensor, std::optional<at::Tensor>, Ints, Ints, Ints, int64_t, double, int64_t, std::optional<at::ScalarType>, double, int64_t, std::string_view, std::optional<at::Scalar>, std::optional<std::string_view>, Scalars, std::optional<std::string_view>)>();
    // The kernel writes its result into the accumulator: unless the caller gives it up, a copy
    // keeps the caller's tensor as it was.
    auto sum = T(accum).contiguous(at::MemoryFormat::ChannelsLast);
    if (accum_in_place == 0 && sum.data_ptr() == T(accum).data_ptr()) sum = sum.clone(at::MemoryFormat::ChannelsLast);
    put(out, qconv.call(input, x_scale, x_zero_point, T(packed), T(w_scales), T(w_zero_points), sum, opt(b), ints(stride),
                        ints(padding), ints(dilation), groups, out_scale, out_zero_point, out_type, accum_scale,
                        accum_zero_point, std::string_view("sum"), at::Scalar(1.0),
                        unary == "none" ? std::optional<std::string_view>() : std::optional<std::string_view>(unary),
                        Scalars(), std::optional<std::string_view>()));
  });
}

sk_status sk_qconv2d(sk_tensor x, double x_scale, int64_t x_zero_point, sk_tensor packed, sk_tensor w_scales,
                     sk_tensor w_zero_points, sk_tensor b, const int64_t *stride, const int64_t *padding,
                     const int64_t *dilation, int64_t groups, const char *activation, const double *scalars,
                     int32_t scalar_count, sk_tensor *out) {
  return guard([&] {
    using Scalars = c10::List<std::optional<at::Scalar>>;
    Scalars values;
    for (int32_t i = 0; i < scalar_count; ++i) values.push_back(at::Scalar(scalars[i]));
    static auto qconv = c10::Dispatcher::singleton()
      .findSchemaOrThrow("onednn::qconv2d_pointwise", "")
      .typed<at::Tensor(at::Tensor, double, int64_t, at::Tensor, at::Tensor, at::Tensor, std::optional<at::Tensor>, Ints, Ints, Ints, int64_t, double, int64_t, std::optional<at::ScalarType>, std::string_view, Scalars,
                        std::optional<std::string_view>)>();
    auto input = T(x).contiguous(at::MemoryFormat::ChannelsLast);
    static SilentWarnings silent;
    at::Tensor quantized;
    {
      c10::WarningUtils::WarningHandlerGuard quiet(&silent);
      quantized = at::quantize_per_tensor(input, x_scale, x_zero_point, at::kQUInt8).int_repr();
    }
    put(out, qconv.call(quantized, x_scale, x_zero_point, T(packed), T(w_scales), T(w_zero_points), opt(b), ints(stride),
                        ints(padding), ints(dilation), groups, 1.0, 0, at::kFloat, activation, values,
                        std::string_view("")));
  });
}
