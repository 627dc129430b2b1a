// The paper's figures as plot descriptions (analysis/figure.h), built from
// the analysis results; `superpose figures` renders them headless and the
// studio exports the same ones. Builders only describe: nothing is drawn or
// written here.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "analysis/eval.h"
#include "analysis/figure.h"
#include "analysis/neuron_report.h"
#include "analysis/trajectory.h"

namespace superpose {

// Perplexity per model, one bar per domain side by side, with the 95%
// intervals as error bars, on a log axis.
Figure perplexity_figure(const EvalReport& report);

// Per-layer mean L2 distances of the superposition's states to the base's and
// the fine's, and base to fine, one panel per domain.
Figure l2_distance_figure(const EvalReport& report, const std::string& model = "superposition");

// Mean-state trajectories across layers, one line per model × domain, the
// layer numbers written at both ends (the paper's figure 8).
Figure trajectory_figure(const TrajectoryMap& map);

// A t-SNE map (N,2) of states, coloured by category (model × domain, layer,
// ...): `categories` (N) indexes `category_names`; `category_colours`, when
// given, one per name, else the palette in order.
Figure tsne_figure(const torch::Tensor& embedding, const std::vector<int>& categories,
                   const std::vector<std::string>& category_names, const std::string& title,
                   const std::vector<Rgb>& category_colours = {});

// Polysemantic share, sparsity, mean |activation| and (when computed)
// diversity per layer, one line per model (the paper's figures 4 and 5 and
// its table 2, drawn).
Figure neuron_figure(const NeuronReport& report);

// A layer × neuron heat map of one statistic for one model, or of the
// difference of two models (second minus first) with a diverging scale.
Figure neuron_map_figure(const torch::Tensor& map, const std::vector<int64_t>& layers, const std::string& statistic,
                         const std::string& title, bool difference);

// Appends " (non-causal)" to the figure's title, for results of a model
// whose outputs read the next token.
void mark_non_causal(Figure& figure);

}  // namespace superpose
