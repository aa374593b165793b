// Runtime, devices, tensor lifetime, creation, conversion and autograd.
#include "shim_internal.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/ScalarOps.h>
#include <ATen/cpu/Utils.h>
#include <ATen/core/Formatting.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <malloc.h>

#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#else
#include <torch/csrc/api/include/torch/version.h>
#endif

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace sk {

static thread_local std::string last_error;

// Linux lends a process AMX's tile registers only once it asks (arch_prctl); until
// then oneDNN's bfloat16 and int8 kernels fall back to slower ones. PyTorch asks at
// import; SegKit when the shim loads.
static const bool amx_requested = at::cpu::init_amx();

void set_error(const char *message) { last_error = message ? message : "unknown error"; }

at::ScalarType scalar_type(int32_t code) {
  switch (code) {
  case SK_UINT8: return at::kByte;
  case SK_INT8: return at::kChar;
  case SK_INT16: return at::kShort;
  case SK_INT32: return at::kInt;
  case SK_INT64: return at::kLong;
  case SK_FLOAT16: return at::kHalf;
  case SK_FLOAT32: return at::kFloat;
  case SK_FLOAT64: return at::kDouble;
  case SK_BOOL: return at::kBool;
  case SK_BFLOAT16: return at::kBFloat16;
  }
  throw std::invalid_argument("unsupported dtype code " + std::to_string(code));
}

int32_t dtype_code(at::ScalarType type) {
  switch (type) {
  case at::kByte: return SK_UINT8;
  case at::kChar: return SK_INT8;
  case at::kShort: return SK_INT16;
  case at::kInt: return SK_INT32;
  case at::kLong: return SK_INT64;
  case at::kHalf: return SK_FLOAT16;
  case at::kFloat: return SK_FLOAT32;
  case at::kDouble: return SK_FLOAT64;
  case at::kBool: return SK_BOOL;
  case at::kBFloat16: return SK_BFLOAT16;
  default: break;
  }
  throw std::invalid_argument(std::string("tensor has a dtype SegKit does not support: ") +
                              c10::toString(type));
}

at::Device device(sk_device_type type, int32_t index) {
  switch (type) {
  case SK_CPU: return at::Device(at::kCPU);
  case SK_CUDA:
    if (!at::hasCUDA())
      throw std::invalid_argument("CUDA device requested but this libtorch has no CUDA support or no GPU "
                                  "is visible (point LIBTORCH at a CUDA libtorch and build with SEGKIT_CUDA=1)");
    if (index < 0 || static_cast<size_t>(index) >= at::getNumGPUs())
      throw std::invalid_argument("cuda:" + std::to_string(index) + " does not exist (" +
                                  std::to_string(at::getNumGPUs()) + " CUDA devices)");
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  case SK_MPS:
    if (!at::hasMPS()) throw std::invalid_argument("MPS device requested but not available");
    return at::Device(at::kMPS);
  }
  throw std::invalid_argument("unknown device type " + std::to_string(static_cast<int>(type)));
}

at::TensorOptions options(sk_dtype dtype, sk_device_type type, int32_t index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(type, index));
}

at::Scalar number(double value) {
  const bool integral = std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9.2e18;
  return integral ? at::Scalar(static_cast<int64_t>(value)) : at::Scalar(value);
}

at::Tensor wrap_scalar(double value, const at::Tensor &like) {
  return at::native::wrapped_scalar_tensor(number(value), like.device());
}

} // namespace sk

using namespace sk;

extern "C" {

const char *sk_last_error(void) { return last_error.c_str(); }

const char *sk_torch_version(void) { return TORCH_VERSION; }

sk_status sk_manual_seed(uint64_t seed) {
  return guard([&] { at::manual_seed(seed); });
}

sk_status sk_set_num_threads(int32_t n) {
  return guard([&] {
    if (n < 1) throw std::invalid_argument("thread count must be at least 1, got " + std::to_string(n));
    at::set_num_threads(n);
  });
}

int32_t sk_get_num_threads(void) { return static_cast<int32_t>(at::get_num_threads()); }

namespace {
// One of this CPU's capabilities as libtorch's cpuinfo reports them; on other
// architectures than x86_64 every x86 extension asked for counts as present.
bool cpu_has(std::initializer_list<const char *> all) {
  static const auto capabilities = at::cpu::get_cpu_capabilities();
  auto architecture = capabilities.find("architecture");
  if (architecture == capabilities.end() || !architecture->second.isString() ||
      architecture->second.toStringRef() != "x86_64")
    return true;
  for (const char *name : all) {
    auto found = capabilities.find(name);
    if (found == capabilities.end() || !found->second.isBool() || !found->second.toBool()) return false;
  }
  return true;
}
} // namespace

int32_t sk_cpu_has_bf16_convolutions(void) {
  return cpu_has({"avx512_bw", "avx512_vl", "avx512_dq"}) || cpu_has({"avx_ne_convert"});
}

int32_t sk_cpu_has_vnni(void) { return cpu_has({"avx512_vnni"}) || cpu_has({"avx_vnni"}); }

int64_t sk_heap_bytes_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
#else
  return -1;
#endif
}

int32_t sk_cuda_device_count(void) {
  try {
    return at::hasCUDA() ? static_cast<int32_t>(at::getNumGPUs()) : 0;
  } catch (...) {
    return 0;
  }
}

int32_t sk_mps_is_available(void) {
  try {
    return at::hasMPS() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int32_t sk_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

int32_t sk_set_grad_enabled(int32_t enabled) {
  const bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return previous ? 1 : 0;
}

struct sk_guard_opaque {
  c10::InferenceMode mode;
};

sk_status sk_inference_mode_enter(sk_guard *out) {
  return guard([&] { *out = new sk_guard_opaque(); });
}

void sk_inference_mode_exit(sk_guard g) { delete g; }

void sk_free(sk_tensor t) { delete t; }

sk_status sk_dim(sk_tensor t, int64_t *out) {
  return guard([&] { *out = T(t).dim(); });
}

sk_status sk_sizes(sk_tensor t, int64_t *out, int64_t capacity) {
  return guard([&] {
    auto s = T(t).sizes();
    for (int64_t i = 0; i < std::min<int64_t>(capacity, s.size()); i++) out[i] = s[i];
  });
}

sk_status sk_strides(sk_tensor t, int64_t *out, int64_t capacity) {
  return guard([&] {
    auto s = T(t).strides();
    for (int64_t i = 0; i < std::min<int64_t>(capacity, s.size()); i++) out[i] = s[i];
  });
}

sk_status sk_dtype_of(sk_tensor t, int32_t *out) {
  return guard([&] { *out = dtype_code(T(t).scalar_type()); });
}

sk_status sk_device_of(sk_tensor t, int32_t *type, int32_t *index) {
  return guard([&] {
    auto d = T(t).device();
    switch (d.type()) {
    case at::kCPU: *type = SK_CPU; break;
    case at::kCUDA: *type = SK_CUDA; break;
    case at::kMPS: *type = SK_MPS; break;
    default: throw std::invalid_argument("tensor lives on an unsupported device: " + d.str());
    }
    *index = d.has_index() ? d.index() : 0;
  });
}

sk_status sk_is_contiguous(sk_tensor t, sk_memory_format format, int32_t *out) {
  return guard([&] {
    *out = T(t).is_contiguous(format == SK_CHANNELS_LAST ? at::MemoryFormat::ChannelsLast
                                                         : at::MemoryFormat::Contiguous);
  });
}

sk_status sk_item(sk_tensor t, double *out) {
  return guard([&] { *out = T(t).item<double>(); });
}

sk_status sk_describe(sk_tensor t, char **out) {
  return guard([&] {
    std::ostringstream os;
    os << T(t);
    *out = strdup(os.str().c_str());
  });
}

void sk_free_string(char *s) { free(s); }

sk_status sk_filled(sk_fill fill, const int64_t *shape, int64_t ndim, sk_dtype dtype, sk_device_type dev,
                    int32_t index, sk_tensor *out) {
  return guard([&] {
    auto size = ints(shape, ndim);
    auto o = options(dtype, dev, index);
    switch (fill) {
    case SK_FILL_ZEROS: put(out, at::zeros(size, o)); return;
    case SK_FILL_ONES: put(out, at::ones(size, o)); return;
    case SK_FILL_EMPTY: put(out, at::empty(size, o)); return;
    case SK_FILL_RAND: put(out, at::rand(size, o)); return;
    case SK_FILL_RANDN: put(out, at::randn(size, o)); return;
    }
    throw std::invalid_argument("unknown fill kind");
  });
}

sk_status sk_full(const int64_t *shape, int64_t ndim, double value, sk_dtype dtype, sk_device_type dev,
                  int32_t index, sk_tensor *out) {
  return guard([&] {
    auto type = scalar_type(dtype);
    at::Scalar v = at::isFloatingType(type) ? at::Scalar(value)
                   : type == at::kBool      ? at::Scalar(value != 0)
                                            : at::Scalar(static_cast<int64_t>(value));
    put(out, at::full(ints(shape, ndim), v, options(dtype, dev, index)));
  });
}

sk_status sk_arange(double start, double end, double step, sk_dtype dtype, sk_device_type dev, int32_t index,
                    sk_tensor *out) {
  return guard([&] {
    // Python numbers as torch.arange receives them: it converts each to the dtype itself.
    put(out, at::arange(number(start), number(end), number(step), options(dtype, dev, index)));
  });
}

sk_status sk_randint(int64_t low, int64_t high, const int64_t *shape, int64_t ndim, sk_dtype dtype,
                     sk_device_type dev, int32_t index, sk_tensor *out) {
  return guard([&] { put(out, at::randint(low, high, ints(shape, ndim), options(dtype, dev, index))); });
}

sk_status sk_from_bytes(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim, sk_dtype dtype,
                        sk_tensor *out) {
  return guard([&] {
    auto t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(scalar_type(dtype)));
    if (t.nbytes() != nbytes)
      throw std::invalid_argument("buffer holds " + std::to_string(nbytes) + " bytes but shape " +
                                  c10::str(t.sizes()) + " of " + c10::toString(t.scalar_type()) + " needs " +
                                  std::to_string(t.nbytes()));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, nbytes);
    put(out, std::move(t));
  });
}

sk_status sk_copy_to_bytes(sk_tensor t, void *dst, size_t nbytes) {
  return guard([&] {
    auto c = T(t).detach().to(at::kCPU).contiguous();
    if (c.nbytes() != nbytes)
      throw std::invalid_argument("destination holds " + std::to_string(nbytes) + " bytes but the tensor has " +
                                  std::to_string(c.nbytes()));
    if (nbytes > 0) std::memcpy(dst, c.const_data_ptr(), nbytes);
  });
}

sk_status sk_to(sk_tensor t, sk_dtype dtype, sk_device_type dev, int32_t index, sk_tensor *out) {
  return guard([&] { put(out, T(t).to(device(dev, index), scalar_type(dtype))); });
}

sk_status sk_contiguous(sk_tensor t, sk_memory_format format, sk_tensor *out) {
  return guard([&] {
    if (format != SK_CHANNELS_LAST) return put(out, T(t).contiguous());
    auto x = T(t).contiguous(at::MemoryFormat::ChannelsLast);
    // With a 1×1 spatial size any strides count as channels-last, but oneDNN picks
    // its kernels by the strides themselves (a 1×1 weight with row-major strides ran
    // its convolution at half speed): give the canonical ones, as torch's
    // .to(memory_format=) does.
    if (x.dim() == 4) {
      auto sizes = x.sizes();
      std::vector<int64_t> canonical{sizes[1] * sizes[2] * sizes[3], 1, sizes[3] * sizes[1], sizes[1]};
      if (x.strides() != c10::IntArrayRef(canonical))
        x = at::empty_like(x, at::MemoryFormat::ChannelsLast).copy_(x);
    }
    put(out, x);
  });
}

sk_status sk_clone(sk_tensor t, sk_tensor *out) {
  return guard([&] { put(out, T(t).clone()); });
}

sk_status sk_copy_(sk_tensor dst, sk_tensor src) {
  return guard([&] { T(dst).copy_(T(src)); });
}

sk_status sk_set_requires_grad(sk_tensor t, int32_t requires_grad) {
  return guard([&] { T(t).requires_grad_(requires_grad != 0); });
}

sk_status sk_requires_grad(sk_tensor t, int32_t *out) {
  return guard([&] { *out = T(t).requires_grad(); });
}

sk_status sk_backward(sk_tensor t, sk_tensor grad, int32_t retain_graph) {
  return guard([&] {
    at::Tensor g = grad ? T(grad) : at::Tensor();
    T(t).backward(g, retain_graph ? std::optional<bool>(true) : std::nullopt);
  });
}

sk_status sk_grad(sk_tensor t, sk_tensor *out) {
  return guard([&] {
    const auto &g = T(t).grad();
    *out = g.defined() ? new sk_tensor_opaque{g} : nullptr;
  });
}

sk_status sk_set_grad(sk_tensor t, sk_tensor grad) {
  return guard([&] {
    const at::Tensor &self = T(t);
    if (grad == nullptr) {
      self.mutable_grad() = at::Tensor();
      return;
    }
    // The checks Python's `tensor.grad = g` makes. libtorch's setter makes none, so a
    // mismatched gradient would only surface later, inside backward or an optimizer step.
    const at::Tensor &g = T(grad);
    if (g.is_same(self)) throw std::invalid_argument("can't assign Variable as its own grad");
    if (g.scalar_type() != self.scalar_type())
      throw std::invalid_argument(c10::str("attempting to assign a gradient with dtype '", g.scalar_type(),
                                           "' to a tensor with dtype '", self.scalar_type(), "'"));
    if (g.device() != self.device())
      throw std::invalid_argument(c10::str("attempting to assign a gradient on ", g.device(), " to a tensor on ",
                                           self.device()));
    if (g.sizes() != self.sizes())
      throw std::invalid_argument(c10::str("attempting to assign a gradient of size '", g.sizes(),
                                           "' to a tensor of size '", self.sizes(),
                                           "'. Please ensure that the gradient and the tensor are the same size"));
    self.mutable_grad() = g;
  });
}

sk_status sk_zero_grad(sk_tensor t, int32_t set_to_none) {
  return guard([&] {
    auto &g = T(t).mutable_grad();
    if (!g.defined()) return;
    if (set_to_none) {
      g.reset();
    } else {
      g.detach_();
      g.zero_();
    }
  });
}

sk_status sk_detach(sk_tensor t, sk_tensor *out) {
  return guard([&] { put(out, T(t).detach()); });
}

sk_status sk_is_leaf(sk_tensor t, int32_t *out) {
  return guard([&] { *out = T(t).is_leaf(); });
}

} // extern "C"
