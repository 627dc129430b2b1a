// GPT-2 block: pre-norm residual attention followed by a pre-norm residual MLP.
#include "model/block.h"

#include <torch/torch.h>

namespace superpose {

BlockImpl::BlockImpl(const GPT2Config& config, int64_t layer_index) {
  auto norm = torch::nn::LayerNormOptions({config.n_embd}).eps(config.layer_norm_epsilon);
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(norm));
  attn = register_module("attn", Attention(config, layer_index));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(norm));
  mlp = register_module("mlp", MLP(config, layer_index));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, LayerKV* cache, ForwardObserver* observer) {
  auto h = x + attn(ln_1(x), cache, observer);  // (B,T,C)
  return h + mlp(ln_2(h), observer);            // (B,T,C)
}

}  // namespace superpose
