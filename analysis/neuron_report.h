// Neuron statistics of a whole capture: for every model (or expert block
// inside the superposition) and layer, the polysemantic share, sparsity,
// mean activation and diversity (SPEC §6), with the layer × neuron maps the
// app and the figures draw.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "analysis/capture.h"
#include "analysis/neurons.h"

namespace superpose {

enum class NeuronSite {
  kResidual,  // "{model}.residual.{i}" for the captured states i < L
  kMlp,       // "{model}.mlp.{l}"; inside the superposition "superposition.mlp_base.{l}" / "mlp_fine"
};

struct NeuronReportOptions {
  NeuronSite site = NeuronSite::kResidual;
  double threshold = 0.05;          // polysemantic: normalized difference below this
  double sparsity_epsilon = 1e-4;   // sparse: |activation| below this
  bool diversity = true;            // needs a capture of every token (positions "all")
  NeuronDiversityOptions diversity_options;
  torch::Device device = torch::kCPU;  // where the statistics and k-means run
};

// One (model, layer) row of the table.
struct NeuronLayerRow {
  std::string model;     // "base", "fine", "superposition"; MLP of the superposition: "superposition/base", "superposition/fine"
  int64_t layer = 0;     // state index (residual) or block (MLP)
  int64_t neurons = 0;
  double polysemantic_share = 0;  // share of neurons with normalized difference < threshold
  double sparsity = 0;            // share of activations below the epsilon
  double mean_activation = 0;     // mean |activation| over rows and neurons
  double diversity = 0;           // mean neuron diversity (nats); NaN when not computed
};

struct NeuronReport {
  NeuronReportOptions options;
  std::vector<NeuronLayerRow> rows;  // by model, then layer
  std::vector<int64_t> layers;       // the layers of the maps, in order
  // Per model: (layers, D) float32 maps, row j = layers[j].
  std::map<std::string, torch::Tensor> normalized_difference, sparsity, mean_activation, diversity;
};

// Computes the report over every model and layer the capture holds for the
// site. Throws Error("--site" ...) when the capture holds no tensor of the
// site, Error("labels", ...) when one domain has no rows, and
// Error("diversity", ...) when diversity is asked of a capture that is not
// of every token.
NeuronReport neuron_report(const Capture& capture, const NeuronReportOptions& options);

// The table as Markdown (model, layer, neurons, polysemantic %, sparsity %,
// mean |activation|, diversity) and as CSV (header
// model,layer,neurons,polysemantic_share,sparsity,mean_activation,diversity).
std::string neuron_report_markdown(const NeuronReport& report);
std::string neuron_report_csv(const NeuronReport& report);

}  // namespace superpose
