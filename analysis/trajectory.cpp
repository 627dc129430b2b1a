// Mean-state trajectories across layers, projected by one shared PCA.
#include "analysis/trajectory.h"

#include <algorithm>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

TrajectoryMap mean_trajectories(const Capture& capture, int64_t dims, const std::vector<std::string>& models,
                                const std::vector<int64_t>& layers) {
  if (dims < 2 || dims > 3) throw Error("dims", "must be 2 or 3, got " + std::to_string(dims));
  TrajectoryMap map;
  map.layers = layers;
  if (map.layers.empty()) {
    for (int64_t i : capture.residual_layers) {
      if (i < capture.n_layer) map.layers.push_back(i);
    }
  }
  if (map.layers.empty()) throw Error("layers", "the capture holds no residual state before the last one");
  const std::vector<std::string> names = models.empty() ? capture.models : models;
  for (const auto& name : names) {
    if (std::find(capture.models.begin(), capture.models.end(), name) == capture.models.end()) {
      throw Error("models", "'" + name + "' is not in the capture");
    }
  }
  // (lines·S, C) mean states, float64, then one PCA over all of them.
  std::vector<torch::Tensor> means;
  for (const auto& name : names) {
    for (int64_t label = 0; label < 2; ++label) {
      const auto rows = capture.labels.eq(label).nonzero().squeeze(1);
      if (rows.numel() == 0) continue;
      std::vector<torch::Tensor> line;
      for (int64_t i : map.layers) {
        line.push_back(capture.tensor(Capture::residual_name(name, i)).index_select(0, rows).to(torch::kFloat64).mean(0));
      }
      means.push_back(torch::stack(line));  // (S,C)
      TrajectoryLine t;
      t.model = name;
      t.label = label;
      t.domain = label < static_cast<int64_t>(capture.domains.size()) ? capture.domains[static_cast<size_t>(label)]
                                                                       : (label == 0 ? "base" : "fine");
      t.rows = rows.numel();
      map.lines.push_back(std::move(t));
    }
  }
  const auto all = torch::cat(means);  // (lines·S, C)
  if (all.size(0) < dims + 1) {
    throw Error("layers", "a trajectory map needs at least " + std::to_string(dims + 1) + " mean states, got " +
                              std::to_string(all.size(0)));
  }
  map.pca = fit_pca(all, dims);
  for (size_t j = 0; j < map.lines.size(); ++j) map.lines[j].points = map.pca.project(means[j].to(torch::kFloat32));
  return map;
}

torch::Tensor project_trajectories(const TrajectoryMap& map, const torch::Tensor& states) {
  const auto S = static_cast<int64_t>(map.layers.size());
  TORCH_CHECK(states.dim() == 3 && states.size(1) == S && states.size(2) == map.pca.mean.size(0),
              "project_trajectories: expected (T,", S, ",", map.pca.mean.size(0), "), got ", states.sizes());
  const int64_t T = states.size(0), k = map.pca.components.size(0);
  return map.pca.project(states.reshape({T * S, -1}).to(torch::kFloat32)).reshape({T, S, k});
}

}  // namespace superpose
