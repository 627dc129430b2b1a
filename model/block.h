// One GPT-2 transformer block (pre-LayerNorm attention and MLP with residuals).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/attention.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/mlp.h"
#include "model/observer.h"

namespace superpose {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const GPT2Config& config, int64_t layer_index);
  // (B,T,C) -> (B,T,C): x + attn(ln_1(x)), then + mlp(ln_2(·)).
  torch::Tensor forward(const torch::Tensor& x, LayerKV* cache = nullptr,
                        ForwardObserver* observer = nullptr);

  torch::nn::LayerNorm ln_1{nullptr};
  Attention attn{nullptr};
  torch::nn::LayerNorm ln_2{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

}  // namespace superpose
