// Key/value cache for incremental decoding: one entry per attention layer.
#pragma once

#include <utility>
#include <vector>

#include <torch/types.h>

namespace superpose {

// Keys and values of one attention layer, stored (B,H,T,D) in buffers that
// grow by doubling so appending one token does not copy the past.
// Not thread-safe; owned by whoever runs the forward pass.
class LayerKV {
 public:
  int64_t length() const { return length_; }
  // Appends (B,H,T,D) keys and values; returns views (B,H,length,D) of all
  // cached keys and values including the new ones.
  std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& k, const torch::Tensor& v);
  // Forgets positions >= length (keeps the buffers).
  void truncate(int64_t length);
  void clear() { truncate(0); }

 private:
  torch::Tensor k_, v_;  // (B,H,capacity,D)
  int64_t length_ = 0;
};

// One LayerKV per block.
class KVCache {
 public:
  explicit KVCache(int64_t n_layer = 0) : layers_(static_cast<size_t>(n_layer)) {}
  LayerKV& layer(int64_t i) { return layers_.at(static_cast<size_t>(i)); }
  int64_t n_layer() const { return static_cast<int64_t>(layers_.size()); }
  // Number of positions cached (the same in every layer).
  int64_t length() const { return layers_.empty() ? 0 : layers_.front().length(); }
  void truncate(int64_t length);
  void clear() { truncate(0); }

 private:
  std::vector<LayerKV> layers_;
};

}  // namespace superpose
