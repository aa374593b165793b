// Process groups on c10d. Gloo's headers come from Debian's libgloo-dev (the
// declarations only: libtorch_cpu carries its own compiled Gloo); the class
// layouts this file relies on hold pointers to Gloo types, not Gloo types.
#define USE_C10D_GLOO 1

#include "shim_internal.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>

struct sk_process_group_opaque {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int32_t world_size;
};

using namespace sk;

namespace {

void checked(sk_process_group group) {
  if (group == nullptr || !group->backend) throw std::invalid_argument("null process group");
}

// Runs a collective and waits for it; a peer that is gone or late fails here.
void run(const c10::intrusive_ptr<c10d::Work> &work) {
  if (!work->wait()) throw std::runtime_error("the collective was aborted");
}

c10d::ReduceOp reduce_op(sk_collective_op op) {
  switch (op) {
  case SK_COLLECTIVE_SUM: return c10d::ReduceOp::SUM;
  case SK_COLLECTIVE_MAX: return c10d::ReduceOp::MAX;
  case SK_COLLECTIVE_MIN: return c10d::ReduceOp::MIN;
  }
  throw std::invalid_argument("unknown reduce op " + std::to_string(static_cast<int>(op)));
}

} // namespace

extern "C" {

sk_status sk_process_group_new(const char *host, int32_t port, int32_t rank, int32_t world_size, sk_backend backend,
                               int64_t timeout_ms, sk_process_group *out) {
  return guard([&] {
    if (host == nullptr || out == nullptr) throw std::invalid_argument("null host or output");
    if (world_size < 1 || rank < 0 || rank >= world_size)
      throw std::invalid_argument("rank " + std::to_string(rank) + " of world size " + std::to_string(world_size));
    if (port < 1 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " is not 1 to 65535");
    if (timeout_ms < 1) throw std::invalid_argument("the timeout must be positive");
    if (backend != SK_BACKEND_GLOO)
      throw std::invalid_argument("only the gloo backend is built into this shim (NCCL needs libtorch_cuda's headers)");
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = rank == 0;
    options.numWorkers = world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    auto gloo = c10d::ProcessGroupGloo::Options::create_default(timeout);
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo);
    *out = new sk_process_group_opaque{store, group, world_size};
  });
}

void sk_process_group_free(sk_process_group group) { delete group; }

sk_status sk_all_reduce(sk_process_group group, sk_tensor t, sk_collective_op op) {
  return guard([&] {
    checked(group);
    std::vector<at::Tensor> tensors{T(t)};
    c10d::AllreduceOptions options;
    options.reduceOp = reduce_op(op);
    run(group->backend->allreduce(tensors, options));
  });
}

sk_status sk_broadcast(sk_process_group group, sk_tensor t, int32_t root) {
  return guard([&] {
    checked(group);
    if (root < 0 || root >= group->world_size) throw std::invalid_argument("root rank " + std::to_string(root));
    std::vector<at::Tensor> tensors{T(t)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    run(group->backend->broadcast(tensors, options));
  });
}

sk_status sk_all_gather(sk_process_group group, sk_tensor t, sk_tensor *out) {
  return guard([&] {
    checked(group);
    if (out == nullptr) throw std::invalid_argument("null output array");
    std::vector<at::Tensor> input{T(t)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int32_t r = 0; r < group->world_size; ++r) output[0].push_back(at::empty_like(T(t)));
    run(group->backend->allgather(output, input));
    for (int32_t r = 0; r < group->world_size; ++r) put(&out[r], output[0][r]);
  });
}

sk_status sk_barrier(sk_process_group group) {
  return guard([&] {
    checked(group);
    run(group->backend->barrier());
  });
}

} // extern "C"
