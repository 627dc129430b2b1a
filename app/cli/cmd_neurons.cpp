// superpose neurons: per-layer neuron statistics of a capture (polysemantic
// share, sparsity, mean activation, diversity), or the top-activating
// contexts of one neuron.
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "analysis/neuron_report.h"
#include "app/cli/common.h"
#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::cli {
namespace {

struct NeuronsCliOptions {
  std::string input, site = "residual", tokenizer, csv, model;
  double threshold = 0.05;
  bool no_diversity = false, json = false;
  int64_t layer = -1, neuron = -1, top = 20;
  uint64_t seed = 0;
  DeviceOptions device{"auto", "f32"};
};

NeuronSite parse_site(const std::string& text) {
  if (text == "residual") return NeuronSite::kResidual;
  if (text == "mlp") return NeuronSite::kMlp;
  throw Error("--site", "'" + text + "' is not one of residual, mlp");
}

// The capture tensor of (model, site, layer), named as the report names models.
std::string tensor_name(const std::string& model, NeuronSite site, int64_t layer) {
  const std::string l = std::to_string(layer);
  if (site == NeuronSite::kResidual) return Capture::residual_name(model, layer);
  if (model == "superposition/base") return "superposition.mlp_base." + l;
  if (model == "superposition/fine") return "superposition.mlp_fine." + l;
  return model + ".mlp." + l;
}

// JSON strings must be UTF-8; decoded token slices may cut a character.
nlohmann::json text(const std::string& s) {
  return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_contexts(const NeuronsCliOptions& o, const Capture& capture, NeuronSite site) {
  if (o.layer < 0) throw Error("--layer", "give the layer of --neuron");
  if (o.model.empty()) throw Error("--model", "give the model of --neuron (one of the capture's)");
  if (capture.positions_mode.mode != CapturePositions::kAll) {
    throw Error("--neuron", "top contexts need a capture of every token (--positions all), this one is '" +
                                capture.positions_mode.name() + "'");
  }
  const auto& acts = capture.tensor(tensor_name(o.model, site, o.layer));
  if (o.neuron >= acts.size(1)) {
    throw Error("--neuron", std::to_string(o.neuron) + " is outside 0.." + std::to_string(acts.size(1) - 1));
  }
  if (o.top < 1) throw Error("--top", "must be at least 1");
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, std::nullopt);
  const auto top = top_activations(acts, o.neuron, o.top);
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : top) {
    const ContextSnippet s = context_snippet(capture, tokenizer, c.row, 12, 6);
    const auto source = capture.sources[static_cast<size_t>(s.document)];
    if (o.json) {
      rows.push_back({{"row", c.row}, {"activation", c.activation}, {"document", s.document}, {"position", s.position},
                      {"source", text(source)}, {"label", capture.labels[c.row].item<int64_t>()},
                      {"before", text(s.before)}, {"token", text(s.token)}, {"after", text(s.after)}});
    } else {
      std::cout << format("%9.4f  %-24s  ", c.activation, source.empty() ? ("document " + std::to_string(s.document)).c_str()
                                                                          : source.c_str())
                << s.before << (tty ? "\033[1;4m" : "«") << s.token << (tty ? "\033[0m" : "»") << s.after << "\n";
    }
  }
  if (o.json) {
    std::cout << nlohmann::json{{"model", o.model}, {"layer", o.layer}, {"neuron", o.neuron}, {"contexts", rows}}.dump()
              << "\n";
  }
}

void run_neurons(const NeuronsCliOptions& o) {
  const NeuronSite site = parse_site(o.site);
  if (!(o.threshold >= 0)) throw Error("--threshold", "must be 0 or more");
  const Capture capture = load_capture(o.input);
  if (o.neuron >= 0) {
    print_contexts(o, capture, site);
    return;
  }
  std::optional<ReservedOutput> csv;
  if (!o.csv.empty()) csv.emplace("--csv", o.csv);
  NeuronReportOptions options;
  options.site = site;
  options.threshold = o.threshold;
  options.device = resolve_device(o.device);
  options.diversity = !o.no_diversity && capture.positions_mode.mode == CapturePositions::kAll;
  options.diversity_options.seed = o.seed;
  options.diversity_options.top = std::min<int64_t>(100, capture.rows());
  options.diversity_options.clusters = std::min<int64_t>(5, options.diversity_options.top);
  const NeuronReport report = neuron_report(capture, options);
  if (csv) {
    csv->write(neuron_report_csv(report));
    csv->commit();
  }
  if (o.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : report.rows) {
      rows.push_back({{"model", r.model}, {"layer", r.layer}, {"neurons", r.neurons},
                      {"polysemantic_share", r.polysemantic_share}, {"sparsity", r.sparsity},
                      {"mean_activation", r.mean_activation},
                      {"diversity", std::isfinite(r.diversity) ? nlohmann::json(r.diversity) : nlohmann::json()}});
    }
    std::cout << nlohmann::json{{"rows", rows}, {"threshold", o.threshold}, {"site", o.site},
                                {"causal", capture.causal}}
                     .dump()
              << "\n";
  } else {
    std::cout << neuron_report_markdown(report);
    if (!options.diversity) std::cout << "\nDiversity needs a capture of every token (--positions all).\n";
  }
  if (!capture.causal) std::cerr << "note: the capture comes from a non-causal superposition\n";
}

}  // namespace

void register_neurons(CLI::App& app) {
  auto o = std::make_shared<NeuronsCliOptions>();
  auto* command = app.add_subcommand(
      "neurons",
      "Neuron statistics per model and layer of a capture (polysemantic share, sparsity, mean activation, "
      "diversity), or with --neuron the top-activating contexts of one neuron");
  command->add_option("--input", o->input, "Capture file from superpose capture")->required()->check(CLI::ExistingFile);
  command->add_option("--site", o->site, "residual (states) or mlp (MLP activations)")->capture_default_str();
  command->add_option("--threshold", o->threshold, "Polysemantic: normalised mean difference below this")
      ->capture_default_str();
  command->add_flag("--no-diversity", o->no_diversity, "Skip the k-means diversity");
  command->add_option("--seed", o->seed, "k-means++ seed")->capture_default_str();
  command->add_option("--csv", o->csv, "Also write the table as CSV to FILE")->type_name("FILE");
  command->add_flag("--json", o->json, "Print JSON instead of Markdown");
  command->add_option("--neuron", o->neuron, "Print this neuron's top contexts instead of the table");
  command->add_option("--layer", o->layer, "The neuron's layer (state index, or block for --site mlp)");
  command->add_option("--model", o->model, "The neuron's model: base, fine, superposition (MLP: superposition/base, ...)");
  command->add_option("--top", o->top, "Contexts to print")->capture_default_str();
  command->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt (to decode contexts)")
      ->check(kExistingDir);
  command->add_option("--device", o->device.device, "auto (CUDA when there is one), cpu, cuda or cuda:N")
      ->capture_default_str();
  command->callback([o] { run_neurons(*o); });
}

}  // namespace superpose::cli
