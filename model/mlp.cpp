// GPT-2 MLP and its activation functions.
#include "model/mlp.h"

#include <torch/torch.h>

namespace superpose {

torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  TORCH_CHECK(false, "apply_activation: unknown activation ", name);  // config.cpp validates names
}

MLPImpl::MLPImpl(const GPT2Config& config, int64_t layer_index)
    : activation_(config.activation_function), layer_index_(layer_index) {
  c_fc = register_module("c_fc", Conv1D(config.n_embd, config.mlp_width()));
  c_proj = register_module("c_proj", Conv1D(config.mlp_width(), config.n_embd));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x, ForwardObserver* observer) {
  auto a = apply_activation(activation_, c_fc(x));  // (B,T,inner)
  if (observer_wants(observer, Site::kMlpActivation, layer_index_)) {
    observer->observe(Site::kMlpActivation, layer_index_, a);
  }
  return c_proj(a);  // (B,T,C)
}

}  // namespace superpose
