#include "app/studio/tsne_map.h"

#include <torch/torch.h>

namespace superpose::studio {

torch::Tensor tsne_points(const Capture& capture, const std::vector<int64_t>& layers, TsneMap& map) {
  map.rows = capture.rows();
  map.models = capture.models;
  map.layers = layers;
  map.domains = capture.domains;
  const torch::Tensor labels = capture.labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* label = labels.data_ptr<int64_t>();
  map.row_domains.assign(label, label + map.rows);
  std::vector<torch::Tensor> parts;
  for (const std::string& model : capture.models) {
    for (int64_t layer : layers) parts.push_back(capture.tensor(Capture::residual_name(model, layer)));  // (N,C)
  }
  return torch::cat(parts, 0);
}

}  // namespace superpose::studio
