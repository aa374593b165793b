// Loss functions and the norm that gradient clipping needs.
#include "shim_internal.h"

#include <ATen/ops/binary_cross_entropy_with_logits.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/linalg_vector_norm.h>

using namespace sk;

namespace {
int64_t reduction_code(sk_reduction reduction) {
  if (reduction < SK_REDUCTION_NONE || reduction > SK_REDUCTION_SUM)
    throw std::invalid_argument("unknown reduction " + std::to_string(static_cast<int>(reduction)));
  return static_cast<int64_t>(reduction);
}
} // namespace

extern "C" {

sk_status sk_cross_entropy(sk_tensor logits, sk_tensor target, sk_tensor weight, sk_reduction reduction,
                           int64_t ignore_index, double label_smoothing, sk_tensor *out) {
  return guard([&] {
    put(out, at::cross_entropy_loss(T(logits), T(target), opt(weight), reduction_code(reduction), ignore_index,
                                    label_smoothing));
  });
}

sk_status sk_bce_with_logits(sk_tensor logits, sk_tensor target, sk_tensor weight, sk_tensor pos_weight,
                             sk_reduction reduction, sk_tensor *out) {
  return guard([&] {
    put(out, at::binary_cross_entropy_with_logits(T(logits), T(target), opt(weight), opt(pos_weight),
                                                  reduction_code(reduction)));
  });
}

sk_status sk_vector_norm(sk_tensor t, double ord, sk_tensor *out) {
  return guard([&] { put(out, at::linalg_vector_norm(T(t), ord)); });
}

} // extern "C"
