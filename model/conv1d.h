// GPT-2's "Conv1D": a linear layer whose weight is stored [in, out].
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace superpose {

// y = x · weight + bias with weight (in, out), the layout of GPT-2 checkpoints
// (the transpose of torch::nn::Linear), so parameters load without a transpose.
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(int64_t in_features, int64_t out_features);
  // (..., in) -> (..., out)
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // (in, out)
  torch::Tensor bias;    // (out)
};
TORCH_MODULE(Conv1D);

}  // namespace superpose
