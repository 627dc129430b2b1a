// A t-SNE map's input: the captured states of each model and state, stacked
// in the map's point order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "analysis/capture.h"
#include "app/studio/worker.h"

namespace superpose::studio {

// The t-SNE input for states `layers` of every model in `capture`: (P,C),
// P = models × layers × rows, in TsneMap's point order (models outermost,
// then states in the order given, then capture rows). Fills map.rows,
// models, layers, domains and row_domains. Throws Error naming the state
// when the capture lacks it.
torch::Tensor tsne_points(const Capture& capture, const std::vector<int64_t>& layers, TsneMap& map);

}  // namespace superpose::studio
