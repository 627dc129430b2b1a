// GPT-2's Conv1D: addmm over the flattened leading dimensions.
#include "model/conv1d.h"

#include <torch/torch.h>

namespace superpose {

Conv1DImpl::Conv1DImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", torch::empty({in_features, out_features}));
  bias = register_parameter("bias", torch::zeros({out_features}));
  torch::nn::init::normal_(weight, 0.0, 0.02);
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  // (N, in) -> (N, out), N = product of the leading dimensions
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

}  // namespace superpose
