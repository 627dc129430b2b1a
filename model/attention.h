// GPT-2 causal self-attention with an optional key/value cache.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/config.h"
#include "model/conv1d.h"
#include "model/kv_cache.h"
#include "model/observer.h"

namespace superpose {

class AttentionImpl : public torch::nn::Module {
 public:
  // layer_index sets the extra 1/(index+1) scale when the config asks for it.
  AttentionImpl(const GPT2Config& config, int64_t layer_index);
  // (B,T,C) -> (B,T,C). With a cache, x holds the T new positions that follow
  // the cache->length() cached ones; their keys and values are appended.
  torch::Tensor forward(const torch::Tensor& x, LayerKV* cache = nullptr,
                        ForwardObserver* observer = nullptr);

  Conv1D c_attn{nullptr};  // C -> 3C (q, k, v)
  Conv1D c_proj{nullptr};  // C -> C

 private:
  int64_t n_head_;
  int64_t layer_index_;
  double scale_;
};
TORCH_MODULE(Attention);

}  // namespace superpose
