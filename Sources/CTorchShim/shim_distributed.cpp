// Process groups on c10d. Gloo's headers come from Debian's libgloo-dev (the
// declarations only: libtorch_cpu carries its own compiled Gloo); the class
// layouts this file relies on hold pointers to Gloo types, not Gloo types.
#define USE_C10D_GLOO 1

#include "shim_internal.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

struct sk_process_group_opaque {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int32_t world_size;
};

namespace {

// What the hooks and the caller share. Hooks run on autograd's threads (the
// caller's for CPU tensors, a device thread for CUDA ones), hence the mutex.
struct ExchangeState {
  sk_process_group group = nullptr;
  std::vector<at::Tensor> parameters;
  std::vector<std::vector<size_t>> buckets; // parameter indices, in the order backward reaches them
  std::vector<size_t> bucket_of;

  std::mutex mutex;
  bool armed = false;
  double divisor = 1;
  std::vector<bool> ready;                           // per parameter, this pass
  std::vector<size_t> waiting;                       // per bucket: its parameters not yet ready
  size_t next = 0;                                   // the first bucket not started
  size_t started_in_backward = 0;
  std::vector<at::Tensor> flat;                      // per started bucket: its gradients, flattened, on the CPU
  std::vector<std::vector<size_t>> members;          // per started bucket: the parameters in `flat`
  std::vector<c10::intrusive_ptr<c10d::Work>> work;  // per started bucket, null when it held no gradient

  void reset(double new_divisor) {
    divisor = new_divisor;
    ready.assign(parameters.size(), false);
    waiting.clear();
    for (auto &bucket : buckets) waiting.push_back(bucket.size());
    next = 0;
    started_in_backward = 0;
    flat.assign(buckets.size(), at::Tensor());
    members.assign(buckets.size(), {});
    work.assign(buckets.size(), {});
  }

  // Averages the bucket's gradients over the accumulated batches (as the loop did
  // after backward), flattens them and starts their sum over the ranks.
  void start(size_t b) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> pieces;
    for (size_t p : buckets[b]) {
      at::Tensor grad = parameters[p].grad();
      if (!grad.defined()) continue;
      if (divisor != 1) grad.div_(divisor);
      pieces.push_back(grad.reshape({-1}));
      members[b].push_back(p);
    }
    if (pieces.empty()) return;
    at::Tensor joined = at::cat(pieces);
    flat[b] = joined.device().is_cpu() ? joined : joined.to(at::kCPU);
    std::vector<at::Tensor> tensors{flat[b]};
    work[b] = group->backend->allreduce(tensors);
  }

  void parameter_ready(size_t p) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || ready[p]) return;
    ready[p] = true;
    waiting[bucket_of[p]] -= 1;
    while (next < buckets.size() && waiting[next] == 0) {
      start(next++);
      started_in_backward += 1;
    }
  }
};

struct ParameterReadyHook : torch::autograd::PostAccumulateGradHook {
  std::weak_ptr<ExchangeState> state; // the hook outlives the exchange on the parameter
  size_t index;
  ParameterReadyHook(std::weak_ptr<ExchangeState> state, size_t index) : state(std::move(state)), index(index) {}
  void operator()(const torch::autograd::Variable &) override {
    if (auto shared = state.lock()) shared->parameter_ready(index);
  }
};

} // namespace

struct sk_gradient_exchange_opaque {
  std::shared_ptr<ExchangeState> state;
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

// Sums `t` over the ranks in place (through a CPU copy when it lives elsewhere).
void all_reduce_sum(sk_process_group group, at::Tensor &t) {
  at::Tensor host = t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous();
  std::vector<at::Tensor> tensors{host};
  run(group->backend->allreduce(tensors));
  t = host.to(t.device());
}

// Batch norm whose statistics are those of the global batch. The backward pass
// all-reduces Σ dy and Σ dy·x̂ per channel; the weight and bias gradients stay
// this rank's sums, which the data-parallel gradient sum then completes.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, at::Tensor input, at::Tensor weight, at::Tensor bias,
                            int64_t group_address, at::Tensor running_mean, at::Tensor running_var, double momentum,
                            double eps) {
    auto group = reinterpret_cast<sk_process_group>(group_address);
    const int64_t channels = input.size(1);
    std::vector<int64_t> reduced{0};
    for (int64_t d = 2; d < input.dim(); ++d) reduced.push_back(d);
    std::vector<int64_t> shape(input.dim(), 1);
    shape[1] = channels;
    // Sums accumulate in float64, as ATen's CPU batch norm accumulates float statistics
    // in double: in a channel whose values sit close to a large mean, a float32 sum
    // loses the mean's last digits and 1/σ magnifies the loss into every gradient.
    const auto f64 = input.options().dtype(at::kDouble);
    auto sums = at::cat({at::sum(input, reduced, false, at::kDouble), at::full({1}, double(input.numel() / channels), f64)});
    all_reduce_sum(group, sums);
    auto count = sums[channels].item<double>();
    if (count <= 1) throw std::invalid_argument("synchronised batch norm needs more than one value per channel in the global batch");
    auto exact_mean = sums.narrow(0, 0, channels) / count;
    auto mean = exact_mean.to(input.scalar_type());
    auto centred = input - mean.view(shape);
    auto squares = at::sum(centred.square(), reduced, false, at::kDouble);
    all_reduce_sum(group, squares);
    // Centred on the rounded mean: Σ(x - m̃)² / n = σ² + (m - m̃)², corrected exactly.
    auto variance = squares / count - (exact_mean - mean.to(at::kDouble)).square();
    auto invstd = (variance + eps).rsqrt().to(input.scalar_type());
    if (running_mean.defined()) running_mean.mul_(1 - momentum).add_(exact_mean.to(running_mean.scalar_type()) * momentum);
    if (running_var.defined())
      running_var.mul_(1 - momentum).add_((variance * (count / (count - 1))).to(running_var.scalar_type()) * momentum);
    auto normalised = centred * invstd.view(shape);
    auto output = normalised;
    if (weight.defined()) output = output * weight.view(shape);
    if (bias.defined()) output = output + bias.view(shape);
    ctx->save_for_backward({normalised, invstd, weight});
    ctx->saved_data["group"] = group_address;
    ctx->saved_data["count"] = count;
    ctx->saved_data["has_bias"] = bias.defined();
    return output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto normalised = saved[0], invstd = saved[1], weight = saved[2];
    auto group = reinterpret_cast<sk_process_group>(ctx->saved_data["group"].toInt());
    const double count = ctx->saved_data["count"].toDouble();
    auto dy = grads[0];
    const int64_t channels = dy.size(1);
    std::vector<int64_t> reduced{0};
    for (int64_t d = 2; d < dy.dim(); ++d) reduced.push_back(d);
    std::vector<int64_t> shape(dy.dim(), 1);
    shape[1] = channels;
    auto local_dy = at::sum(dy, reduced, false, at::kDouble), local_dy_x = at::sum(dy * normalised, reduced, false, at::kDouble);
    auto both = at::cat({local_dy, local_dy_x});
    all_reduce_sum(group, both);
    auto mean_dy = (both.narrow(0, 0, channels) / count).to(dy.scalar_type());
    auto mean_dy_x = (both.narrow(0, channels, channels) / count).to(dy.scalar_type());
    auto scale = weight.defined() ? invstd * weight : invstd;
    auto dx = (dy - mean_dy.view(shape) - normalised * mean_dy_x.view(shape)) * scale.view(shape);
    return {dx, weight.defined() ? local_dy_x.to(dy.scalar_type()) : at::Tensor(),
            ctx->saved_data["has_bias"].toBool() ? local_dy.to(dy.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Makes the store and the Gloo group: rank 0 serves the store at host:port, the
// others connect to it; each step waits at most `timeout`.
sk_process_group join(const std::string &host, int32_t port, int32_t rank, int32_t world_size,
                      std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = rank == 0;
  options.numWorkers = world_size;
  options.waitWorkers = true;
  options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
  auto gloo = c10d::ProcessGroupGloo::Options::create_default(timeout);
  // As PyTorch: GLOO_SOCKET_IFNAME names the network interface(s) to use, for
  // machines whose host name resolves to an address the peers cannot reach.
  if (const char *names = std::getenv("GLOO_SOCKET_IFNAME"); names != nullptr && *names != 0) {
    gloo->devices.clear();
    std::string list(names);
    for (size_t start = 0; start <= list.size();) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(list.substr(start, end - start)));
      start = end + 1;
    }
  }
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo);
  return new sk_process_group_opaque{store, group, world_size};
}

// c10d's store client waits for the first answer of a listener that accepted its
// connection without any limit, so a port held by something else (or a stopped
// rank 0) would hang the join forever. The join runs on a thread of its own; past
// the timeout it is left behind (it frees what it makes if it ever finishes) and
// the caller gets an error naming the address.
sk_process_group join_within_timeout(const std::string &host, int32_t port, int32_t rank, int32_t world_size,
                                     std::chrono::milliseconds timeout) {
  struct Outcome {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false, abandoned = false;
    sk_process_group group = nullptr;
    std::exception_ptr error;
  };
  auto outcome = std::make_shared<Outcome>();
  std::thread([outcome, host, port, rank, world_size, timeout] {
    sk_process_group group = nullptr;
    std::exception_ptr error;
    try {
      group = join(host, port, rank, world_size, timeout);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(outcome->mutex);
    if (outcome->abandoned) {
      delete group;
      return;
    }
    outcome->group = group;
    outcome->error = error;
    outcome->done = true;
    outcome->finished.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(outcome->mutex);
  // c10d's own timeouts, which say more, get a moment to fire first.
  if (!outcome->finished.wait_for(lock, timeout + std::chrono::seconds(1), [&] { return outcome->done; })) {
    outcome->abandoned = true;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout.count() / 1000.0);
    throw std::runtime_error("no answer from the store at " + host + ":" + std::to_string(port) + " within " + seconds +
                             " s (something there accepted the connection but does not answer as a PyTorch store)");
  }
  if (outcome->error) std::rethrow_exception(outcome->error);
  return outcome->group;
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
    *out = join_within_timeout(std::string(host), port, rank, world_size, std::chrono::milliseconds(timeout_ms));
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

sk_status sk_sync_batch_norm(sk_process_group group, sk_tensor input, sk_tensor weight, sk_tensor bias,
                             sk_tensor running_mean, sk_tensor running_var, double momentum, double eps, sk_tensor *out) {
  return guard([&] {
    checked(group);
    if (T(input).dim() < 2) throw std::invalid_argument("synchronised batch norm takes (N, C, ...) input");
    auto undefined = [](sk_tensor h) { return h == nullptr ? at::Tensor() : h->t; };
    put(out, SyncBatchNorm::apply(T(input), undefined(weight), undefined(bias), reinterpret_cast<int64_t>(group),
                                  undefined(running_mean), undefined(running_var), momentum, eps));
  });
}

sk_status sk_gradient_exchange_new(sk_process_group group, const sk_tensor *parameters, int64_t count,
                                   int64_t first_bucket_bytes, int64_t bucket_bytes, sk_gradient_exchange *out) {
  return guard([&] {
    checked(group);
    if (out == nullptr || (count > 0 && parameters == nullptr)) throw std::invalid_argument("null parameters or output");
    if (count < 0 || first_bucket_bytes < 1 || bucket_bytes < 1) throw std::invalid_argument("negative count or bucket size");
    auto state = std::make_shared<ExchangeState>();
    state->group = group;
    state->bucket_of.assign(count, 0);
    int64_t bytes = 0;
    for (int64_t i = count - 1; i >= 0; --i) {
      const at::Tensor &parameter = T(parameters[i]);
      if (!parameter.requires_grad() || !parameter.is_leaf())
        throw std::invalid_argument("parameter " + std::to_string(i) + " is not a leaf that requires its gradient");
      const int64_t size = parameter.numel() * static_cast<int64_t>(parameter.element_size());
      const int64_t limit = state->buckets.size() == 1 ? first_bucket_bytes : bucket_bytes;
      if (state->buckets.empty() || (bytes > 0 && bytes + size > limit)) {
        state->buckets.emplace_back();
        bytes = 0;
      }
      state->buckets.back().push_back(state->parameters.size());
      state->parameters.push_back(parameter);
      bytes += size;
    }
    for (size_t b = 0; b < state->buckets.size(); ++b)
      for (size_t p : state->buckets[b]) state->bucket_of[p] = b;
    state->reset(1);
    for (size_t p = 0; p < state->parameters.size(); ++p)
      torch::autograd::impl::set_post_acc_grad_hooks(state->parameters[p],
                                                     std::make_unique<ParameterReadyHook>(state, p));
    *out = new sk_gradient_exchange_opaque{state};
  });
}

void sk_gradient_exchange_free(sk_gradient_exchange exchange) { delete exchange; }

int64_t sk_gradient_exchange_bucket_count(sk_gradient_exchange exchange) {
  return exchange == nullptr ? 0 : static_cast<int64_t>(exchange->state->buckets.size());
}

sk_status sk_gradient_exchange_arm(sk_gradient_exchange exchange, double divisor) {
  return guard([&] {
    if (exchange == nullptr) throw std::invalid_argument("null gradient exchange");
    if (!(divisor > 0)) throw std::invalid_argument("the divisor must be positive");
    auto &state = *exchange->state;
    std::lock_guard<std::mutex> lock(state.mutex);
    state.reset(divisor);
    state.armed = true;
  });
}

sk_status sk_gradient_exchange_finish(sk_gradient_exchange exchange, int64_t *buckets_started_in_backward) {
  return guard([&] {
    if (exchange == nullptr) throw std::invalid_argument("null gradient exchange");
    auto &state = *exchange->state;
    std::lock_guard<std::mutex> lock(state.mutex);
    if (!state.armed) throw std::logic_error("the gradient exchange was not armed before backward");
    state.armed = false;
    if (buckets_started_in_backward != nullptr) *buckets_started_in_backward = static_cast<int64_t>(state.started_in_backward);
    while (state.next < state.buckets.size()) state.start(state.next++);
    at::NoGradGuard no_grad;
    for (size_t b = 0; b < state.buckets.size(); ++b) {
      if (!state.work[b]) continue;
      run(state.work[b]);
      int64_t offset = 0;
      for (size_t p : state.members[b]) {
        at::Tensor grad = state.parameters[p].grad();
        const int64_t n = grad.numel();
        grad.copy_(state.flat[b].narrow(0, offset, n).view(grad.sizes()));
        offset += n;
      }
    }
    state.reset(1);
  });
}

sk_status sk_barrier(sk_process_group group) {
  return guard([&] {
    checked(group);
    run(group->backend->barrier());
  });
}

} // extern "C"
