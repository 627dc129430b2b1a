// Trajectories of hidden states across layers (the paper's figure 8): the
// mean state of each model × domain at every layer, all projected by one PCA
// so the lines share a plane; and the same projection for single tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "analysis/capture.h"
#include "analysis/pca.h"

namespace superpose {

// One model × domain line: its mean state at each layer, projected.
struct TrajectoryLine {
  std::string model;
  std::string domain;
  int64_t label = 0;
  torch::Tensor points;  // (S,k) float32: one point per layer, in TrajectoryMap::layers order
  int64_t rows = 0;      // capture rows averaged per layer
};

struct TrajectoryMap {
  Pca pca;                      // fitted on every line's mean states (models × domains × layers points)
  std::vector<int64_t> layers;  // the state indices along each line
  std::vector<TrajectoryLine> lines;  // by model (capture order), then label
};

// Lines for `models` (empty: every model of the capture) through `layers`
// (empty: the residual states 0..L-1 the capture holds: state L is left out
// by default because the experts' hidden state L includes ln_f while the
// superposition's state L does not, so they are not comparable), projected
// on `dims` (2 or 3) components. Any positions mode works: mean rows average
// documents, token rows average tokens. Throws Error naming the model or
// state the capture lacks, for dims outside 2..3, or when there are fewer
// mean states than dims + 1.
TrajectoryMap mean_trajectories(const Capture& capture, int64_t dims = 2, const std::vector<std::string>& models = {},
                                const std::vector<int64_t>& layers = {});

// Token trajectories on the same plane: `states` (T,S,C) — the states of T
// tokens at the map's S layers — to (T,S,k).
torch::Tensor project_trajectories(const TrajectoryMap& map, const torch::Tensor& states);

}  // namespace superpose
