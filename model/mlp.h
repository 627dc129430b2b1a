// GPT-2 feed-forward block: C -> inner -> C with the configured activation.
#pragma once

#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/config.h"
#include "model/conv1d.h"
#include "model/observer.h"

namespace superpose {

class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(const GPT2Config& config, int64_t layer_index);
  // (B,T,C) -> (B,T,C); the activations (B,T,inner) go to the observer as
  // Site::kMlpActivation when it wants them.
  torch::Tensor forward(const torch::Tensor& x, ForwardObserver* observer = nullptr);

  Conv1D c_fc{nullptr};    // C -> inner
  Conv1D c_proj{nullptr};  // inner -> C

 private:
  std::string activation_;
  int64_t layer_index_;
};
TORCH_MODULE(MLP);

// The activations GPT-2 configs name; gelu_new is the tanh approximation.
torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x);

}  // namespace superpose
