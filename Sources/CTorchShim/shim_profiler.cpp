// Operation-level profiling with libtorch's own (Kineto) profiler, CPU activities:
// the trace torch.profiler writes in Python, so SegKit's inference can be compared
// operation by operation with PyTorch's and ONNX Runtime's.
#include "shim_internal.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>

using namespace sk;

sk_status sk_profiler_start(void) {
  return guard([&] {
    using namespace torch::profiler::impl;
    ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/true);
    const std::set<ActivityType> activities{ActivityType::CPU};
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
  });
}

sk_status sk_profiler_stop(const char *trace_path) {
  return guard([&] {
    auto result = torch::autograd::profiler::disableProfiler();
    if (trace_path && result) result->save(trace_path);
  });
}
