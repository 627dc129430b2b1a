// superpose figures: the paper's figures rendered headless from a
// superposition and a labeled dataset — perplexity per domain and model,
// per-layer L2 distances, trajectories, t-SNE maps, neuron statistics — each
// as PDF/PNG/SVG plus its data as CSV and JSON.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "analysis/eval.h"
#include "analysis/neuron_report.h"
#include "analysis/paper_figures.h"
#include "analysis/trajectory.h"
#include "analysis/tsne.h"
#include "app/cli/common.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::cli {
namespace {

struct FiguresCliOptions {
  SuperpositionOptions superposition;
  std::string data, out, tokenizer;
  std::string formats = "pdf,png,svg";
  std::string tsne_layers;
  int64_t max_documents = 0;
  int64_t capture_documents = 50;
  int64_t tsne_points = 1000;
  int64_t tsne_iterations = 1000;
  double threshold = 0.05;
  uint64_t seed = 0;
  int64_t seq_len = 0, batch_size = 16;
  bool quiet = false;
  DeviceOptions device{"auto", "f32"};
};

// The output folder: made when missing (its parent must exist); refused when
// it is a file.
void prepare_folder(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error("--out", dir + ": is not a directory");
    return;
  }
  if (::mkdir(dir.c_str(), 0755) != 0) throw Error("--out", dir + ": cannot create: " + std::strerror(errno));
}

std::vector<std::string> parse_formats(const std::string& text) {
  std::vector<std::string> formats;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item != "pdf" && item != "png" && item != "svg") {
      throw Error("--formats", "'" + item + "' is not one of pdf, png, svg");
    }
    formats.push_back(item);
  }
  if (formats.empty()) throw Error("--formats", "names no format");
  return formats;
}

class FigureWriter {
 public:
  FigureWriter(std::string dir, std::vector<std::string> formats, bool quiet)
      : dir_(std::move(dir)), formats_(std::move(formats)), quiet_(quiet) {}

  void write(const std::string& name, const Figure& figure) {
    const std::filesystem::path base = std::filesystem::path(dir_) / name;
    for (const auto& format : formats_) render_figure(figure, base.string() + "." + format);
    write_figure_data(figure, base.string() + ".csv");
    write_figure_data(figure, base.string() + ".json");
    written_.push_back(name);
    if (!quiet_) std::cerr << "wrote " << base.string() << ".{" << join(formats_) << ",csv,json}\n";
  }
  void write_text(const std::string& name, const std::string& text) {
    write_file_atomic(std::filesystem::path(dir_) / name, text);
    written_.push_back(name);
  }
  const std::vector<std::string>& written() const { return written_; }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }
  std::string dir_;
  std::vector<std::string> formats_;
  bool quiet_;
  std::vector<std::string> written_;
};

// A seeded subsample of `count` of the rows [0, n) (all when n ≤ count), sorted.
torch::Tensor subsample(int64_t n, int64_t count, uint64_t seed) {
  if (n <= count) return torch::arange(n, torch::kInt64);
  auto generator = at::detail::createCPUGenerator(seed);
  return std::get<0>(torch::randperm(n, generator, torch::kInt64).narrow(0, 0, count).sort());
}

void run_figures(const FiguresCliOptions& o) {
  const auto formats = parse_formats(o.formats);
  if (o.max_documents < 0) throw Error("--max-documents", "must be 0 (all) or more, got " + std::to_string(o.max_documents));
  if (o.capture_documents < 0) {
    throw Error("--capture-documents", "must be 0 (all) or more, got " + std::to_string(o.capture_documents));
  }
  if (o.tsne_points < 0) throw Error("--tsne-points", "must be 0 (no t-SNE) or more, got " + std::to_string(o.tsne_points));
  if (o.tsne_iterations < 1) throw Error("--tsne-iterations", "must be at least 1");
  if (!(o.threshold >= 0)) throw Error("--threshold", "must be 0 or more");
  const torch::Device device = resolve_device(o.device);
  const torch::Dtype dtype = parse_dtype(o.device.dtype, device);
  const std::vector<Document> documents = read_jsonl(o.data);
  LoadedSuperposition loaded = o.superposition.load(device, dtype);
  o.superposition.apply_overrides(loaded.model);
  const int64_t L = loaded.base.config.n_layer;
  std::vector<int64_t> tsne_layers = o.tsne_layers.empty() ? std::vector<int64_t>{L / 2, L - 1}
                                                            : parse_index_list(o.tsne_layers, "--tsne-layers");
  for (int64_t layer : tsne_layers) {
    if (layer > L) {
      throw Error("--tsne-layers", "state " + std::to_string(layer) + " does not exist: the model has states 0.." +
                                       std::to_string(L));
    }
  }
  prepare_folder(o.out);
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, loaded.base.files.dir);
  FigureWriter writer(o.out, formats, o.quiet);
  const auto say = [&](const std::string& what) {
    if (!o.quiet) std::cerr << what << "\n";
  };

  // 1. Perplexity and per-layer distances.
  say("evaluating base, fine, the superposition and the merges");
  EvalOptions eval;
  eval.max_documents = o.max_documents;
  eval.batch_size = o.batch_size;
  if (o.seq_len > 0) eval.seq_len = o.seq_len;
  eval.seq_len = std::min(eval.seq_len, loaded.base.config.n_positions);
  {
    ProgressBar bar("eval", "batches");
    eval.progress = [&bar](int64_t done, int64_t total) { return bar.update(done, total); };
    const EvalReport report = evaluate(loaded.base, loaded.fine, loaded.model, documents, tokenizer, eval);
    writer.write("perplexity", perplexity_figure(report));
    writer.write("l2-distances", l2_distance_figure(report));
    writer.write_text("eval.md", eval_markdown(report, o.data));
  }

  // 2. States of every token: trajectories, t-SNE and neurons.
  say("capturing hidden states");
  CaptureOptions capture_options;
  capture_options.max_documents = o.capture_documents;
  capture_options.batch_size = o.batch_size;
  capture_options.seq_len = o.seq_len;
  Capture capture;
  {
    ProgressBar bar("capture", "batches");
    capture_options.progress = [&bar](int64_t done, int64_t total) { return bar.update(done, total); };
    capture = capture_states(loaded.base, loaded.fine, loaded.model, documents, tokenizer, capture_options);
  }
  {
    Figure trajectories = trajectory_figure(mean_trajectories(capture, 2));
    if (!capture.causal) mark_non_causal(trajectories);
    writer.write("trajectories", trajectories);
  }

  if (o.tsne_points > 0) {
    const auto rows = subsample(capture.rows(), o.tsne_points, o.seed);
    // Category c is drawn in palette colour c + 1; the sixth skips vermillion,
    // which is hard to tell from the first's orange.
    std::vector<std::string> names;
    std::vector<int> category_of;  // model-major index -> category
    for (const auto& model : capture.models) {
      for (const auto& domain : capture.domains) {
        if (names.size() == 5) names.emplace_back();
        category_of.push_back(static_cast<int>(names.size()));
        names.push_back(model + " · " + domain);
      }
    }
    const auto labels = capture.labels.index_select(0, rows);
    for (int64_t layer : tsne_layers) {
      say("t-SNE of state " + std::to_string(layer));
      std::vector<torch::Tensor> parts;
      std::vector<int> categories;
      for (size_t m = 0; m < capture.models.size(); ++m) {
        parts.push_back(capture.tensor(Capture::residual_name(capture.models[m], layer)).index_select(0, rows));
        for (int64_t r = 0; r < labels.size(0); ++r) {
          categories.push_back(category_of[m * capture.domains.size() + static_cast<size_t>(labels[r].item<int64_t>())]);
        }
      }
      TsneOptions tsne_options;
      tsne_options.iterations = o.tsne_iterations;
      tsne_options.seed = o.seed;
      tsne_options.device = device;
      const auto points = torch::cat(parts);
      tsne_options.perplexity = std::min(30.0, (static_cast<double>(points.size(0)) - 1) / 3);
      Tsne tsne(points, tsne_options);
      tsne.step(o.tsne_iterations);
      Figure figure = tsne_figure(tsne.embedding(), categories, names,
                                  "t-SNE of hidden state " + std::to_string(layer));
      if (!capture.causal) mark_non_causal(figure);
      writer.write("tsne-state-" + std::to_string(layer), figure);
    }
  }

  say("neuron statistics");
  NeuronReportOptions neuron_options;
  neuron_options.threshold = o.threshold;
  neuron_options.device = device;
  neuron_options.diversity_options.seed = o.seed;
  const int64_t tokens = capture.rows();
  neuron_options.diversity_options.top = std::min<int64_t>(100, tokens);
  neuron_options.diversity_options.clusters = std::min<int64_t>(5, neuron_options.diversity_options.top);
  const NeuronReport neurons = neuron_report(capture, neuron_options);
  {
    Figure figure = neuron_figure(neurons);
    if (!capture.causal) mark_non_causal(figure);
    writer.write("neurons", figure);
    writer.write_text("neuron-table.md", neuron_report_markdown(neurons));
    writer.write_text("neuron-table.csv", neuron_report_csv(neurons));
    if (neurons.normalized_difference.count("superposition") && neurons.normalized_difference.count("base")) {
      writer.write("neuron-map-difference",
                   neuron_map_figure(neurons.mean_activation.at("superposition") - neurons.mean_activation.at("base"),
                                     neurons.layers, "Δ mean |activation|",
                                     "Mean |activation| per neuron: superposition − base", true));
    }
  }

  std::string index = "# Figures\n\nFrom `" + o.superposition.superposition + "` on `" + o.data + "`" +
                      (capture.causal ? "" : " (non-causal model: its outputs read the next token)") + ".\n\n";
  for (const auto& name : writer.written()) index += "- " + name + "\n";
  write_file_atomic(std::filesystem::path(o.out) / "index.md", index);
  say("done: " + std::to_string(writer.written().size()) + " outputs in " + o.out);
}

}  // namespace

void register_figures(CLI::App& app) {
  auto o = std::make_shared<FiguresCliOptions>();
  auto* command = app.add_subcommand(
      "figures",
      "Render the paper's figures from a superposition and a labeled JSONL set: perplexity per domain and model, "
      "per-layer L2 distances, trajectories, t-SNE maps, neuron statistics (PDF/PNG/SVG + CSV/JSON)");
  add_superposition_options(*command, o->superposition, /*with_overrides=*/true);
  command->get_option("--superposition")->required();
  command->add_option("--data", o->data, "Labeled JSONL: {\"text\", \"label\": 0|1, \"domain\"} per line")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--out", o->out, "Output folder (made when missing)")->required()->type_name("DIR");
  command->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--formats", o->formats, "Comma-separated: pdf, png, svg")->capture_default_str();
  command->add_option("--max-documents", o->max_documents, "Evaluate the first N documents per domain; 0 = all")
      ->capture_default_str();
  command->add_option("--capture-documents", o->capture_documents,
                      "Capture every token of the first N documents per domain for trajectories, t-SNE and "
                      "neurons; 0 = all")
      ->capture_default_str();
  command->add_option("--tsne-layers", o->tsne_layers, "States to map with t-SNE: i,i,... (default: L/2 and L-1)");
  command->add_option("--tsne-points", o->tsne_points, "Tokens per model in each t-SNE map (0: no t-SNE)")
      ->capture_default_str();
  command->add_option("--tsne-iterations", o->tsne_iterations, "t-SNE iterations")->capture_default_str();
  command->add_option("--threshold", o->threshold, "Polysemantic threshold on the normalised mean difference")
      ->capture_default_str();
  command->add_option("--seed", o->seed, "Seed of the t-SNE sample and the k-means")->capture_default_str();
  command->add_option("--seq-len", o->seq_len, "Tokens per window; 0 = 128 or the model's context if shorter")
      ->capture_default_str();
  command->add_option("--batch-size", o->batch_size, "Windows per forward pass")->capture_default_str();
  command->add_flag("--quiet", o->quiet, "No progress on stderr");
  command->add_option("--device", o->device.device, "auto (CUDA when there is one), cpu, cuda or cuda:N")
      ->capture_default_str();
  command->add_option("--dtype", o->device.dtype, "f32, or bf16 / f16 on CUDA")->capture_default_str();
  command->callback([o] { run_figures(*o); });
}

}  // namespace superpose::cli
