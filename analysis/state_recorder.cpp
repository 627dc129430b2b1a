// StateRecorder: detached CPU copies of observed states.
#include "analysis/state_recorder.h"

#include <torch/torch.h>

namespace superpose {

bool StateRecorder::wants(Site site, int64_t /*index*/) const { return sites_.count(site) > 0; }

void StateRecorder::observe(Site site, int64_t index, const torch::Tensor& value) {
  states_[{site, index}] = value.detach().to(torch::kCPU, torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace superpose
