// An observer that keeps copies of the states a forward pass produces.
#pragma once

#include <map>
#include <set>
#include <utility>

#include <torch/types.h>

#include "model/observer.h"

namespace superpose {

// Records the wanted (site, index) states as detached F32 CPU copies, so the
// recording outlives the forward pass and does not hold device memory.
// Not thread-safe; one recorder per forward pass.
class StateRecorder : public ForwardObserver {
 public:
  // Wants every index of the given sites.
  explicit StateRecorder(std::set<Site> sites) : sites_(std::move(sites)) {}

  bool wants(Site site, int64_t index) const override;
  void observe(Site site, int64_t index, const torch::Tensor& value) override;

  // The recorded state; throws std::out_of_range if it was not recorded.
  const torch::Tensor& at(Site site, int64_t index) const { return states_.at({site, index}); }
  const std::map<std::pair<Site, int64_t>, torch::Tensor>& states() const { return states_; }

 private:
  std::set<Site> sites_;
  std::map<std::pair<Site, int64_t>, torch::Tensor> states_;
};

}  // namespace superpose
