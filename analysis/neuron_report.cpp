// Neuron statistics over every model and layer of a capture.
#include "analysis/neuron_report.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {
namespace {

// The (report model name, tensor name) pairs of one layer for the site.
std::vector<std::pair<std::string, std::string>> layer_tensors(const Capture& c, NeuronSite site, int64_t layer) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string l = std::to_string(layer);
  for (const auto& model : c.models) {
    if (site == NeuronSite::kResidual) {
      out.emplace_back(model, Capture::residual_name(model, layer));
    } else if (model == "superposition") {
      out.emplace_back("superposition/base", model + ".mlp_base." + l);
      out.emplace_back("superposition/fine", model + ".mlp_fine." + l);
    } else {
      out.emplace_back(model, model + ".mlp." + l);
    }
  }
  return out;
}

std::string number(const char* pattern, double value) {
  if (!std::isfinite(value)) return "n/a";
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

}  // namespace

NeuronReport neuron_report(const Capture& capture, const NeuronReportOptions& options) {
  NeuronReport report;
  report.options = options;
  if (options.site == NeuronSite::kResidual) {
    for (int64_t i : capture.residual_layers) {
      if (i < capture.n_layer) report.layers.push_back(i);
    }
  } else {
    report.layers = capture.mlp_layers;
  }
  if (report.layers.empty()) {
    throw Error("--site", options.site == NeuronSite::kResidual ? "the capture holds no residual state before ln_f"
                                                                : "the capture holds no MLP activations (--mlp-layers)");
  }
  const bool every_token = capture.positions_mode.mode == CapturePositions::kAll;
  if (options.diversity && !every_token) {
    throw Error("diversity", "needs a capture of every token (--positions all), this one is '" +
                                 capture.positions_mode.name() + "'");
  }
  torch::Tensor contexts;
  if (options.diversity) {
    contexts = context_windows(capture.token_ids, capture.documents, options.diversity_options.context);
  }
  const auto labels = capture.labels.to(options.device);
  std::map<std::string, std::vector<torch::Tensor>> diff, sparse, mean, diversity;
  std::vector<std::string> order;
  for (int64_t layer : report.layers) {
    for (const auto& [model, name] : layer_tensors(capture, options.site, layer)) {
      if (!diff.count(model)) order.push_back(model);
      const auto acts = capture.tensor(name).to(options.device);  // (N,D)
      const NeuronStats stats = neuron_stats(acts, labels, options.sparsity_epsilon);
      NeuronLayerRow row;
      row.model = model;
      row.layer = layer;
      row.neurons = acts.size(1);
      row.polysemantic_share = polysemantic_share(stats, options.threshold);
      row.sparsity = sparsity_share(stats);
      const auto mean_abs = acts.abs().to(torch::kFloat64).mean(0).to(torch::kCPU, torch::kFloat32);  // (D)
      row.mean_activation = mean_abs.to(torch::kFloat64).mean().item<double>();
      row.diversity = std::numeric_limits<double>::quiet_NaN();
      if (options.diversity) {
        auto d = neuron_diversity(acts, contexts, options.diversity_options);
        row.diversity = d.to(torch::kFloat64).mean().item<double>();
        diversity[model].push_back(d);
      }
      diff[model].push_back(stats.normalized_difference);
      sparse[model].push_back(stats.sparsity);
      mean[model].push_back(mean_abs);
      report.rows.push_back(row);
    }
  }
  std::stable_sort(report.rows.begin(), report.rows.end(), [&](const NeuronLayerRow& a, const NeuronLayerRow& b) {
    const auto rank = [&](const std::string& m) { return std::find(order.begin(), order.end(), m) - order.begin(); };
    return rank(a.model) < rank(b.model);
  });
  for (const auto& model : order) {
    report.normalized_difference[model] = stack_layer_map(diff[model]);
    report.sparsity[model] = stack_layer_map(sparse[model]);
    report.mean_activation[model] = stack_layer_map(mean[model]);
    if (options.diversity) report.diversity[model] = stack_layer_map(diversity[model]);
  }
  return report;
}

std::string neuron_report_markdown(const NeuronReport& report) {
  std::string out = "| model | layer | neurons | polysemantic (< " + number("%g", report.options.threshold) +
                    ") | sparsity | mean abs activation | diversity (nats) |\n| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& r : report.rows) {
    out += "| " + r.model + " | " + std::to_string(r.layer) + " | " + std::to_string(r.neurons) + " | " +
           number("%.1f%%", 100 * r.polysemantic_share) + " | " + number("%.2f%%", 100 * r.sparsity) + " | " +
           number("%.4g", r.mean_activation) + " | " + number("%.3f", r.diversity) + " |\n";
  }
  return out;
}

std::string neuron_report_csv(const NeuronReport& report) {
  std::string out = "model,layer,neurons,polysemantic_share,sparsity,mean_activation,diversity\n";
  const auto csv = [](double v) { return std::isfinite(v) ? number("%.9g", v) : std::string("nan"); };
  for (const auto& r : report.rows) {
    out += r.model + "," + std::to_string(r.layer) + "," + std::to_string(r.neurons) + "," + csv(r.polysemantic_share) +
           "," + csv(r.sparsity) + "," + csv(r.mean_activation) + "," + csv(r.diversity) + "\n";
  }
  return out;
}

}  // namespace superpose
