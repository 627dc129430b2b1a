// Scaled dot-product attention as GPT-2 computes it: causal, optional per-layer scale.
#include "model/attention.h"

#include <cmath>

#include <torch/torch.h>
#include <torch/version.h>

namespace superpose {

AttentionImpl::AttentionImpl(const GPT2Config& config, int64_t layer_index)
    : n_head_(config.n_head), layer_index_(layer_index) {
  c_attn = register_module("c_attn", Conv1D(config.n_embd, 3 * config.n_embd));
  c_proj = register_module("c_proj", Conv1D(config.n_embd, config.n_embd));
  scale_ = config.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(config.head_dim())) : 1.0;
  if (config.scale_attn_by_inverse_layer_idx) scale_ /= static_cast<double>(layer_index + 1);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, LayerKV* cache, ForwardObserver* observer) {
  TORCH_CHECK(x.dim() == 3, "Attention: expected (B,T,C), got ", x.sizes());
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / n_head_;
  auto qkv = c_attn(x).split(C, -1);  // 3 x (B,T,C)
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_head_, D}).transpose(1, 2); };
  auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);  // (B,H,T,D)
  const int64_t past = cache ? cache->length() : 0;
  if (cache) std::tie(k, v) = cache->append(k, v);  // (B,H,past+T,D)
  const int64_t total = past + T;

  torch::Tensor y;  // (B,H,T,D)
  const bool want_probs = observer_wants(observer, Site::kAttention, layer_index_);
#if TORCH_VERSION_MAJOR >= 2
  if (!want_probs) {
    // Fused kernels (flash / memory-efficient on CUDA). SDPA's is_causal
    // aligns the mask top-left, which is right only without a past; a single
    // new token sees everything; otherwise pass the mask explicitly.
    if (past == 0) {
      y = at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/T > 1, scale_);
    } else if (T == 1) {
      y = at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, scale_);
    } else {
      auto mask = torch::ones({T, total}, x.options().dtype(torch::kBool)).tril(past);
      y = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale_);
    }
  }
#endif
  if (!y.defined()) {
    auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale_;  // (B,H,T,total)
    if (T > 1) {
      // Query i (absolute position past+i) sees keys 0..past+i.
      auto allowed = torch::ones({T, total}, x.options().dtype(torch::kBool)).tril(past);
      scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    }
    auto probs = torch::softmax(scores, -1);
    if (want_probs) observer->observe(Site::kAttention, layer_index_, probs);
    y = torch::matmul(probs, v);
  }
  y = y.transpose(1, 2).reshape({B, T, C});  // (B,T,C)
  return c_proj(y);
}

}  // namespace superpose
