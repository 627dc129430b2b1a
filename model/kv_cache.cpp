// Growing key/value buffers for incremental decoding.
#include "model/kv_cache.h"

#include <algorithm>

#include <torch/torch.h>

namespace superpose {

std::pair<torch::Tensor, torch::Tensor> LayerKV::append(const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(k.dim() == 4 && k.sizes() == v.sizes(), "LayerKV::append: expected (B,H,T,D) keys and values, got ",
              k.sizes(), " and ", v.sizes());
  const int64_t t = k.size(2);
  const int64_t needed = length_ + t;
  const bool fits = k_.defined() && k_.size(0) == k.size(0) && k_.size(1) == k.size(1) &&
                    k_.size(3) == k.size(3) && k_.dtype() == k.dtype() && k_.device() == k.device();
  TORCH_CHECK(fits || length_ == 0, "LayerKV::append: batch, heads, head size, dtype or device changed mid-sequence");
  if (!fits || needed > k_.size(2)) {
    const int64_t capacity = std::max<int64_t>({needed, fits ? 2 * k_.size(2) : 0, 16});
    auto grown_k = torch::empty({k.size(0), k.size(1), capacity, k.size(3)}, k.options());
    auto grown_v = torch::empty_like(grown_k);
    if (length_ > 0) {
      grown_k.narrow(2, 0, length_).copy_(k_.narrow(2, 0, length_));
      grown_v.narrow(2, 0, length_).copy_(v_.narrow(2, 0, length_));
    }
    k_ = grown_k;
    v_ = grown_v;
  }
  k_.narrow(2, length_, t).copy_(k);
  v_.narrow(2, length_, t).copy_(v);
  length_ = needed;
  return {k_.narrow(2, 0, length_), v_.narrow(2, 0, length_)};
}

void LayerKV::truncate(int64_t length) {
  TORCH_CHECK(length >= 0 && length <= length_, "LayerKV::truncate: length ", length, " outside [0, ", length_, "]");
  length_ = length;
}

void KVCache::truncate(int64_t length) {
  for (auto& layer : layers_) layer.truncate(length);
}

}  // namespace superpose
