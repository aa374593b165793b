// Private helpers shared by the shim's translation units. Never exported.
#pragma once

#include "segkit_torch.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sk_tensor_opaque {
  at::Tensor t;
};

namespace sk {

void set_error(const char *message);

// Runs `body`, turning every C++ exception into a status and a stored message.
template <class F> sk_status guard(F &&body) noexcept {
  try {
    body();
    return 0;
  } catch (const c10::Error &e) {
    set_error(e.what_without_backtrace());
  } catch (const std::exception &e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown C++ exception in libtorch");
  }
  return 1;
}

inline const at::Tensor &T(sk_tensor h) {
  if (h == nullptr) throw std::invalid_argument("null tensor handle");
  return h->t;
}

inline std::optional<at::Tensor> opt(sk_tensor h) {
  if (h == nullptr) return std::nullopt;
  return h->t;
}

inline void put(sk_tensor *out, at::Tensor t) {
  if (out == nullptr) throw std::invalid_argument("null output pointer");
  *out = new sk_tensor_opaque{std::move(t)};
}

inline at::IntArrayRef ints(const int64_t *values, int64_t n) {
  if (n < 0) throw std::invalid_argument("negative array length");
  if (n > 0 && values == nullptr) throw std::invalid_argument("null array");
  return at::IntArrayRef(values, static_cast<size_t>(n));
}

inline at::IntArrayRef pair(const int64_t *values) { return ints(values, 2); }

at::ScalarType scalar_type(int32_t code);
int32_t dtype_code(at::ScalarType type);
at::Device device(sk_device_type type, int32_t index);
at::TensorOptions options(sk_dtype dtype, sk_device_type type, int32_t index);

// A Swift number as PyTorch treats a Python number: integral values are Python
// ints, so `int_tensor + 1` and `int_tensor.clamp(1)` keep their dtype while
// `int_tensor + 0.5` becomes floating point.
at::Scalar number(double value);

// `number(value)` as an operand, with the wrapped-number flag that gives it
// scalar (not tensor) type-promotion priority.
at::Tensor wrap_scalar(double value, const at::Tensor &like);

} // namespace sk
